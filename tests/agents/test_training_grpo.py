"""RL phase: rollout_func fields, our whole loss against TRL's, and KL-Cov's activity."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

import corpora
from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.training import grpo
from agents.training.config import EntropyRegulation, RLPhaseConfig, TrainConfig
from agents.training.grpo import SearchGRPOTrainer, grpo_config, question_dataset, run_grpo
from agents.training.losses import (
    POLICY_LOSSES,
    AdaptiveEntropyCoef,
    aggregate,
    kl_cov_select,
    planning_boost,
    token_covariance,
)
from agents.training.metrics import MetricsLog
from agents.training.monitor import PhaseInfo, PhaseMonitor
from agents.training.resume import (
    RESUME_NAME,
    EpochSeededSampler,
    load_resume_state,
    save_resume_state,
)
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


def _grads(trainer: SearchGRPOTrainer, inputs: dict[str, Any],
           compute_loss: Any = None) -> list[torch.Tensor]:
    return _loss_and_grads(trainer, inputs, compute_loss)[1]


def _loss_and_grads(trainer: SearchGRPOTrainer, inputs: dict[str, Any], compute_loss: Any = None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss (ours, or ``compute_loss``'s) and the parameter gradients it gives."""
    model = trainer.model
    model.train()
    model.zero_grad()
    loss = (compute_loss or trainer._compute_loss)(model, inputs)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _trl_loss(trainer: SearchGRPOTrainer) -> Any:
    """TRL's own ``_compute_loss``, run on our trainer."""
    return lambda model, inputs: GRPOTrainer._compute_loss(trainer, model, inputs)


def test_information_tokens_carry_no_rl_loss(world, tmp_path: Path) -> None:
    reg = EntropyRegulation(policy_loss="kl_cov", kl_cov_ratio=0.5, planning_boost=0.2,
                            entropy_coef=0.01, top_entropy_quantile=0.5)
    trainer = _trainer(world, tmp_path, reg)
    tok = trainer.processing_class
    info_a = tok("\n<information>Doc 1 (Title: Ada) Ada was born in Bamairsi.</information>\n",
                 add_special_tokens=False)["input_ids"]
    info_b = [(t * 5 + 1) % len(tok) for t in info_a]
    for name in ("kl_cov", "clip_cov"):
        trainer.regulation = replace(reg, policy_loss=name, clip_cov_ratio=1.0)
        same = [torch.equal(a, b) for a, b in zip(_grads(trainer, _inputs(trainer, info_a)),
                                                  _grads(trainer, _inputs(trainer, info_b)))]
        assert same and all(same)
    # Control: if environment tokens were trained on, the same change would move the gradient.
    leaky_a = _grads(trainer, _inputs(trainer, info_a, tool_mask_all=True))
    leaky_b = _grads(trainer, _inputs(trainer, info_b, tool_mask_all=True))
    assert not all(torch.equal(a, b) for a, b in zip(leaky_a, leaky_b))


@pytest.fixture(scope="module")
def shared(world, tmp_path_factory: pytest.TempPathFactory) -> SearchGRPOTrainer:
    """One trainer for the comparisons with TRL's loss; each test sets the levers it needs."""
    return _trainer(world, tmp_path_factory.mktemp("shared"),
                    EntropyRegulation(epsilon_high=0.28))


def _off_policy_batch(trainer: SearchGRPOTrainer, beta: float = 0.0) -> dict[str, Any]:
    """``_inputs`` with perturbed old (and reference) log-probs, so the ratio clip is active."""
    tok = trainer.processing_class
    inputs = _inputs(trainer, tok("\n<information>x</information>\n",
                                  add_special_tokens=False)["input_ids"])
    trainer.model.train()
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, inputs["completion_ids"].size(1))
    noise = torch.Generator().manual_seed(0)
    inputs["old_per_token_logps"] = logp + 0.3 * torch.randn(logp.shape, generator=noise)
    if beta:
        inputs["ref_per_token_logps"] = logp + 0.5 * torch.randn(logp.shape, generator=noise)
    return inputs


def _set_levers(trainer: SearchGRPOTrainer, loss_type: str, reg: EntropyRegulation,
                beta: float = 0.0) -> None:
    """Give our loss (``regulation``) and TRL's (its own attributes) the same settings."""
    trainer.regulation, trainer.loss_type, trainer.beta = reg, loss_type, beta
    trainer.epsilon_low, trainer.epsilon_high = reg.epsilon_low, reg.epsilon_high
    trainer.top_entropy_quantile, trainer.entropy_coef = reg.top_entropy_quantile, reg.entropy_coef
    trainer._entropy_bonus_enabled = reg.entropy_coef != 0.0
    trainer.use_adaptive_entropy, trainer.entropy_control = False, None


LEVERS = {
    "plain": (EntropyRegulation(epsilon_high=0.28), 0.0),
    "forking": (EntropyRegulation(epsilon_high=0.28, top_entropy_quantile=0.2), 0.0),
    "beta": (EntropyRegulation(epsilon_high=0.28), 0.04),
    "entropy_coef": (EntropyRegulation(epsilon_high=0.28, entropy_coef=0.05,
                                       top_entropy_quantile=0.5), 0.0),
}


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "bnpo", "dr_grpo"])
@pytest.mark.parametrize("lever", sorted(LEVERS))
def test_clip_loss_equals_trl_loss_and_gradients(shared: SearchGRPOTrainer, loss_type: str,
                                                 lever: str) -> None:
    reg, beta = LEVERS[lever]
    _set_levers(shared, loss_type, reg, beta)
    inputs = _off_policy_batch(shared, beta)
    loss, ours = _loss_and_grads(shared, inputs)
    trl_loss, trl = _loss_and_grads(shared, inputs, _trl_loss(shared))
    assert torch.allclose(loss, trl_loss, rtol=1e-5, atol=1e-7)
    assert len(ours) == len(trl) > 0 and all(torch.allclose(a, b, rtol=1e-4, atol=1e-7)
                                             for a, b in zip(ours, trl))
    for name in ("entropy", "clip_ratio/region_mean", "clip_ratio/low_min",
                 "clip_ratio/high_max", *(("kl",) if beta else ())):
        values = shared._metrics["train"][name]
        assert values[-1] == pytest.approx(values[-2], nan_ok=True)  # ours, then TRL's
    # Control: upper clipping is active on this batch, so another epsilon_high changes the loss.
    assert shared._metrics["train"]["clip_ratio/high_mean"][-1] > 0
    shared.regulation = replace(reg, epsilon_high=10.0)
    assert not torch.allclose(shared._compute_loss(shared.model, inputs), trl_loss,
                              rtol=1e-5, atol=1e-7)


def test_adaptive_entropy_matches_trl_controller(shared: SearchGRPOTrainer) -> None:
    reg = EntropyRegulation(epsilon_high=0.28, adaptive_entropy=True, entropy_coef=0.05,
                            entropy_target=100.0, entropy_coef_delta=0.01)
    _set_levers(shared, "dapo", reg)
    shared.use_adaptive_entropy = shared._entropy_bonus_enabled = True
    shared.args.entropy_target, shared.args.entropy_coef_delta = 100.0, 0.01
    shared.args.entropy_coef_max = reg.entropy_coef_max
    inputs = _off_policy_batch(shared)
    for last in (float("inf"), 1.0):  # no bonus before a measurement, then the bonus applies
        shared._last_world_entropy, shared.entropy_coef = last, 0.05
        shared.entropy_control = AdaptiveEntropyCoef(100.0, 0.05, 0.01, reg.entropy_coef_max,
                                                     last_entropy=last)
        loss = shared._compute_loss(shared.model, inputs)
        assert torch.allclose(loss, _trl_loss(shared)(shared.model, inputs), rtol=1e-5, atol=1e-7)
        assert shared.entropy_control.coef == pytest.approx(shared.entropy_coef) == 0.06
        assert shared.entropy_control.last_entropy == pytest.approx(shared._last_world_entropy)


def test_kl_cov_equals_old_trl_loss_plus_correction(shared: SearchGRPOTrainer) -> None:
    """The whole kl_cov loss equals the former ``TRL loss + (regulated - plain)``."""
    reg = EntropyRegulation(policy_loss="kl_cov", epsilon_high=0.28, kl_cov_ratio=0.2)
    _set_levers(shared, "dapo", reg)
    inputs = _off_policy_batch(shared)
    mask = (inputs["completion_mask"] * inputs["tool_mask"]).bool()
    old, adv = inputs["old_per_token_logps"], inputs["advantages"].unsqueeze(1)

    def old_formula(model: Any, x: dict[str, Any]) -> torch.Tensor:
        """TRL's clip loss plus the old correction, on exactly the KL-Cov tokens."""
        logp, _, _ = shared._get_per_token_logps_and_entropies(
            model, torch.cat([x["prompt_ids"], x["completion_ids"]], dim=1),
            torch.cat([x["prompt_mask"], x["completion_mask"]], dim=1),
            x["completion_ids"].size(1))
        ratio = torch.exp(logp - old)
        plain = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.28))
        regulated = -adv * ratio + reg.kl_cov_beta * (logp - old).abs()
        chosen = kl_cov_select(token_covariance(logp, adv.expand_as(logp), mask), mask, 0.2)
        correction = (regulated - plain)[chosen].sum() / x["num_items_in_batch"]
        return _trl_loss(shared)(model, x) + correction

    ours = _grads(shared, inputs)
    assert shared._metrics["train"]["kl_cov_fraction"][-1] > 0
    before = _grads(shared, inputs, old_formula)
    assert torch.allclose(shared._compute_loss(shared.model, inputs),
                          old_formula(shared.model, inputs), rtol=1e-5, atol=1e-7)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(ours, before))
    # Control: TRL's loss alone (no correction) differs, so the correction is not empty.
    assert not torch.allclose(shared._compute_loss(shared.model, inputs),
                              _trl_loss(shared)(shared.model, inputs))


def test_planning_boost_and_clip_cov_reach_the_loss(shared: SearchGRPOTrainer) -> None:
    """Our loss is the registered per-token loss on boosted advantages, aggregated."""
    reg = EntropyRegulation(policy_loss="clip_cov", clip_cov_ratio=1.0, clip_cov_lb=-1e9,
                            clip_cov_ub=1e9, planning_boost=0.5)
    _set_levers(shared, "dapo", reg)
    inputs = _off_policy_batch(shared)
    mask = inputs["completion_mask"] * inputs["tool_mask"]
    shared.cov_generator.manual_seed(0)
    loss = shared._compute_loss(shared.model, inputs)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    with torch.no_grad():
        logp, _, _ = shared._get_per_token_logps_and_entropies(
            shared.model, ids, attention, ids.size(1) - inputs["prompt_ids"].size(1))
    boosted = planning_boost(inputs["advantages"], inputs["query_mask"], 0.5)
    per_token, stats = POLICY_LOSSES["clip_cov"](logp, inputs["old_per_token_logps"], boosted,
                                                 mask, reg, torch.Generator().manual_seed(0))
    assert stats["clip_cov_fraction"] > 0
    assert loss.item() == pytest.approx(aggregate(per_token, mask, "dapo").item(), abs=1e-6)
    assert shared._metrics["train"]["clip_cov_fraction"][-1] == stats["clip_cov_fraction"]
    # Control: without the boost the loss differs.
    shared.regulation = replace(reg, planning_boost=0.0)
    shared.cov_generator.manual_seed(0)
    assert shared._compute_loss(shared.model, inputs).item() != pytest.approx(loss.item())


def test_trainer_refuses_trl_loss_options_it_does_not_implement(tmp_path: Path) -> None:
    args = grpo_config(common_args(tmp_path, 1, 100, [], "cpu", 0, False),
                       RLPhaseConfig(questions_per_step=2, num_generations=2),
                       EntropyRegulation(entropy_coef=0.01), 64)
    assert args.entropy_coef == 0.0 and not args.use_adaptive_entropy  # ours applies it
    args.entropy_coef = 0.01  # TRL's bonus would come on top of ours
    with pytest.raises(ValueError, match="entropy_coef"):
        SearchGRPOTrainer(monitor=_monitor(tmp_path), policy=None, env_batch=None,  # type: ignore[arg-type]
                          qid_by_prompt={}, regulation=EntropyRegulation(), args=args)


def test_kl_cov_is_active_with_the_default_rl_settings(world, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Default settings (num_iterations=2): the second pass is off-policy, so KL-Cov bites."""
    defaults = TrainConfig()
    regulation = EntropyRegulation(policy_loss="kl_cov", epsilon_high=0.28)  # the main job's
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
                       regulation, policy.max_length)
    run_grpo(model, tokenizer, policy, batch, corpus.split("train")[:8], args, regulation,
             monitor, None)
    rows = monitor.metrics.rows()
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["kl_cov_fraction"] > 0 for r in rows)
    assert rows[0]["kl_cov_penalty"] == pytest.approx(0.0, abs=1e-5)  # on-policy pass
    assert rows[1]["kl_cov_penalty"] > 1e-4  # reused rollouts, updated weights
    assert grpo.env_reward([], [], reward=[1, 0]) == [1.0, 0.0]


def test_adaptive_entropy_state_survives_a_resume(world, tmp_path: Path) -> None:
    corpus, batch = world
    reg = EntropyRegulation(adaptive_entropy=True, entropy_target=100.0, entropy_coef_delta=0.005)
    rl = RLPhaseConfig(questions_per_step=2, num_generations=2, num_iterations=1)
    coefs = []
    for steps, resume in ((1, None), (2, tmp_path / "checkpoint-1")):
        model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
        policy = LMPolicy(model, tokenizer, max_new_tokens=8, seed=0)
        monitor = _monitor(tmp_path / f"run{steps}", steps)
        args = grpo_config(common_args(tmp_path, steps, 1, [], "cpu", 0, False), rl, reg,
                           policy.max_length)
        run_grpo(model, tokenizer, policy, batch, corpus.split("train")[:4], args, reg, monitor,
                 resume)
        coefs += [r["entropy_coef"] for r in monitor.metrics.rows()]
    assert (tmp_path / "checkpoint-1" / RESUME_NAME).exists()
    assert coefs == pytest.approx([0.005, 0.010])  # a fresh controller would give 0.005 again


class _KillAt(TrainerCallback):
    """Stand-in for a killed process: raise when the phase ends optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed at step {self.step}")


def test_a_resumed_phase_repeats_the_uninterrupted_steps(world, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed at step 6 of 8, resumed from checkpoint-5: mid generation batch, in epoch 2.

    4 prompts, 2 per generation batch, 2 passes over each (``num_iterations=2``): an epoch is
    4 steps. Step 6 must train on step 5's buffered rollouts, step 7 must roll out the prompts
    of the second epoch's order with the policy's generator where the killed process left it,
    and Clip-Cov must draw the tokens it would have drawn.
    """
    play = SearchGRPOTrainer.play

    def varied_rewards(self: SearchGRPOTrainer, prompts: list[str]) -> dict[str, list[Any]]:
        out = play(self, prompts)  # an untrained model scores 0; vary rewards for advantages
        out["reward"] = [float(len(ids) % 2) for ids in out["completion_ids"]]
        return out

    monkeypatch.setattr(SearchGRPOTrainer, "play", varied_rewards)
    corpus, batch = world
    reg = EntropyRegulation(policy_loss="clip_cov", clip_cov_ratio=0.2, clip_cov_lb=-1e9,
                            clip_cov_ub=1e9)
    rl = RLPhaseConfig(questions_per_step=2, num_generations=2, num_iterations=2,
                       learning_rate=1e-3)

    def phase(out: Path, kill: int | None = None, resume: Path | None = None) -> PhaseMonitor:
        model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
        policy = LMPolicy(model, tokenizer, max_new_tokens=8, seed=0)
        monitor = _monitor(out, steps=8)
        args = grpo_config(common_args(out, 8, 1, [], "cpu", 0, False), rl, reg,
                           policy.max_length)
        run_grpo(model, tokenizer, policy, batch, corpus.split("train")[:4], args, reg, monitor,
                 resume, callbacks=[_KillAt(kill)] if kill else [])
        return monitor

    timing = {"step_time"}
    reference = [{k: v for k, v in r.items() if k not in timing}
                 for r in phase(tmp_path / "reference").metrics.rows()]
    assert len({r["clip_cov_fraction"] for r in reference}) > 1  # tokens are drawn
    with pytest.raises(KeyboardInterrupt):
        phase(tmp_path / "run", kill=6)
    resumed = phase(tmp_path / "run", resume=tmp_path / "run" / "checkpoint-5")
    rows = [{k: v for k, v in r.items() if k not in timing} for r in resumed.metrics.rows()]
    assert [r["step"] for r in rows] == list(range(1, 9))  # step 6 died unlogged
    assert rows == reference


def test_resume_state_restores_the_random_generators(world, tmp_path: Path) -> None:
    first = _trainer(world, tmp_path / "a", EntropyRegulation())
    torch.rand(3, generator=first.cov_generator)
    torch.rand(3, generator=first.policy.generator)
    save_resume_state(tmp_path, first.resume_state())
    second = _trainer(world, tmp_path / "b", EntropyRegulation())
    state = load_resume_state(tmp_path, "cpu")
    assert state is not None
    second.load_resume_state(state)
    for generator in ("cov_generator", "policy"):
        a, b = getattr(first, generator), getattr(second, generator)
        a, b = (a, b) if generator == "cov_generator" else (a.generator, b.generator)
        assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


def test_epoch_seeded_sampler_gives_a_resumed_epoch_the_uninterrupted_order() -> None:
    def sampler() -> RepeatSampler:
        return RepeatSampler(range(10), mini_repeat_count=2, batch_size=2, repeat_count=2,
                             seed=7)

    plain = sampler()
    orders = [list(plain) for _ in range(3)]  # TRL's order over three epochs
    uninterrupted = EpochSeededSampler(sampler())
    for epoch in range(3):
        uninterrupted.set_epoch(epoch)
        assert list(uninterrupted) == orders[epoch]  # unchanged
    resumed = EpochSeededSampler(sampler())
    resumed.set_epoch(2)
    assert list(resumed) == orders[2] != orders[0]


def test_length_groups_give_the_whole_batch_logps_entropies_and_gradients(
        shared: SearchGRPOTrainer) -> None:
    """The bucketed forward (``agents.training.buckets``) against TRL's whole-batch one."""
    gen = torch.Generator().manual_seed(0)
    rows, prompt_w, comp_w = 12, 10, 24  # 12 rows: two groups of FORWARD_ROWS (8) and 4
    vocab = shared.model.config.vocab_size
    ids = torch.randint(5, vocab, (rows, prompt_w + comp_w), generator=gen)
    mask = torch.zeros_like(ids)
    for r in range(rows):  # prompts left-padded, completions right-padded, lengths varied
        p_len, c_len = 3 + r % 7, 2 + (5 * r) % 20
        mask[r, prompt_w - p_len:prompt_w + c_len] = 1
    comp_mask = mask[:, prompt_w:].float()
    shared.model.train()

    def run(forward: Any) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        shared.model.zero_grad()
        logp, ent, _ = forward(shared, shared.model, ids, mask, comp_w, compute_entropy=True)
        (logp * comp_mask).sum().backward()
        grads = [p.grad.clone() for p in shared.model.parameters() if p.grad is not None]
        return logp.detach() * comp_mask, ent.detach() * comp_mask, grads

    ours = run(SearchGRPOTrainer._get_per_token_logps_and_entropies)
    trl = run(GRPOTrainer._get_per_token_logps_and_entropies)
    assert grpo.FORWARD_ROWS < rows
    assert torch.allclose(ours[0], trl[0], atol=1e-5) and torch.allclose(ours[1], trl[1], atol=1e-5)
    assert len(ours[2]) == len(trl[2]) > 0
    # float32 sums in another order: equal to ~1e-6 of each gradient's largest entry
    assert all((a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-8 for a, b in zip(ours[2], trl[2]))
    assert (ours[0] != 0).sum() == comp_mask.sum()  # every real completion token was scored


def test_vllm_importance_ratio_scales_the_per_token_loss(shared: SearchGRPOTrainer) -> None:
    _set_levers(shared, "dapo", EntropyRegulation(epsilon_high=0.28))
    inputs = _off_policy_batch(shared)
    base = shared._compute_loss(shared.model, inputs)
    inputs["importance_sampling_ratio"] = torch.full_like(inputs["old_per_token_logps"], 2.0)
    assert base.abs() > 0
    assert torch.allclose(shared._compute_loss(shared.model, inputs), 2 * base)


def test_the_strategy_bonus_reaches_the_rollout_reward(world, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.trajectory import Trajectory

    def solved(policy: Any, batch: Any, qids: list[str]) -> list[Trajectory]:
        labels = [["entity"], ["bridge"], ["bridge"], ["bridge"]]
        return [Trajectory(qid=q, question="?", agent="a", em=1.0, reward=1.0,
                           strategy_labels=lab) for q, lab in zip(qids, labels)]

    trainer = _trainer(world, tmp_path, EntropyRegulation(strategy_bonus=1.0))
    monkeypatch.setattr(grpo, "rollout", solved)
    prompt = next(iter(trainer.qid_by_prompt))
    out = trainer.play([prompt] * 4)
    assert out["reward"] == pytest.approx([1.75, 1.25, 1.25, 1.25])
    assert trainer.monitor.batch_stats["strategy_bonus"] == pytest.approx(1.5 / 4)
    # TRL's reward metric (bonus included) does not replace the environment's in the step's row.
    trainer.model.train()
    trainer._metrics["train"]["reward"].append(sum(out["reward"]) / 4)
    trainer.log({"loss": 0.0})
    logged = trainer.state.log_history[-1]
    assert logged["reward"] == 1.0 and logged["strategy_bonus"] == pytest.approx(1.5 / 4)
    trainer.regulation = EntropyRegulation()  # off: the environment's reward only
    assert trainer.play([prompt] * 4)["reward"] == [1.0] * 4
