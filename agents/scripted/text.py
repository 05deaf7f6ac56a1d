"""Text heuristics shared by scripted agents: names, keywords, candidate answers.

Scripted agents see only what an LM would: the question and the retrieved text. These
functions read that text; none of them looks at gold answers or supporting documents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agents.strategies import content_tokens

_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*\b")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Capitalised words that start questions or sentences without being names.
_NOT_NAMES = {
    "In",
    "Which",
    "What",
    "Who",
    "When",
    "Where",
    "How",
    "The",
    "Its",
    "It",
    "He",
    "She",
    "They",
    "Born",
    "Founded",
    "Today",
    "Since",
    "With",
    "Around",
    "Were",
    "Was",
    "Is",
    "Are",
    "Did",
    "Does",
    "Do",
    "A",
    "An",
}


def names_in(text: str) -> list[str]:
    """Capitalised word sequences that look like names, in order, without repeats."""
    out: list[str] = []
    for match in _NAME.finditer(text):
        words = match.group(0).split(" ")
        while words and words[0] in _NOT_NAMES:
            words = words[1:]
        name = " ".join(words)
        if name and name not in out:
            out.append(name)
    return out


def keywords(text: str) -> list[str]:
    """Content words of ``text`` (stopwords and question words removed), original case kept."""
    wanted = set(content_tokens(text))
    return [w for w in re.findall(r"[A-Za-z0-9]+", text) if w.lower() in wanted]


def stem(word: str) -> str:
    """A crude prefix stem (``founder``/``founded`` -> ``foun``) for matching relation words."""
    return word.lower()[:4]


def answer_kind(question: str) -> str:
    """What the question asks for: ``year``, ``person``, ``choice`` or ``name``."""
    q = question.lower()
    if " or " in q and q.rstrip("?").split(",")[-1].strip().count(" or ") == 1:
        return "choice"
    if "year" in q or q.startswith("when"):
        return "year"
    if q.startswith("who"):
        return "person"
    return "name"


def choice_options(question: str) -> list[str]:
    """The two options of an ``..., A or B?`` question."""
    tail = question.rstrip("?").split(",")[-1]
    return [part.strip() for part in tail.split(" or ")]


def extract_answer(
    question: str, docs: Sequence[tuple[str, str]], exclude: Sequence[str] = ()
) -> str:
    """Pick an answer span from retrieved ``(title, text)`` docs by lexical cues.

    Each candidate span of the right kind (a year, a name, or one of two options) that the
    question does not already name is scored by the sentence it sits in: +1 for every relation
    word of the question (prefix-stemmed) in the sentence, +0.5 for every word of the question's
    names, +2 if a relation word stands within the three words before the span. Ties go to the
    earlier document and the earlier span.
    """
    kind = answer_kind(question)
    if kind == "choice":
        return _pick_choice(question, docs)
    names = names_in(question)
    name_words = {w.lower() for n in names for w in n.split()}
    relation = {stem(w) for w in keywords(question) if w.lower() not in name_words}
    banned = {n.lower() for n in names_in(question)} | {e.lower() for e in exclude}
    best: tuple[float, str] = (float("-inf"), "")
    for rank, (title, text) in enumerate(docs):
        on_topic = 1.5 if title in names else 0.0
        for sentence in _SENTENCE.split(text):
            raw = re.findall(r"[A-Za-z0-9]+", sentence)
            words = {stem(w) for w in raw}
            base = len(relation & words) + 0.5 * len(name_words & {w.lower() for w in raw})
            base += on_topic
            for start, span in _spans(sentence, kind):
                low = span.lower()
                if any(low in b or b in low for b in banned):
                    continue
                before = {stem(w) for w in re.findall(r"[A-Za-z0-9]+", sentence[:start])[-3:]}
                score = base + (2.0 if relation & before else 0.0) - 0.01 * rank
                if score > best[0]:
                    best = (score, span)
    return best[1]


def _spans(sentence: str, kind: str) -> list[tuple[int, str]]:
    """Candidate answer spans with their character offsets."""
    if kind == "year":
        return [(m.start(), m.group(0)) for m in _YEAR.finditer(sentence)]
    spans = []
    for match in _NAME.finditer(sentence):
        words = match.group(0).split(" ")
        offset = match.start()
        while words and words[0] in _NOT_NAMES:
            offset += len(words[0]) + 1
            words = words[1:]
        if words and (kind != "person" or len(words) > 1):
            spans.append((offset, " ".join(words)))
    return spans


def _pick_choice(question: str, docs: Sequence[tuple[str, str]]) -> str:
    options = choice_options(question)
    years: dict[str, int] = {}
    for option in options:
        for title, text in docs:
            if title == option or text.startswith(option):
                found = _YEAR.findall(text)
                if found:
                    years[option] = int(found[0])
                    break
    if len(years) < 2:
        return options[0]
    later = any(w in question.lower() for w in ("later", "last", "younger", "most recently"))
    pick = max if later else min
    return pick(years, key=lambda o: years[o])
