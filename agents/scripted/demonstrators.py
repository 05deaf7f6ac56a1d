"""Demonstrators: scripted agents that each follow one query strategy, for SFT data.

Demonstrators may *plan* with gold metadata (which documents support the question), so they are
constructed with the corpus. They answer the gold answer only once every supporting document
has been retrieved, and "unknown" otherwise; the SFT data builder keeps only successful episodes,
so a strategy contributes demonstrations exactly on the questions it can solve.

Every query is built from the question, the text retrieved so far and the corpus's term
statistics, with gold metadata only choosing *which* document to aim at, so the strategies read
the same on the synthetic world and on real multi-hop questions (HotpotQA, MuSiQue).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Mapping

from agents.scripted.base import ScriptedAgent
from agents.scripted.text import (
    keyword_query,
    keywords,
    mentions,
    names_in,
    plain_title,
    rarity_from_doc_freq,
    reword,
    term_forms,
)
from agents.strategies import content_tokens, name_tokens
from corpora import Corpus, Document, Question

# One document-frequency table per corpus, shared by the demonstrators of every batch slot.
_DOC_FREQ: dict[int, tuple[weakref.ref[Corpus], Counter[str]]] = {}


def doc_freq(corpus: Corpus) -> Mapping[str, int]:
    """How many documents of ``corpus`` (title and text) contain each content token."""
    cached = _DOC_FREQ.get(id(corpus))
    if cached is not None and cached[0]() is corpus:
        return cached[1]
    counts: Counter[str] = Counter()
    for doc in corpus.documents:
        counts.update(set(content_tokens(_text(doc))))
    for key in [k for k, (ref, _) in _DOC_FREQ.items() if ref() is None]:
        del _DOC_FREQ[key]  # tables of corpora that are gone
    _DOC_FREQ[id(corpus)] = (weakref.ref(corpus), counts)
    return counts


def _text(doc: Document) -> str:
    """The text a document is searched under: its title and its body."""
    return f"{doc.title} {doc.text}"


class Demonstrator(ScriptedAgent):
    """Base class: looks up the gold question record by id to plan its queries."""

    strategy = "demonstrator"

    def __init__(self, corpus: Corpus, max_searches: int = 3) -> None:
        super().__init__(max_searches)
        self.corpus = corpus
        self._records = {q.qid: q for q in corpus.questions}
        self.rarity = rarity_from_doc_freq(doc_freq(corpus))
        self.gold: Question | None = None
        self.plan: list[str] = []

    @property
    def name(self) -> str:  # type: ignore[override]
        """Agent name, e.g. ``demo_entity``."""
        return f"demo_{self.strategy}"

    def start(self) -> None:
        """Look up the gold record and plan the first queries."""
        self.gold = self._records.get(self.qid)
        self.plan = self.first_queries()

    def support_docs(self) -> list[Document]:
        """The supporting documents, in reasoning order."""
        if self.gold is None:
            return []
        by_id = self.corpus.by_id
        return [by_id[d] for d in self.gold.supporting_ids if d in by_id]

    def support_titles(self) -> list[str]:
        """Titles of the supporting documents, in reasoning order."""
        return [doc.title for doc in self.support_docs()]

    def named_docs(self) -> list[Document]:
        """Supporting documents the question names (by title, disambiguation dropped)."""
        return [d for d in self.support_docs() if mentions(self.question, plain_title(d.title))]

    def named_titles(self) -> list[str]:
        """Names of the supporting documents the question mentions, without repeats.

        Falls back to the question's names that some supporting document contains (the
        question describes its documents instead of naming them), then to its first two names.
        """
        named = list(dict.fromkeys(plain_title(d.title) for d in self.named_docs()))
        if named:
            return named
        names = names_in(self.question)
        texts = [_text(d) for d in self.support_docs()]
        return [n for n in names if any(mentions(t, n) for t in texts)][:2] or names[:2]

    def bridge_docs(self) -> list[Document]:
        """Supporting documents the question does not name: they must be found by reading."""
        named = {d.doc_id for d in self.named_docs()}
        return [d for d in self.support_docs() if d.doc_id not in named]

    def first_queries(self) -> list[str]:
        """Queries planned before anything is retrieved."""
        raise NotImplementedError

    def follow_up(self) -> str | None:
        """A query built from retrieved text once the plan is spent (None to stop)."""
        return None

    def next_query(self) -> str | None:
        """The next planned query, then follow-ups, skipping what was already asked."""
        while self.plan:
            query = self.plan.pop(0)
            if query not in self.queries:
                return query
        return self.follow_up()

    def final_answer(self) -> str:
        """The gold answer if all evidence was retrieved, else ``unknown``."""
        needed = set(self.support_titles())
        if self.gold is None or not needed or not needed <= self.titles_seen():
            return "unknown"
        return self.gold.answers[0]

    def seen_text(self) -> str:
        """All text retrieved so far in the episode."""
        return " ".join(text for _, text in self.docs)

    def link_to(self, doc: Document) -> str | None:
        """A name read in the retrieved text that leads to ``doc``, or None.

        The document's own title when the retrieved text mentions it, else the first name of the
        retrieved text (not one the question has) that the document's title or text contains.
        """
        seen = self.seen_text()
        title = plain_title(doc.title)
        if mentions(seen, title):
            return title
        asked = set(content_tokens(self.question))
        for name in names_in(seen):
            if set(content_tokens(name)) <= asked:  # nothing read: the question has it all
                continue
            if mentions(title, name) or (" " in name and mentions(doc.text, name)):
                return name
        return None

    def next_bridge(self, with_relation: bool) -> str | None:
        """A query for the next unretrieved bridge document that the retrieved text links to.

        Args:
            with_relation: Append the question's relation words that the document contains.
        """
        for doc in self.bridge_docs():
            if doc.title in self.titles_seen():
                continue
            link = self.link_to(doc)
            if link is None:
                continue
            relation = self.relation_words(doc, besides=link) if with_relation else ""
            query = f"{link} {relation}".strip()
            if query not in self.queries:
                return query
        return None

    def relation_words(self, doc: Document, besides: str = "", most: int = 2) -> str:
        """The question's rarest non-name words that ``doc`` contains (else its rarest one).

        Args:
            doc: The document the query aims at.
            besides: Text the query has already (its words are not repeated).
            most: Most words returned.
        """
        names = name_tokens(self.question) | set(content_tokens(besides))
        names |= {tok for title in self.named_titles() for tok in content_tokens(title)}
        forms = term_forms(self.question)
        tokens = [t for t in forms if t not in names]
        in_doc = set(content_tokens(_text(doc)))
        ranked = sorted(tokens, key=lambda t: (t not in in_doc, self.rarity(t)))
        picked = [t for t in ranked[:most] if t in in_doc] or ranked[:1]
        return " ".join(forms[t] for t in tokens if t in picked)


class VerbatimDemonstrator(Demonstrator):
    """Searches the question exactly as asked."""

    strategy = "verbatim"

    def first_queries(self) -> list[str]:
        """The question itself."""
        return [self.question]


class EntityDemonstrator(Demonstrator):
    """Looks up each entity the question names, by name alone."""

    strategy = "entity"

    def first_queries(self) -> list[str]:
        """One query per named entity."""
        return self.named_titles()


class KeywordDemonstrator(Demonstrator):
    """Searches the question's rarest few words, one query per document they can reach.

    Rarity is document frequency in the corpus. A supporting document is aimed at when the
    question names it or one of the question's multi-word names occurs in it; its query keeps
    the rarest question words that the document contains. A question that reaches none of its
    documents that way gets one query of its rarest words.
    """

    strategy = "keyword"

    def first_queries(self) -> list[str]:
        """One keyword query per reachable supporting document (or one for the question)."""
        queries = [
            keyword_query(self.question, self.rarity, among=set(content_tokens(_text(doc))))
            for doc in self.keyword_targets()
        ] or [keyword_query(self.question, self.rarity)]
        return [q for q in dict.fromkeys(queries) if q]

    def keyword_targets(self) -> list[Document]:
        """Supporting documents the question's names lead to."""
        named = {d.doc_id for d in self.named_docs()}
        phrases = [n for n in names_in(self.question) if " " in n]
        return [
            d
            for d in self.support_docs()
            if d.doc_id in named or any(mentions(_text(d), p) for p in phrases)
        ]


class ReformulationDemonstrator(Demonstrator):
    """Looks up each named entity with the question's relation reworded (``X town hometown``).

    The new words are synonyms of the question's relation words (or, failing those, words for
    what it asks: ``date``, ``person``...) that neither the question nor the text retrieved so
    far contains, so the query probes vocabulary new to the episode.
    """

    strategy = "reformulation"
    targets: list[str]

    def first_queries(self) -> list[str]:
        """None: each query is worded when it is issued, against the text seen by then."""
        self.targets = self.named_titles()
        return []

    def follow_up(self) -> str | None:
        """The next named entity plus the reworded relation."""
        while self.targets:
            title = self.targets.pop(0)
            name_words = {w.lower() for t in self.named_titles() for w in t.split()}
            relation = [w for w in keywords(self.question) if w.lower() not in name_words]
            seen = set(content_tokens(self.seen_text()))
            query = " ".join([title, *reword(relation, self.question, avoid=seen)])
            if query not in self.queries:
                return query
        return None


class DecompositionDemonstrator(Demonstrator):
    """Hop by hop: looks up the named entities, then each bridge entity as it is found."""

    strategy = "decomposition"

    def first_queries(self) -> list[str]:
        """The named entities."""
        return self.named_titles()

    def follow_up(self) -> str | None:
        """The bridge entity's name once the retrieved text leads to it."""
        return self.next_bridge(with_relation=False)


class BridgeDemonstrator(Demonstrator):
    """Searches the question, then builds bridge queries from the retrieved text."""

    strategy = "bridge"

    def first_queries(self) -> list[str]:
        """The question itself."""
        return [self.question]

    def follow_up(self) -> str | None:
        """A bridge name read in the results plus the question's relation words."""
        return self.next_bridge(with_relation=True)


DEMONSTRATORS: dict[str, type[Demonstrator]] = {
    cls.strategy: cls
    for cls in (
        VerbatimDemonstrator,
        EntityDemonstrator,
        KeywordDemonstrator,
        ReformulationDemonstrator,
        DecompositionDemonstrator,
        BridgeDemonstrator,
    )
}
