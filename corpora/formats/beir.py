"""BEIR loader: a folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpora.formats.documents import SourcedDocuments
from corpora.formats.errors import format_error
from corpora.formats.fields import check_type, identifier, optional, require, text_field
from corpora.formats.jsonio import Record, iter_jsonl
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.textio import PathLike, existing_file, iter_lines
from corpora.records import SPLITS, Corpus, Document, Question

DOC_FIELDS = ("_id", "title", "text")
QUERY_FIELDS = ("_id", "text")
QRELS_HEADER = ("query-id", "corpus-id", "score")


def load_beir(path: PathLike | None = None, answers_field: str | None = None) -> Corpus:
    """Load a BEIR dataset folder.

    BEIR has relevance judgements but no answers, while every ``Question`` needs one, so by
    default a query's answers are the titles of its relevant documents (the document id where
    a title is empty): an agent answers by naming the right document.

    Args:
        path: The dataset folder (required): ``corpus.jsonl`` (``_id, title, text``),
            ``queries.jsonl`` (``_id, text``) and ``qrels/train.tsv``, ``qrels/dev.tsv`` and/or
            ``qrels/test.tsv`` (``query-id, corpus-id, score``, tab-separated, header optional).
            The JSONL files may be gzipped (``.jsonl.gz``).
        answers_field: A dotted field of the query records holding real answers (a string or
            a list), e.g. ``"metadata.answer"`` for BEIR HotpotQA; queries without it fall back
            to the titles.

    Returns:
        A corpus keeping BEIR document and query ids, de-duplicated on title + text (judgements
        of a dropped duplicate point to the kept copy). Each ``qrels/{split}.tsv`` gives the
        questions of that split: the queries with at least one judgement of score > 0, with
        ``supporting_ids`` those documents by descending score, ``hops`` 1 and ``qtype``
        ``retrieval``.

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty ``corpus.jsonl`` or
            ``queries.jsonl``; a blank or repeated document or query id; a document with
            neither title nor text; a query with blank ``text``; a qrels line without 3
            tab-separated columns, with a score that is not an integer, naming a query or
            document that does not exist, or repeating an earlier (query, document) pair; a
            qrels file without any judgement above 0; a query judged in several splits; an
            ``answers_field`` that no query has, or whose value is not a string or list, is
            empty, or holds a blank answer. Accepted: an empty title (the id stands in as the
            answer), judgements of score 0 or below (not relevant), queries never judged,
            a query whose ``answers_field`` is absent or null (its titles stand in).
    """
    if path is None:
        raise ValueError(
            "beir: pass path=<dataset folder> holding corpus.jsonl, queries.jsonl and "
            "qrels/{train,dev,test}.tsv, e.g. corpora.load('beir', path='data/scifact')"
        )
    folder = existing_file(path)
    qrels = {split: folder / "qrels" / f"{split}.tsv" for split in SPLITS}
    qrels = {split: file for split, file in qrels.items() if file.exists()}
    if not qrels:
        raise FileNotFoundError(
            f"{folder / 'qrels'}: no train.tsv, dev.tsv or test.tsv; a BEIR folder needs at "
            "least one qrels file"
        )
    documents, alias = _documents(_jsonl(folder, "corpus"))
    by_id = {doc.doc_id: doc for doc in documents}
    queries = _queries(_jsonl(folder, "queries"), answers_field)
    questions = QuestionSet()
    for split, file in qrels.items():
        for qid, (where, relevant) in _judgements(file, alias).items():
            if qid not in queries:
                raise format_error(where, f"query {qid!r} is not in queries.jsonl", "add it")
            query_where, query = queries[qid]
            answers = _field(query, answers_field)
            if answers is None:
                answers = [by_id[doc_id].title or doc_id for doc_id in relevant]
            elif isinstance(answers, str):
                answers = [answers]
            question = Question(
                qid=qid,
                question=text_field(query, "text", query_where, QUERY_FIELDS),
                answers=answer_tuple(answers, query_where, answers_field or "title"),
                supporting_ids=relevant,
                hops=1,
                split=split,
                qtype="retrieval",
            )
            questions.add(question, where)
    return Corpus("beir", documents, questions.questions())


def _jsonl(folder: Path, stem: str) -> Path:
    """``{stem}.jsonl``, or ``{stem}.jsonl.gz`` when only that exists."""
    plain = folder / f"{stem}.jsonl"
    gzipped = plain.with_name(plain.name + ".gz")
    return gzipped if gzipped.exists() and not plain.exists() else plain


def _documents(file: Path) -> tuple[tuple[Document, ...], dict[str, str]]:
    docs = SourcedDocuments()
    for where, record in iter_jsonl(file):
        doc_id = identifier(record, ("_id",), where, DOC_FIELDS)
        title = optional(record, "title", where, str, "")
        docs.add(doc_id, title, require(record, "text", where, DOC_FIELDS), where)
    return docs.build()


def _queries(file: Path, answers_field: str | None) -> dict[str, tuple[str, Record]]:
    """Map each query id to where it is and its record, checking ids, text and answers."""
    queries: dict[str, tuple[str, Record]] = {}
    for where, record in iter_jsonl(file, what="queries"):
        qid = identifier(record, ("_id",), where, QUERY_FIELDS)
        if qid in queries:
            raise format_error(
                where,
                f"duplicate query id {qid!r} (first at {queries[qid][0]})",
                "give every query its own id",
            )
        text_field(record, "text", where, QUERY_FIELDS)
        answers = _field(record, answers_field)
        if answers is not None:
            check_type(answers, str(answers_field), where, (str, list))
        queries[qid] = (where, record)
    if answers_field is not None and all(
        _field(record, answers_field) is None for _, record in queries.values()
    ):
        raise format_error(
            str(file),
            f"no query has the field {answers_field!r}",
            "check answers_field= (a dotted path into the query records, e.g. "
            "'metadata.answer'), or leave it out to use document titles",
        )
    return queries


def _judgements(file: Path, alias: dict[str, str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Map each query with a relevant document to where it is first judged and its documents.

    Documents come by descending score. A file without any judgement above 0 is refused.
    """
    scored: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    pairs: dict[tuple[str, str], str] = {}
    for where, qid, doc_id, score in _qrels_rows(file):
        if doc_id not in alias:
            raise format_error(where, f"document {doc_id!r} is not in corpus.jsonl", "fix it")
        if (qid, doc_id) in pairs:
            raise format_error(
                where,
                f"query {qid!r} and document {doc_id!r} are judged twice (first at "
                f"{pairs[qid, doc_id]})",
                "keep one of the two lines",
            )
        pairs[qid, doc_id] = where
        rows = scored.setdefault(qid, (where, []))[1]
        if score > 0:
            rows.append((score, alias[doc_id]))
    relevant = {
        qid: (where, unique_ids([doc for _, doc in sorted(rows, key=lambda r: -r[0])]))
        for qid, (where, rows) in scored.items()
        if rows
    }
    if not relevant:
        detail = f"its {len(pairs)} judgements all score 0 or less" if pairs else "it is empty"
        raise format_error(
            str(file),
            f"no judgement with a score above 0 in {file.name}: {detail}",
            "add the relevant (query, document) pairs or remove the file",
        )
    return relevant


def _qrels_rows(file: Path) -> Iterator[tuple[str, str, str, int]]:
    """Yield ``(where, query_id, corpus_id, score)`` for each data line of a qrels TSV."""
    for lineno, line in iter_lines(file):
        cols = line.split("\t")
        where = f"{file}:{lineno}"
        if not line.strip() or (lineno == 1 and tuple(cols) == QRELS_HEADER):
            continue
        if len(cols) != 3:
            raise format_error(
                where,
                f"expected 3 tab-separated columns ({', '.join(QRELS_HEADER)}), got {len(cols)}",
                "fix or remove that line",
            )
        try:
            score = int(cols[2])
        except ValueError:
            raise format_error(
                where, f"score {cols[2]!r} is not an integer", "fix that line"
            ) from None
        yield where, cols[0], cols[1], score


def _field(record: Record, dotted: str | None) -> Any:
    """Return the value at a dotted path such as ``metadata.answer``, or ``None`` if absent."""
    if dotted is None:
        return None
    value: Any = record
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value
