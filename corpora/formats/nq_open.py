"""NQ-open loader: gzipped JSONL with retrieved or gold passages (``ctxs``) per question."""

from __future__ import annotations

from itertools import islice

from corpora.formats.documents import DocumentPool
from corpora.formats.errors import format_error
from corpora.formats.fields import check_type, optional, require, text_field
from corpora.formats.jsonio import Record, iter_records
from corpora.formats.questions import QuestionSet, answer_tuple, unique_ids
from corpora.formats.splits import index_splits
from corpora.formats.textio import PathLike, as_paths
from corpora.paths import data_dir
from corpora.records import Corpus, Question

#: The shipped sample, relative to ``data_dir()``, loaded when ``path`` is not given.
DEFAULT_FILE = "nq_open/nq-open-oracle.jsonl.gz"
#: What to get where the sample is absent: NQ-open with retrieved DPR passages per question.
OFFICIAL = ("nq-open-oracle.jsonl.gz (NQ-open test with its gold DPR passage, from the "
            "lost-in-the-middle repository's qa_data) or a file of the same fields")
FIELDS = ("question", "answers", "ctxs")
CTX_FIELDS = ("title", "text")


def load_nq_open(
    path: PathLike | None = None,
    max_questions: int | None = 1000,
    train_fraction: float = 0.6,
    dev_fraction: float = 0.1,
) -> Corpus:
    """Load NQ-open questions and the union of their passages.

    The shipped sample is the NQ-open *test* set with its gold passage, so every split here is
    drawn from official test questions: do not compare scores with published NQ-open numbers.

    Args:
        path: A (gzipped) JSONL file of ``{question, answers, ctxs: [{title, text, hasanswer,
            isgold}]}``; default: the oracle sample under ``corpora.paths.data_dir()``.
        max_questions: Keep the first this many records (``None``: all 2,655 of the sample).
        train_fraction: The first ``round(n * train_fraction)`` kept records are ``train``.
        dev_fraction: The next ``dev_fraction`` of records are ``dev``; the rest are ``test``
            (so 600 / 100 / 300 with the defaults).

    Returns:
        A corpus of one document per distinct passage with content ids; question ids are
        ``f"nq-{index}"`` (0-based record index); ``supporting_ids`` are the passages marked
        ``isgold`` (or, if none is, ``hasanswer``); ``hops`` is 1 and ``qtype`` ``single``.

    Raises:
        CorpusFormatError: Refused, naming file and line: an empty file; a blank
            ``question``; ``answers`` empty or holding a blank answer; ``ctxs`` empty, a passage
            without ``text`` or with a blank one; ``isgold`` or ``hasanswer`` that is not
            true/false; any field of the wrong type. Accepted: a blank passage title, missing
            ``isgold``/``hasanswer`` (false), a question none of whose passages is gold or
            holds the answer (it gets no ``supporting_ids``), unknown fields.
    """
    if max_questions is not None and max_questions < 0:
        raise ValueError(f"max_questions: expected None or >= 0, got {max_questions}")
    file = path if path is not None else as_paths(None, [data_dir() / DEFAULT_FILE], OFFICIAL)[0]
    records = list(islice(iter_records(file), max_questions))
    splits = index_splits(len(records), train_fraction, dev_fraction)
    pool = DocumentPool()
    questions = QuestionSet()
    for index, ((where, record), split) in enumerate(zip(records, splits, strict=True)):
        questions.add(_question(record, where, f"nq-{index}", split, pool), where)
    return Corpus("nq_open", pool.documents(), questions.questions())


def _question(record: Record, where: str, qid: str, split: str, pool: DocumentPool) -> Question:
    gold: list[str] = []
    has_answer: list[str] = []
    ctxs = require(record, "ctxs", where, FIELDS, list)
    if not ctxs:
        raise format_error(where, "field 'ctxs' is empty", "add the question's passages")
    for ctx in ctxs:
        ctx = check_type(ctx, "ctxs", where, dict)
        doc_id = pool.add(
            require(ctx, "title", where, CTX_FIELDS), text_field(ctx, "text", where, CTX_FIELDS)
        )
        if optional(ctx, "isgold", where, bool, False):
            gold.append(doc_id)
        if optional(ctx, "hasanswer", where, bool, False):
            has_answer.append(doc_id)
    return Question(
        qid=qid,
        question=text_field(record, "question", where, FIELDS),
        answers=answer_tuple(require(record, "answers", where, FIELDS, list), where),
        supporting_ids=unique_ids(gold or has_answer),
        hops=1,
        split=split,
        qtype="single",
    )
