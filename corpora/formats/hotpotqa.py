"""HotpotQA loader: the original JSON list with ``context`` paragraphs per question."""

from __future__ import annotations

from typing import Any

from corpora.formats.documents import DocumentPool
from corpora.formats.jsonio import PathOption, Record, as_paths, check_type, format_error, require
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import records_with_splits
from corpora.paths import data_dir
from corpora.records import Corpus, Question

#: The shipped samples, relative to ``data_dir()``, loaded when ``path`` is not given.
DEFAULT_FILES = (
    "hotpotqa/hotpot_train_sample100.json",
    "hotpotqa/hotpot_dev_distractor_sample200.json",
)
FIELDS = ("_id", "question", "answer", "supporting_facts", "context")


def load_hotpotqa(
    path: PathOption | None = None, split: str | None = None, dev_fraction: float = 0.25
) -> Corpus:
    """Load HotpotQA questions and the union of their context paragraphs.

    Args:
        path: One HotpotQA file (JSON list or JSONL, optionally ``.gz``) or a list of them;
            default: the train and dev-distractor samples under ``corpora.paths.data_dir()``.
        split: Put every question of ``path`` in this split; ``None`` (default): a file whose
            name contains ``train`` is ``train``, any other file has its first ``dev_fraction``
            of records in ``dev`` and the rest in ``test`` (so the dev sample of 200 gives 50 dev
            and 150 test questions).
        dev_fraction: Share of each non-train file that goes to ``dev``.

    Returns:
        A corpus of one document per distinct (title, paragraph), the text being the stripped
        sentences joined by spaces, with content ids ``"Title_slug#hash"``; each question's
        ``supporting_ids`` are its supporting-fact paragraphs in order of first mention,
        ``hops`` the number of supporting titles and ``qtype`` the record's ``type``
        (``bridge`` or ``comparison``; ``unknown`` if absent).
    """
    paths = as_paths(path, [data_dir() / name for name in DEFAULT_FILES])
    pool = DocumentPool()
    questions = QuestionSet()
    for split_name, where, record in records_with_splits(paths, split, dev_fraction):
        questions.add(_question(record, where, split_name, pool), where)
    return Corpus("hotpotqa", pool.documents(), questions.questions())


def _question(record: Record, where: str, split: str, pool: DocumentPool) -> Question:
    ids_by_title: dict[str, str] = {}
    for item in require(record, "context", where, FIELDS, list):
        title, value = _pair(item, "context", where)
        sentences = check_type(value, "context", where, list)
        text = " ".join(check_type(s, "context", where, str).strip() for s in sentences)
        ids_by_title.setdefault(title.strip(), pool.add(title, text))
    facts = require(record, "supporting_facts", where, FIELDS, list)
    titles = unique_ids([_pair(fact, "supporting_facts", where)[0].strip() for fact in facts])
    for title in titles:
        if title not in ids_by_title:
            raise format_error(
                where,
                f"supporting fact title {title!r} is not among the context paragraphs",
                "add that paragraph to 'context' or remove the record",
            )
    return Question(
        qid=str(require(record, "_id", where, FIELDS, (str, int))),
        question=require(record, "question", where, FIELDS).strip(),
        answers=answer_tuple([require(record, "answer", where, FIELDS)], where, "answer"),
        supporting_ids=tuple(ids_by_title[title] for title in titles),
        hops=len(titles),
        split=split,
        qtype=check_type(record.get("type", "unknown"), "type", where, str),
    )


def _pair(item: Any, name: str, where: str) -> tuple[str, Any]:
    """Unpack a ``[title, value]`` pair of ``context`` or ``supporting_facts``."""
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise format_error(
            where, f"each item of {name!r} should be [title, ...], got {item!r:.80}", "fix it"
        )
    return item[0], item[1]
