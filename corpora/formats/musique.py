"""MuSiQue loader: JSONL records with their own paragraphs and question decomposition."""

from __future__ import annotations

from corpora.formats.documents import DocumentPool
from corpora.formats.errors import format_error
from corpora.formats.fields import check_type, identifier, optional, require, text_field
from corpora.formats.jsonio import Record
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import records_with_splits
from corpora.formats.textio import PathOption, as_paths
from corpora.paths import data_dir
from corpora.records import Corpus, Question

#: The shipped samples, relative to ``data_dir()``, loaded when ``path`` is not given.
DEFAULT_FILES = (
    "musique/musique_ans_train_sample100.jsonl",
    "musique/musique_ans_dev_sample100.jsonl",
)
#: What to get where the samples are absent.
OFFICIAL = ("MuSiQue-Ans's musique_ans_v1.0_train.jsonl and musique_ans_v1.0_dev.jsonl "
            "(github.com/StonyBrookNLP/musique)")
FIELDS = ("id", "paragraphs", "question", "question_decomposition", "answer")
PARAGRAPH_FIELDS = ("idx", "title", "paragraph_text", "is_supporting")


def load_musique(
    path: PathOption | None = None,
    split: str | None = None,
    dev_fraction: float = 0.25,
    answerable_only: bool = True,
) -> Corpus:
    """Load MuSiQue questions and the union of their paragraphs.

    Args:
        path: One MuSiQue file (JSONL or JSON list, optionally ``.gz``) or a list of them;
            default: the MuSiQue-Ans train and dev samples under ``corpora.paths.data_dir()``.
        split: Put every question of ``path`` in this split; ``None`` (default): a file whose
            name contains ``train`` is ``train``, any other file has its first ``dev_fraction``
            of records in ``dev`` and the rest in ``test`` (the dev sample of 100 gives 25 + 75).
        dev_fraction: Share of each non-train file that goes to ``dev``.
        answerable_only: Skip records marked ``"answerable": false`` (MuSiQue-Full).

    Returns:
        A corpus of one document per distinct (title, paragraph) with content ids; answers are
        ``answer`` then ``answer_aliases``; ``supporting_ids`` are the ``is_supporting``
        paragraphs in the order the decomposition uses them; ``hops`` is the number of
        decomposition steps and ``qtype`` is ``f"{hops}hop"``.

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty file, or files whose every
            record is skipped as unanswerable; a blank or repeated ``id``; a blank
            ``question`` or ``answer``, a blank alias; ``paragraphs`` empty, a paragraph
            without an integer ``idx``, with an ``idx`` already used in that record, without
            ``paragraph_text`` or with a blank one, or whose ``is_supporting`` is not
            true/false; an answerable record without a supporting paragraph;
            ``question_decomposition`` empty (0 hops), a step that is not an object or whose
            ``paragraph_support_idx`` names no paragraph; an ``answerable`` that is not
            true/false; any field of the wrong type. Accepted: a blank paragraph title, an
            unanswerable record (``"answerable": false``, kept when ``answerable_only`` is
            false) without supporting paragraphs, a step whose ``paragraph_support_idx`` is
            null or absent, a number of steps that differs from the number of supporting
            paragraphs, unknown fields.
    """
    paths = as_paths(path, [data_dir() / name for name in DEFAULT_FILES], OFFICIAL)
    pool = DocumentPool()
    questions = QuestionSet()
    skipped = 0
    for split_name, where, record in records_with_splits(paths, split, dev_fraction):
        answerable = optional(record, "answerable", where, bool, True)
        if answerable_only and not answerable:
            skipped += 1
            continue
        questions.add(_question(record, where, split_name, pool, answerable), where)
    if not questions.questions():
        raise format_error(
            ", ".join(map(str, paths)),
            f"no answerable questions: all {skipped} records are \"answerable\": false",
            "pass answerable_only=False to load them",
        )
    return Corpus("musique", pool.documents(), questions.questions())


def _question(
    record: Record, where: str, split: str, pool: DocumentPool, answerable: bool
) -> Question:
    for name in FIELDS:  # a missing field first: it says more than a check of another one
        if name not in record:
            require(record, name, where, FIELDS)
    ids_by_idx: dict[int, str] = {}
    supporting: list[int] = []
    paragraphs = require(record, "paragraphs", where, FIELDS, list)
    if not paragraphs:
        raise format_error(where, "field 'paragraphs' is empty", "add the record's paragraphs")
    for paragraph in paragraphs:
        paragraph = check_type(paragraph, "paragraphs", where, dict)
        idx = require(paragraph, "idx", where, PARAGRAPH_FIELDS, int)
        if idx in ids_by_idx:
            raise format_error(where, f"paragraph idx {idx} appears twice", "number them apart")
        ids_by_idx[idx] = pool.add(
            require(paragraph, "title", where, PARAGRAPH_FIELDS),
            text_field(paragraph, "paragraph_text", where, PARAGRAPH_FIELDS),
        )
        if require(paragraph, "is_supporting", where, PARAGRAPH_FIELDS, bool):
            supporting.append(idx)
    if answerable and not supporting:
        raise format_error(
            where,
            "no paragraph has \"is_supporting\": true",
            "mark the evidence paragraphs, or mark the record \"answerable\": false",
        )
    steps = require(record, "question_decomposition", where, FIELDS, list)
    if not steps:
        raise format_error(
            where, "field 'question_decomposition' is empty (0 hops)", "list its steps"
        )
    # Reasoning order: the paragraphs the decomposition steps point to, then any others.
    used = [_step_paragraph(step, where, ids_by_idx) for step in steps]
    order = [idx for idx in used if idx in supporting] + supporting
    aliases = optional(record, "answer_aliases", where, list, [])
    hops = len(steps)
    return Question(
        qid=identifier(record, ("id",), where, FIELDS),
        question=text_field(record, "question", where, FIELDS),
        answers=unique_ids(
            answer_tuple([require(record, "answer", where, FIELDS)], where, "answer")
            + answer_tuple(aliases, where, "answer_aliases", required=False)
        ),
        supporting_ids=unique_ids([ids_by_idx[idx] for idx in order]),
        hops=hops,
        split=split,
        qtype=f"{hops}hop",
    )


def _step_paragraph(step: object, where: str, ids_by_idx: dict[int, str]) -> int | None:
    """The ``paragraph_support_idx`` of a decomposition step (``None`` if null or absent)."""
    fields = check_type(step, "question_decomposition", where, dict)
    idx = optional(fields, "paragraph_support_idx", where, (int, type(None)), None)
    if idx is not None and idx not in ids_by_idx:
        raise format_error(
            where,
            f"a decomposition step's paragraph_support_idx {idx} names no paragraph",
            "fix that step",
        )
    return idx
