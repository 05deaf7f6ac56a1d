"""The SFT phase: demonstrations in the policy's own token layout, trained with ``trl.SFTTrainer``.

A demonstration is tokenized exactly as :class:`agents.lm.LMPolicy` builds an episode: the
prompt (through the chat template when the policy uses one), then each action and each
observation encoded separately and concatenated. The loss covers the action tokens only, never
the prompt, ``<information>`` blocks or feedback. Written against TRL >=1.16,<1.17: the dataset
is pre-tokenized with an ``assistant_masks`` column, from which ``SFTTrainer`` builds labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
from trl.trainer.utils import pad

from agents.diversity import token_entropy_stats
from agents.lm import LMPolicy
from agents.training import distributed
from agents.training.config import SFTPhaseConfig
from agents.training.fused_head import keep_own_head
from agents.training.monitor import MeasuredTrainerMixin, PhaseMonitor
from agents.training.resume import ResumableTrainerMixin
from agents.training.trainer_args import run_trainer
from agents.trajectory import Trajectory
from envs.protocol import render_prompt

#: Per-token columns the collator pads beside ``input_ids`` / ``labels``.
MASK_COLUMNS = ("query_mask", "answer_mask")


def encode_demonstration(policy: LMPolicy, demo: Trajectory,
                         max_length: int) -> dict[str, list[int]]:
    """Tokenize one demonstration as the policy would see it, with per-token masks.

    Args:
        policy: The policy whose encoding is reproduced.
        demo: A finished episode (actions and the observations that followed them).
        max_length: Tokens kept (the start of the episode, as the policy's own cap).

    Returns:
        ``input_ids``, ``assistant_masks`` (1 on action tokens), ``query_mask`` and
        ``answer_mask`` (action tokens inside ``<search>`` / ``<answer>``).
    """
    # LMPolicy's encoders are the single definition of the layout (see the module docstring).
    ids = policy._encode_prompt(render_prompt(demo.question))
    agent, query, answer = [0] * len(ids), [0] * len(ids), [0] * len(ids)
    last = len(demo.actions) - 1
    for turn, action in enumerate(demo.actions):
        action_ids = policy._encode(action)
        q, a = policy._tag_masks(action_ids, policy._decode(action_ids))
        ids, agent = ids + action_ids, agent + [1] * len(action_ids)
        query, answer = query + q, answer + a
        observation = demo.observations[turn] if turn < last else ""
        if observation:
            obs_ids = policy._encode(observation)
            zeros = [0] * len(obs_ids)
            ids, agent, query, answer = ids + obs_ids, agent + zeros, query + zeros, answer + zeros
    return {"input_ids": ids[:max_length], "assistant_masks": agent[:max_length],
            "query_mask": query[:max_length], "answer_mask": answer[:max_length]}


def demonstration_dataset(policy: LMPolicy, demos: Sequence[Trajectory],
                          max_length: int) -> Dataset:
    """Build a pre-tokenized dataset of ``demos`` in order, each row with its ``demo_index``."""
    rows = [{**encode_demonstration(policy, d, max_length), "demo_index": i}
            for i, d in enumerate(demos)]
    return Dataset.from_list(rows)


@dataclass
class DemoCollator:
    """TRL's language-modeling collator, plus the padded masks and demonstration indices."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate ``input_ids`` / ``labels`` as TRL does; pad the masks to the same width."""
        batch = DataCollatorForLanguageModeling(pad_token_id=self.pad_token_id)(
            [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples])
        for column in MASK_COLUMNS:
            batch[column] = pad([torch.tensor(e[column]) for e in examples], padding_value=0,
                                padding_side="right")
        batch["demo_index"] = torch.tensor([e["demo_index"] for e in examples])
        return batch


def teacher_forced_entropy(entropy: torch.Tensor, labels: torch.Tensor,
                           query_mask: torch.Tensor, answer_mask: torch.Tensor) -> dict[str, float]:
    """Token-entropy figures of a batch from the fused LM head's next-token entropies.

    ``entropy`` is ``[B, T - 1]``: position ``t`` predicts token ``t + 1``, as ``labels[:, 1:]``.
    In a multi-process run every process calls this with its share of the step's batch and
    gets the figures of the whole batch.
    """
    arrays = (entropy.detach().float().cpu().numpy(), (labels[:, 1:] != -100).cpu().numpy(),
              query_mask[:, 1:].bool().cpu().numpy(), answer_mask[:, 1:].bool().cpu().numpy())
    # Widths differ between processes: the token-wise figures need only the flat arrays.
    shares = distributed.gather([tuple(a.ravel() for a in arrays)])
    h, agent, query, answer = (np.concatenate([s[i] for s in shares]) for i in range(4))
    return token_entropy_stats(h, agent, query, answer)


class DemoSFTTrainer(ResumableTrainerMixin, MeasuredTrainerMixin, SFTTrainer):
    """``SFTTrainer`` that reports each batch's demonstrations and teacher-forced entropies.

    Overrides ``compute_loss`` only to take the extra collator columns out of the model inputs
    and to read the fused LM head's entropies (through a forward hook) for the step's figures;
    each checkpoint also holds TRL's count of tokens trained on (``ResumableTrainerMixin``),
    which TRL's own checkpoint lacks, so a resumed phase logs the same ``num_tokens``.
    """

    def __init__(self, *, monitor: PhaseMonitor, demos: Sequence[Trajectory],
                 **kwargs: Any) -> None:
        self.monitor, self.demos = monitor, list(demos)
        super().__init__(**kwargs)
        keep_own_head(self.model)

    def resume_state(self) -> dict[str, Any]:
        """TRL's running count of tokens trained on (``num_tokens`` in the logs)."""
        return {"total_train_tokens": self._total_train_tokens}

    def load_resume_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`resume_state` returned."""
        self._total_train_tokens = state["total_train_tokens"]

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """TRL's loss; the step's demonstrations and entropies go to the monitor."""
        query_mask, answer_mask = (inputs.pop(c) for c in MASK_COLUMNS)
        index = inputs.pop("demo_index")
        captured: dict[str, torch.Tensor] = {}

        def keep_entropy(_module: Any, _args: Any, output: Any) -> None:
            if getattr(output, "entropy", None) is not None:
                captured["entropy"] = output.entropy

        hook = model.register_forward_hook(keep_entropy)
        try:
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            hook.remove()
        if model.training:
            self.monitor.observe([self.demos[i] for i in index.tolist()],
                                 tokens=int(inputs["attention_mask"].sum()))
            if "entropy" in captured:
                self.monitor.set_token_entropy(teacher_forced_entropy(
                    captured["entropy"], inputs["labels"], query_mask, answer_mask))
        return loss


def sft_config(common: dict[str, Any], cfg: SFTPhaseConfig) -> SFTConfig:
    """Build the ``SFTConfig`` of an SFT phase from ``trainer_args.common_args`` and ``cfg``."""
    return SFTConfig(
        **common,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        remove_unused_columns=False,
        max_length=None,  # episodes are cut to model.max_length when encoded
        shuffle_dataset=False,
        train_sampling_strategy="sequential",  # the demonstrations come strategy-balanced
        packing=False,
    )


def run_sft(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, policy: LMPolicy,
    demos: Sequence[Trajectory], cfg: SFTPhaseConfig, common: dict[str, Any],
    monitor: PhaseMonitor, resume_from: Path | None,
    callbacks: Sequence[TrainerCallback] = (),
) -> None:
    """Train ``model`` on ``demos`` in the given (strategy-balanced) order, one pass.

    Args:
        model: The policy model (trained in place).
        tokenizer: Its tokenizer (the ``processing_class``).
        policy: An ``LMPolicy`` over the model: it defines the token layout.
        demos: ``max_steps * batch_size`` demonstrations per process, in training order (the
            ``Trainer`` deals each process its batches).
        cfg: SFT settings.
        common: ``trainer_args.common_args`` for this phase.
        monitor: The phase's monitor (logging, evaluation, checkpoint commits).
        resume_from: A ``checkpoint-N`` folder of this phase to continue from.
        callbacks: Extra ``transformers`` callbacks.
    """
    dataset = demonstration_dataset(policy, demos, policy.max_length)
    run_trainer(DemoSFTTrainer(
        monitor=monitor, demos=demos, model=model, args=sft_config(common, cfg),
        train_dataset=dataset,
        processing_class=tokenizer, data_collator=DemoCollator(policy.pad_id),
        callbacks=[monitor, *callbacks],
    ), resume_from)

