"""The one tokenizer every lexical backend shares, and the text a document is indexed under."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from corpora.records import Document

#: Function words dropped from queries and documents. Deliberately short: articles,
#: prepositions, conjunctions, pronouns, auxiliaries and wh-words. Clitic fragments left by
#: splitting on apostrophes ("Einstein's" -> "einstein", "s"; "didn't" -> "didn", "t") are here
#: too. Words that are often names or content once lowercased ("may" the month, "will",
#: "us" for the US) are kept. Digits are never dropped, so years such as 1987 stay searchable.
STOPWORDS: frozenset[str] = frozenset(
    """
    a an the
    and or but nor so if then than
    of in on at by for to from with without into onto about as over under between
    during after before through against among per via
    is are was were be been being am
    do does did doing done
    have has had having
    would shall should can could might must
    what which who whom whose when where why how
    it its this that these those there here
    i me my we our you your he him his she her they them their
    not no also
    s t d ll m re ve
    """.split()
)

#: Changes whenever tokenization changes, so cached lexical indexes are rebuilt.
TOKENIZER_VERSION = "v1-" + hashlib.sha256(" ".join(sorted(STOPWORDS)).encode()).hexdigest()[:8]

_TOKEN = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    """Lowercase and strip accents (``Café`` -> ``cafe``); ASCII text takes a fast path."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lexical tokens.

    Lowercases, strips accents, splits on every character that is neither a letter nor a digit
    (underscores included) and drops ``STOPWORDS``. Digits are kept, so ``"born in 1987"`` gives
    ``["born", "1987"]``. Repeated tokens are kept (BM25 counts them).
    """
    return [tok for tok in _TOKEN.findall(_fold(text)) if tok not in STOPWORDS]


def document_text(doc: Document) -> str:
    """Return the text a document is indexed under: its title, a space, then its body."""
    return f"{doc.title} {doc.text}"
