"""Temporary BM25-only factory (to be replaced by the full retrieval backends)."""

from __future__ import annotations

import re
from typing import Any

import bm25s

from corpora.records import Corpus
from corpora.registry import unknown_name_error
from corpora.retrieval.base import Hit, Retriever

_STOP = set("a an the of in on at by for to and or is was were are be been which what who whom "
            "whose when where why how did does do that this it its as with from s".split())


def _tok(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


class _BM25:
    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.ids = [d.doc_id for d in corpus.documents]
        self.model = bm25s.BM25(k1=1.5, b=0.75)
        self.model.index([_tok(f"{d.title} {d.text}") for d in corpus.documents], show_progress=False)

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        out: list[list[Hit]] = []
        for q in queries:
            tokens = _tok(q)
            if not tokens:
                out.append([])
                continue
            scores = self.model.get_scores(tokens)
            order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
            out.append([Hit(self.ids[i], float(scores[i])) for i in order if scores[i] > 0])
        return out


def make_retriever(kind: str, corpus: Corpus, **options: Any) -> Retriever:
    if kind != "bm25":
        raise unknown_name_error("retriever", kind, ["bm25"])
    return _BM25(corpus)
