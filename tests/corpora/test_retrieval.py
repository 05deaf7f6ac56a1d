import importlib.util
import json
import math
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import corpora  # noqa: E402
from corpora.records import Corpus, Document  # noqa: E402
from corpora.retrieval import (  # noqa: E402
    BM25Retriever,
    DenseRetriever,
    Hit,
    HybridRetriever,
    IndexCache,
    RankBM25Retriever,
    RemoteRetrievalError,
    RemoteRetriever,
    Retriever,
    available_retrievers,
    document_text,
    make_retriever,
    tokenize,
)

DOCS = (
    Document(
        "paris", "Paris", "Paris is the capital and largest city of France, on the Seine river."
    ),
    Document("berlin", "Berlin", "Berlin is the capital of Germany. The Berlin Wall fell in 1989."),
    Document("seine", "Seine", "The Seine is a river in northern France that flows through Paris."),
    Document(
        "photo",
        "Photosynthesis",
        "Plants convert sunlight, water and carbon dioxide into sugar and oxygen.",
    ),
    Document(
        "everest",
        "Mount Everest",
        "Mount Everest is the highest mountain on Earth, in the Himalayas.",
    ),
)
TINY = Corpus("tiny-retrieval", DOCS)
LEXICAL = [BM25Retriever, RankBM25Retriever]


def ids(hits: list[Hit]) -> list[str]:
    return [h.doc_id for h in hits]


def lexical(cls, corpus: Corpus):
    if cls is BM25Retriever:
        return BM25Retriever(corpus, cache=False)
    return RankBM25Retriever(corpus)


@pytest.fixture(scope="module")
def dense_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("dense-cache")


@pytest.fixture(scope="module")
def dense_tiny(dense_cache) -> DenseRetriever:
    return DenseRetriever(TINY, cache_dir=dense_cache)


# --- tokenizer ---------------------------------------------------------------------------------


def test_tokenizer_lowercases_keeps_digits_drops_stopwords():
    assert tokenize("Who was born in 1987, in the Café-owner's town?") == [
        "born",
        "1987",
        "cafe",
        "owner",
        "town",
    ]
    assert tokenize("What is the name of it?") == ["name"]
    assert tokenize("snake_case x2") == ["snake", "case", "x2"]
    assert tokenize("") == []
    assert document_text(DOCS[0]).startswith("Paris Paris is")


def test_tiny_corpus_tokens_as_worked_out_by_hand():
    # The hand-checked rankings below rely on these token lists.
    assert tokenize(document_text(DOCS[0])) == [
        "paris",
        "paris",
        "capital",
        "largest",
        "city",
        "france",
        "seine",
        "river",
    ]
    assert tokenize(document_text(DOCS[1])) == [
        "berlin",
        "berlin",
        "capital",
        "germany",
        "berlin",
        "wall",
        "fell",
        "1989",
    ]
    assert tokenize(document_text(DOCS[2])) == [
        "seine",
        "seine",
        "river",
        "northern",
        "france",
        "flows",
        "paris",
    ]


# --- lexical BM25: hand-checked rankings -------------------------------------------------------


@pytest.mark.parametrize("cls", LEXICAL)
def test_hand_checked_rankings(cls):
    r = lexical(cls, TINY)
    assert isinstance(r, Retriever)
    assert r.corpus is TINY
    # "germany" is only in berlin; "capital" is in berlin and paris (equal length, tf 1).
    got = r.search(
        [
            "capital of Germany",
            "river Seine",
            "1989",
            "What is photosynthesis?",
            "Mount Everest highest",
        ],
        5,
    )
    assert ids(got[0]) == ["berlin", "paris"]
    # seine: tf 2 in the shorter seine doc vs tf 1 in paris; river: tf 1 in both.
    assert ids(got[1]) == ["seine", "paris"]
    assert ids(got[2]) == ["berlin"]
    assert ids(got[3]) == ["photo"]
    assert ids(got[4]) == ["everest"]


def test_hand_computed_scores():
    # "1989": df 1 of N 5, tf 1 in a document of average length (8 tokens).
    # BM25Okapi: idf log(4.5 / 1.5) = log 3; tf part 1 * 2.5 / (1 + 1.5 * 1) = 1.
    [[hit]] = RankBM25Retriever(TINY).search(["1989"], 3)
    assert (hit.doc_id, hit.score) == ("berlin", pytest.approx(math.log(3)))
    # bm25s lucene: idf log(1 + 4.5 / 1.5) = log 4; tf part 1 / (1 + 1.5 * 1) = 0.4.
    [[hit]] = BM25Retriever(TINY, cache=False).search(["1989"], 3)
    assert (hit.doc_id, hit.score) == ("berlin", pytest.approx(0.4 * math.log(4), rel=1e-6))


def test_common_terms_still_match_in_small_corpora():
    # Both query terms are in 2 of 3 documents: BM25Okapi's raw idf would be negative.
    docs = (
        Document("p1", "Toraven Mekali", "Toraven Mekali is a poet born in Velora in 1950."),
        Document("c1", "Velora", "Velora is a city in Marundia."),
        Document("c2", "Quandex Systems", "Quandex Systems was founded by Toraven Mekali."),
    )
    [hits] = BM25Retriever(Corpus("small", docs), cache=False).search(["Toraven Mekali"], 2)
    assert ids(hits) == ["p1", "c2"]  # p1 has both names twice (title + text), c2 once


@pytest.mark.parametrize("cls", LEXICAL)
def test_empty_stopword_only_and_unknown_queries_get_no_hits(cls):
    r = lexical(cls, TINY)
    assert r.search(["", "   ", "what is the", "xylophone"], 3) == [[], [], [], []]
    assert r.search([], 3) == []
    assert r.search(["capital"], 0) == [[]]


@pytest.mark.parametrize("cls", LEXICAL)
def test_k_larger_than_corpus_returns_matching_docs_only(cls):
    r = lexical(cls, TINY)
    [hits] = r.search(["France capital"], 1000)
    # paris has both terms; seine (france) and berlin (capital) have one each, with equal idf
    # (df 2) and tf 1, so the shorter seine document comes first. The rest match nothing.
    assert ids(hits) == ["paris", "seine", "berlin"]
    assert all(h.score > 0 for h in hits)


@pytest.mark.parametrize("cls", LEXICAL)
def test_ties_keep_corpus_order(cls):
    twin_a = Document("twin-a", "Alpha Twin", "An identical passage about glaciers.")
    twin_b = Document("twin-b", "Alpha Twin", "An identical passage about glaciers.")
    other = Document("other", "Other", "Something about deserts and glaciers and glaciers.")
    # Filler keeps every query term in at most half of the documents (positive idf).
    filler = DOCS[:3]
    for docs in ((twin_a, twin_b, other) + filler, filler + (other, twin_b, twin_a)):
        r = lexical(cls, Corpus("twins", docs))
        [hits] = r.search(["alpha twin glaciers"], 3)
        twins = [d.doc_id for d in docs if d.doc_id.startswith("twin")]
        assert ids(hits)[:2] == twins
        assert hits[0].score == hits[1].score
        # Cutting inside the tie still keeps the earlier document.
        assert ids(r.search(["alpha twin"], 1)[0]) == twins[:1]


@pytest.mark.parametrize("cls", LEXICAL)
def test_batched_equals_one_by_one(cls):
    corpus = corpora.load("synthetic", size="tiny")
    r = lexical(cls, corpus)
    queries = [q.question for q in corpus.questions[:40]] + ["", "the of"]
    batched = r.search(queries, 5)
    assert batched == [r.search([q], 5)[0] for q in queries]


def test_bm25s_agrees_with_rank_bm25_on_generated_corpus():
    corpus = corpora.load("synthetic", size="small")
    fast, ref = BM25Retriever(corpus, cache=False), RankBM25Retriever(corpus)
    queries = [q.question for q in corpus.questions]
    assert len(queries) > 1000
    got, want = fast.search(queries, 10), ref.search(queries, 10)
    pairs = list(zip(got, want, strict=True))
    top1 = sum(ids(g)[:1] == ids(w)[:1] for g, w in pairs) / len(pairs)
    overlap = sum(len(set(ids(g)) & set(ids(w))) / max(1, len(w)) for g, w in pairs) / len(pairs)
    # Measured: 0.986 and 0.982; the gap is the idf of terms in over half of the documents.
    assert top1 >= 0.97
    assert overlap >= 0.95


def test_search_argument_errors():
    r = BM25Retriever(TINY, cache=False)
    with pytest.raises(TypeError, match="list of queries"):
        r.search("capital", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be >= 0"):
        r.search(["capital"], -1)
    with pytest.raises(ValueError, match="b must be"):
        BM25Retriever(TINY, b=2.0, cache=False)


def test_corpus_without_indexable_text():
    empty = Corpus("empty", ())
    stop = Corpus("stop", (Document("x", "The", "of the and"),))
    for corpus in (empty, stop):
        assert BM25Retriever(corpus, cache=False).search(["anything"], 3) == [[]]
        assert RankBM25Retriever(corpus).search(["anything"], 3) == [[]]


# --- the streamed bm25 build ---------------------------------------------------------------------

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "retrieval.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("retrieval_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bm25s_index(corpus: Corpus):
    """The index as ``BM25Retriever`` built it before the streamed build: bm25s on token lists."""
    from corpora.retrieval.bm25 import BM25S_METHOD, _import_bm25s

    model = _import_bm25s().BM25(k1=1.5, b=0.75, method=BM25S_METHOD)
    model.index([tokenize(document_text(d)) for d in corpus.documents], show_progress=False)
    return model


def _columns(vocab, scores):
    indptr = scores["indptr"]
    return {
        token: (
            scores["indices"][indptr[c] : indptr[c + 1]].tolist(),
            scores["data"][indptr[c] : indptr[c + 1]].tobytes(),  # bit for bit
        )
        for token, c in vocab.items()
        if token != ""  # bm25s adds an empty token with no column
    }


@pytest.fixture(scope="module")
def generated():
    corpus, queries = _benchmark_module().make_corpus(3000, seed=1, vocab_size=20_000)
    # Documents without indexable text, at the start, in the middle and at the end.
    blank = [
        Document(f"b{i}", "The", "of the") if i % 2 else Document(f"b{i}", "", "") for i in range(4)
    ]
    docs = (blank[0], *corpus.documents[:1500], *blank[1:3], *corpus.documents[1500:], blank[3])
    return Corpus("generated", docs), queries[:300]


@pytest.mark.parametrize("chunk_docs", [1, 7, 1000, 100_000])
def test_streamed_build_equals_bm25s_index_bit_for_bit(generated, chunk_docs):
    from corpora.retrieval.bm25 import build_bm25_arrays

    corpus, _ = generated
    old = _bm25s_index(corpus)
    new = build_bm25_arrays(iter(corpus.documents), k1=1.5, b=0.75, chunk_docs=chunk_docs)
    assert new.num_docs == len(corpus.documents) == old.scores["num_docs"]
    assert new.data.dtype == np.float32 and new.indices.dtype == np.int32
    assert new.indptr.dtype == np.int64
    new_scores = {"data": new.data, "indices": new.indices, "indptr": new.indptr}
    assert _columns(new.vocab, new_scores) == _columns(old.vocab_dict, old.scores)


@pytest.mark.parametrize("which", ["generated", "synthetic-small"])
def test_bm25_hits_identical_to_bm25s_token_list_build(generated, which):
    from corpora.retrieval.ranking import hits_at, top_k_positions

    if which == "generated":
        corpus, queries = generated
    else:
        corpus = corpora.load("synthetic", size="small")
        queries = [q.question for q in corpus.questions]
    old = _bm25s_index(corpus)
    doc_ids = [d.doc_id for d in corpus.documents]
    want = []
    for query in queries:
        token_ids = old.get_tokens_ids(tokenize(query))
        scores = old.get_scores_from_ids(token_ids)
        want.append(hits_at(top_k_positions(scores, 10, positive_only=True), scores, doc_ids))
    assert BM25Retriever(corpus, cache=False).search(queries, 10) == want


def test_bm25_cached_index_is_memory_mapped_with_identical_hits(generated, tmp_path):
    corpus, queries = generated
    built = BM25Retriever(corpus, cache_dir=tmp_path)
    loaded = BM25Retriever(corpus, cache_dir=tmp_path)
    assert (built.cache_status, loaded.cache_status) == ("built", "loaded")
    for name in ("data", "indices", "indptr"):
        assert isinstance(loaded._model.scores[name], np.memmap)
        assert not isinstance(built._model.scores[name], np.memmap)
    assert loaded.search(queries, 10) == built.search(queries, 10)
    assert loaded.search(queries, 10)[0]  # the queries do find documents


def test_bm25_build_streams_documents_and_keeps_no_token_lists(generated, monkeypatch):
    from corpora.retrieval import bm25

    corpus, queries = generated
    calls = []
    monkeypatch.setattr(bm25, "tokenize", lambda text: calls.append(1) or tokenize(text))
    arrays = bm25.build_bm25_arrays(
        (d for d in corpus.documents), k1=1.5, b=0.75, chunk_docs=100
    )  # a one-shot generator is enough: one pass, one tokenization per document
    assert len(calls) == len(corpus.documents)
    monkeypatch.undo()
    r = BM25Retriever(corpus, cache=False)
    held = list(vars(r).values()) + list(vars(r._model).values())
    # Nothing per document but the ids; no token lists (bm25s' own index keeps none either).
    for value in held:
        if isinstance(value, (list, tuple)) and value:
            assert not isinstance(value[0], (list, tuple)), type(value[0])
    assert not hasattr(r._model, "corpus_tokens")
    assert isinstance(arrays.vocab, dict) and type(arrays.vocab) is dict
    assert r.search(queries[:5], 3) == BM25Retriever(corpus, cache=False).search(queries[:5], 3)


def test_retrieval_benchmark_runs_small():
    out = subprocess.run(
        [sys.executable, str(BENCHMARK), "--docs", "2000", "--queries", "50"]
        + ["--batch-queries", "128", "--rank-bm25-queries", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["docs"] == 2000
    assert result["bm25"]["mmap_hits_identical"] is True
    assert result["top1_agreement"] >= 0.9
    for backend in ("bm25", "bm25s", "rank_bm25"):
        assert result[backend]["p50_ms"] > 0 and result[backend]["build_s"] >= 0
    assert result["bm25"]["cached_load_rss_mb"] is not None
    assert "bm25" in out.stdout and "acceptance" in result


# --- the index cache ---------------------------------------------------------------------------


def _entries(root):
    return sorted(p.name for p in root.iterdir())


def test_bm25_cache_loads_without_rebuilding(tmp_path, monkeypatch):
    from corpora.retrieval import bm25

    builds = []
    original = bm25.build_bm25_arrays
    monkeypatch.setattr(
        bm25, "build_bm25_arrays", lambda *a, **kw: builds.append(1) or original(*a, **kw)
    )

    first = BM25Retriever(TINY, cache_dir=tmp_path)
    assert first.cache_status == "built" and len(builds) == 1
    second = BM25Retriever(TINY, cache_dir=tmp_path)
    assert second.cache_status == "loaded" and len(builds) == 1
    queries = ["capital of Germany", "river Seine", "1989"]
    assert second.search(queries, 5) == first.search(queries, 5)
    [entry] = _entries(tmp_path)  # no temporary folders left behind
    assert entry.startswith("bm25s-" + TINY.fingerprint)
    meta = json.loads((tmp_path / entry / "meta.json").read_text())
    assert meta["settings"]["k1"] == 1.5 and meta["n_docs"] == len(DOCS)


def test_bm25_cache_rebuilds_when_documents_or_settings_change(tmp_path):
    BM25Retriever(TINY, cache_dir=tmp_path)
    changed = Corpus(TINY.name, (Document("paris", "Paris", "Paris is in France."),) + DOCS[1:])
    r = BM25Retriever(changed, cache_dir=tmp_path)
    assert r.cache_status == "built"
    assert ids(r.search(["largest city"], 3)[0]) == []  # the new text, not the cached one
    assert BM25Retriever(TINY, k1=1.2, cache_dir=tmp_path).cache_status == "built"
    assert len(_entries(tmp_path)) == 3
    assert BM25Retriever(TINY, k1=1.2, cache_dir=tmp_path).cache_status == "loaded"


@pytest.mark.parametrize("damage", ["garbage", "truncate", "delete_meta", "bad_meta"])
def test_bm25_corrupt_cache_is_rebuilt(tmp_path, damage):
    want = BM25Retriever(TINY, cache_dir=tmp_path).search(["capital of Germany"], 5)
    [entry] = [tmp_path / name for name in _entries(tmp_path)]
    data = entry / "data.csc.index.npy"
    if damage == "garbage":
        data.write_bytes(b"\x00not a numpy file")
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:40])
    elif damage == "delete_meta":
        (entry / "meta.json").unlink()
    else:
        (entry / "meta.json").write_text("{not json")
    r = BM25Retriever(TINY, cache_dir=tmp_path)
    assert r.cache_status == "rebuilt"
    assert r.search(["capital of Germany"], 5) == want
    assert BM25Retriever(TINY, cache_dir=tmp_path).cache_status == "loaded"
    assert len(_entries(tmp_path)) == 1


def test_cache_disabled_and_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("FORKSEARCH_CACHE_DIR", str(tmp_path))
    assert BM25Retriever(TINY, cache=False).cache_status == "disabled"
    assert not (tmp_path / "indexes").exists()
    assert BM25Retriever(TINY).cache_status == "built"
    assert len(list((tmp_path / "indexes").iterdir())) == 1
    assert IndexCache().root == tmp_path / "indexes"


def test_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = BM25Retriever(TINY, cache_dir=blocker / "indexes")
    assert r.cache_status == "built"
    assert ids(r.search(["1989"], 3)[0]) == ["berlin"]
    assert "could not write index cache" in caplog.text


# --- dense -------------------------------------------------------------------------------------


def test_dense_ranks_paraphrase_first(dense_tiny):
    queries = ["green leaves turning light into food", "the tallest peak in the world"]
    # No word in common with the right document: BM25 finds nothing for the first query.
    assert BM25Retriever(TINY, cache=False).search(queries[:1], 3) == [[]]
    got = dense_tiny.search(queries, 3)
    assert ids(got[0])[0] == "photo"
    assert ids(got[1])[0] == "everest"
    assert got[0][0].score > got[0][1].score
    assert all(-1.0001 <= h.score <= 1.0001 for hits in got for h in hits)
    assert dense_tiny.embeddings.shape == (len(DOCS), 384)


def test_dense_k_empty_batch_and_cache(dense_tiny, dense_cache):
    assert [len(h) for h in dense_tiny.search(["rivers", "", "capital"], 100)] == [5, 0, 5]
    assert dense_tiny.search(["capital"], 0) == [[]]
    queries = ["capital of Germany", "river through Paris", "plants"]
    batched = dense_tiny.search(queries, 3)
    assert [ids(h) for h in batched] == [ids(dense_tiny.search([q], 3)[0]) for q in queries]
    again = DenseRetriever(TINY, cache_dir=dense_cache)
    assert again.cache_status == "loaded"
    assert [ids(h) for h in again.search(queries, 3)] == [ids(h) for h in batched]


def test_dense_hnsw_matches_flat_top1(dense_tiny, tmp_path):
    hnsw = DenseRetriever(TINY, index="hnsw", hnsw_m=8, ef_search=16, cache_dir=tmp_path)
    queries = ["capital of Germany", "river through Paris", "plants and sugar", "high mountain"]
    assert [ids(h)[:1] for h in hnsw.search(queries, 3)] == [
        ids(h)[:1] for h in dense_tiny.search(queries, 3)
    ]
    assert DenseRetriever(TINY, index="hnsw", hnsw_m=8, cache_dir=tmp_path).cache_status == "loaded"
    assert DenseRetriever(TINY, index="hnsw", hnsw_m=16, cache_dir=tmp_path).cache_status == "built"


def test_dense_corrupt_cache_is_rebuilt(dense_tiny, tmp_path):
    DenseRetriever(TINY, cache_dir=tmp_path)
    [entry] = list(tmp_path.iterdir())
    index_file = entry / "index.faiss"
    index_file.write_bytes(index_file.read_bytes()[:100])
    r = DenseRetriever(TINY, cache_dir=tmp_path)
    assert r.cache_status == "rebuilt"
    assert ids(r.search(["capital of Germany"], 1)[0]) == ids(
        dense_tiny.search(["capital of Germany"], 1)[0]
    )


def test_dense_ties_keep_corpus_order(dense_tiny):
    docs = (DOCS[3], Document("copy", DOCS[3].title, DOCS[3].text)) + DOCS[:3]
    r = DenseRetriever(Corpus("dense-twins", docs), cache=False)
    [hits] = r.search(["how plants make sugar"], 2)
    assert ids(hits) == ["photo", "copy"]


def test_dense_option_errors():
    with pytest.raises(ValueError, match="index must be one of"):
        DenseRetriever(TINY, index="ivf", cache=False)
    with pytest.raises(ValueError, match="batch_size"):
        DenseRetriever(TINY, batch_size=0, cache=False)


# --- hybrid ------------------------------------------------------------------------------------


def test_hybrid_fuses_rankings():
    a, b = BM25Retriever(TINY, cache=False), RankBM25Retriever(TINY)
    hybrid = HybridRetriever([a, b])
    assert isinstance(hybrid, Retriever) and hybrid.corpus is TINY
    [hits] = hybrid.search(["capital of Germany"], 5)
    assert ids(hits) == ["berlin", "paris"]
    assert hits[0].score == pytest.approx(2 / 61)


class _Fixed:
    """A retriever that returns a fixed ranking (for fusion arithmetic)."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = ranking
        self.corpus = TINY
        self.calls: list[int] = []

    def search(self, queries, k):
        self.calls.append(k)
        return [[Hit(d, 1.0) for d in self.ranking[:k]] for _ in queries]


def test_hybrid_rrf_arithmetic_weights_and_ties():
    one = _Fixed(["seine", "paris", "berlin"])
    two = _Fixed(["paris", "seine", "everest"])
    # seine and paris tie (1/61 + 1/62 each): corpus order puts paris first.
    [hits] = HybridRetriever([one, two]).search(["q"], 3)
    assert ids(hits) == ["paris", "seine", "berlin"]
    assert hits[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert one.calls == [20]  # depth max(4k, 20)
    [hits] = HybridRetriever([one, two], weights=[2, 1]).search(["q"], 2)
    assert ids(hits) == ["seine", "paris"]
    assert HybridRetriever([one, two]).search(["q"], 10)[0][-1].doc_id in {"berlin", "everest"}
    assert one.calls[-1] == 40
    with pytest.raises(ValueError, match="weights"):
        HybridRetriever([one, two], weights=[1])
    with pytest.raises(ValueError, match="weights"):
        HybridRetriever([one, two], weights=[0, 0])


def test_hybrid_bm25_dense_via_factory(dense_tiny, tmp_path):
    hybrid = make_retriever("hybrid", TINY, cache_dir=str(tmp_path))
    [first, second] = hybrid.search(
        ["capital of Germany", "green leaves turning light into food"], 3
    )
    assert ids(first)[0] == "berlin"
    assert ids(second)[0] == "photo"  # only dense finds it; fusion keeps it


# --- factory -----------------------------------------------------------------------------------


def test_factory_kinds_and_exports():
    assert available_retrievers() == ["bm25", "dense", "hybrid", "rank_bm25", "remote"]
    assert corpora.make_retriever is make_retriever
    assert corpora.available_retrievers is available_retrievers
    assert isinstance(make_retriever("bm25", TINY, cache=False), BM25Retriever)
    assert isinstance(make_retriever("rank_bm25", TINY, k1=1.2), RankBM25Retriever)
    assert isinstance(make_retriever(corpus=TINY, cache=False), BM25Retriever)


def test_factory_unknown_kind():
    with pytest.raises(ValueError, match=r"unknown retriever 'bm52'.*Did you mean 'bm25'"):
        make_retriever("bm52", TINY)


def test_factory_unknown_option_names_allowed_ones():
    with pytest.raises(TypeError, match=r"unknown option 'k' for retriever 'bm25'.*k1, b, cache"):
        make_retriever("bm25", TINY, k=1.2)
    with pytest.raises(TypeError, match="k1"):
        make_retriever("hybrid", TINY, kinds=("bm25", "rank_bm25"), kind_options={"bm25": {"k": 1}})
    with pytest.raises(ValueError, match="needs a corpus"):
        make_retriever("bm25", None)
    with pytest.raises(ValueError, match="hybrid cannot contain hybrid"):
        make_retriever("hybrid", TINY, kinds=("hybrid",))


def test_factory_hybrid_options():
    r = make_retriever(
        "hybrid",
        TINY,
        kinds=("bm25", "rank_bm25"),
        weights=(1, 3),
        rrf_k=10,
        cache=False,
        kind_options={"rank_bm25": {"k1": 1.2}},
    )
    assert isinstance(r, HybridRetriever)
    assert r.weights == [1.0, 3.0] and r.rrf_k == 10
    assert r.retrievers[0].cache_status == "disabled"
    assert ids(r.search(["capital of Germany"], 2)[0]) == ["berlin", "paris"]


# --- remote (Search-R1 retrieval server API) ---------------------------------------------------


class _Server:
    """A tiny Search-R1-compatible server on 127.0.0.1 backed by local BM25."""

    def __init__(self, with_ids: bool = True, fail: bool = False) -> None:
        backend = BM25Retriever(TINY, cache=False)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body})
                if fail:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"index exploded")
                    return
                result = []
                for hits in backend.search(body["queries"], body["topk"]):
                    row = []
                    for h in hits:
                        doc = TINY.by_id[h.doc_id]
                        contents = f'"{doc.title}"\n{doc.text}'
                        document = (
                            {"id": doc.doc_id, "contents": contents}
                            if with_ids
                            else {"title": doc.title, "text": doc.text, "contents": contents}
                        )
                        row.append({"document": document, "score": h.score})
                    result.append(row)
                payload = json.dumps({"result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_remote_retriever_speaks_search_r1_api():
    queries = ["capital of Germany", "river Seine", "xylophone"]
    want = BM25Retriever(TINY, cache=False).search(queries, 2)
    with _Server() as server:
        r = make_retriever("remote", None, url=server.url, batch_size=2)
        assert isinstance(r, RemoteRetriever) and isinstance(r, Retriever)
        got = r.search(queries, 2)
        docs = r.search_documents(queries[:1], 1)
    assert got == want
    assert server.requests[0] == {
        "path": "/retrieve",
        "body": {"queries": queries[:2], "topk": 2, "return_scores": True},
    }
    assert len(server.requests) == 3  # batches of 2, then the search_documents call
    [[(hit, doc)]] = docs
    assert hit.doc_id == "berlin" and doc == TINY.by_id["berlin"]


def test_remote_retriever_without_ids_maps_titles():
    with _Server(with_ids=False) as server:
        r = RemoteRetriever(server.url + "/retrieve", corpus=TINY)
        assert ids(r.search(["Mount Everest"], 1)[0]) == ["everest"]


def test_remote_retriever_errors():
    with _Server(fail=True) as server:
        with pytest.raises(RemoteRetrievalError, match="HTTP 500.*index exploded"):
            RemoteRetriever(server.url).search(["x"], 1)
    with pytest.raises(RemoteRetrievalError, match="could not reach"):
        RemoteRetriever(server.url, timeout=2).search(["x"], 1)
    with pytest.raises(ValueError, match="http"):
        RemoteRetriever("127.0.0.1:8000")
