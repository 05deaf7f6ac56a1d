"""FlashRAG / Search-R1 loader: a ``{id, contents}`` corpus and ``golden_answers`` QA files."""

from __future__ import annotations

from collections.abc import Mapping

from corpora.formats.documents import SourcedDocuments
from corpora.formats.fields import (
    identifier,
    nonblank,
    optional,
    positive,
    require,
    text_field,
)
from corpora.formats.jsonio import Record, iter_records
from corpora.formats.questions import QuestionSet, answer_tuple
from corpora.formats.splits import check_split
from corpora.formats.textio import PathLike
from corpora.records import Corpus, Question, split_contents

DOC_FIELDS = ("id", "contents")
QA_FIELDS = ("question", "golden_answers")


def load_flashrag(
    corpus_path: PathLike | None = None, qa_paths: Mapping[str, PathLike] | None = None
) -> Corpus:
    r"""Load a FlashRAG-style corpus and, optionally, its QA files.

    Args:
        corpus_path: JSONL (optionally ``.gz``) of ``{"id", "contents"}`` where ``contents`` is
            ``'"Title"\ntext'``, split by ``corpora.records.split_contents``. Required unless
            ``qa_paths`` is given: without it the corpus has questions and no documents, for
            a remote retriever (``retriever=remote``) whose server holds them.
        qa_paths: Split name (``train``, ``dev``, ``test``) to a JSONL file of ``{"id"?,
            "question", "golden_answers", "hops"?}``; ``None``: documents only.

    Returns:
        A corpus keeping the corpus ids (de-duplicated on title + text). Question ids are the
        records' ``id`` or ``f"{split}-{index}"`` (0-based record index) without one;
        ``supporting_ids`` are empty (FlashRAG has no evidence labels), ``hops`` is the
        record's ``hops`` or 1, and ``qtype`` ``"unknown"``.

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty corpus or QA file; an
            ``id`` (string or integer) that is blank or repeated among documents or among
            questions; blank ``contents`` or a title-and-text that is empty (``'""\n'``); a
            blank ``question``; ``golden_answers`` empty or holding a blank answer; ``hops``
            below 1; any field of the wrong type. Accepted: a document with a title and no
            text (``'"Title"\n'``), questions without ``id`` or ``hops``, unknown fields.
    """
    if corpus_path is None and not qa_paths:
        raise ValueError(
            "flashrag: pass corpus_path=<JSONL of {id, contents}> and optionally "
            "qa_paths={'test': <JSONL of {question, golden_answers}>}, or qa_paths alone for "
            "a remote retriever (the server holds the documents)"
        )
    for split in qa_paths or {}:
        check_split(split, "qa_paths")
    docs = SourcedDocuments()
    records = iter_records(corpus_path, "corpus_path") if corpus_path is not None else iter(())
    for where, record in records:
        contents = nonblank(require(record, "contents", where, DOC_FIELDS), "contents", where)
        title, text = split_contents(contents)
        docs.add(identifier(record, ("id",), where, DOC_FIELDS), title, text, where)
    questions = QuestionSet()
    for split, file in (qa_paths or {}).items():
        for index, (where, record) in enumerate(iter_records(file, "qa_paths", "questions")):
            questions.add(_question(record, where, split, index), where)
    return Corpus("flashrag", docs.build()[0], questions.questions())


def _question(record: Record, where: str, split: str, index: int) -> Question:
    answers = require(record, "golden_answers", where, QA_FIELDS, (list, str))
    return Question(
        qid=identifier(record, ("id",), where, QA_FIELDS) if "id" in record else f"{split}-{index}",
        question=text_field(record, "question", where, QA_FIELDS),
        answers=answer_tuple(
            [answers] if isinstance(answers, str) else answers, where, "golden_answers"
        ),
        supporting_ids=(),
        hops=positive(optional(record, "hops", where, int, 1), "hops", where),
        split=split,
    )
