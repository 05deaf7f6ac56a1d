r"""The Search-R1 text protocol: parse an agent turn, render what the environment says back.

An agent turn may think in ``<think>...</think>`` and then either searches with
``<search>query</search>`` or answers with ``<answer>text</answer>``. The first complete
search/answer tag in the turn is the action; text after it is ignored (as Search-R1 stops
generation at the closing tag). Results come back as
``<information>Doc 1 (Title: ...) text\\nDoc 2 ...</information>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from corpora import Document

_ACTION_KINDS = ("search", "answer")

INSTRUCTION = (
    "Answer the question. To search, write <search>query</search> and the results appear "
    "between <information> and </information>. You may search several times. Give the final "
    "answer as <answer>answer</answer>."
)
INVALID_FEEDBACK = (
    "\nInvalid action: {reason}. Write <search>query</search> to search or "
    "<answer>answer</answer> to answer.\n"
)
TRUNCATED_FEEDBACK = "\nThe turn budget is spent; the episode ends without an answer.\n"


@dataclass(frozen=True)
class Action:
    """A parsed agent turn: ``kind`` is ``search``, ``answer`` or ``invalid``."""

    kind: str
    content: str = ""
    reason: str = ""


def parse_action(text: object) -> Action:
    """Parse one agent turn; never raises (anything unparseable is an ``invalid`` action)."""
    if not isinstance(text, str):
        return Action("invalid", reason=f"expected text, got {type(text).__name__}")
    tags = [_first_complete_tag(text, kind) for kind in _ACTION_KINDS]
    found = [tag for tag in tags if tag is not None]
    if not found:
        return Action("invalid", reason="no <search> or <answer> tag")
    _, kind, body = min(found)
    content = " ".join(body.split())
    if not content:
        return Action("invalid", reason=f"empty <{kind}> tag")
    return Action(kind, content)


def _first_complete_tag(text: str, kind: str) -> tuple[int, str, str] | None:
    """``(start, kind, body)`` of the first ``<kind>body</kind>`` in ``text``, or ``None``.

    Linear time, where a lazy regex rescans the rest of the text from every opening tag: only
    the first opening can start the first complete tag, because a closing tag after any later
    opening also follows the first one.
    """
    opening, closing = f"<{kind}>", f"</{kind}>"
    start = text.find(opening)
    if start < 0:
        return None
    end = text.find(closing, start + len(opening))
    return None if end < 0 else (start, kind, text[start + len(opening) : end])


def render_prompt(question: str) -> str:
    """The observation returned by ``reset``: the instruction and the question."""
    return f"{INSTRUCTION}\nQuestion: {question}\n"


def render_information(docs: Sequence[Document]) -> str:
    """Retrieved documents as one ``<information>`` block, surrounded by newlines."""
    body = "\n".join(f"Doc {i} (Title: {d.title}) {d.text}" for i, d in enumerate(docs, 1))
    return f"\n<information>{body}</information>\n"


def render_search(query: str) -> str:
    """The canonical agent turn that searches ``query``."""
    return f"<search>{query}</search>"


def render_answer(answer: str) -> str:
    """The canonical agent turn that answers ``answer``."""
    return f"<answer>{answer}</answer>"


_DOC_LINE = re.compile(r"^Doc \d+ \(Title: (.*?)\) (.*)$")


def parse_information(observation: str) -> list[tuple[str, str]]:
    """The ``(title, text)`` pairs of every ``<information>`` block in an observation."""
    docs: list[tuple[str, str]] = []
    for block in re.findall(r"<information>(.*?)</information>", observation, re.DOTALL):
        for line in block.split("\n"):
            match = _DOC_LINE.match(line)
            if match:
                docs.append((match.group(1), match.group(2)))
    return docs
