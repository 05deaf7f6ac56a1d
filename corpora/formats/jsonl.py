"""Plain JSONL loader: forksearch's own documents-and-questions format."""

from __future__ import annotations

from corpora.formats.documents import SourcedDocuments
from corpora.formats.errors import format_error
from corpora.formats.fields import (
    check_type,
    identifier,
    nonblank,
    optional,
    positive,
    require,
    string_list,
    text_field,
)
from corpora.formats.jsonio import Record, iter_records
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import check_split
from corpora.formats.textio import PathLike
from corpora.records import SPLITS, Corpus, Question

DOC_FIELDS = ("doc_id", "title", "text")
QUESTION_FIELDS = ("qid", "question", "answers")


def load_jsonl(
    path: PathLike | None = None, questions_path: PathLike | None = None, split: str = "test"
) -> Corpus:
    """Load documents and questions from one or two JSONL files.

    Each line is a document or a question; a record with a ``question`` field is a question.
    Documents and questions may share one file (``path``) or be kept apart (``path`` for the
    documents, ``questions_path`` for the questions only); files may be JSON lists or gzipped.
    With ``questions_path`` alone the corpus has questions and no documents: for a remote
    retriever (``retriever=remote``), whose server holds the documents.

    Args:
        path: The documents file: ``{"doc_id" (or "id"), "title"?, "text"}``. Required unless
            ``questions_path`` is given.
        questions_path: Optional questions file: ``{"qid" (or "id"), "question", "answers"
            (a list or one string), "supporting_ids"?, "hops"?, "split"?, "qtype"?,
            "entities"?}``.
        split: The split of questions without a ``split`` field.

    Returns:
        A corpus keeping the given ids, de-duplicated on title + text (supporting ids of a
        dropped duplicate point to the kept copy). ``hops`` defaults to the number of
        supporting ids (at least 1). Without ``path``, supporting ids are kept as given (they
        name documents of the server's corpus, which cannot be checked here).

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty file, or ``path`` without
            any document; an id (string or integer) that is blank or repeated among documents
            or among questions; a blank ``text`` or ``question``; ``answers`` empty or holding a
            blank answer; a supporting id that names no document or is listed twice;
            ``hops`` below 1; a ``split`` other than train/dev/test; a blank ``qtype`` or
            entity; a record of ``questions_path`` without ``question``; any field of the wrong
            type. Accepted as optional: ``title`` (may be blank), ``supporting_ids`` (may be
            empty: a question without evidence labels), ``hops``, ``split``, ``qtype``,
            ``entities``; unknown fields are ignored.
    """
    if path is None and questions_path is None:
        raise ValueError(
            "jsonl: pass path=<JSONL of documents {doc_id, title, text}> and optionally "
            "questions_path=<JSONL of questions {qid, question, answers, supporting_ids}>, or "
            "questions_path alone for a remote retriever (the server holds the documents)"
        )
    check_split(split)
    docs = SourcedDocuments()
    pending: list[tuple[str, Record]] = []
    for where, record in iter_records(path, "path") if path is not None else iter(()):
        if "question" in record:
            pending.append((where, record))
        else:
            doc_id = identifier(record, ("doc_id", "id"), where, DOC_FIELDS)
            title = optional(record, "title", where, str, "")
            docs.add(doc_id, title, text_field(record, "text", where, DOC_FIELDS), where)
    if questions_path is not None:
        for where, record in iter_records(questions_path, "questions_path", "questions"):
            require(record, "question", where, QUESTION_FIELDS)
            pending.append((where, record))
    documents, alias = docs.build()
    # Without documents there is nothing to check supporting ids against: the server has them.
    known: dict[str, str] | None = None if path is None else alias
    if path is not None and not documents:
        raise format_error(
            str(path),
            f"no documents in {path}: all its {len(pending)} records are questions",
            "add document records {doc_id, title, text} (records without a 'question' field)",
        )
    questions = QuestionSet()
    for where, record in pending:
        questions.add(_question(record, where, split, known), where)
    return Corpus("jsonl", documents, questions.questions())


def _question(record: Record, where: str, split: str, alias: dict[str, str] | None) -> Question:
    """A question; ``alias`` maps document ids to kept ids (``None``: no documents to check)."""
    supporting: list[str] = []
    listed: set[str] = set()
    for item in check_type(record.get("supporting_ids", []), "supporting_ids", where, list):
        doc_id = str(check_type(item, "supporting_ids", where, (str, int)))
        if alias is not None and doc_id not in alias:
            raise format_error(
                where, f"supporting id {doc_id!r} is not a document id", "fix or remove it"
            )
        if doc_id in listed:
            raise format_error(where, f"supporting id {doc_id!r} is listed twice", "remove one")
        listed.add(doc_id)
        supporting.append(doc_id if alias is None else alias[doc_id])
    answers = require(record, "answers", where, QUESTION_FIELDS, (list, str))
    entities = string_list(optional(record, "entities", where, list, []), "entities", where)
    question_split = optional(record, "split", where, str, split)
    if question_split not in SPLITS:
        raise format_error(
            where, f"split {question_split!r} is not one of {', '.join(SPLITS)}", "fix it"
        )
    hops = optional(record, "hops", where, int, None)
    return Question(
        qid=identifier(record, ("qid", "id"), where, QUESTION_FIELDS),
        question=text_field(record, "question", where, QUESTION_FIELDS),
        answers=answer_tuple([answers] if isinstance(answers, str) else answers, where),
        supporting_ids=unique_ids(supporting),
        hops=max(1, len(supporting)) if hops is None else positive(hops, "hops", where),
        split=question_split,
        qtype=nonblank(optional(record, "qtype", where, str, "unknown"), "qtype", where),
        entities=tuple(entities),
    )
