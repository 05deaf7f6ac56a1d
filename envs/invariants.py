"""What every step of a ``SearchEnv`` episode must keep, whatever the agent wrote.

One statement of the invariants for the property tests (``tests/reliability``) and the fuzz
benchmark (``benchmarks/fuzz_env.py``), plus the pieces both build hostile turns from.
"""

from __future__ import annotations

import math
from typing import Any

from envs.protocol import parse_action
from envs.search_env import MAX_ACTION_CHARS, SearchEnv, StepResult

#: Protocol tags and near misses that agent turns are assembled from.
TAGS = (
    "<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>",
    "<information>", "</information>", "<search >", "</ search>", "<Search>", "<", ">", "</",
)

#: Characters that break naive text handling: NUL and controls, lone surrogates, bidirectional
#: overrides, right-to-left letters, combining marks, zero-width characters, unicode line
#: separators (``str.split`` splits on them) and astral-plane characters.
ODD_CHARACTERS = (
    "\x00", "\x1b", "\x7f", "\r", "\t", "\x0b", "\x1c", "\x85", "\u2028", "\u3000",
    "\ud800", "\udfff", "\udc80", "\u202e", "\u202d", "\u200f", "\u2067", "\u05d0", "\u0627",
    "\u0301", "\u200b", "\u200d", "\ufeff", "\ufffd", "\uffff", "\U0001f600", "\U0010ffff",
)

#: The names ``step_violations`` reports.
VIOLATIONS = (
    "observation_outside_space",
    "wrong_invalid_flag",
    "wrong_truncation_flag",
    "reward_not_finite",
    "reward_out_of_range",
    "turn_budget_exceeded",
)


def step_violations(env: SearchEnv, action: Any, result: StepResult) -> list[str]:
    """The invariants (``VIOLATIONS``) that one step of a running episode broke.

    Args:
        env: The environment after the step.
        action: The action given to ``step``.
        result: What ``step`` returned.

    Returns:
        The names of the broken invariants, empty when the step kept them all. The expected
        action type is recomputed with ``parse_action`` on the part of the turn the environment
        reads (its first ``MAX_ACTION_CHARS`` characters), independently of ``env.parse``.
    """
    obs, reward, terminated, truncated, info = result
    broken = []
    if not env.observation_space.contains(obs):
        broken.append("observation_outside_space")
    read = action[:MAX_ACTION_CHARS] if isinstance(action, str) else action
    expected = parse_action(read).kind
    if info["action_type"] != expected or info["invalid_action"] != (expected == "invalid"):
        broken.append("wrong_invalid_flag")
    if info["action_truncated"] != (isinstance(action, str) and len(action) > MAX_ACTION_CHARS):
        broken.append("wrong_truncation_flag")
    if not isinstance(reward, float) or not math.isfinite(reward):
        broken.append("reward_not_finite")
    elif not env.reward_range[0] <= reward <= env.reward_range[1]:
        broken.append("reward_out_of_range")
    if info["turn"] > env.max_turns or (
        info["turn"] == env.max_turns and not (terminated or truncated)
    ):
        broken.append("turn_budget_exceeded")
    return broken
