"""HotpotQA loader: the original JSON list with ``context`` paragraphs per question."""

from __future__ import annotations

from typing import Any

from corpora.formats.documents import DocumentPool
from corpora.formats.errors import format_error
from corpora.formats.fields import check_type, identifier, nonblank, optional, require, text_field
from corpora.formats.jsonio import Record
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import records_with_splits
from corpora.formats.textio import PathOption, as_paths
from corpora.paths import data_dir
from corpora.records import Corpus, Question

#: The shipped samples, relative to ``data_dir()``, loaded when ``path`` is not given.
DEFAULT_FILES = (
    "hotpotqa/hotpot_train_sample100.json",
    "hotpotqa/hotpot_dev_distractor_sample200.json",
)
#: What to get where the samples are absent (the distractor setting's train and dev files).
OFFICIAL = ("HotpotQA's hotpot_train_v1.1.json and hotpot_dev_distractor_v1.json "
            "(hotpotqa.github.io)")
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

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty file; a blank or repeated
            ``_id``; a blank ``question`` or ``answer``; a ``context`` item that is not
            ``[title, [sentences]]``, has a blank title, a title already used in that record,
            or no text; ``supporting_facts`` empty, or a fact that is not ``[title, sentence
            number]`` (an integer of at least 0) or names a title not in ``context``; a blank
            ``type``; any field of the wrong type. Accepted: a sentence number past the end of
            its paragraph (the fact still names the paragraph), a fact listed twice (counted
            once), a missing ``type``, unknown fields such as ``level``.
    """
    paths = as_paths(path, [data_dir() / name for name in DEFAULT_FILES], OFFICIAL)
    pool = DocumentPool()
    questions = QuestionSet()
    for split_name, where, record in records_with_splits(paths, split, dev_fraction):
        questions.add(_question(record, where, split_name, pool), where)
    return Corpus("hotpotqa", pool.documents(), questions.questions())


def _question(record: Record, where: str, split: str, pool: DocumentPool) -> Question:
    ids_by_title: dict[str, str] = {}
    for index, item in enumerate(require(record, "context", where, FIELDS, list)):
        title, value = _pair(item, "context", where)
        title = nonblank(title, f"context[{index}] title", where).strip()
        sentences = check_type(value, "context", where, list)
        text = " ".join(check_type(s, "context", where, str).strip() for s in sentences)
        if not text.strip():
            raise format_error(
                where, f"context paragraph {title!r} has no text", "fill it or remove it"
            )
        if title in ids_by_title:
            raise format_error(
                where, f"context title {title!r} appears twice", "merge the two paragraphs"
            )
        ids_by_title[title] = pool.add(title, text)
    facts = require(record, "supporting_facts", where, FIELDS, list)
    if not facts:
        raise format_error(
            where, "field 'supporting_facts' is empty", "list the [title, sentence] facts"
        )
    titles = unique_ids([_fact_title(fact, where) for fact in facts])
    for title in titles:
        if title not in ids_by_title:
            raise format_error(
                where,
                f"supporting fact title {title!r} is not among the context paragraphs",
                "add that paragraph to 'context' or remove the record",
            )
    return Question(
        qid=identifier(record, ("_id",), where, FIELDS),
        question=text_field(record, "question", where, FIELDS),
        answers=answer_tuple([require(record, "answer", where, FIELDS)], where, "answer"),
        supporting_ids=tuple(ids_by_title[title] for title in titles),
        hops=len(titles),
        split=split,
        qtype=nonblank(optional(record, "type", where, str, "unknown"), "type", where),
    )


def _fact_title(fact: Any, where: str) -> str:
    """The title of a ``[title, sentence number]`` supporting fact."""
    title, sentence = _pair(fact, "supporting_facts", where)
    if isinstance(sentence, bool) or not isinstance(sentence, int) or sentence < 0:
        raise format_error(
            where,
            f"supporting fact {fact!r:.80} should be [title, sentence number >= 0]",
            "fix it",
        )
    return title.strip()


def _pair(item: Any, name: str, where: str) -> tuple[str, Any]:
    """Unpack a ``[title, value]`` pair of ``context`` or ``supporting_facts``."""
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise format_error(
            where, f"each item of {name!r} should be [title, ...], got {item!r:.80}", "fix it"
        )
    check_type(item[0], name, where, str)
    return item[0], item[1]
