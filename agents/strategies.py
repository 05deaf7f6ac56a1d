"""Query-strategy labels: the lexical relation of a search query to its question.

Every query an agent issues gets one label from :data:`STRATEGY_LABELS`, computed only from
the query, the question, the text retrieved earlier in the same episode and the earlier queries.
No model, retriever or gold answer is involved, so labels are cheap, deterministic and comparable
across agents. The exact rule is documented in :func:`label_query`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = [
    "ERROR_LABELS",
    "LABELS",
    "STOPWORDS",
    "STRATEGY_LABELS",
    "content_tokens",
    "fold",
    "label_episode",
    "label_query",
    "name_tokens",
    "strategy_signature",
]

STRATEGY_LABELS: tuple[str, ...] = ("verbatim", "entity", "keyword", "bridge", "novel", "repeat")
"""The strategy labels, in a fixed order (used for distributions and tie-breaking)."""

ERROR_LABELS: tuple[str, ...] = ("wrong_entity",)
"""Labels of queries that are errors, not strategies: diversity figures leave them out.

``wrong_entity``: the query names something that is neither in the question nor in any text
retrieved so far (a garbled or invented name). Counted as a strategy, it would make an agent
that garbles its queries look diverse.
"""

LABELS: tuple[str, ...] = STRATEGY_LABELS + ERROR_LABELS
"""Every label :func:`label_query` gives."""


def strategy_signature(labels: Sequence[str]) -> tuple[str, ...]:
    """An episode's strategy: the sequence of its queries' labels, error labels left out."""
    return tuple(label for label in labels if label not in ERROR_LABELS)

STOPWORDS: frozenset[str] = frozenset(
    """
    a an the this that these those there here all any both each some such
    it its i me my we our you your he him his she her they them their
    of in on at by for from to with without as into onto about over under between among
    during after before through against per via
    and or but nor so if then than not no also
    is are was were be been being am do does did doing done has have had having
    would shall should can could might must
    which what who whom whose when where why how
    s t d ll m re ve
    """.split()
)
"""English function words removed by :func:`content_tokens`.

Articles, determiners, pronouns, prepositions, conjunctions, auxiliaries, wh-words and clitic
fragments (``"didn't"`` -> ``didn``, ``t``): the words a search engine ignores, so a query that
only adds or drops them keeps its label. Words that are often names (``may``, ``will``) stay.
"""

# Words that open a question without being names, beyond STOPWORDS: a capitalised first word
# is a name only when it is none of these (see name_tokens).
_OPENERS: frozenset[str] = frozenset(
    """
    yet either neither every many much most other another name list give tell describe identify
    according apart besides despite since while although though because once upon along around
    near until unless will may one
    """.split()
)

# A capitalised first word followed by one of these is the question's subject ("Valuair was...").
_SUBJECT_VERBS: frozenset[str] = frozenset({"is", "was", "are", "were", "has", "had", "have"})

# Letters and digits, in any script: a word such as "Rodríguez" stays one token.
_TOKEN_RE = re.compile(r"[^\W_]+")
_WORD_RE = re.compile(r"\S+")


def fold(text: str) -> str:
    """Lowercase ``text`` and strip its accents (``"Rodríguez"`` -> ``"rodriguez"``).

    Args:
        text: Any text.

    Returns:
        The folded text; ASCII text is only lowercased.
    """
    text = text.lower()
    if text.isascii():  # the common case, and it needs no Unicode normalisation
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def content_tokens(text: str) -> list[str]:
    """Lowercase word tokens of ``text`` without stopwords, in order (duplicates kept).

    Tokens are the runs of letters and digits in ``fold(text)`` (lowercased, accents stripped),
    so ``"Mekali's"`` gives ``"mekali"`` and ``"s"`` (and ``"s"`` is then dropped as a stopword)
    and ``"Rodríguez"`` gives ``"rodriguez"``. Tokens in :data:`STOPWORDS` are removed.

    Args:
        text: Any text (a query, a question, a retrieved passage).

    Returns:
        The content tokens of ``text``.
    """
    return [tok for tok in _TOKEN_RE.findall(fold(text)) if tok not in STOPWORDS]


def name_tokens(question: str) -> set[str]:
    """Content tokens of the capitalised words of ``question``: the names it mentions.

    A word is a whitespace-separated chunk; it is capitalised when its first letter or digit is
    an uppercase letter. The question's first word is capitalised anyway, so it counts only when
    it is the subject of the question or starts a longer name: it is no stopword or usual opener
    (``If``, ``During``...) and the next word is capitalised or a verb such as ``is``/``was``.
    Digits-only tokens (years) count only inside or next to a capitalised word (``Channel 8``,
    ``2017 Brit Awards``), never on their own (``in 1990``). ``"Who founded Mekali's firm in
    1990?"`` gives ``{"mekali"}``, ``"Valuair was bought by which airline?"`` gives
    ``{"valuair"}``.

    Args:
        question: The question text.

    Returns:
        The set of lowercased name tokens.
    """
    words = _WORD_RE.findall(question)
    named = [_capitalised(w) and (i > 0 or _opens_name(w, words[1:2])) for i, w in enumerate(words)]
    names: set[str] = set()
    for i, word in enumerate(words):
        in_name = named[i] or any(named[j] for j in (i - 1, i + 1) if 0 <= j < len(words))
        for tok in content_tokens(word):
            if (named[i] and not tok.isdigit()) or (in_name and tok.isdigit()):
                names.add(tok)
    return names


def _capitalised(word: str) -> bool:
    first = next((ch for ch in word if ch.isalnum()), "")
    return first.isupper()


def _opens_name(first: str, rest: list[str]) -> bool:
    """Whether a question's capitalised first word is a name (its subject, or a name's start)."""
    tokens = content_tokens(first)
    if not tokens or not rest or any(tok in _OPENERS for tok in tokens):
        return False
    return _capitalised(rest[0]) or "".join(_TOKEN_RE.findall(fold(rest[0]))) in _SUBJECT_VERBS


def _normalise(tokens: Iterable[str]) -> str:
    return " ".join(tokens)


def _label(
    q_tokens: list[str],
    question_set: set[str],
    names: set[str],
    retrieved: set[str],
    previous: set[str],
    q_names: set[str],
) -> str:
    """Apply the labelling rule of :func:`label_query` to pre-tokenised inputs."""
    if _normalise(q_tokens) in previous:
        return "repeat"
    q = set(q_tokens)
    if not q:
        return "novel"
    new = q - question_set
    if not new:
        # Here q is a non-empty subset of the question's tokens, so question_set is non-empty.
        if 5 * len(q & question_set) >= 4 * len(question_set):  # overlap ratio >= 0.8
            return "verbatim"
        if q <= names:
            return "entity"
        return "keyword"
    if (new & q_names) - retrieved:
        return "wrong_entity"
    if 2 * len(new & retrieved) >= len(new):
        return "bridge"
    return "novel"


def label_query(
    query: str,
    question: str,
    retrieved_texts: Iterable[str] = (),
    previous_queries: Iterable[str] = (),
) -> str:
    """Strategy label of one query, from its lexical relation to the question and prior results.

    Let ``q = set(content_tokens(query))``, ``Q = set(content_tokens(question))``, ``R`` the union
    of ``content_tokens`` of all earlier retrieved texts, and ``new = q - Q``. The rules, applied
    in order:

    a) ``"repeat"``: the normalised query (its content tokens joined by one space) equals the
       normalised form of an earlier query of the episode (``previous_queries``). Two
       stopword-only queries both normalise to ``""``, so the second one is a repeat.
    b) ``q`` is empty: ``"novel"`` (nothing from the question).
    c) ``new`` is empty (every query token is in the question): ``"verbatim"`` if
       ``|q & Q| / |Q| >= 0.8``; else ``"entity"`` if ``q`` is a subset of
       :func:`name_tokens` of the question; else ``"keyword"``.
    d) otherwise: ``"wrong_entity"`` if a token of ``new`` is a name of the query
       (:func:`name_tokens` of the query, the same capitalisation rule as for questions) and
       does not occur in ``R``: the query names something neither the question nor the
       retrieved text mentions (an :data:`ERROR_LABELS` label); else ``"bridge"`` if at least
       half of the tokens in ``new`` occur in ``R``; else ``"novel"``.

    Args:
        query: The search query to label.
        question: The episode's question.
        retrieved_texts: Texts returned by earlier searches of the same episode.
        previous_queries: Earlier queries of the same episode.

    Returns:
        One of :data:`LABELS`.
    """
    retrieved: set[str] = set()
    for text in retrieved_texts:
        retrieved.update(content_tokens(text))
    previous = {_normalise(content_tokens(prev)) for prev in previous_queries}
    return _label(
        content_tokens(query),
        set(content_tokens(question)),
        name_tokens(question),
        retrieved,
        previous,
        name_tokens(query),
    )


def label_episode(
    question: str,
    queries: Sequence[str],
    retrieved_texts_per_search: Sequence[Sequence[str]],
) -> list[str]:
    """Label every query of one episode with :func:`label_query`.

    Query ``i`` sees the texts of searches ``0..i-1`` (``retrieved_texts_per_search[j]`` holds
    the texts returned by search ``j``) and the queries ``0..i-1``. The results of the last
    search may be omitted, since no query sees them.

    Args:
        question: The episode's question.
        queries: The episode's queries, in order.
        retrieved_texts_per_search: The texts returned by each search, in order.

    Returns:
        One label per query.

    Raises:
        ValueError: If ``retrieved_texts_per_search`` has more entries than ``queries`` or fewer
            than ``len(queries) - 1``.
    """
    n = len(queries)
    if not n - 1 <= len(retrieved_texts_per_search) <= n:
        raise ValueError(
            f"expected {max(n - 1, 0)} or {n} entries in retrieved_texts_per_search for "
            f"{n} queries, got {len(retrieved_texts_per_search)}"
        )
    question_set = set(content_tokens(question))
    names = name_tokens(question)
    retrieved: set[str] = set()
    previous: set[str] = set()
    labels: list[str] = []
    for i, query in enumerate(queries):
        q_tokens = content_tokens(query)
        labels.append(_label(q_tokens, question_set, names, retrieved, previous,
                             name_tokens(query)))
        previous.add(_normalise(q_tokens))
        if i < len(retrieved_texts_per_search):
            for text in retrieved_texts_per_search[i]:
                retrieved.update(content_tokens(text))
    return labels
