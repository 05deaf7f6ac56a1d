"""The Gymnasium search environment; importing this package registers ``forksearch/Search-v0``."""

from gymnasium.envs.registration import register, registry

from envs.protocol import (
    Action,
    parse_action,
    parse_information,
    render_answer,
    render_information,
    render_prompt,
    render_search,
)
from envs.rewards import exact_match, normalize_answer, token_f1

ENV_ID = "forksearch/Search-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.search_env:SearchEnv")

__all__ = [
    "ENV_ID",
    "Action",
    "exact_match",
    "normalize_answer",
    "parse_action",
    "parse_information",
    "render_prompt",
    "render_answer",
    "render_information",
    "render_search",
    "token_f1",
]
