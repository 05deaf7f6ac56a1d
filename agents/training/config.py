"""Training configuration: plain dataclasses with defaults, validated on construction.

They are the schema of the Hydra structured configs of the training CLI, so they hold only
plain values (numbers, strings, lists, dicts of plain values) and are not frozen: OmegaConf
marks configs built from frozen dataclasses read-only, and command-line overrides then fail.
Library code treats them as read-only all the same.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from agents.lm.model import tiny_llama_config
from agents.scripted.demonstrators import DEMONSTRATORS

SCHEDULE_KINDS = ("rl_only", "sft_then_rl", "alternating", "diversity_triggered")
GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        _check(value > 0, f"{owner}.{name} must be > 0, got {value}")


@dataclass
class EnvConfig:
    """The search environment the policy acts in (see ``envs.SearchEnv``).

    The corpus and the retriever are ``TrainConfig.corpus`` and ``TrainConfig.retriever``.

    Attributes:
        top_k: Documents per search.
        max_turns: Turn budget per episode.
        reward: ``em`` or ``f1``.
        format_penalty: Subtracted from the reward per invalid action.
        batch_size: Episodes stepped together (one retrieval call per turn).
    """

    top_k: int = 3
    max_turns: int = 4
    reward: str = "em"
    format_penalty: float = 0.0
    batch_size: int = 64

    def __post_init__(self) -> None:
        _positive("env", top_k=self.top_k, max_turns=self.max_turns, batch_size=self.batch_size)
        _check(self.reward in ("em", "f1"), f"env.reward must be 'em' or 'f1', got {self.reward!r}")


@dataclass
class ModelConfig:
    """The policy model and how it samples.

    Attributes:
        name: ``tiny`` (a small Llama built with a tokenizer trained on the corpus) or a
            Hugging Face causal LM id or local path.
        use_chat_template: Render turns with the tokenizer's chat template; ``None`` uses it when
            the tokenizer has one.
        max_new_tokens: Generation budget per turn.
        max_length: Longest episode (prompt and all turns) in tokens.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        gradient_checkpointing: Recompute activations in backward (saves memory on large
            models, costs time; TRL turns it on by default, the tiny model does not need it).
        tiny: Size of the ``tiny`` model: ``tiny_llama_config`` arguments (``hidden_size``,
            ``num_layers``, ``num_heads``, ``intermediate_size``); ignored for other models.
        smear_keys: Give the ``tiny`` model smeared attention keys (``agents.lm.smeared``), which
            let it learn to copy names within a CPU run; ``false`` builds a plain Llama.
        pointer: Give the ``tiny`` model a pointer (copy) head (``agents.lm.pointer``) that can
            emit any token of the context; needs ``smear_keys``.
        lora: Train low-rank adapters (``peft``) instead of every weight; each phase trains
            fresh adapters and merges them into the weights it saves.
        lora_r: Adapter rank.
        lora_alpha: Adapter scaling numerator (the update is scaled by ``alpha / r``).
        lora_dropout: Dropout on the adapter input.
        lora_target_modules: Module names given adapters; ``[all-linear]`` is every linear layer
            but the output head.
    """

    name: str = "tiny"
    use_chat_template: bool | None = None
    max_new_tokens: int = 48
    max_length: int = 1024
    device: str = "auto"
    gradient_checkpointing: bool = False
    tiny: dict[str, int] = field(default_factory=dict)
    smear_keys: bool = True
    pointer: bool = True
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])

    def __post_init__(self) -> None:
        _positive("model", max_new_tokens=self.max_new_tokens, max_length=self.max_length,
                  lora_r=self.lora_r, lora_alpha=self.lora_alpha)
        sizes = sorted(set(inspect.signature(tiny_llama_config).parameters)
                       - {"vocab_size", "smear_keys", "pointer"})
        unknown = sorted(set(self.tiny) - set(sizes))
        _check(not unknown, f"model.tiny has unknown {unknown}; choose from {sizes}")
        _positive("model.tiny", **self.tiny)
        _check(self.smear_keys or not self.pointer,
               "model.pointer=true needs model.smear_keys=true (both belong to the "
               "forksearch_llama architecture); set model.pointer=false for a plain Llama")
        _check(0.0 <= self.lora_dropout < 1.0,
               f"model.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        _check(bool(self.lora_target_modules),
               "model.lora_target_modules must name at least one module (or [all-linear])")
        _check(self.device in ("auto", "cpu", "cuda"),
               f"model.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass
class DemoConfig:
    """Demonstrations: successful episodes of the scripted demonstrators on the train split.

    Attributes:
        strategies: Demonstrator strategies to run (keys of ``DEMONSTRATORS``).
        max_questions: Train questions used (``None``: the whole split).
        max_searches: Search budget of each demonstrator.
        rename_entities: Share of SFT demonstrations whose entity names are replaced by fresh
            invented ones (``EntityRenamer``), so that names must be copied, not memorised.
    """

    strategies: list[str] = field(default_factory=lambda: list(DEMONSTRATORS))
    max_questions: int | None = None
    max_searches: int = 3
    rename_entities: float = 0.0

    def __post_init__(self) -> None:
        known = sorted(DEMONSTRATORS)
        unknown = sorted(set(self.strategies) - set(DEMONSTRATORS))
        _check(bool(self.strategies), f"demos.strategies must not be empty; choose from {known}")
        _check(not unknown, f"demos.strategies has unknown {unknown}; choose from {known}")
        _positive("demos", max_searches=self.max_searches)
        _check(0.0 <= self.rename_entities <= 1.0,
               f"demos.rename_entities must be in [0, 1], got {self.rename_entities}")
        if self.max_questions is not None:
            _positive("demos", max_questions=self.max_questions)


@dataclass
class SFTPhaseConfig:
    """Supervised fine-tuning on demonstrations (``trl.SFTTrainer``).

    Attributes:
        steps: Optimizer steps of the first SFT phase (refreshes use ``schedule.refresh_steps``).
        batch_size: Demonstrations per optimizer step (balanced across strategies).
        learning_rate: Peak learning rate.
        lr_scheduler: ``transformers`` scheduler name.
        warmup_ratio: Share of the phase spent warming up.
        weight_decay: AdamW weight decay.
        max_grad_norm: Gradient clipping.
    """

    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        _positive("sft", steps=self.steps, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, max_grad_norm=self.max_grad_norm)
        _check(0.0 <= self.warmup_ratio < 1.0,
               f"sft.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class RLPhaseConfig:
    """GRPO on environment rollouts (``trl.GRPOTrainer``).

    One optimizer step sees ``questions_per_step * num_generations`` episodes (times
    ``gradient_accumulation_steps``); each rollout batch serves ``num_iterations`` passes.

    Attributes:
        learning_rate: RL learning rate; far below SFT's (DESIGN.md: 3e-3 destroyed a tiny
            policy under plain policy gradient, 1e-4 stayed stable).
        questions_per_step: Distinct questions per micro-batch.
        num_generations: Episodes per question (the GRPO group size).
        num_iterations: Optimizer passes over each rollout batch (> 1 makes updates off-policy).
        gradient_accumulation_steps: Micro-batches per optimizer step.
        steps_per_generation: Micro-batches per rollout batch (``None``: the accumulation steps).
        beta: KL-to-reference coefficient (0 needs no reference model).
        loss_type: How per-token losses are aggregated (TRL's names; see
            ``agents.training.losses.aggregate``).
        temperature: Sampling temperature of rollouts (TRL scores log-probs at it too).
        top_p: Nucleus sampling of rollouts.
        scale_rewards: TRL's advantage scaling: ``group``, ``batch`` or ``none``.
        max_grad_norm: Gradient clipping.
        lr_scheduler: ``transformers`` scheduler name.
    """

    learning_rate: float = 1e-4
    questions_per_step: int = 4
    num_generations: int = 4
    num_iterations: int = 2
    gradient_accumulation_steps: int = 1
    steps_per_generation: int | None = None
    beta: float = 0.0
    loss_type: str = "dapo"
    temperature: float = 1.0
    top_p: float = 1.0
    scale_rewards: str = "group"
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"

    def __post_init__(self) -> None:
        _positive("rl", learning_rate=self.learning_rate,
                  questions_per_step=self.questions_per_step,
                  num_iterations=self.num_iterations, temperature=self.temperature,
                  gradient_accumulation_steps=self.gradient_accumulation_steps)
        _check(self.num_generations >= 2,
               f"rl.num_generations must be >= 2 (GRPO compares episodes of one question), "
               f"got {self.num_generations}")
        _check(self.loss_type in GRPO_LOSS_TYPES,
               f"rl.loss_type must be one of {GRPO_LOSS_TYPES}, got {self.loss_type!r}")
        _check(self.scale_rewards in ("group", "batch", "none"),
               f"rl.scale_rewards must be 'group', 'batch' or 'none', got {self.scale_rewards!r}")
        _check(0.0 < self.top_p <= 1.0, f"rl.top_p must be in (0, 1], got {self.top_p}")
        _check(self.beta >= 0.0, f"rl.beta must be >= 0, got {self.beta}")
        if self.steps_per_generation is not None:
            _positive("rl", steps_per_generation=self.steps_per_generation)

    @property
    def off_policy(self) -> bool:
        """Whether some updates use log-probs older than the weights (so ``logp != logp_old``)."""
        steps_per_generation = self.steps_per_generation or self.gradient_accumulation_steps
        return self.num_iterations > 1 or steps_per_generation > self.gradient_accumulation_steps


@dataclass
class EntropyRegulation:
    """Entropy-regulation levers of the RL phase; the defaults are plain GRPO (none active).

    Attributes:
        policy_loss: The per-token policy loss, a name registered in
            ``agents.training.losses.POLICY_LOSSES``: ``clip`` (PPO/GRPO clipped surrogate),
            ``clip_cov`` or ``kl_cov`` (Cui et al. 2025).
        top_entropy_quantile: Keep the policy gradient only on the top-rho entropy
            ("forking") tokens (1.0 keeps every token, the paper uses 0.2).
        entropy_coef: Entropy-bonus coefficient (the initial value when adaptive).
        adaptive_entropy: Skywork-OR1 adaptive coefficient toward ``entropy_target``.
        entropy_target: Target mean token entropy (nats) of the adaptive controller.
        entropy_coef_delta: Step of the adaptive coefficient.
        entropy_coef_max: Upper bound of the adaptive coefficient.
        epsilon_low: Lower PPO ratio clip.
        epsilon_high: Upper ratio clip; above ``epsilon_low`` it is DAPO's clip-higher.
        clip_cov_ratio: Clip-Cov's ``r``: share of tokens whose gradient is detached.
        clip_cov_lb: Clip-Cov's lower covariance bound.
        clip_cov_ub: Clip-Cov's upper covariance bound.
        kl_cov_ratio: KL-Cov's ``k``: share of tokens (top by covariance) given the penalty.
        kl_cov_beta: KL-Cov's weight of ``|logp - logp_old|``.
        planning_boost: HICRA's ``alpha``: query-token advantages become ``A + alpha * |A|``.
    """

    policy_loss: str = "clip"
    top_entropy_quantile: float = 1.0
    entropy_coef: float = 0.0
    adaptive_entropy: bool = False
    entropy_target: float = 0.5
    entropy_coef_delta: float = 0.005
    entropy_coef_max: float = 0.1
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    clip_cov_ratio: float = 2e-4
    clip_cov_lb: float = 1.0
    clip_cov_ub: float = 5.0
    kl_cov_ratio: float = 2e-3
    kl_cov_beta: float = 1.0
    planning_boost: float = 0.0

    def __post_init__(self) -> None:
        from agents.training.losses import POLICY_LOSSES

        _check(self.policy_loss in POLICY_LOSSES,
               f"entropy.policy_loss must be one of {sorted(POLICY_LOSSES)}, "
               f"got {self.policy_loss!r}")
        _check(0.0 <= self.top_entropy_quantile <= 1.0,
               f"entropy.top_entropy_quantile must be in [0, 1], got {self.top_entropy_quantile}")
        _check(self.entropy_coef >= 0.0,
               f"entropy.entropy_coef must be >= 0, got {self.entropy_coef}")
        _positive("entropy", epsilon_low=self.epsilon_low, clip_cov_ratio=self.clip_cov_ratio,
                  kl_cov_ratio=self.kl_cov_ratio)
        _check(self.epsilon_high >= self.epsilon_low,
               f"entropy.epsilon_high ({self.epsilon_high}) must be >= epsilon_low "
               f"({self.epsilon_low}); clip-higher raises only the upper bound")
        _check(self.clip_cov_lb < self.clip_cov_ub,
               f"entropy.clip_cov_lb ({self.clip_cov_lb}) must be < clip_cov_ub "
               f"({self.clip_cov_ub})")
        _check(self.kl_cov_beta >= 0.0, f"entropy.kl_cov_beta must be >= 0, got {self.kl_cov_beta}")
        _check(self.planning_boost >= 0.0,
               f"entropy.planning_boost must be >= 0, got {self.planning_boost}")
        _check(self.entropy_coef <= self.entropy_coef_max or not self.adaptive_entropy,
               f"entropy.entropy_coef ({self.entropy_coef}) must be <= entropy_coef_max "
               f"({self.entropy_coef_max}) with adaptive_entropy")


@dataclass
class ScheduleConfig:
    """How SFT and RL phases follow each other.

    ``rl_only``: RL only. ``sft_then_rl``: one SFT phase, then RL. ``alternating``: SFT, then
    RL phases of ``period`` steps with an SFT refresh of ``refresh_steps`` between them.
    ``diversity_triggered``: SFT, then RL that stops for an SFT refresh whenever the strategy
    entropy of its last ``period`` steps' rollouts is below ``entropy_threshold`` or has fallen by
    ``entropy_drop`` (a fraction) from the phase's first window. With ``replay``, successful RL
    episodes using a strategy the RL policy under-uses join the demonstration pool.

    Attributes:
        kind: One of ``rl_only``, ``sft_then_rl``, ``alternating``, ``diversity_triggered``.
        rl_steps: Total RL optimizer steps of the run.
        period: RL steps per phase (alternating) or per entropy window (diversity_triggered).
        refresh_steps: Optimizer steps of each SFT refresh.
        entropy_threshold: Strategy entropy (bits) below which a refresh is triggered.
        entropy_drop: Relative fall of strategy entropy that triggers a refresh.
        replay: Add successful RL episodes of under-used strategies to the pool.
        replay_max: Most episodes replayed per refresh.
        replay_rare_ratio: A strategy is under-used when its share of RL queries is below this
            ratio times its share of demonstration queries.
    """

    kind: str = "sft_then_rl"
    rl_steps: int = 60
    period: int = 20
    refresh_steps: int = 40
    entropy_threshold: float = 1.0
    entropy_drop: float = 0.25
    replay: bool = False
    replay_max: int = 64
    replay_rare_ratio: float = 0.5

    def __post_init__(self) -> None:
        _check(self.kind in SCHEDULE_KINDS,
               f"schedule.kind must be one of {SCHEDULE_KINDS}, got {self.kind!r}")
        _positive("schedule", rl_steps=self.rl_steps, period=self.period,
                  refresh_steps=self.refresh_steps, replay_max=self.replay_max,
                  replay_rare_ratio=self.replay_rare_ratio)
        _check(0.0 < self.entropy_drop < 1.0,
               f"schedule.entropy_drop must be in (0, 1), got {self.entropy_drop}")
        _check(self.entropy_threshold >= 0.0,
               f"schedule.entropy_threshold must be >= 0 bits, got {self.entropy_threshold}")
        _check(not self.replay or self.kind in ("alternating", "diversity_triggered"),
               f"schedule.replay needs SFT refreshes (kind 'alternating' or "
               f"'diversity_triggered'), got kind {self.kind!r}")


@dataclass
class EvalConfig:
    """Held-out measurement of the policy.

    Attributes:
        split: Corpus split evaluated.
        max_questions: Questions evaluated (``None``: the whole split).
        samples: Episodes per question (pass@k uses them).
        temperature: Sampling temperature of evaluation episodes (0: greedy).
        every: Also evaluate every this many steps of a phase (0: only at each phase's end).
    """

    split: str = "dev"
    max_questions: int | None = 100
    samples: int = 1
    temperature: float = 1.0
    every: int = 0

    def __post_init__(self) -> None:
        _positive("eval", samples=self.samples)
        _check(self.temperature >= 0, f"eval.temperature must be >= 0, got {self.temperature}")
        _check(self.every >= 0, f"eval.every must be >= 0, got {self.every}")
        if self.max_questions is not None:
            _positive("eval", max_questions=self.max_questions)


@dataclass
class TrainConfig:
    """The root configuration of a training run.

    Attributes:
        seed: Seed of the model, data order and sampling.
        env: Environment settings.
        model: Policy model settings.
        demos: Demonstration pool settings.
        sft: SFT phase settings.
        rl: RL phase settings.
        entropy: Entropy-regulation levers of RL.
        schedule: Phase schedule.
        eval: Held-out evaluation.
        save_steps: Checkpoint every this many optimizer steps (and at each phase's end).
        resume: Continue the run in the run directory from its last checkpoint.
        report_to: ``transformers`` logging integrations (``tensorboard``, ``wandb``...).
        progress: Show progress bars.
    """

    seed: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    demos: DemoConfig = field(default_factory=DemoConfig)
    sft: SFTPhaseConfig = field(default_factory=SFTPhaseConfig)
    rl: RLPhaseConfig = field(default_factory=RLPhaseConfig)
    entropy: EntropyRegulation = field(default_factory=EntropyRegulation)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    save_steps: int = 10
    resume: bool = False
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    progress: bool = True

    def __post_init__(self) -> None:
        _positive("train", save_steps=self.save_steps)
        _check(self.entropy.policy_loss != "kl_cov" or self.rl.off_policy,
               "entropy.policy_loss=kl_cov is inert with on-policy updates (logp == logp_old, so "
               "its penalty is 0): set rl.num_iterations > 1 or rl.steps_per_generation > "
               f"rl.gradient_accumulation_steps (got num_iterations={self.rl.num_iterations}, "
               f"steps_per_generation={self.rl.steps_per_generation}, "
               f"gradient_accumulation_steps={self.rl.gradient_accumulation_steps}), "
               "or choose another entropy.policy_loss")
