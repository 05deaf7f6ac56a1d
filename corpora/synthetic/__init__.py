"""The embedded default corpus: a deterministic, seeded synthetic multi-hop world."""

from __future__ import annotations

import random

from corpora.records import Corpus
from corpora.synthetic.documents import world_documents
from corpora.synthetic.questions import HOLDOUTS, QTYPES, world_questions
from corpora.synthetic.world import World, build_world

#: Named sizes: (countries, cities, people, companies, train, dev, test questions).
SIZES: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "tiny": (4, 10, 40, 16, 120, 30, 30),
    "small": (8, 24, 150, 50, 1200, 150, 150),
    "default": (12, 40, 300, 100, 2400, 150, 300),
    "large": (40, 200, 3000, 1000, 20000, 1000, 2000),
}
SPLIT_FRACTIONS = {"train": 0.7, "dev": 0.1, "test": 0.2}


def load_synthetic(
    size: str = "default", seed: int = 0, twin_fraction: float = 0.15, holdout: str = "entity"
) -> Corpus:
    """Generate the synthetic world.

    Args:
        size: One of ``tiny``, ``small``, ``default``, ``large`` (see ``SIZES``).
        seed: World seed; the same seed always gives the same documents and questions.
        twin_fraction: Share of people and companies that get a near-duplicate namesake.
        holdout: ``entity`` (dev and test ask about entities no training question asks about)
            or ``question`` (only the questions are new); see ``world_questions``.

    Returns:
        A corpus of one document per entity and questions of types ``attribute`` (1 hop),
        ``bridge`` (2 hops) and ``comparison`` (2 documents), split as ``holdout`` says.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; expected one of {', '.join(SIZES)}")
    if not 0.0 <= twin_fraction < 1.0:
        raise ValueError(f"expected 0 <= twin_fraction < 1, got {twin_fraction}")
    n_countries, n_cities, n_people, n_companies, n_train, n_dev, n_test = SIZES[size]
    rng = random.Random(seed)
    world = build_world(rng, n_countries, n_cities, n_people, n_companies, twin_fraction)
    documents = world_documents(world, rng)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    questions = world_questions(world, rng, sizes, SPLIT_FRACTIONS, holdout)
    suffix = "" if holdout == "entity" else f"-{holdout}"
    return Corpus(f"synthetic-{size}-{seed}{suffix}", tuple(documents), tuple(questions))


__all__ = ["HOLDOUTS", "QTYPES", "World", "build_world", "load_synthetic"]
