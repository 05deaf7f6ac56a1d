"""The demonstration pool: successful demonstrator episodes, strategy-balanced sampling, replay.

Every demonstration is a :class:`~agents.trajectory.Trajectory` whose ``strategy`` names its
group: a demonstrator strategy (``entity``, ``bridge``...) or ``replay_<label>`` for a successful
RL episode replayed because the RL policy under-used the strategy label ``<label>``.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import cast

from agents.base import Agent
from agents.diversity import strategy_distribution
from agents.rollout import ScriptedPolicy, rollout
from agents.scripted.demonstrators import DEMONSTRATORS
from agents.strategies import STOPWORDS
from agents.trajectory import TokenRecord, Trajectory, load_jsonl, save_jsonl
from corpora import Corpus
from corpora.synthetic.names import word
from envs.batch import SearchEnvBatch

REPLAY_PREFIX = "replay_"
#: Labels never worth replaying: re-asking an earlier query is not a strategy.
UNREPLAYABLE_LABELS = frozenset({"repeat"})


def without_tokens(t: Trajectory) -> Trajectory:
    """Copy ``t`` without its token record (demonstrations are re-tokenized from their text)."""
    return replace(t, tokens=TokenRecord())


def _key(t: Trajectory) -> tuple[str, tuple[str, ...]]:
    return t.qid, tuple(t.actions)


@dataclass
class DemoPool:
    """Demonstrations grouped by strategy.

    Args:
        demos: The demonstrations; each one's ``strategy`` names its group.
    """

    demos: list[Trajectory] = field(default_factory=list)

    def groups(self) -> dict[str, list[Trajectory]]:
        """Demonstrations per strategy, strategies sorted by name."""
        out: dict[str, list[Trajectory]] = {}
        for t in sorted(self.demos, key=lambda t: t.strategy):
            out.setdefault(t.strategy, []).append(t)
        return out

    def counts(self) -> dict[str, int]:
        """Count the demonstrations of each strategy."""
        return {s: len(ts) for s, ts in self.groups().items()}

    def balanced_sample(self, n: int, seed: int) -> list[Trajectory]:
        """``n`` demonstrations in strategy-balanced order.

        The order is a sequence of rounds; each round holds one demonstration of every strategy
        in a random order, so any ``b`` consecutive items hold ``b / S`` (+-1) of each of the
        ``S`` strategies, whatever their sizes. Within a strategy, demonstrations are drawn
        without replacement, reshuffled each time the strategy is exhausted.

        Args:
            n: Number of demonstrations to draw.
            seed: Seed of the order.

        Returns:
            The demonstrations, in training order.
        """
        groups = self.groups()
        if not groups:
            raise ValueError("the demonstration pool is empty: no demonstrator solved a question")
        rng = random.Random(seed)
        queues: dict[str, list[Trajectory]] = {s: [] for s in groups}
        out: list[Trajectory] = []
        while len(out) < n:
            order = list(groups)
            rng.shuffle(order)
            for strategy in order:
                if not queues[strategy]:
                    queues[strategy] = rng.sample(groups[strategy], len(groups[strategy]))
                out.append(queues[strategy].pop())
        return out[:n]

    def add(self, trajectories: Iterable[Trajectory]) -> int:
        """Add demonstrations not already in the pool (same question and actions); count added."""
        seen = {_key(t) for t in self.demos}
        added = 0
        for t in trajectories:
            if _key(t) not in seen:
                seen.add(_key(t))
                self.demos.append(t)
                added += 1
        return added

    def label_distribution(self) -> dict[str, float]:
        """Share of each query-strategy label over all demonstration queries."""
        return strategy_distribution(label for t in self.demos for label in t.strategy_labels)

    def save(self, path: Path) -> Path:
        """Write the pool as trajectory JSONL."""
        return save_jsonl(self.demos, path)

    @classmethod
    def load(cls, path: Path) -> DemoPool:
        """Read a pool written by :meth:`save`."""
        return cls(load_jsonl(path))


def build_pool(
    batch: SearchEnvBatch, qids: Sequence[str], strategies: Sequence[str], max_searches: int,
    progress: bool = False,
) -> DemoPool:
    """Run each demonstrator on the questions and keep its successful episodes.

    Args:
        batch: Environments over the split the questions come from (they share one retriever).
        qids: Question ids to demonstrate.
        strategies: Demonstrator strategies (keys of ``DEMONSTRATORS``).
        max_searches: Search budget of each demonstrator.
        progress: Show a progress bar per demonstrator.

    Returns:
        The pool of successful, valid episodes, each labelled with its demonstrator's strategy.
    """
    corpus = batch.envs[0].corpus
    pool = DemoPool()
    for strategy in strategies:
        # A demonstrator is an Agent; its ``name`` is a read-only property, which mypy's
        # protocol check does not accept for the protocol's plain attribute.
        make_agent = cast(Callable[[], Agent],
                          partial(DEMONSTRATORS[strategy], corpus, max_searches=max_searches))
        episodes = rollout(ScriptedPolicy(make_agent), batch, qids, progress=progress,
                           strategy=strategy)
        pool.add(t for t in episodes if t.success and t.invalid_actions == 0)
    return pool


@dataclass
class ReplayBuffer:
    """Successful RL episodes and the strategy labels of all RL queries since the last refresh.

    Args:
        capacity: Most candidate episodes kept (the most recent ones).
    """

    capacity: int = 512
    label_counts: dict[str, int] = field(default_factory=dict)
    candidates: list[Trajectory] = field(default_factory=list)

    def observe(self, trajectories: Iterable[Trajectory]) -> None:
        """Count the labels of fresh RL episodes and keep the clean successful ones."""
        counts = Counter(self.label_counts)
        for t in trajectories:
            counts.update(t.strategy_labels)
            if t.success and t.invalid_actions == 0 and t.queries:
                self.candidates.append(without_tokens(t))
        self.label_counts = dict(counts)
        self.candidates = self.candidates[-self.capacity:]

    def select(self, pool: DemoPool, rare_ratio: float, max_items: int,
               seed: int) -> list[Trajectory]:
        """Pick successful episodes that use a strategy label the RL policy under-uses.

        A label is under-used when its share of RL queries is below ``rare_ratio`` times its
        share of demonstration queries. An episode qualifies when one of its labels is
        under-used; it joins the pool as ``replay_<label>`` of its rarest such label.

        Args:
            pool: The current demonstration pool (the reference distribution).
            rare_ratio: Under-use ratio.
            max_items: Most episodes returned.
            seed: Seed of the choice among qualifying episodes.

        Returns:
            Copies of the chosen episodes, relabelled with their replay group.
        """
        rl_share = strategy_distribution(
            label for label, n in self.label_counts.items() for _ in range(n))
        demo_share = pool.label_distribution()
        rare = {label: rl_share[label] for label, share in demo_share.items()
                if share > 0 and label not in UNREPLAYABLE_LABELS
                and rl_share[label] < rare_ratio * share}
        chosen = [t for t in self.candidates if rare.keys() & set(t.strategy_labels)]
        random.Random(seed).shuffle(chosen)
        out = []
        for t in chosen[:max_items]:
            label = min((lab for lab in t.strategy_labels if lab in rare),
                        key=lambda lab: rare[lab])
            out.append(replace(t, strategy=f"{REPLAY_PREFIX}{label}"))
        return out

    def clear(self) -> None:
        """Forget everything (after a refresh consumed the buffer)."""
        self.label_counts, self.candidates = {}, []


class EntityRenamer:
    """Gives the entities of a demonstration fresh invented names, consistently.

    A small world names few entities, so a tiny model can memorise every name it is trained on
    and never learn to copy names from the question and the retrieved text, which is what it
    must do on held-out questions. Renaming forces the copy: every word of an entity name (a word
    of some document title that is not a stopword and not a generic title word such as
    ``Systems``) is replaced, wherever it occurs in the question, the actions and the
    observations, by a fresh word of about as many syllables.

    Args:
        corpus: The corpus whose document titles define the entity-name words.
        generic_count: A title word used by at least this many titles is generic (kept).
    """

    def __init__(self, corpus: Corpus, generic_count: int = 5) -> None:
        counts = Counter(w for d in corpus.documents for w in d.title.split())
        self.name_words = {w for w, n in counts.items()
                           if n < generic_count and w.lower() not in STOPWORDS and w.isalpha()}

    def augment(self, demos: Sequence[Trajectory], share: float, seed: int) -> list[Trajectory]:
        """Rename the entities of a random ``share`` of ``demos`` (fresh names for each one)."""
        rng = random.Random(seed)
        return [self(d, rng) if rng.random() < share else d for d in demos]

    def __call__(self, demo: Trajectory, rng: random.Random) -> Trajectory:
        """Return a copy of ``demo`` with its entity-name words renamed."""
        texts = [demo.question, *demo.actions, *demo.observations]
        present = sorted({w for text in texts for w in re.findall(r"[A-Za-z]+", text)}
                         & self.name_words)
        if not present:
            return demo
        mapping = {w: word(rng, max(1, min(3, round(len(w) / 3)))) for w in present}
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, present)) + r")\b")

        def rename(text: str) -> str:
            return pattern.sub(lambda m: mapping[m.group(1)], text)

        return replace(demo, question=rename(demo.question),
                       actions=[rename(a) for a in demo.actions],
                       observations=[rename(o) for o in demo.observations],
                       queries=[rename(q) for q in demo.queries],
                       answer=None if demo.answer is None else rename(demo.answer))
