"""Baselines: honest scripted agents for benchmarks.

They see only the question text and the retrieved documents, never gold answers or supporting
ids (they are not given the corpus at all), and extract answers with lexical heuristics.
"""

from __future__ import annotations

import re

import numpy as np

from agents.scripted.base import ScriptedAgent
from agents.scripted.text import (
    answer_kind,
    choice_options,
    extract_answer,
    guess_rarity,
    keyword_query,
    names_in,
)

# A question that describes an entity instead of naming it ("the founder of X", "the company
# that X works for") or asks for a country (a property of places, not of people or companies)
# needs a second hop.
_BRIDGE_CUE = re.compile(r"\bthe \w+ (of|that|who|which|whose)\b|\bwhich country\b", re.IGNORECASE)


class VerbatimBaseline(ScriptedAgent):
    """Searches the question once and extracts an answer from the results."""

    name = "base_verbatim"

    def next_query(self) -> str | None:
        """The question, once."""
        return None if self.queries else self.question

    def final_answer(self) -> str:
        """Best span from all retrieved documents."""
        return extract_answer(self.question, self.docs)


class KeywordBaseline(VerbatimBaseline):
    """Searches the question's few most specific words once.

    With no corpus to count document frequencies in, specificity is guessed from the question
    alone (:func:`~agents.scripted.text.guess_rarity`: names and numbers, then longer words).
    """

    name = "base_keyword"

    def next_query(self) -> str | None:
        """The question's keywords, once."""
        if self.queries:
            return None
        return keyword_query(self.question, guess_rarity(self.question)) or self.question


class EntityBridgeBaseline(ScriptedAgent):
    """Looks up the named entities, then follows a bridge entity read off the results."""

    name = "base_entity_bridge"

    def start(self) -> None:
        """Plan lookups of the options (comparisons) or of the first named entity."""
        if answer_kind(self.question) == "choice":
            self.plan = choice_options(self.question)
        else:
            self.plan = names_in(self.question)[:1] or [self.question]
        self.bridge: str | None = None
        self.bridged = False

    def next_query(self) -> str | None:
        """Planned lookups, then one bridge lookup when the question calls for it."""
        if self.plan:
            return self.plan.pop(0)
        if not self.bridged and _BRIDGE_CUE.search(self.question):
            self.bridged = True
            # The bridge is a name (not a year) in the sentence that best matches the question.
            bridge = extract_answer(self.question.replace("year", ""), self.docs)
            if bridge and not bridge.isdigit():
                self.bridge = bridge
                return bridge
        return None

    def final_answer(self) -> str:
        """Best span from the bridge documents if a bridge was followed, else from all."""
        if self.bridge is None:
            return extract_answer(self.question, self.docs)
        hop2 = [d for d in self.docs if d[0] == self.bridge] or self.docs
        return extract_answer(self.question, hop2, exclude=[self.bridge])


class RandomBaseline(ScriptedAgent):
    """Random searches of question words, then a random span from what it retrieved."""

    name = "base_random"

    def __init__(self, max_searches: int = 3, seed: int = 0) -> None:
        super().__init__(max_searches)
        self.seed = seed
        # One stream per agent, continued across episodes: repeated samples of a question differ,
        # and a rollout with the same seed and batch size replays exactly.
        self.rng = np.random.default_rng(seed)

    def start(self) -> None:
        """Draw how many searches this episode makes."""
        self.n_searches = int(self.rng.integers(0, self.max_searches + 1))

    def next_query(self) -> str | None:
        """A random subset of the question's words."""
        if len(self.queries) >= self.n_searches:
            return None
        words = self.question.rstrip("?").split()
        size = int(self.rng.integers(1, min(4, len(words)) + 1))
        picked = sorted(self.rng.choice(len(words), size=size, replace=False))
        return " ".join(words[i] for i in picked)

    def final_answer(self) -> str:
        """A random name or year from the retrieved text (or from the question)."""
        text = " ".join(t for _, t in self.docs) or self.question
        spans = names_in(text) + re.findall(r"\b\d{4}\b", text)
        return str(spans[int(self.rng.integers(len(spans)))]) if spans else "unknown"
