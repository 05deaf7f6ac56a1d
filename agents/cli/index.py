"""``forksearch-index``: build or refresh a corpus's indexes; print recall@k, time and size."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.build import load_corpus
from agents.cli.schema import IndexConfig, entry_point
from corpora import Corpus, Retriever, make_retriever
from corpora.retrieval import BM25Retriever, DenseRetriever, HybridRetriever
from corpora.retrieval.cache import IndexCache, default_cache_root
from corpora.retrieval.recall import support_recall

#: The cache backend name each cached retriever class uses.
_BACKENDS: dict[type, str] = {BM25Retriever: "bm25s", DenseRetriever: "dense"}
PROGRAM = "forksearch-index"


def index_entries(retriever: Retriever, cache: IndexCache) -> list[Path]:
    """The on-disk cache entries a retriever uses (none for uncached backends)."""
    if isinstance(retriever, HybridRetriever):
        return [p for sub in retriever.retrievers for p in index_entries(sub, cache)]
    backend = _BACKENDS.get(type(retriever))
    if backend is None:
        return []
    settings = retriever.settings  # type: ignore[attr-defined]
    return [cache.path(retriever.corpus, backend, settings)]  # type: ignore[attr-defined]


def folder_bytes(paths: list[Path]) -> int:
    """Total size of the files under ``paths``."""
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file())


def index_corpus(corpus: Corpus, kinds: list[str], split: str, ks: list[int], refresh: bool,
                 cache_dir: str | None) -> list[dict[str, Any]]:
    """Build each retriever over ``corpus`` and measure it on ``split``'s questions."""
    root = Path(cache_dir) if cache_dir else default_cache_root()
    if refresh and root.exists():
        for entry in root.glob(f"[!.]*-{corpus.fingerprint}-*"):  # not another writer's .tmp
            shutil.rmtree(entry, ignore_errors=True)
    questions = corpus.require_split(split)
    rows = []
    for kind in kinds:
        start = time.perf_counter()
        options = {} if kind == "rank_bm25" else {"cache_dir": str(root)}
        retriever = make_retriever(kind, corpus, **options)
        seconds = time.perf_counter() - start
        results = retriever.search([q.question for q in questions], max(ks))
        row: dict[str, Any] = {
            "retriever": kind,
            "status": getattr(retriever, "cache_status", None) or _sub_status(retriever),
            "seconds": seconds,
            "size_mb": folder_bytes(index_entries(retriever, IndexCache(root))) / 2**20,
        }
        row.update({f"recall@{k}": support_recall(questions, results, k) for k in ks})
        rows.append(row)
    return rows


def _sub_status(retriever: Retriever) -> str:
    if isinstance(retriever, HybridRetriever):
        return "+".join(getattr(r, "cache_status", "memory") for r in retriever.retrievers)
    return "memory"


def index(cfg: IndexConfig, out_dir: Path) -> None:
    """Build and measure ``cfg``'s indexes; print the table (``forksearch-index``'s job)."""
    corpus = load_corpus(cfg.corpus)
    rows = index_corpus(corpus, cfg.retrievers, cfg.split, cfg.ks, cfg.refresh, cfg.cache_dir)
    (out_dir / "index.json").write_text(json.dumps({"corpus": corpus.name, "rows": rows}, indent=2))
    table = Table(title=f"indexes of {corpus.name}: {len(corpus.documents)} documents, "
                        f"recall of supporting documents on {cfg.split} (verbatim questions)")
    for col in rows[0]:
        table.add_column(col, justify="left" if col in ("retriever", "status") else "right")
    for r in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()))
    Console(width=max(Console().width, 120)).print(table)


main = entry_point("index", IndexConfig, PROGRAM, index)

if __name__ == "__main__":
    main()
