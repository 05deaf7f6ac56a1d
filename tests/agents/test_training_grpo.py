"""RL phase: rollout_func fields, the _compute_loss override, and KL-Cov's activity."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

import corpora
from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.training import grpo
from agents.training.config import EntropyRegulation, RLPhaseConfig, TrainConfig
from agents.training.grpo import SearchGRPOTrainer, grpo_config, question_dataset, run_grpo
from agents.training.losses import ClipCovConfig, KLCovConfig, planning_boost, policy_loss
from agents.training.metrics import MetricsLog
from agents.training.monitor import PhaseInfo, PhaseMonitor
from agents.training.trainer_args import common_args
from envs.batch import SearchEnvBatch
from envs.protocol import render_prompt
from envs.search_env import SearchEnv


@pytest.fixture(scope="module")
def world():
    corpus = corpora.load("synthetic", size="tiny")
    retriever = corpora.make_retriever("bm25", corpus)
    batch = SearchEnvBatch([SearchEnv(corpus, "train", retriever) for _ in range(8)])
    return corpus, batch


def _monitor(tmp_path: Path, steps: int = 1) -> PhaseMonitor:
    return PhaseMonitor(PhaseInfo("rl", 1, 0, steps), MetricsLog(tmp_path / "metrics.jsonl"),
                        evaluate=lambda m: {}, commit=lambda *a: None, progress=False)


def _trainer(world, tmp_path: Path, regulation: EntropyRegulation,
             rl: RLPhaseConfig | None = None, steps: int = 1) -> SearchGRPOTrainer:
    corpus, batch = world
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
    rl = rl or RLPhaseConfig(questions_per_step=2, num_generations=2)
    policy = LMPolicy(model, tokenizer, max_new_tokens=16, seed=0)
    args = grpo_config(common_args(tmp_path, steps, 100, [], "cpu", 0, False), rl, regulation,
                       policy.max_length)
    dataset, qid_by_prompt = question_dataset(corpus.split("train")[:8])
    trainer = SearchGRPOTrainer(monitor=_monitor(tmp_path, steps), policy=policy,
                                env_batch=batch, qid_by_prompt=qid_by_prompt,
                                regulation=regulation, model=model, args=args,
                                train_dataset=dataset, processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); loss calls read it
    return trainer


def test_rollout_func_returns_one_episode_per_prompt(world, tmp_path: Path) -> None:
    trainer = _trainer(world, tmp_path, EntropyRegulation())
    questions = world[0].split("train")[:3]
    prompts = [q.question for q in questions for _ in range(2)]  # as TRL repeats them
    out = trainer.play(prompts)
    assert {len(v) for v in out.values()} == {6}
    tok = trainer.processing_class
    for i, q in enumerate(questions[i // 2] for i in range(6)):
        assert out["prompt_ids"][i] == tok(render_prompt(q.question))["input_ids"]
        ids, env = out["completion_ids"][i], out["env_mask"][i]
        assert len(ids) == len(env) == len(out["logprobs"][i]) == len(out["query_mask"][i])
        observed = tok.decode([t for t, m in zip(ids, env) if m == 0])
        if observed:  # environment tokens are observations: results or feedback
            assert "<information>" in observed or "Invalid action" in observed
        assert all(e == 1 for e, q_ in zip(env, out["query_mask"][i]) if q_)
    assert all(isinstance(r, float) for r in out["reward"])


def _inputs(trainer: SearchGRPOTrainer, info: list[int], tool_mask_all: bool = False
            ) -> dict[str, Any]:
    """A hand-built batch of 2 episodes whose completions end with an <information> block."""
    tok = trainer.processing_class
    prompt = tok(render_prompt("Where was Ada born?"))["input_ids"]
    action = tok("<search>Ada</search>", add_special_tokens=False)["input_ids"]
    completion = action + info
    env = [1] * len(action) + [0] * len(info)
    query = [0] + [1] * (len(action) - 2) + [0] + [0] * len(info)
    n = 2
    return {
        "prompt_ids": torch.tensor([prompt] * n), "prompt_mask": torch.ones(n, len(prompt)),
        "completion_ids": torch.tensor([completion] * n),
        "completion_mask": torch.ones(n, len(completion), dtype=torch.long),
        "tool_mask": torch.tensor([[1] * len(completion) if tool_mask_all else env] * n),
        "query_mask": torch.tensor([query] * n),
        "advantages": torch.tensor([1.0, -1.0]),
        "num_items_in_batch": torch.tensor(float(n * sum(env))),
    }


def _grads(trainer: SearchGRPOTrainer, inputs: dict[str, Any]) -> list[torch.Tensor]:
    model = trainer.model
    model.train()
    model.zero_grad()
    trainer._compute_loss(model, inputs).backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_information_tokens_carry_no_rl_loss(world, tmp_path: Path) -> None:
    reg = EntropyRegulation(kl_cov=True, kl_cov_ratio=0.5, clip_cov=True, clip_cov_ratio=1.0,
                            planning_boost=0.2, entropy_coef=0.01, top_entropy_quantile=0.5)
    trainer = _trainer(world, tmp_path, reg)
    tok = trainer.processing_class
    info_a = tok("\n<information>Doc 1 (Title: Ada) Ada was born in Bamairsi.</information>\n",
                 add_special_tokens=False)["input_ids"]
    info_b = [(t * 5 + 1) % len(tok) for t in info_a]
    same = [torch.equal(a, b) for a, b in zip(_grads(trainer, _inputs(trainer, info_a)),
                                              _grads(trainer, _inputs(trainer, info_b)))]
    assert same and all(same)
    # Control: if environment tokens were trained on, the same change would move the gradient.
    leaky_a = _grads(trainer, _inputs(trainer, info_a, tool_mask_all=True))
    leaky_b = _grads(trainer, _inputs(trainer, info_b, tool_mask_all=True))
    assert not all(torch.equal(a, b) for a, b in zip(leaky_a, leaky_b))


def test_compute_loss_applies_boost_and_cov_terms_to_trl_loss(world, tmp_path: Path) -> None:
    """TRL loss + correction equals ``policy_loss`` with Clip-Cov, KL-Cov and the boost."""
    reg = EntropyRegulation(kl_cov=True, kl_cov_ratio=0.3, kl_cov_beta=2.0, clip_cov=True,
                            clip_cov_ratio=1.0, clip_cov_lb=-1e9, clip_cov_ub=1e9,
                            planning_boost=0.5)
    trainer = _trainer(world, tmp_path, reg)
    tok = trainer.processing_class
    inputs = _inputs(trainer, tok("\n<information>x</information>\n",
                                  add_special_tokens=False)["input_ids"])
    model = trainer.model
    model.train()
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    width = inputs["completion_ids"].size(1)
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, width)
    generator = torch.Generator().manual_seed(0)
    inputs["old_per_token_logps"] = logp + 0.3 * torch.randn(logp.shape, generator=generator)
    trainer.cov_generator.manual_seed(0)
    loss = trainer._compute_loss(model, inputs)
    valid = inputs["completion_mask"] * inputs["tool_mask"]
    advantages = planning_boost(inputs["advantages"], inputs["query_mask"], 0.5)
    expected, stats = policy_loss(
        logp, inputs["old_per_token_logps"], advantages, valid, epsilon_low=0.2,
        epsilon_high=0.28, clip_cov=ClipCovConfig(1.0, -1e9, 1e9), kl_cov=KLCovConfig(0.3, 2.0),
        generator=torch.Generator().manual_seed(0), normalizer=valid.sum())
    assert stats["kl_cov_fraction"] > 0 and stats["clip_cov_fraction"] > 0
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    logged = trainer._metrics["train"]
    assert logged["kl_cov_fraction"][-1] == stats["kl_cov_fraction"]
    assert logged["kl_cov_penalty"][-1] == pytest.approx(stats["kl_cov_penalty"])


def test_kl_cov_is_active_with_the_default_rl_settings(world, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Default settings (num_iterations=2): the second pass is off-policy, so KL-Cov bites."""
    defaults = TrainConfig()
    play = SearchGRPOTrainer.play
    rng = random.Random(0)

    def varied_rewards(self: SearchGRPOTrainer, prompts: list[str]) -> dict[str, list[Any]]:
        out = play(self, prompts)  # an untrained model scores 0; vary rewards for advantages
        out["reward"] = [float(rng.random() < 0.5) for _ in prompts]
        return out

    monkeypatch.setattr(SearchGRPOTrainer, "play", varied_rewards)
    corpus, batch = world
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
    rl = RLPhaseConfig(questions_per_step=2, num_generations=4, learning_rate=1e-3)
    assert rl.num_iterations == defaults.rl.num_iterations == 2
    policy = LMPolicy(model, tokenizer, max_new_tokens=16, seed=0)
    monitor = _monitor(tmp_path, steps=2)
    args = grpo_config(common_args(tmp_path, 2, 100, [], "cpu", 0, False), rl,
                       defaults.entropy, policy.max_length)
    run_grpo(model, tokenizer, policy, batch, corpus.split("train")[:8], args, defaults.entropy,
             monitor, None)
    rows = monitor.metrics.rows()
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["kl_cov_fraction"] > 0 for r in rows)
    assert rows[0]["kl_cov_penalty"] == pytest.approx(0.0, abs=1e-5)  # on-policy pass
    assert rows[1]["kl_cov_penalty"] > 1e-4  # reused rollouts, updated weights
    assert grpo.env_reward([], [], reward=[1, 0]) == [1.0, 0.0]
