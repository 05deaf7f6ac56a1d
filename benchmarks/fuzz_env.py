"""Fuzz ``SearchEnv`` with seeded hostile turns and count what breaks.

Turns are assembled from protocol tags and near misses, corpus words, odd characters (NUL,
lone surrogates, right-to-left overrides, ...) and random code points; some are well formed,
some are repeated up to ~100 KB, some are not strings at all. Each one is stepped through
``SearchEnv`` episodes (reset when one ends) and checked with ``envs.invariants``. Prints one
JSON object: counts of actions, exceptions and broken invariants, and step times (``env.step``
alone). The acceptance: no exceptions, no broken invariants, slowest step under 50 ms.

    python benchmarks/fuzz_env.py --actions 100000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import corpora  # noqa: E402
from envs.invariants import ODD_CHARACTERS, TAGS, VIOLATIONS, step_violations  # noqa: E402
from envs.search_env import MAX_ACTION_CHARS, SearchEnv  # noqa: E402

MAX_TURN_CHARS = 100_000


class TurnGenerator:
    """Seeded hostile agent turns (plain ``random``: fast enough for 100,000 of them)."""

    def __init__(self, rng: random.Random, words: list[str]) -> None:
        self.rng, self.words = rng, words
        self.kinds: list[tuple[Callable[[], Any], int]] = [
            (self.short, 45), (self.well_formed, 30), (self.code_points, 10),
            (self.long, 10), (self.not_text, 5),
        ]

    def __call__(self) -> Any:
        makers, weights = zip(*self.kinds)
        return self.rng.choices(makers, weights)[0]()

    def fragment(self) -> str:
        pool = self.rng.choice((TAGS, ODD_CHARACTERS, self.words))
        return self.rng.choice(pool) if self.rng.random() < 0.8 else self.code_points(12)

    def short(self) -> str:
        return "".join(self.fragment() for _ in range(self.rng.randint(0, 24)))

    def well_formed(self) -> str:
        kind = self.rng.choice(("search", "answer", "think"))
        return f"{self.short()}<{kind}>{self.short()}</{kind}>{self.short()}"

    def code_points(self, most: int = 200) -> str:
        # Any code point, surrogates included.
        return "".join(chr(self.rng.randrange(0x110000)) for _ in range(self.rng.randint(0, most)))

    def long(self) -> str:
        # A lone repeated tag is the worst case for a parser that rescans from every opening.
        piece = self.short() if self.rng.random() < 0.5 else ""
        piece = piece or self.rng.choice(TAGS)
        times = self.rng.randint(MAX_ACTION_CHARS // len(piece), MAX_TURN_CHARS // len(piece) + 1)
        tail = self.well_formed() if self.rng.random() < 0.5 else ""
        return (piece * times)[:MAX_TURN_CHARS] + tail

    def not_text(self) -> Any:
        return self.rng.choice((None, 42, 3.5, b"<search>x</search>", ["<answer>x</answer>"]))


def fuzz(actions: int, seed: int, max_turns: int) -> dict[str, Any]:
    corpus = corpora.load("synthetic", size="tiny")
    env = SearchEnv(corpus, "test", "bm25", top_k=3, max_turns=max_turns, reward="f1",
                    format_penalty=0.1)
    words = sorted({w for doc in corpus.documents for w in doc.title.split()})
    turns = TurnGenerator(random.Random(seed), words)
    broken: Counter[str] = Counter({name: 0 for name in VIOLATIONS})
    kinds: Counter[str] = Counter()
    exceptions: list[str] = []
    times: list[float] = []
    longest = episodes = 0
    env.reset(seed=seed)
    for _ in range(actions):
        action = turns()
        longest = max(longest, len(action) if isinstance(action, (str, bytes, list)) else 0)
        start = time.perf_counter()
        try:
            result = env.step(action)
        except Exception as err:  # counting them is the point
            exceptions.append(f"{type(err).__name__}: {err} on {action!r:.80}")
            env.reset()
            continue
        times.append(time.perf_counter() - start)
        broken.update(step_violations(env, action, result))
        kinds[result[4]["action_type"]] += 1
        if result[2] or result[3]:
            episodes += 1
            env.reset()
    ms = sorted(t * 1e3 for t in times) or [0.0]
    return {
        "actions": actions,
        "seed": seed,
        "episodes": episodes,
        "action_types": dict(kinds),
        "longest_action_chars": longest,
        "exceptions": len(exceptions),
        "first_exceptions": exceptions[:5],
        **{name: broken[name] for name in VIOLATIONS},
        "slowest_step_ms": round(ms[-1], 3),
        "mean_step_ms": round(statistics.fmean(ms), 4),
        "p99_step_ms": round(ms[int(0.99 * (len(ms) - 1))], 3),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=100_000, help="agent turns to step")
    parser.add_argument("--seed", type=int, default=0, help="seeds the turns and the env")
    parser.add_argument("--max-turns", type=int, default=4, help="turn budget per episode")
    args = parser.parse_args()
    print(json.dumps(fuzz(args.actions, args.seed, args.max_turns)))


if __name__ == "__main__":
    main()
