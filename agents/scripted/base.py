"""Shared machinery of scripted agents: read observations, issue planned turns."""

from __future__ import annotations

from envs.protocol import parse_information, render_answer, render_search


class ScriptedAgent:
    """An agent whose turns come from ``next_query`` and ``final_answer``.

    Subclasses decide the next query from the question and the documents seen so far; the base
    class tracks those documents, the queries issued, and the turn budget.
    """

    name = "scripted"

    def __init__(self, max_searches: int = 3) -> None:
        self.max_searches = max_searches
        self.question = ""
        self.qid = ""
        self.docs: list[tuple[str, str]] = []
        self.queries: list[str] = []

    def reset(self, question: str, qid: str) -> None:
        """Start a new episode."""
        self.question, self.qid = question, qid
        self.docs, self.queries = [], []
        self.start()

    def act(self, observation: str) -> str:
        """Search the next planned query, or answer when none is left."""
        self.docs += parse_information(observation)
        query = self.next_query() if len(self.queries) < self.max_searches else None
        if query:
            self.queries.append(query)
            return render_search(query)
        return render_answer(self.final_answer() or "unknown")

    def titles_seen(self) -> set[str]:
        """Titles of every document retrieved so far in the episode."""
        return {title for title, _ in self.docs}

    def start(self) -> None:
        """Hook run on reset (plan the episode)."""

    def next_query(self) -> str | None:
        """The next query, or None to answer now."""
        raise NotImplementedError

    def final_answer(self) -> str:
        """The answer given when no query is left."""
        raise NotImplementedError
