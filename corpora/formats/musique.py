"""MuSiQue loader: JSONL records with their own paragraphs and question decomposition."""

from __future__ import annotations

from corpora.formats.documents import DocumentPool
from corpora.formats.jsonio import PathOption, Record, as_paths, check_type, require
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import records_with_splits
from corpora.paths import data_dir
from corpora.records import Corpus, Question

#: The shipped samples, relative to ``data_dir()``, loaded when ``path`` is not given.
DEFAULT_FILES = (
    "musique/musique_ans_train_sample100.jsonl",
    "musique/musique_ans_dev_sample100.jsonl",
)
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
    """
    paths = as_paths(path, [data_dir() / name for name in DEFAULT_FILES])
    pool = DocumentPool()
    questions = QuestionSet()
    for split_name, where, record in records_with_splits(paths, split, dev_fraction):
        if answerable_only and record.get("answerable", True) is False:
            continue
        questions.add(_question(record, where, split_name, pool), where)
    return Corpus("musique", pool.documents(), questions.questions())


def _question(record: Record, where: str, split: str, pool: DocumentPool) -> Question:
    ids_by_idx: dict[int, str] = {}
    supporting: list[int] = []
    for position, paragraph in enumerate(require(record, "paragraphs", where, FIELDS, list)):
        paragraph = check_type(paragraph, "paragraphs", where, dict)
        idx = paragraph.get("idx", position)
        ids_by_idx[idx] = pool.add(
            require(paragraph, "title", where, PARAGRAPH_FIELDS),
            require(paragraph, "paragraph_text", where, PARAGRAPH_FIELDS),
        )
        if paragraph.get("is_supporting") is True:
            supporting.append(idx)
    steps = require(record, "question_decomposition", where, FIELDS, list)
    # Reasoning order: the paragraphs the decomposition steps point to, then any others.
    used = [step.get("paragraph_support_idx") for step in steps if isinstance(step, dict)]
    order = [idx for idx in used if idx in supporting] + supporting
    aliases = check_type(record.get("answer_aliases", []), "answer_aliases", where, list)
    hops = len(steps)
    return Question(
        qid=str(require(record, "id", where, FIELDS, (str, int))),
        question=require(record, "question", where, FIELDS).strip(),
        answers=answer_tuple([require(record, "answer", where, FIELDS), *aliases], where, "answer"),
        supporting_ids=unique_ids([ids_by_idx[idx] for idx in order]),
        hops=hops,
        split=split,
        qtype=f"{hops}hop",
    )
