"""Agents by name: ``demo_<strategy>``, ``base_<name>``, or ``lm:<checkpoint dir>``."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

from agents.rollout import BatchPolicy, ScriptedPolicy
from agents.scripted.baselines import BASELINES, RandomBaseline
from agents.scripted.demonstrators import DEMONSTRATORS
from corpora import Corpus
from corpora.registry import unknown_name_error

DEMONSTRATOR_NAMES = [f"demo_{s}" for s in DEMONSTRATORS]
BASELINE_NAMES = list(BASELINES)


def available_agents() -> list[str]:
    """Names of the scripted agents (LM checkpoints are named ``lm:<path>``)."""
    return DEMONSTRATOR_NAMES + BASELINE_NAMES


def make_policy(name: str, corpus: Corpus, seed: int = 0, **lm_options: Any) -> BatchPolicy:
    """Build the batch policy for an agent name.

    Demonstrators get the corpus (they plan with gold metadata); baselines get nothing but a
    seed; ``lm:<path>`` loads a saved model and tokenizer (``lm:tiny`` is the untrained default).
    """
    if name.startswith("demo_") and name[5:] in DEMONSTRATORS:
        return ScriptedPolicy(partial(DEMONSTRATORS[name[5:]], corpus))
    if name == RandomBaseline.name:
        # One agent per batch slot, each with its own stream, so parallel samples differ.
        seeds = itertools.count(seed * 100_003)
        return ScriptedPolicy(lambda: RandomBaseline(seed=next(seeds)))
    if name in BASELINES:
        return ScriptedPolicy(BASELINES[name])
    if name.startswith("lm:"):
        from agents.lm import LMPolicy, load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(name[3:], corpus=corpus, seed=seed)
        return LMPolicy(model, tokenizer, name=name, seed=seed, **lm_options)
    raise unknown_name_error("agent", name, available_agents() + ["lm:<checkpoint dir>"])
