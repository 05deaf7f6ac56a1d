"""Lexical retrieval at scale: forksearch ``bm25`` against raw ``bm25s`` and ``rank_bm25``.

    python benchmarks/retrieval.py --docs 200000
    python benchmarks/retrieval.py --docs 1000000 --rank-bm25-queries 20

Documents are generated (seeded): a 2-word title and a 28-44 word body (~38 tokens in all, the
size of a synthetic-corpus passage) drawn from a Zipfian vocabulary of pseudo-words, so term
statistics (a few very common terms, a long tail of rare ones) are realistic for BM25. Queries
are 4 words drawn from a random document's body. Everything runs in one process, one backend
after the other, with a garbage collection and ``malloc_trim`` between measurements:

* ``build_s``: index build time. forksearch ``bm25``: ``BM25Retriever._build`` (tokenization
  included; the cache write is timed apart as ``save_s``). ``bm25s``: ``bm25s.tokenize`` (its own
  tokenizer, lowercased, with forksearch's stopword list) plus ``BM25.index``. ``rank_bm25``:
  ``RankBM25Retriever`` (forksearch's tokenizer plus ``BM25Okapi``).
* ``rss_added_mb``: resident memory after the build minus before it (what the index keeps);
  ``peak_added_mb``: the high-water mark during the build minus the same baseline (Linux only).
* ``cached_load_rss_mb`` (``bm25`` only): resident memory added by loading the index from the
  cache (memory-mapped), right after the load and after all the queries (``..._after_queries``).
* ``p50_ms``/``p99_ms``: latency of one query (top 10) at batch 1; ``qps_batch64``: queries/s
  in batches of 64. ``bm25`` is measured on the cached, memory-mapped index (its hits are checked
  to be identical to those of the freshly built one). ``rank_bm25`` answers only
  ``--rank-bm25-queries`` sampled queries: its latency and queries/s are extrapolated from them.
* ``top1_agreement``: share of the sampled queries whose top hit is the same for ``bm25`` and
  ``rank_bm25`` (their idf differs for terms in over half of the documents, see bm25.py).

``--dense N`` adds ``dense`` with flat and HNSW FAISS indexes over N generated passages (the
default encoder): passages encoded per second, batch-1 latency and queries/s (query encoding
included), and HNSW's recall@10 against flat (HNSW is built on the flat index's embeddings).

The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpora.records import Corpus, Document  # noqa: E402
from corpora.retrieval.bm25 import BM25Retriever, RankBM25Retriever, _import_bm25s  # noqa: E402
from corpora.retrieval.text import STOPWORDS, document_text  # noqa: E402

K = 10
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def pseudo_word(i: int) -> str:
    """The ``i``-th pseudo-word: at least two consonant-vowel syllables (``"baba"``, ...)."""
    parts = []
    for _ in range(2):
        i, r = divmod(i, len(_SYLLABLES))
        parts.append(_SYLLABLES[r])
    while i:
        i, r = divmod(i - 1, len(_SYLLABLES))
        parts.append(_SYLLABLES[r])
    return "".join(parts)


def make_vocabulary(size: int) -> list[str]:
    words: list[str] = []
    i = 0
    while len(words) < size:
        word = pseudo_word(i)
        if word not in STOPWORDS:
            words.append(word)
        i += 1
    return words


def make_corpus(
    n_docs: int,
    *,
    seed: int = 0,
    vocab_size: int = 500_000,
    zipf_s: float = 1.05,
    zipf_offset: int = 100,
) -> tuple[Corpus, list[str]]:
    """``n_docs`` seeded documents and 4-word queries drawn from random documents.

    Word frequencies follow Zipf-Mandelbrot, ``1 / (rank + zipf_offset) ** zipf_s``: the
    ``zipf_offset`` most frequent words of real text are function words, which the tokenizer
    drops, so the most frequent indexed word is in a few percent of the passages, not in most.
    """
    rng = np.random.default_rng(seed)
    words = make_vocabulary(vocab_size)
    weights = 1.0 / (np.arange(1, vocab_size + 1) + zipf_offset) ** zipf_s
    cdf = np.cumsum(weights / weights.sum())
    lengths = rng.integers(28, 45, size=n_docs)
    # Word ids are shuffled against their Zipf rank: frequent words are not the short ones.
    rank_to_word = rng.permutation(vocab_size)
    docs = []
    start = 0
    total = int(lengths.sum()) + 2 * n_docs
    draws = rank_to_word[np.minimum(np.searchsorted(cdf, rng.random(total)), vocab_size - 1)]
    for i, n in enumerate(lengths.tolist()):
        ids = draws[start : start + n + 2].tolist()
        start += n + 2
        title = " ".join(words[w] for w in ids[:2]).title()
        body = " ".join(words[w] for w in ids[2:])
        docs.append(Document(f"d{i}", title, f"The {body}."))
    queries = []
    for doc_index in rng.integers(0, n_docs, size=4096).tolist():
        body = docs[doc_index].text[4:-1].split()
        picks = rng.choice(len(body), size=min(4, len(body)), replace=False)
        queries.append(" ".join(body[j] for j in sorted(picks.tolist())))
    return Corpus(f"bench-{n_docs}", tuple(docs)), queries


# --- memory ------------------------------------------------------------------------------------


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


_LIBC = _libc()


def settle() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS reflects live memory."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure_build(build: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    settle()
    before = rss_mb()
    can_peak = reset_peak()
    t0 = time.perf_counter()
    result = build()
    build_s = time.perf_counter() - t0
    peak = peak_mb() if can_peak else None
    settle()
    return result, {
        "build_s": round(build_s, 2),
        "rss_added_mb": round(rss_mb() - before, 1),
        "peak_added_mb": round(peak - before, 1) if peak is not None else None,
    }


# --- latency -----------------------------------------------------------------------------------


def latency(search_one: Callable[[str], Any], queries: Sequence[str]) -> dict[str, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search_one(q)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def throughput(search_batch: Callable[[list[str]], Any], queries: Sequence[str]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(queries), 64):
        search_batch(list(queries[i : i + 64]))
    return round(len(queries) / (time.perf_counter() - t0), 1)


# --- backends ----------------------------------------------------------------------------------


def bench_bm25(
    corpus: Corpus, queries: list[str], batch_queries: list[str], cache_dir: Path
) -> tuple[dict[str, Any], BM25Retriever]:
    timings: dict[str, float] = {}

    class Timed(BM25Retriever):
        def _build(self) -> Any:
            t0 = time.perf_counter()
            model = super()._build()
            timings["build"] = time.perf_counter() - t0
            return model

    t0 = time.perf_counter()
    built, row = measure_build(lambda: Timed(corpus, cache_dir=cache_dir))
    row["save_s"] = round(row["build_s"] - timings["build"], 2)  # cache write, manifest
    row["build_s"] = round(timings["build"], 2)
    assert built.cache_status == "built", built.cache_status
    built_hits = built.search(queries, K)
    del built
    settle()

    before = rss_mb()
    t0 = time.perf_counter()
    cached = BM25Retriever(corpus, cache_dir=cache_dir)
    row["cached_load_s"] = round(time.perf_counter() - t0, 2)
    assert cached.cache_status == "loaded", cached.cache_status
    settle()
    row["cached_load_rss_mb"] = round(rss_mb() - before, 1)
    row.update(latency(lambda q: cached.search([q], K), queries))
    row["qps_batch64"] = throughput(lambda qs: cached.search(qs, K), batch_queries)
    settle()
    row["cached_load_rss_mb_after_queries"] = round(rss_mb() - before, 1)
    row["mmap_hits_identical"] = cached.search(queries, K) == built_hits
    return row, cached


def bench_bm25s(
    corpus: Corpus, queries: list[str], batch_queries: list[str], k1: float, b: float
) -> dict[str, Any]:
    bm25s = _import_bm25s()
    texts = [document_text(doc) for doc in corpus.documents]
    stopwords = sorted(STOPWORDS)

    def build() -> Any:
        tokens = bm25s.tokenize(texts, lower=True, stopwords=stopwords, show_progress=False)
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(tokens, show_progress=False)
        return model

    model, row = measure_build(build)

    def query_tokens(qs: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            qs, lower=True, stopwords=stopwords, return_ids=False, show_progress=False
        )

    def search(qs: list[str]) -> Any:
        return model.retrieve(query_tokens(qs), k=K, show_progress=False, n_threads=1)

    row.update(latency(lambda q: search([q]), queries))
    row["qps_batch64"] = throughput(search, batch_queries)
    row["tokenizer"] = "bm25s.tokenize (its own regex), forksearch's stopwords"
    return row  # the caller settles once the model is gone


def bench_rank_bm25(
    corpus: Corpus, sample: list[str], k1: float, b: float
) -> tuple[dict[str, Any], list[str | None]]:
    model, row = measure_build(lambda: RankBM25Retriever(corpus, k1=k1, b=b))
    hits = []

    def search_one(q: str) -> None:
        found = model.search([q], K)[0]
        hits.append(found[0].doc_id if found else None)

    row.update(latency(search_one, sample))
    row["qps_batch64"] = round(1000 / row["mean_ms"], 3)
    row["sampled_queries"] = len(sample)
    row["note"] = f"latency and qps extrapolated from {len(sample)} sampled queries (batch 1)"
    return row, hits


def bench_dense(n_docs: int, seed: int, n_queries: int) -> dict[str, Any]:
    """Flat and HNSW ``dense`` on ``n_docs`` generated passages (the default encoder, on CPU
    unless sentence-transformers picks a GPU): encode passages/s, batch-1 query latency (query
    encoding included), and HNSW's recall@10 against the exact flat index."""
    from corpora.retrieval.dense import DenseRetriever

    corpus, all_queries = make_corpus(n_docs, seed=seed)
    queries = all_queries[:n_queries]
    out: dict[str, Any] = {"docs": n_docs, "queries": len(queries)}
    DenseRetriever(Corpus("warm-up", corpus.documents[:8]), cache=False)  # load the encoder
    t0 = time.perf_counter()
    flat = DenseRetriever(corpus, index="flat", cache=False)
    encode_s = time.perf_counter() - t0
    out["encode_passages_per_s"] = round(n_docs / encode_s, 1)

    class HNSWOnFlatEmbeddings(DenseRetriever):
        def _build(self) -> tuple[np.ndarray, Any]:  # the same embeddings, not encoded again
            index = self._new_index(flat.embeddings.shape[1])
            index.add(flat.embeddings)
            return flat.embeddings, index

    t0 = time.perf_counter()
    hnsw = HNSWOnFlatEmbeddings(corpus, index="hnsw", cache=False)
    out["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
    want = flat.search(queries, K)
    got = hnsw.search(queries, K)
    recall = [
        len({h.doc_id for h in g} & {h.doc_id for h in w}) / max(1, len(w))
        for g, w in zip(got, want, strict=True)
    ]
    out["hnsw_recall_at_10_vs_flat"] = round(float(np.mean(recall)), 4)
    for name, retriever in (("flat", flat), ("hnsw", hnsw)):
        row = latency(lambda q, r=retriever: r.search([q], K), queries)
        row["qps_batch64"] = throughput(lambda qs, r=retriever: r.search(qs, K), queries)
        out[name] = row
    return out


# --- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    _import_bm25s()  # imports are not part of any backend's build
    import rank_bm25  # noqa: F401

    t0 = time.perf_counter()
    corpus, all_queries = make_corpus(args.docs, seed=args.seed)
    queries = all_queries[: args.queries]
    batch_queries = all_queries[: args.batch_queries]
    sample = all_queries[: args.rank_bm25_queries]
    print(f"generated {args.docs} documents in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    result: dict[str, Any] = {
        "docs": args.docs,
        "seed": args.seed,
        "queries": len(queries),
        "k": K,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="forksearch-bench-") as tmp:
        row, bm25 = bench_bm25(corpus, queries, batch_queries, Path(tmp))
        result["bm25"] = row
        bm25_top1 = [(h[0].doc_id if h else None) for h in bm25.search(sample, K)]
        print("bm25 done", file=sys.stderr)
        del bm25
        settle()
    if not args.skip_bm25s:
        result["bm25s"] = bench_bm25s(corpus, queries, batch_queries, 1.5, 0.75)
        settle()
        print("bm25s done", file=sys.stderr)
    if args.rank_bm25_queries > 0:
        row, rank_top1 = bench_rank_bm25(corpus, sample, 1.5, 0.75)
        result["rank_bm25"] = row
        settle()
        agree = sum(a == b for a, b in zip(bm25_top1, rank_top1, strict=True))
        result["top1_agreement"] = round(agree / len(sample), 4)
        result["speedup_vs_rank_bm25"] = round(row["mean_ms"] / result["bm25"]["mean_ms"], 1)
    if args.dense > 0:
        result["dense"] = bench_dense(args.dense, args.seed, args.queries)
    result["acceptance"] = acceptance(result)
    return result


def acceptance(r: dict[str, Any]) -> dict[str, bool | None]:
    bm25, raw = r["bm25"], r.get("bm25s")
    out: dict[str, bool | None] = {
        "p50_le_5ms": bm25["p50_ms"] <= 5.0,
        "mmap_hits_identical": bm25["mmap_hits_identical"],
    }
    if raw is not None:
        out["rss_le_1.5x_bm25s"] = bm25["rss_added_mb"] <= 1.5 * raw["rss_added_mb"]
        out["cached_rss_le_0.5x_bm25"] = bm25["cached_load_rss_mb"] <= 0.5 * bm25["rss_added_mb"]
        out["build_le_bm25s"] = bm25["build_s"] <= raw["build_s"]
    if "rank_bm25" in r:
        out["speedup_ge_300x"] = r["speedup_vs_rank_bm25"] >= 300
        out["top1_ge_0.95"] = r["top1_agreement"] >= 0.95
    return out


def print_table(r: dict[str, Any]) -> None:
    cols = [
        ("build_s", "build s"),
        ("rss_added_mb", "RSS+ MB"),
        ("peak_added_mb", "peak+ MB"),
        ("cached_load_rss_mb", "cached MB"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("qps_batch64", "q/s @64"),
    ]
    print(f"{r['docs']} documents, {r['queries']} queries, top {r['k']}, {r['cpus']} CPUs")
    print(f"{'backend':<10}" + "".join(f"{label:>11}" for _, label in cols))
    for name in ("bm25", "bm25s", "rank_bm25"):
        if name in r:
            cells = "".join(f"{str(r[name].get(key, '-')):>11}" for key, _ in cols)
            print(f"{name:<10}{cells}")
    if "rank_bm25" in r:
        print(r["rank_bm25"]["note"])
        print(
            f"top-1 agreement bm25/rank_bm25: {r['top1_agreement']}; "
            f"bm25 speed-up over rank_bm25: {r['speedup_vs_rank_bm25']}x"
        )
    if "dense" in r:
        d = r["dense"]
        print(
            f"dense on {d['docs']} passages: {d['encode_passages_per_s']} passages/s encoded; "
            f"HNSW built in {d['hnsw_build_s']}s, "
            f"recall@10 vs flat {d['hnsw_recall_at_10_vs_flat']}"
        )
        for name in ("flat", "hnsw"):
            row = d[name]
            print(
                f"  {name}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms (query encoding "
                f"included), {row['qps_batch64']} q/s at batch 64"
            )
    print("acceptance:", ", ".join(f"{k}={v}" for k, v in r["acceptance"].items()))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queries", type=int, default=200, help="batch-1 latency queries")
    parser.add_argument("--batch-queries", type=int, default=1024, help="for queries/s at 64")
    parser.add_argument("--rank-bm25-queries", type=int, default=50, help="0 skips rank_bm25")
    parser.add_argument("--skip-bm25s", action="store_true")
    parser.add_argument(
        "--dense", type=int, default=0, metavar="N", help="also dense flat/HNSW on N passages"
    )
    args = parser.parse_args(argv)
    result = run(args)
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
