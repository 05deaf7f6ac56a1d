"""The RL phase: GRPO on ``SearchEnv`` episodes with entropy regulation.

Written against TRL >=1.16,<1.17 (``GRPOTrainer`` with ``rollout_func``). The environment is
played by :func:`search_rollout`: TRL hands it the prompts of a generation batch, already
repeated ``num_generations`` times, and it returns one episode per prompt as ``prompt_ids``,
``completion_ids`` (agent and environment tokens), ``logprobs`` and ``env_mask`` (0 on retrieved
and feedback tokens, which TRL then excludes from the loss), plus the extra fields ``reward``
(the environment's score, read back by :func:`env_reward`), ``query_mask`` and
``strategy_labels``.

The loss is forksearch's own (:meth:`SearchGRPOTrainer._compute_loss`): every entropy lever of
:class:`~agents.training.config.EntropyRegulation` is applied there, none by TRL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch
from datasets import Dataset
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler, nanmax, nanmin

from agents.lm import LMPolicy
from agents.lm.vllm_turns import VLLMTurns
from agents.profiling import section
from agents.rollout import rollout
from agents.training.buckets import bucketed_logps
from agents.training.config import EntropyRegulation, RLPhaseConfig
from agents.training.fused_head import keep_own_head
from agents.training.losses import POLICY_LOSSES, AdaptiveEntropyCoef, aggregate, planning_boost
from agents.training.monitor import MeasuredTrainerMixin, PhaseMonitor
from agents.training.resume import EpochSeededSampler, ResumableTrainerMixin
from agents.training.rewards import strategy_bonus
from agents.training.trainer_args import run_trainer
from corpora import Question
from envs.batch import SearchEnvBatch

#: TRL loss options that :meth:`SearchGRPOTrainer._compute_loss` lacks, at the value it needs.
_TRL_LOSS_DEFAULTS = {"importance_sampling_level": "token", "delta": None,
                      "off_policy_mask_threshold": None, "entropy_coef": 0.0,
                      "use_adaptive_entropy": False}
#: Most episodes per forward pass of the loss and of TRL's old/reference log-probs.
FORWARD_ROWS = 8


def env_reward(prompts: list[str], completions: list[str], reward: list[float],
               **kwargs: Any) -> list[float]:
    """Return the reward the environment gave each episode (the rollout's ``reward`` field)."""
    return [float(r) for r in reward]


def search_rollout(prompts: list[str], trainer: GRPOTrainer) -> dict[str, list[Any]]:
    """TRL ``rollout_func``: one ``SearchEnv`` episode per prompt received."""
    if not isinstance(trainer, SearchGRPOTrainer):
        raise TypeError(f"search_rollout needs a SearchGRPOTrainer, got {type(trainer).__name__}")
    return trainer.play(prompts)


def question_dataset(questions: Sequence[Question]) -> tuple[Dataset, dict[str, str]]:
    """Build the prompt dataset (question texts) and the map from prompt to question id.

    A question whose text repeats an earlier one is left out: its prompt could not tell which
    gold answers score it.
    """
    qid_by_prompt: dict[str, str] = {}
    for q in questions:
        qid_by_prompt.setdefault(q.question, q.qid)
    return Dataset.from_dict({"prompt": list(qid_by_prompt)}), qid_by_prompt


class SearchGRPOTrainer(ResumableTrainerMixin, MeasuredTrainerMixin, GRPOTrainer):
    """``GRPOTrainer`` whose completions are search episodes and whose loss is forksearch's.

    Written for TRL >=1.16,<1.17; overrides:

    - ``_generate_and_score_completions``: TRL's, plus the padded ``query_mask`` in the batch
      (TRL gives extra rollout fields to reward functions only);
    - ``_compute_loss``, whole: TRL's forward (``_get_per_token_logps_and_entropies``) and
      forking-token mask (``get_high_entropy_mask``, applied as TRL's ``top_entropy_quantile``),
      the HICRA boost ``A + alpha * |A|`` on query tokens, the registered policy loss
      ``regulation.policy_loss``, TRL's ``beta`` KL-to-reference term, ``aggregate`` by
      ``loss_type`` and the entropy bonus (static, or :class:`AdaptiveEntropyCoef`), logging
      TRL's metric names plus the policy loss's statistics. TRL's sequence-level
      importance sampling, ``delta``, off-policy mask and entropy-bonus options are refused;
      with ``use_vllm`` the turns come from TRL's vLLM engine (``agents.lm.vllm_turns``) and
      TRL's importance-sampling ratio multiplies the per-token loss;
    - ``_save_checkpoint`` / ``_load_optimizer_and_scheduler`` (``ResumableTrainerMixin``):
      TRL's, plus :meth:`resume_state` in each checkpoint, restored on resume, so that a
      resumed phase repeats the uninterrupted one's steps;
    - ``_get_train_sampler``: TRL's ``RepeatSampler`` wrapped in ``EpochSeededSampler`` (the
      same order, also for an epoch a resumed phase starts in).

    Args:
        monitor: The phase's monitor (episode figures, trigger, replay, checkpoints).
        policy: ``LMPolicy`` over the trained model; it plays the episodes.
        env_batch: Environments over the training split.
        qid_by_prompt: Question id of each dataset prompt.
        regulation: Entropy-regulation settings (every lever is read from here).
        **kwargs: ``GRPOTrainer`` arguments (``model``, ``args``, ``train_dataset``...).
    """

    def __init__(self, *, monitor: PhaseMonitor, policy: LMPolicy, env_batch: SearchEnvBatch,
                 qid_by_prompt: Mapping[str, str], regulation: EntropyRegulation,
                 **kwargs: Any) -> None:
        refused = {k: v for k, ok in _TRL_LOSS_DEFAULTS.items()
                   if (v := getattr(kwargs.get("args"), k, ok)) != ok}
        if refused:
            raise ValueError(f"SearchGRPOTrainer's loss lacks TRL's {refused}: expected "
                             f"{ {k: _TRL_LOSS_DEFAULTS[k] for k in refused} } (entropy levers "
                             "belong in EntropyRegulation)")
        self.monitor, self.policy, self.env_batch = monitor, policy, env_batch
        self.qid_by_prompt, self.regulation = dict(qid_by_prompt), regulation
        self.cov_generator = torch.Generator().manual_seed(policy.seed)
        self.entropy_control = AdaptiveEntropyCoef(
            regulation.entropy_target, regulation.entropy_coef, regulation.entropy_coef_delta,
            regulation.entropy_coef_max) if regulation.adaptive_entropy else None
        self._entropy_window: Tensor | None = None  # [entropy sum, tokens] of this optimizer step
        super().__init__(reward_funcs=[env_reward],  # type: ignore[list-item]
                         rollout_func=search_rollout, **kwargs)
        keep_own_head(self.model, getattr(self, "ref_model", None), temperature=self.temperature)
        if self.use_vllm:  # rollout turns from TRL's vLLM engine, whose weights TRL syncs
            policy.generate_turns = VLLMTurns(self.vllm_generation)

    def play(self, prompts: list[str]) -> dict[str, list[Any]]:
        """Play one episode per prompt with the current weights; return TRL's rollout fields."""
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            qids = [self.qid_by_prompt[p] for p in prompts]
            with section("rollout"):
                episodes = rollout(self.policy, self.env_batch, qids)
        finally:
            model.train(was_training)
        self.monitor.observe(episodes, tokens=sum(len(t.tokens) for t in episodes))
        bonus = [0.0] * len(episodes)
        if self.regulation.strategy_bonus > 0:  # groups: the episodes of one prompt
            bonus = strategy_bonus(prompts, [t.strategy_labels for t in episodes],
                                   [t.success for t in episodes], self.regulation.strategy_bonus)
            self.monitor.batch_stats["strategy_bonus"] = sum(bonus) / len(bonus)
        rows = [{**t.tokens.rollout_fields(), "reward": t.reward + b,
                 "strategy_labels": list(t.strategy_labels)} for t, b in zip(episodes, bonus)]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Log a step; its ``reward`` is the environment's, on every step.

        TRL logs the mean of its reward function (strategy bonus included) on the steps that
        generate a rollout batch only, and it would overwrite the monitor's figure there: rows
        of one batch would then disagree. The bonus is logged apart (``strategy_bonus``).
        """
        self._metrics["train"].pop("reward", None)
        super().log(logs, start_time)

    def training_step(self, *args: Any, **kwargs: Any) -> Tensor:
        """TRL's, profiled as ``step``: a rollout batch when one is due, the loss, backward."""
        with section("step"):
            return cast(Tensor, super().training_step(*args, **kwargs))

    def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
        """TRL's, profiled as ``loss`` (the forward pass and the loss)."""
        with section("loss"):
            return super().compute_loss(*args, **kwargs)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        with section("generation"):  # rollouts, then TRL's rewards, advantages and old logps
            batch = super()._generate_and_score_completions(inputs)
        # TRL wrote the rollout's extra fields into ``inputs``; pad query_mask like completion_ids.
        width = batch["completion_ids"].size(1)
        batch["query_mask"] = torch.tensor(
            [x["query_mask"] + [0] * (width - len(x["query_mask"])) for x in inputs],
            device=batch["completion_ids"].device)
        return batch

    def _get_per_token_logps_and_entropies(
        self, model: Any, input_ids: Tensor, attention_mask: Tensor, logits_to_keep: int,
        batch_size: int | None = None, compute_entropy: bool = False,
        compute_aux_loss: bool = False, **multimodal: Any,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """TRL's, run on groups of episodes of similar length (see ``agents.training.buckets``).

        Router losses and image inputs go to TRL's whole-batch version unchanged.
        """
        parent = super()._get_per_token_logps_and_entropies
        if compute_aux_loss or any(v is not None for v in multimodal.values()):
            return cast(tuple[Tensor, Tensor | None, Tensor | None], parent(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                compute_aux_loss, **multimodal))

        def forward(ids: Tensor, mask: Tensor, keep: int) -> tuple[Tensor, Tensor | None]:
            logps, entropies, _ = parent(model, ids, mask, keep, compute_entropy=compute_entropy)
            return logps, entropies

        rows = min(batch_size or FORWARD_ROWS, FORWARD_ROWS)
        logps, entropies = bucketed_logps(forward, input_ids, attention_mask, logits_to_keep, rows)
        return logps, entropies, None

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Tensor:
        reg, args, ids = self.regulation, cast(GRPOConfig, self.args), inputs["completion_ids"]
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)  # 0 on environment tokens
        logp, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, torch.cat([inputs["prompt_ids"], ids], dim=1),
            torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1),
            ids.size(1), compute_entropy=True, compute_aux_loss=self.aux_loss_enabled)
        assert entropies is not None  # asked for
        advantages = inputs["advantages"]
        if reg.planning_boost > 0:
            advantages = planning_boost(advantages, inputs["query_mask"], reg.planning_boost)
        old = inputs.get("old_per_token_logps")
        old = logp.detach() if old is None else old
        per_token, stats = POLICY_LOSSES[reg.policy_loss](logp, old, advantages, mask, reg,
                                                          self.cov_generator)
        mask_bonus = mask
        if reg.top_entropy_quantile < 1.0:  # forking tokens: TRL's rule, mask and placement
            keep = self.get_high_entropy_mask(entropies, mask, 1 - reg.top_entropy_quantile)
            per_token, mask_bonus = per_token * keep, mask * keep
        if "importance_sampling_ratio" in inputs:  # TRL's correction of vLLM's sampling drift
            per_token = per_token * inputs["importance_sampling_ratio"]
        kl = None
        if self.beta != 0.0:
            ref = inputs["ref_per_token_logps"]
            kl = torch.exp(ref - logp) - (ref - logp) - 1
            if args.use_bias_correction_kl:
                kl = kl * torch.exp(logp - old)
            per_token = per_token + self.beta * kl

        mode = "train" if model.training else "eval"
        steps = self.current_gradient_accumulation_steps if mode == "train" else 1
        if self.loss_type == "dapo":  # TRL's: the generation batch's tokens, cut to one window
            items = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                items = items * steps / args.steps_per_generation
            policy_loss = loss = aggregate(per_token, mask, "dapo", normalizer=items)
        else:
            policy_loss = aggregate(per_token, mask, self.loss_type,
                                    max_completion_length=self.max_completion_length)
            loss = policy_loss / steps
        if reg.entropy_coef != 0.0 or self.entropy_control is not None:
            loss = loss - self._entropy_bonus(entropies, mask_bonus, mode) / steps
            self._metrics[mode]["policy_loss"].append(
                self.accelerator.gather(policy_loss.detach()).nanmean().item())
        if self.aux_loss_enabled and aux_loss is not None:
            loss = loss + self.router_aux_loss_coef * aux_loss / steps
            self._metrics[mode]["aux_loss"].append(
                self.accelerator.gather_for_metrics(aux_loss).mean().item())
        self._log_loss_metrics(mode, mask, entropies, torch.exp(logp.detach() - old), advantages,
                               kl, stats)
        return loss

    def _entropy_bonus(self, entropies: Tensor, mask: Tensor, mode: str) -> Tensor:
        """``coef * mean entropy`` over ``mask``; steps the adaptive controller at step ends."""
        control, sync = self.entropy_control, self.accelerator.sync_gradients
        mean = (entropies * mask).sum() / mask.sum().clamp(min=1.0)
        bonus = (control.applied if control else self.regulation.entropy_coef) * mean
        if control is not None and mode == "train":
            window = torch.stack([(entropies * mask).sum(), mask.sum().float()]).detach()
            if self._entropy_window is not None:
                window = window + self._entropy_window
            self._entropy_window = window
            if sync:  # the window's entropy over every rank sets the next step's coefficient
                total = self.accelerator.reduce(window, reduction="sum")
                control.update((total[0] / total[1].clamp(min=1.0)).item())
                self._entropy_window = None
        if mode == "train" and sync:
            self._metrics[mode]["entropy_coef"].append(
                control.coef if control else self.regulation.entropy_coef)
        return bonus

    def _log_loss_metrics(self, mode: str, mask: Tensor, entropies: Tensor, ratio: Tensor,
                          advantages: Tensor, kl: Tensor | None, stats: dict[str, float]) -> None:
        """Log TRL's loss metrics under TRL's names, then the policy loss's statistics."""
        metrics, reg = self._metrics[mode], self.regulation

        def mean(x: Tensor) -> float:
            totals = self.accelerator.reduce(torch.stack([(x * mask).sum(), mask.sum().float()]),
                                             reduction="sum")
            return (totals[0] / totals[1].clamp(min=1.0)).item()

        if kl is not None:
            metrics["kl"].append(mean(kl))
        metrics["entropy"].append(mean(entropies))
        adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
        low = ((ratio < 1 - reg.epsilon_low) & (adv < 0)).float()
        high = ((ratio > 1 + reg.epsilon_high) & (adv > 0)).float()
        for name, clipped in (("low", low), ("high", high), ("region", torch.maximum(low, high))):
            metrics[f"clip_ratio/{name}_mean"].append(mean(clipped))
        for name, clipped, extreme in (("low_min", low, nanmin), ("high_max", high, nanmax)):
            per_sequence = self.accelerator.gather((clipped * mask).sum(-1) / mask.sum(-1))
            metrics[f"clip_ratio/{name}"].append(extreme(per_sequence).item())
        for name, value in stats.items():
            metrics[name].append(value)

    def _get_train_sampler(self, dataset: Any = None) -> Any:
        return EpochSeededSampler(cast(RepeatSampler, super()._get_train_sampler(dataset)))

    def resume_state(self) -> dict[str, Any]:
        """What a resumed phase needs beside TRL's checkpoint to repeat the same steps.

        The policy's and Clip-Cov's random generators, the adaptive entropy controller, the
        monitor's batch figures and, mid generation batch, TRL's buffered batch and its
        micro-step counter (steps that reuse a batch log the figures of the rollouts that made
        it, and train on that batch, not on fresh rollouts).
        """
        per_generation = cast(GRPOConfig, self.args).steps_per_generation
        assert per_generation is not None  # GRPOConfig.__post_init__ sets it
        mid_batch = self._step % (per_generation * self.num_iterations) != 0
        return {
            "policy_generator": self.policy.generator.get_state(),
            "cov_generator": self.cov_generator.get_state(),
            "entropy_control": asdict(self.entropy_control) if self.entropy_control else None,
            "micro_step": self._step,
            "buffered_inputs": self._buffered_inputs if mid_batch else None,
            "batch_stats": dict(self.monitor.batch_stats),
        }

    def load_resume_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`resume_state` returned."""
        self.policy.generator.set_state(state["policy_generator"])
        self.cov_generator.set_state(state["cov_generator"])
        if self.entropy_control is not None and state["entropy_control"] is not None:
            self.entropy_control = AdaptiveEntropyCoef(**state["entropy_control"])
        self._step = int(state["micro_step"])
        self._buffered_inputs = state["buffered_inputs"]
        self.monitor.batch_stats = dict(state["batch_stats"])


def grpo_config(common: dict[str, Any], rl: RLPhaseConfig, reg: EntropyRegulation,
                max_length: int) -> GRPOConfig:
    """Build the ``GRPOConfig`` of an RL phase (TRL's entropy bonus off: ours applies it)."""
    return GRPOConfig(
        **common,
        per_device_train_batch_size=rl.questions_per_step * rl.num_generations,
        gradient_accumulation_steps=rl.gradient_accumulation_steps,
        steps_per_generation=rl.steps_per_generation,
        num_generations=rl.num_generations,
        num_iterations=rl.num_iterations,
        learning_rate=rl.learning_rate,
        lr_scheduler_type=rl.lr_scheduler,
        max_grad_norm=rl.max_grad_norm,
        beta=rl.beta,
        loss_type=rl.loss_type,
        temperature=rl.temperature,
        top_p=rl.top_p,
        scale_rewards=rl.scale_rewards,
        max_completion_length=max_length,  # the episode cap (the dr_grpo normalizer reads it)
        epsilon=reg.epsilon_low,
        epsilon_high=reg.epsilon_high,
        top_entropy_quantile=reg.top_entropy_quantile,
        log_completions=False,
        use_vllm=rl.use_vllm,
        vllm_mode=rl.vllm_mode,
        vllm_gpu_memory_utilization=rl.vllm_gpu_memory_utilization,
        vllm_server_base_url=rl.vllm_server_base_url,
    )


def run_grpo(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, policy: LMPolicy,
    env_batch: SearchEnvBatch, questions: Sequence[Question], args: GRPOConfig,
    regulation: EntropyRegulation, monitor: PhaseMonitor, resume_from: Path | None,
    callbacks: Sequence[TrainerCallback] = (),
) -> None:
    """Run one RL phase on ``model`` (trained in place).

    Args:
        model: The policy model.
        tokenizer: Its tokenizer.
        policy: ``LMPolicy`` over ``model`` with the phase's sampling settings.
        env_batch: Environments over the training split.
        questions: Training questions (the prompts).
        args: From :func:`grpo_config`.
        regulation: Entropy-regulation settings.
        monitor: The phase's monitor.
        resume_from: A ``checkpoint-N`` folder of this phase to continue from.
        callbacks: Extra ``transformers`` callbacks.
    """
    dataset, qid_by_prompt = question_dataset(questions)
    run_trainer(SearchGRPOTrainer(
        monitor=monitor, policy=policy, env_batch=env_batch, qid_by_prompt=qid_by_prompt,
        regulation=regulation, model=model, args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=[monitor, *callbacks],
    ), resume_from)
