"""Records shared by every corpus: documents, questions and the corpus that holds them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Document:
    """One retrievable passage.

    Attributes:
        doc_id: Unique id within its corpus.
        title: Short title (an entity name for encyclopedia-style corpora).
        text: The passage body, without the title.
    """

    doc_id: str
    title: str
    text: str


def split_contents(contents: str) -> tuple[str, str]:
    r"""Split Search-R1 / FlashRAG ``contents``, ``'"Title"\nText'``, into title and text.

    The one parser of this format (the FlashRAG loader and the remote retriever, which maps
    hits to local documents by title, must agree). Rules, in order:

    * leading whitespace (blank lines included) is dropped first;
    * the first line is the title only when a newline follows it: without one, the whole
      string is the text and the title is ``""``;
    * the title line is stripped of surrounding whitespace, then of one pair of enclosing double
      quotes (and the whitespace inside them) when it both starts and ends with one:
      ``'"Quoted "inner" title"'`` keeps its inner quotes, an unquoted or half-quoted title is
      kept as is, and ``'""'`` is the empty title;
    * the text is the rest, stripped of surrounding whitespace; inner newlines stay.

    Example:
        >>> split_contents('"Paris"\nParis is the capital of France.')
        ('Paris', 'Paris is the capital of France.')
    """
    first, newline, rest = contents.lstrip().partition("\n")
    if not newline:
        return "", first.strip()
    title = first.strip()
    if len(title) >= 2 and title.startswith('"') and title.endswith('"'):
        title = title[1:-1].strip()
    return title, rest.strip()


def join_contents(title: str, text: str) -> str:
    r"""Write a title and text as Search-R1 / FlashRAG ``contents``: ``'"Title"\nText'``.

    The inverse of :func:`split_contents`: ``split_contents(join_contents(t, x)) == (t, x)``
    for every title without a newline and every text, both without surrounding whitespace (as
    the loaders store them). The title is always quoted and followed by a newline, so an empty
    title or an empty text survives the round trip. A newline inside the title would end the
    title line early, so it is written as a space.

    Example:
        >>> join_contents("Paris", "Paris is the capital of France.")
        '"Paris"\nParis is the capital of France.'
    """
    return f'"{title.replace(chr(10), " ")}"\n{text}'


@dataclass(frozen=True)
class Question:
    """One question with its gold answers and evidence.

    Attributes:
        qid: Unique id within its corpus.
        question: The question text shown to the agent.
        answers: Accepted gold answers (any one counts as correct).
        supporting_ids: Ids of the documents needed to answer, in reasoning order.
        hops: Number of reasoning hops (1 for single-hop).
        split: One of ``train``, ``dev``, ``test``.
        qtype: Question type, e.g. ``attribute``, ``bridge``, ``comparison``; free text for real
            datasets.
        entities: Names the question mentions, in order (used by planners, never by baselines).
    """

    qid: str
    question: str
    answers: tuple[str, ...]
    supporting_ids: tuple[str, ...]
    hops: int
    split: str
    qtype: str = "unknown"
    entities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(
                f"Question {self.qid!r}: expected split in {SPLITS}, got {self.split!r}"
            )
        if not self.answers:
            raise ValueError(f"Question {self.qid!r} has no gold answer")


@dataclass(frozen=True)
class Corpus:
    """Documents plus questions over them.

    Attributes:
        name: Corpus name (the registry key it was loaded under).
        documents: All documents, in a fixed order.
        questions: All questions of all splits.
    """

    name: str
    documents: tuple[Document, ...]
    questions: tuple[Question, ...] = field(default=())

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for doc in self.documents:
            if doc.doc_id in seen:
                raise ValueError(f"Corpus {self.name!r}: duplicate doc_id {doc.doc_id!r}")
            seen.add(doc.doc_id)

    @cached_property
    def by_id(self) -> dict[str, Document]:
        """Documents keyed by ``doc_id``."""
        return {doc.doc_id: doc for doc in self.documents}

    def split(self, name: str) -> list[Question]:
        """Return the questions of one split (``train``, ``dev`` or ``test``)."""
        if name not in SPLITS:
            raise ValueError(f"expected split in {SPLITS}, got {name!r}")
        return [q for q in self.questions if q.split == name]

    def require_split(self, name: str, key: str | None = "split",
                      instead: Sequence[str] = SPLITS) -> list[Question]:
        """The questions of split ``name``, or a ``ValueError`` that says what to set.

        Args:
            name: The split.
            key: The setting that chose it (``split``, ``eval.split``), suggested with the
                first split of ``instead`` that has questions; ``None`` if it cannot be set.
            instead: Splits that could stand in for ``name``, in order of preference.
        """
        questions = [q for q in self.questions if q.split == name]  # any name: "validation"
        if questions:
            return questions
        counts = {split: len(self.split(split)) for split in SPLITS}
        have = ", ".join(f"{split} ({n})" for split, n in counts.items())
        usable = [split for split in instead if counts[split] > 0]
        fix = (f"set {key}={usable[0]}" if key is not None and usable else
               "deal the questions anew with corpus.resplit='{train: 0.6, dev: 0.2, test: 0.2}'")
        raise ValueError(f"corpus {self.name!r} has no {name!r} questions; its splits are "
                         f"{have}: {fix}")

    def question(self, qid: str) -> Question:
        """Return the question with id ``qid``."""
        for q in self.questions:
            if q.qid == qid:
                return q
        raise KeyError(f"Corpus {self.name!r} has no question with qid {qid!r}")

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the document contents: index caches are keyed by it."""
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(json.dumps(asdict(doc), sort_keys=True).encode())
            digest.update(b"\n")
        return digest.hexdigest()[:16]


def dedup_documents(docs: Sequence[Document]) -> tuple[Document, ...]:
    """Drop documents whose (title, text) repeats an earlier one, keeping first ids."""
    seen: set[tuple[str, str]] = set()
    out: list[Document] = []
    for doc in docs:
        key = (doc.title, doc.text)
        if key not in seen:
            seen.add(key)
            out.append(doc)
    return tuple(out)
