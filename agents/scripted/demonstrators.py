"""Demonstrators: scripted agents that each follow one query strategy, for SFT data.

Demonstrators may *plan* with gold metadata (which documents support the question), so they are
constructed with the corpus. They answer the gold answer only once every supporting document
has been retrieved, and "unknown" otherwise; the SFT data builder keeps only successful episodes,
so a strategy contributes demonstrations exactly on the questions it can solve.
"""

from __future__ import annotations

from agents.scripted.base import ScriptedAgent
from agents.scripted.text import keywords, names_in
from corpora import Corpus, Question

# Relation words and paraphrases that never occur in the synthetic documents' templates, so a
# reformulated query really carries words from neither the question nor the retrieved text.
PARAPHRASES = {
    "born": "hometown",
    "founded": "inception",
    "founder": "creator",
    "headquartered": "seat",
    "work": "employment",
    "works": "employment",
    "employs": "employment",
    "year": "date",
    "city": "town",
    "country": "nation",
    "company": "enterprise",
    "first": "oldest",
    "earlier": "oldest",
}


class Demonstrator(ScriptedAgent):
    """Base class: looks up the gold question record by id to plan its queries."""

    strategy = "demonstrator"

    def __init__(self, corpus: Corpus, max_searches: int = 3) -> None:
        super().__init__(max_searches)
        self.corpus = corpus
        self._records = {q.qid: q for q in corpus.questions}
        self.gold: Question | None = None
        self.plan: list[str] = []

    @property
    def name(self) -> str:  # type: ignore[override]
        """Agent name, e.g. ``demo_entity``."""
        return f"demo_{self.strategy}"

    def start(self) -> None:
        """Look up the gold record and plan the first queries."""
        self.gold = self._records.get(self.qid)
        self.plan = self.first_queries()

    def support_titles(self) -> list[str]:
        """Titles of the supporting documents, in reasoning order."""
        if self.gold is None:
            return []
        return [
            self.corpus.by_id[d].title for d in self.gold.supporting_ids if d in self.corpus.by_id
        ]

    def named_titles(self) -> list[str]:
        """Supporting titles the question names (falls back to names found in the question)."""
        named = [t for t in self.support_titles() if t in self.question]
        return named or names_in(self.question)[:2]

    def bridge_titles(self) -> list[str]:
        """Supporting titles the question does not name: they must be found by reading."""
        return [t for t in self.support_titles() if t not in self.question]

    def first_queries(self) -> list[str]:
        """Queries planned before anything is retrieved."""
        raise NotImplementedError

    def follow_up(self) -> str | None:
        """A query built from retrieved text once the plan is spent (None to stop)."""
        return None

    def next_query(self) -> str | None:
        """The next planned query, then follow-ups, skipping what was already asked."""
        while self.plan:
            query = self.plan.pop(0)
            if query not in self.queries:
                return query
        return self.follow_up()

    def final_answer(self) -> str:
        """The gold answer if all evidence was retrieved, else ``unknown``."""
        needed = set(self.support_titles())
        if self.gold is None or not needed or not needed <= self.titles_seen():
            return "unknown"
        return self.gold.answers[0]

    def _next_bridge(self, build: str) -> str | None:
        seen_text = " ".join(text for _, text in self.docs)
        for title in self.bridge_titles():
            query = build.format(title=title, noun=self._answer_noun())
            if title in seen_text and title not in self.titles_seen() and query not in self.queries:
                return query
        return None

    def _answer_noun(self) -> str:
        names = " ".join(self.named_titles()).lower().split()
        words = [w for w in keywords(self.question) if w.lower() not in names]
        return words[0] if words else ""


class VerbatimDemonstrator(Demonstrator):
    """Searches the question exactly as asked."""

    strategy = "verbatim"

    def first_queries(self) -> list[str]:
        """The question itself."""
        return [self.question]


class EntityDemonstrator(Demonstrator):
    """Looks up each entity the question names, by name alone."""

    strategy = "entity"

    def first_queries(self) -> list[str]:
        """One query per named entity."""
        return self.named_titles()


class KeywordDemonstrator(Demonstrator):
    """Searches each named entity with the question's relation word (e.g. ``X born``)."""

    strategy = "keyword"

    def first_queries(self) -> list[str]:
        """Entity name plus the last non-name content word of the question."""
        named = self.named_titles()
        name_words = " ".join(named).lower().split()
        others = [w for w in keywords(self.question) if w.lower() not in name_words]
        relation = others[-1] if others else ""
        return [f"{title} {relation}".strip() for title in named]


class ReformulationDemonstrator(Demonstrator):
    """Rephrases the question's relation in new words (``X hometown town``)."""

    strategy = "reformulation"

    def first_queries(self) -> list[str]:
        """Entity name plus paraphrases of the question's relation words."""
        named = self.named_titles()
        name_words = " ".join(named).lower().split()
        words = [w.lower() for w in keywords(self.question) if w.lower() not in name_words]
        paraphrase = " ".join(dict.fromkeys(PARAPHRASES[w] for w in words if w in PARAPHRASES))
        return [f"{title} {paraphrase}".strip() for title in named]


class DecompositionDemonstrator(Demonstrator):
    """Hop by hop: looks up the named entities, then each bridge entity as it is found."""

    strategy = "decomposition"

    def first_queries(self) -> list[str]:
        """The named entities."""
        return self.named_titles()

    def follow_up(self) -> str | None:
        """The bridge entity's name once it appears in retrieved text."""
        return self._next_bridge("{title}")


class BridgeDemonstrator(Demonstrator):
    """Searches the question, then builds a bridge query from the retrieved text."""

    strategy = "bridge"

    def first_queries(self) -> list[str]:
        """The question itself."""
        return [self.question]

    def follow_up(self) -> str | None:
        """The bridge entity found in the results plus the question's answer noun."""
        return self._next_bridge("{title} {noun}")


DEMONSTRATORS: dict[str, type[Demonstrator]] = {
    cls.strategy: cls
    for cls in (
        VerbatimDemonstrator,
        EntityDemonstrator,
        KeywordDemonstrator,
        ReformulationDemonstrator,
        DecompositionDemonstrator,
        BridgeDemonstrator,
    )
}
