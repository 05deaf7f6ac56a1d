"""Plain JSONL loader: forksearch's own documents-and-questions format."""

from __future__ import annotations

from typing import Any

from corpora.formats.documents import SourcedDocuments
from corpora.formats.jsonio import (
    PathLike,
    Record,
    check_type,
    format_error,
    iter_records,
    require,
)
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import check_split
from corpora.records import SPLITS, Corpus, Question

DOC_FIELDS = ("doc_id", "title", "text")
QUESTION_FIELDS = ("qid", "question", "answers")


def load_jsonl(
    path: PathLike | None = None, questions_path: PathLike | None = None, split: str = "test"
) -> Corpus:
    """Load documents and questions from one or two JSONL files.

    Each line is a document or a question; a record with a ``question`` field is a question.
    Documents and questions may share one file (``path``) or be kept apart (``path`` for the
    documents, ``questions_path`` for the questions); files may be JSON lists or gzipped.

    Args:
        path: The documents file (required): ``{"doc_id" (or "id"), "title"?, "text"}``.
        questions_path: Optional questions file: ``{"qid" (or "id"), "question", "answers"
            (a list or one string), "supporting_ids"?, "hops"?, "split"?, "qtype"?,
            "entities"?}``.
        split: The split of questions without a ``split`` field.

    Returns:
        A corpus keeping the given ids, de-duplicated on title + text (supporting ids of a
        dropped duplicate point to the kept copy). ``hops`` defaults to the number of
        supporting ids (at least 1); every supporting id must name a document.
    """
    if path is None:
        raise ValueError(
            "jsonl: pass path=<JSONL of documents {doc_id, title, text}> and optionally "
            "questions_path=<JSONL of questions {qid, question, answers, supporting_ids}>"
        )
    check_split(split)
    docs = SourcedDocuments()
    pending: list[tuple[str, Record]] = []
    files = [(path, "path")] + ([(questions_path, "questions_path")] if questions_path else [])
    for file, option in files:
        for where, record in iter_records(file, option):
            if "question" in record:
                pending.append((where, record))
            else:
                doc_id = _either(record, ("doc_id", "id"), where, DOC_FIELDS)
                title = check_type(record.get("title", ""), "title", where, str)
                docs.add(doc_id, title, require(record, "text", where, DOC_FIELDS), where)
    documents, alias = docs.build()
    questions = QuestionSet()
    for where, record in pending:
        questions.add(_question(record, where, split, alias), where)
    return Corpus("jsonl", documents, questions.questions())


def _question(record: Record, where: str, split: str, alias: dict[str, str]) -> Question:
    supporting = []
    for doc_id in check_type(record.get("supporting_ids", []), "supporting_ids", where, list):
        if str(doc_id) not in alias:
            raise format_error(
                where, f"supporting id {doc_id!r} is not a document id", "fix or remove it"
            )
        supporting.append(alias[str(doc_id)])
    answers = require(record, "answers", where, QUESTION_FIELDS, (list, str))
    entities = check_type(record.get("entities", []), "entities", where, list)
    question_split = check_type(record.get("split", split), "split", where, str)
    if question_split not in SPLITS:
        raise format_error(
            where, f"split {question_split!r} is not one of {', '.join(SPLITS)}", "fix it"
        )
    return Question(
        qid=_either(record, ("qid", "id"), where, QUESTION_FIELDS),
        question=require(record, "question", where, QUESTION_FIELDS).strip(),
        answers=answer_tuple([answers] if isinstance(answers, str) else answers, where),
        supporting_ids=unique_ids(supporting),
        hops=check_type(record.get("hops", max(1, len(supporting))), "hops", where, int),
        split=question_split,
        qtype=check_type(record.get("qtype", "unknown"), "qtype", where, str),
        entities=tuple(check_type(e, "entities", where, str) for e in entities),
    )


def _either(record: Record, names: tuple[str, str], where: str, expected: tuple[str, ...]) -> str:
    """Return the first of ``names`` present (an id field or its alias) as a string."""
    for name in names:
        if name in record:
            value: Any = check_type(record[name], name, where, (str, int))
            return str(value)
    return str(require(record, names[0], where, expected, (str, int)))
