"""FlashRAG / Search-R1 loader: a ``{id, contents}`` corpus and ``golden_answers`` QA files."""

from __future__ import annotations

from collections.abc import Mapping

from corpora.formats.documents import SourcedDocuments
from corpora.formats.jsonio import PathLike, Record, check_type, iter_records, require
from corpora.formats.questions import QuestionSet, answer_tuple
from corpora.formats.splits import check_split
from corpora.records import Corpus, Question, split_contents

DOC_FIELDS = ("id", "contents")
QA_FIELDS = ("question", "golden_answers")


def load_flashrag(
    corpus_path: PathLike | None = None, qa_paths: Mapping[str, PathLike] | None = None
) -> Corpus:
    r"""Load a FlashRAG-style corpus and, optionally, its QA files.

    Args:
        corpus_path: JSONL (optionally ``.gz``) of ``{"id", "contents"}`` where ``contents`` is
            ``'"Title"\ntext'``, split by ``corpora.records.split_contents``. Required.
        qa_paths: Split name (``train``, ``dev``, ``test``) to a JSONL file of ``{"id"?,
            "question", "golden_answers", "hops"?}``; ``None``: documents only.

    Returns:
        A corpus keeping the corpus ids (de-duplicated on title + text). Question ids are the
        records' ``id`` or ``f"{split}-{index}"`` (0-based line index) without one;
        ``supporting_ids`` are empty (FlashRAG has no evidence labels), ``hops`` is the
        record's ``hops`` or 1, and ``qtype`` ``"unknown"``.
    """
    if corpus_path is None:
        raise ValueError(
            "flashrag: pass corpus_path=<JSONL of {id, contents}> and optionally "
            "qa_paths={'test': <JSONL of {question, golden_answers}>}"
        )
    for split in qa_paths or {}:
        check_split(split, "qa_paths")
    docs = SourcedDocuments()
    for where, record in iter_records(corpus_path, "corpus_path"):
        title, text = split_contents(require(record, "contents", where, DOC_FIELDS))
        docs.add(str(require(record, "id", where, DOC_FIELDS, (str, int))), title, text, where)
    questions = QuestionSet()
    for split, file in (qa_paths or {}).items():
        for index, (where, record) in enumerate(iter_records(file, "qa_paths")):
            questions.add(_question(record, where, split, index), where)
    return Corpus("flashrag", docs.build()[0], questions.questions())


def _question(record: Record, where: str, split: str, index: int) -> Question:
    answers = require(record, "golden_answers", where, QA_FIELDS, (list, str))
    return Question(
        qid=str(check_type(record.get("id", f"{split}-{index}"), "id", where, (str, int))),
        question=require(record, "question", where, QA_FIELDS).strip(),
        answers=answer_tuple(
            [answers] if isinstance(answers, str) else answers, where, "golden_answers"
        ),
        supporting_ids=(),
        hops=check_type(record.get("hops", 1), "hops", where, int),
        split=split,
    )
