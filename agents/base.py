"""The agent protocol shared by scripted agents and LM policies."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Agent(Protocol):
    """Plays one episode at a time in the Search-R1 text protocol.

    ``reset`` receives only the question text and its id: an agent that may plan with gold
    metadata (a demonstrator) must be given the corpus at construction and say so.
    """

    @property
    def name(self) -> str:
        """A short name for tables and logs."""
        ...

    def reset(self, question: str, qid: str) -> None:
        """Start a new episode on ``question``."""
        ...

    def act(self, observation: str) -> str:
        """Return the next turn's text given the environment's latest observation."""
        ...
