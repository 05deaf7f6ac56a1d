"""``rl.use_vllm``: refused at config time without vLLM; ``VLLMTurns`` against TRL's engine API.

vLLM itself needs a CUDA GPU, so these tests drive ``VLLMTurns`` with an engine that has the
interface of TRL's ``VLLMGeneration`` and scripted completions.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess

import pytest

import corpora
from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.lm.vllm_turns import STOP_TEXTS, VLLMTurns
from agents.training.config import TrainConfig
from agents.training.rl_config import RLPhaseConfig

HAS_VLLM = importlib.util.find_spec("vllm") is not None


class ScriptedEngine:
    """TRL ``VLLMGeneration``'s ``generate`` API, answering each prompt with a fixed list."""

    def __init__(self, completions: list[list[int]]) -> None:
        self.completions, self.calls = completions, []
        self.max_completion_length, self.generation_kwargs = 16, {"seed": 1}

    def generate(self, prompts, images, num_generations):
        self.calls.append((prompts, self.max_completion_length, dict(self.generation_kwargs)))
        rows = self.completions[: len(prompts)]
        logprobs = [[[-0.5 - n] for n in range(len(row))] for row in rows]
        return prompts, rows, logprobs, None


def test_turns_are_cut_at_the_budget_and_after_the_first_stop_id() -> None:
    engine = ScriptedEngine([[5, 6, 7, 8], [9, 3, 10, 11], [12, 13]])
    turns = VLLMTurns(engine)
    out = turns(None, [[1, 2], [], [1], [4]], [3, 5, 4, 0], pad_id=0, stop_ids={3})
    # Row 1 is empty and row 3 has no budget: only rows 0 and 2 reach the engine.
    prompts, max_tokens, kwargs = engine.calls[0]
    assert prompts == [[1, 2], [1]] and max_tokens == 4
    assert kwargs["stop"] == list(STOP_TEXTS) and kwargs["seed"] == 1  # engine's own kept
    assert out[0].ids == [5, 6, 7] and out[0].logprobs == [-0.5, -1.5, -2.5]
    assert out[2].ids == [9, 3]  # cut after the stop id
    assert out[1].ids == out[3].ids == []
    assert all(math.isnan(e) for e in out[0].entropies + out[2].entropies)


def test_a_policy_plays_its_turns_from_the_engine() -> None:
    corpus = corpora.load("synthetic", size="tiny")
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
    policy = LMPolicy(model, tokenizer, max_new_tokens=8, seed=0)
    text = "<search>tiny</search>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    policy.generate_turns = VLLMTurns(ScriptedEngine([ids + [7, 7]]))
    policy.begin(0, "q", "q1", "Question: q")
    assert policy.act([0], ["Question: q"]) == [text]
    record = policy.token_record(0)
    assert record.completion_ids == ids and len(record.logprobs) == len(ids)
    assert sum(record.query_mask) > 0  # the tag masks come from the engine's tokens


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: the switch is allowed")
def test_use_vllm_without_vllm_is_refused_at_config_time(tmp_path) -> None:
    with pytest.raises(ValueError, match="pip install vllm"):
        RLPhaseConfig(use_vllm=True)
    run = subprocess.run(["forksearch-train", "model=hf_local", "model.name=/nowhere",
                          "rl.use_vllm=true", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120)
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and len(lines) == 1 and "pip install vllm" in lines[0]
    assert not (tmp_path / "config.json").exists()


def test_vllm_modes_and_models_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="vllm_mode must be 'colocate' or 'server'"):
        RLPhaseConfig(vllm_mode="remote")
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # as if vLLM were installed
                        lambda name, *a: object() if name == "vllm" else found(name, *a))
    rl = RLPhaseConfig(use_vllm=True)
    with pytest.raises(ValueError, match="model=hf_local"):
        TrainConfig(rl=rl)
