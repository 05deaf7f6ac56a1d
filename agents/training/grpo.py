"""The RL phase: GRPO on ``SearchEnv`` episodes with entropy regulation.

Written against TRL >=1.16,<1.17 (``GRPOTrainer`` with ``rollout_func``). The environment is
played by :func:`search_rollout`: TRL hands it the prompts of a generation batch, already
repeated ``num_generations`` times, and it returns one episode per prompt as ``prompt_ids``,
``completion_ids`` (agent and environment tokens), ``logprobs`` and ``env_mask`` (0 on retrieved
and feedback tokens, which TRL then excludes from the loss), plus the extra fields ``reward``
(the environment's score, read back by :func:`env_reward`), ``query_mask`` and
``strategy_labels``.

TRL-native levers are plain ``GRPOConfig`` fields: forking tokens (``top_entropy_quantile``),
the entropy bonus and its adaptive target, clip-higher (``epsilon_high``). The rest goes through
three small overrides of :class:`SearchGRPOTrainer`:

- ``_generate_and_score_completions``: TRL's, plus the padded ``query_mask`` in the batch (TRL
  gives extra rollout fields to reward functions only);
- ``_get_per_token_logps_and_entropies``: TRL's, keeping the training forward's output;
- ``_compute_loss``: TRL's loss on planning-boosted advantages (HICRA: ``A + alpha * |A|`` on
  query tokens), plus a Clip-Cov / KL-Cov correction ``policy_loss(with) - policy_loss(without)``
  from :mod:`agents.training.losses` on the same tokens, which swaps TRL's clipped term for the
  Clip-Cov / KL-Cov term on exactly the selected tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from datasets import Dataset
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig, GRPOTrainer

from agents.lm import LMPolicy
from agents.rollout import rollout
from agents.training.config import EntropyRegulation, RLPhaseConfig
from agents.training.fused_head import keep_own_head
from agents.training.losses import (
    ClipCovConfig,
    KLCovConfig,
    LossType,
    planning_boost,
    policy_loss,
)
from agents.training.monitor import MeasuredTrainerMixin, PhaseMonitor
from corpora import Question
from envs.batch import SearchEnvBatch


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


class SearchGRPOTrainer(MeasuredTrainerMixin, GRPOTrainer):
    """``GRPOTrainer`` whose completions are search episodes, with Clip-Cov / KL-Cov / HICRA.

    Args:
        monitor: The phase's monitor (episode figures, trigger, replay, checkpoints).
        policy: ``LMPolicy`` over the trained model; it plays the episodes.
        env_batch: Environments over the training split.
        qid_by_prompt: Question id of each dataset prompt.
        regulation: Entropy-regulation settings (the TRL-native ones are in ``args``).
        **kwargs: ``GRPOTrainer`` arguments (``model``, ``args``, ``train_dataset``...).
    """

    def __init__(self, *, monitor: PhaseMonitor, policy: LMPolicy, env_batch: SearchEnvBatch,
                 qid_by_prompt: Mapping[str, str], regulation: EntropyRegulation,
                 **kwargs: Any) -> None:
        self.monitor, self.policy, self.env_batch = monitor, policy, env_batch
        self.qid_by_prompt, self.regulation = dict(qid_by_prompt), regulation
        self.clip_cov = (ClipCovConfig(regulation.clip_cov_ratio, regulation.clip_cov_lb,
                                       regulation.clip_cov_ub) if regulation.clip_cov else None)
        self.kl_cov = (KLCovConfig(regulation.kl_cov_ratio, regulation.kl_cov_beta)
                       if regulation.kl_cov else None)
        self.cov_generator = torch.Generator().manual_seed(policy.seed)
        self._train_forward: tuple[Tensor, Tensor] | None = None
        super().__init__(reward_funcs=[env_reward],  # type: ignore[list-item]
                         rollout_func=search_rollout, **kwargs)
        keep_own_head(self.model, getattr(self, "ref_model", None), temperature=self.temperature)

    def play(self, prompts: list[str]) -> dict[str, list[Any]]:
        """Play one episode per prompt with the current weights; return TRL's rollout fields."""
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            qids = [self.qid_by_prompt[p] for p in prompts]
            episodes = rollout(self.policy, self.env_batch, qids)
        finally:
            model.train(was_training)
        self.monitor.observe(episodes, tokens=sum(
            len(t.prompt_ids) + len(t.completion_ids) for t in episodes))
        return {
            "prompt_ids": [t.prompt_ids for t in episodes],
            "completion_ids": [t.completion_ids for t in episodes],
            "logprobs": [t.logprobs for t in episodes],
            "env_mask": [t.env_mask for t in episodes],
            "reward": [t.reward for t in episodes],
            "query_mask": [t.query_mask for t in episodes],
            "strategy_labels": [list(t.strategy_labels) for t in episodes],
        }

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super()._generate_and_score_completions(inputs)
        # TRL wrote the rollout's extra fields into ``inputs``; pad query_mask like completion_ids.
        width = batch["completion_ids"].size(1)
        batch["query_mask"] = torch.tensor(
            [x["query_mask"] + [0] * (width - len(x["query_mask"])) for x in inputs],
            device=batch["completion_ids"].device)
        return batch

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any) -> Any:
        out = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if kwargs.get("compute_entropy"):  # only the training forward of ``_compute_loss`` asks
            self._train_forward = (out[0], out[1])
        return out

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> Tensor:
        alpha = self.regulation.planning_boost
        if alpha > 0:
            inputs = {**inputs, "advantages": planning_boost(
                inputs["advantages"], inputs["query_mask"], alpha)}
        loss = super()._compute_loss(model, inputs)
        forward, self._train_forward = self._train_forward, None
        if (self.clip_cov is None and self.kl_cov is None) or forward is None:
            return loss
        return loss + self._cov_correction(inputs, *forward)

    def _cov_correction(self, inputs: dict[str, Any], logp: Tensor, entropies: Tensor) -> Tensor:
        """``policy_loss`` with Clip-Cov / KL-Cov minus without, scaled as TRL scales its loss."""
        mask = inputs["completion_mask"]
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        old = inputs.get("old_per_token_logps")
        old = logp.detach() if old is None else old
        keep = None
        if self.top_entropy_quantile < 1.0:  # TRL's forking mask: both terms drop the same tokens
            keep = self.get_high_entropy_mask(entropies, mask, 1 - self.top_entropy_quantile)
        training = self.accelerator.unwrap_model(self.model).training
        scale, normalizer = 1.0, None
        if self.loss_type == "dapo":  # TRL's dapo denominator for one accumulation window
            normalizer = inputs["num_items_in_batch"].clamp(min=1.0)
            normalizer = normalizer / self.accelerator.num_processes
            if training:
                normalizer = normalizer * self.current_gradient_accumulation_steps
                normalizer = normalizer / self.args.steps_per_generation  # type: ignore[attr-defined]
        elif training:  # "grpo": TRL divides the mean by the accumulation steps
            scale = 1.0 / self.current_gradient_accumulation_steps

        def loss(clip_cov: ClipCovConfig | None, kl_cov: KLCovConfig | None) -> tuple[Tensor, Any]:
            return policy_loss(
                logp, old, inputs["advantages"], mask, epsilon_low=self.epsilon_low,
                epsilon_high=self.epsilon_high, clip_cov=clip_cov, kl_cov=kl_cov,
                generator=self.cov_generator, loss_type=cast(LossType, self.loss_type),
                keep_mask=keep,
                normalizer=normalizer)

        regulated, stats = loss(self.clip_cov, self.kl_cov)
        plain, _ = loss(None, None)
        mode = "train" if training else "eval"
        for name in ("clip_cov_fraction", "kl_cov_fraction", "kl_cov_penalty"):
            self._metrics[mode][name].append(stats[name])
        return (regulated - plain) * scale


def grpo_config(common: dict[str, Any], rl: RLPhaseConfig, reg: EntropyRegulation,
                max_length: int) -> GRPOConfig:
    """Build the ``GRPOConfig`` of an RL phase."""
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
        max_completion_length=max_length,  # the episode cap (TRL's dr_grpo normalizer reads it)
        epsilon=reg.epsilon_low,
        epsilon_high=reg.epsilon_high,
        top_entropy_quantile=reg.top_entropy_quantile,
        entropy_coef=reg.entropy_coef,
        use_adaptive_entropy=reg.adaptive_entropy,
        entropy_target=reg.entropy_target,
        entropy_coef_delta=reg.entropy_coef_delta,
        entropy_coef_max=reg.entropy_coef_max,
        log_completions=False,
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
    trainer = SearchGRPOTrainer(
        monitor=monitor, policy=policy, env_batch=env_batch, qid_by_prompt=qid_by_prompt,
        regulation=regulation, model=model, args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=[monitor, *callbacks],
    )
    for quiet in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(quiet)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
