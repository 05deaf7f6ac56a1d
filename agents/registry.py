"""Agents by name, as one table of ``"module:Class"`` entry points (``corpora.registry``).

``demo_<strategy>`` are the demonstrators (they plan with gold metadata, so they get the corpus),
``base_<name>`` the honest baselines, and ``lm:<checkpoint dir>`` a saved model (``lm:tiny`` is
the untrained default), built by the composition root like the policy that was trained.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

from agents.rollout import BatchPolicy, ScriptedPolicy
from agents.scripted.baselines import RandomBaseline
from agents.scripted.demonstrators import Demonstrator
from agents.training.config import ModelConfig
from corpora import Corpus
from corpora.registry import Registry

AGENTS = Registry("agent", {
    "demo_verbatim": "agents.scripted.demonstrators:VerbatimDemonstrator",
    "demo_entity": "agents.scripted.demonstrators:EntityDemonstrator",
    "demo_keyword": "agents.scripted.demonstrators:KeywordDemonstrator",
    "demo_reformulation": "agents.scripted.demonstrators:ReformulationDemonstrator",
    "demo_decomposition": "agents.scripted.demonstrators:DecompositionDemonstrator",
    "demo_bridge": "agents.scripted.demonstrators:BridgeDemonstrator",
    "base_verbatim": "agents.scripted.baselines:VerbatimBaseline",
    "base_keyword": "agents.scripted.baselines:KeywordBaseline",
    "base_entity_bridge": "agents.scripted.baselines:EntityBridgeBaseline",
    "base_random": "agents.scripted.baselines:RandomBaseline",
})
LM_PREFIX = "lm:"


def available_agents() -> list[str]:
    """Names of the scripted agents (LM checkpoints are named ``lm:<path>``)."""
    return AGENTS.names()


#: The kinds of agent a bench table keeps apart, in its order.
AGENT_GROUPS = ("demonstrators", "baselines", "policies")


def agent_group(name: str) -> str:
    """Which of ``AGENT_GROUPS`` an agent belongs to.

    ``demonstrators`` plan from the gold supporting documents and answer with the gold answer
    once all of them were retrieved (their EM measures evidence coverage, not QA skill);
    ``baselines`` are scripted agents that see only what a policy sees; ``policies`` are
    ``lm:`` models.
    """
    if name.startswith(LM_PREFIX):
        return "policies"
    cls = AGENTS.resolve(name)
    planned = isinstance(cls, type) and issubclass(cls, Demonstrator)
    return "demonstrators" if planned else "baselines"


def make_agent_policy(name: str, corpus: Corpus, seed: int = 0,
                      model: ModelConfig | None = None, **sampling: Any) -> BatchPolicy:
    """Build the batch policy for an agent name.

    Args:
        name: A registered agent or ``lm:<checkpoint dir>``.
        corpus: The corpus (demonstrators plan with it; ``lm:tiny`` trains its tokenizer on it).
        seed: Seed of the agent's sampling.
        model: Prompt rendering and lengths of an ``lm:`` agent (default ``ModelConfig()``).
        **sampling: ``temperature`` / ``top_p`` of an ``lm:`` agent.
    """
    if name.startswith(LM_PREFIX):
        from agents.build import load_model, make_policy

        model = model or ModelConfig()
        lm, tokenizer = load_model(name[len(LM_PREFIX):], model, corpus, seed=seed)
        return make_policy(lm, tokenizer, model, seed=seed, name=name, **sampling)
    cls: Any = AGENTS.resolve(name)
    if isinstance(cls, type) and issubclass(cls, Demonstrator):  # plans with gold metadata
        return ScriptedPolicy(partial(cls, corpus))
    if isinstance(cls, type) and issubclass(cls, RandomBaseline):
        # One agent per batch slot, each with its own stream, so parallel samples differ.
        seeds = itertools.count(seed * 100_003)
        return ScriptedPolicy(lambda: cls(seed=next(seeds)))
    return ScriptedPolicy(cls)  # any other agent class or factory, called once per batch slot
