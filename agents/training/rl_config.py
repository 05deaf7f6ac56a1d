"""Configuration of the RL phase: GRPO settings, entropy regulation and the phase schedule."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

from agents.training.checks import check as _check
from agents.training.checks import finite as _finite
from agents.training.checks import learning_rate as _learning_rate
from agents.training.checks import positive as _positive
from agents.training.checks import within as _within

SCHEDULE_KINDS = ("sft_only", "rl_only", "sft_then_rl", "alternating", "diversity_triggered")
GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


@dataclass
class RLPhaseConfig:
    """GRPO on environment rollouts (``trl.GRPOTrainer``).

    One optimizer step sees ``questions_per_step * num_generations`` episodes (times
    ``gradient_accumulation_steps``, times the number of processes under ``accelerate launch``:
    each plays its own questions); each rollout batch serves ``num_iterations`` passes.

    Attributes:
        learning_rate: RL learning rate; far below SFT's (in a probe, 3e-3 destroyed a tiny
            policy under plain policy gradient within ~30 updates, 1e-4 stayed stable).
        questions_per_step: Distinct questions per micro-batch, per process.
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
        use_vllm: Generate rollout turns with vLLM through TRL (``agents.lm.vllm_turns``);
            needs vLLM installed, a CUDA GPU and a Hugging Face checkpoint (``model=hf_local``).
        vllm_mode: ``colocate`` (vLLM in the training process) or ``server`` (a
            ``trl vllm-serve`` process at ``vllm_server_base_url``).
        vllm_server_base_url: The server's URL in ``server`` mode (``None``: TRL's default).
        vllm_gpu_memory_utilization: Share of GPU memory vLLM may take in ``colocate`` mode.
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
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_server_base_url: str | None = None
    vllm_gpu_memory_utilization: float = 0.3

    def __post_init__(self) -> None:
        _finite("rl", self)
        _check(self.vllm_mode in ("colocate", "server"),
               f"rl.vllm_mode must be 'colocate' or 'server', got {self.vllm_mode!r}")
        _within("rl.vllm_gpu_memory_utilization", self.vllm_gpu_memory_utilization, 0.0, 1.0,
                "a share of the GPU's memory", low_open=True)
        _check(not self.use_vllm or importlib.util.find_spec("vllm") is not None,
               "rl.use_vllm=true needs vLLM, which is not installed: pip install vllm (Linux "
               "with a CUDA GPU), or set rl.use_vllm=false")
        _learning_rate("rl.learning_rate", self.learning_rate)
        _positive("rl", questions_per_step=self.questions_per_step,
                  num_iterations=self.num_iterations, temperature=self.temperature,
                  gradient_accumulation_steps=self.gradient_accumulation_steps,
                  max_grad_norm=self.max_grad_norm)
        _check(self.num_generations >= 2,
               f"rl.num_generations must be >= 2 (GRPO compares episodes of one question), "
               f"got {self.num_generations}")
        _check(self.loss_type in GRPO_LOSS_TYPES,
               f"rl.loss_type must be one of {GRPO_LOSS_TYPES}, got {self.loss_type!r}")
        _check(self.scale_rewards in ("group", "batch", "none"),
               f"rl.scale_rewards must be 'group', 'batch' or 'none', got {self.scale_rewards!r}")
        _within("rl.top_p", self.top_p, 0.0, 1.0, "a probability mass; 1 samples from the "
                "whole distribution", low_open=True)
        _within("rl.beta", self.beta, 0.0, math.inf, "a negative KL coefficient pushes the "
                "policy away from the reference")
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
        epsilon_low: Lower PPO ratio clip (> 0; ``inf`` clips nothing).
        epsilon_high: Upper ratio clip, at least ``epsilon_low``; above it, DAPO's clip-higher.
        clip_cov_ratio: Clip-Cov's ``r``: share of tokens whose gradient is detached.
        clip_cov_lb: Clip-Cov's lower covariance bound.
        clip_cov_ub: Clip-Cov's upper covariance bound.
        kl_cov_ratio: KL-Cov's ``k``: share of tokens (top by covariance) given the penalty.
        kl_cov_beta: KL-Cov's weight of ``|logp - logp_old|``.
        planning_boost: HICRA's ``alpha`` in [0, 1): query-token advantages become
            ``A + alpha * |A|`` (from 1 on, negative ones would turn non-negative).
        strategy_bonus: Reward bonus of a correct rollout whose query strategy is rare in its
            GRPO group (``agents.training.rewards.strategy_bonus``); 0 turns it off.
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
    strategy_bonus: float = 0.0

    def __post_init__(self) -> None:
        from agents.training.losses import POLICY_LOSSES

        _finite("entropy", self, unbounded=("epsilon_low", "epsilon_high"))
        _check(self.policy_loss in POLICY_LOSSES,
               f"entropy.policy_loss must be one of {sorted(POLICY_LOSSES)}, "
               f"got {self.policy_loss!r}")
        _within("entropy.top_entropy_quantile", self.top_entropy_quantile, 0.0, 1.0,
                "the share of tokens that keep their policy gradient; 0 keeps none",
                low_open=True)
        for name in ("entropy_coef", "entropy_coef_max", "entropy_target"):
            _within(f"entropy.{name}", getattr(self, name), 0.0, math.inf,
                    "a negative entropy bonus or target drives entropy down")
        _within("entropy.entropy_coef_delta", self.entropy_coef_delta, 0.0, math.inf,
                "the adaptive coefficient's step; 0 never moves it", low_open=True)
        _within("entropy.epsilon_low", self.epsilon_low, 0.0, math.inf,
                "the ratio is clipped to [1 - epsilon_low, 1 + epsilon_high]; inf: no clip",
                low_open=True)
        for name in ("clip_cov_ratio", "kl_cov_ratio"):
            _within(f"entropy.{name}", getattr(self, name), 0.0, 1.0, "a share of the tokens",
                    low_open=True)
        _check(self.epsilon_high >= self.epsilon_low,
               f"entropy.epsilon_high ({self.epsilon_high}) must be >= epsilon_low "
               f"({self.epsilon_low}); clip-higher raises only the upper bound")
        _check(self.clip_cov_lb < self.clip_cov_ub,
               f"entropy.clip_cov_lb ({self.clip_cov_lb}) must be < clip_cov_ub "
               f"({self.clip_cov_ub})")
        _within("entropy.strategy_bonus", self.strategy_bonus, 0.0, math.inf,
                "a negative bonus would punish correct episodes for rare strategies")
        _within("entropy.kl_cov_beta", self.kl_cov_beta, 0.0, math.inf,
                "a negative weight rewards moving away from the rollout policy")
        _within("entropy.planning_boost", self.planning_boost, 0.0, 1.0,
                "A + alpha * |A| turns every negative query-token advantage non-negative once "
                "alpha >= 1", high_open=True)
        _check(self.entropy_coef <= self.entropy_coef_max or not self.adaptive_entropy,
               f"entropy.entropy_coef ({self.entropy_coef}) must be <= entropy_coef_max "
               f"({self.entropy_coef_max}) with adaptive_entropy")


@dataclass
class ScheduleConfig:
    """How SFT and RL phases follow each other.

    ``sft_only``: one SFT phase, no RL (the baseline RL is measured against; ``rl_steps`` is
    unused). ``rl_only``: RL only. ``sft_then_rl``: one SFT phase, then RL. ``alternating``:
    SFT, then RL phases of ``period`` steps with an SFT refresh of ``refresh_steps`` between them.
    ``diversity_triggered``: SFT, then RL that stops for an SFT refresh when the squeeze shows
    (``agents.training.schedule.EntropyTrigger``): over windows of ``period`` steps, the strategy
    entropy of the correct rollouts has fallen by ``entropy_drop`` (a fraction) from the phase's
    first window, the share of GRPO groups with a correct rollout by ``pass_drop``, or the
    strategy entropy of all queries is below ``entropy_threshold`` bits, in ``patience``
    windows in a row. With ``replay``,
    successful RL episodes using a strategy the RL policy under-uses join the demonstration pool.

    Attributes:
        kind: One of ``sft_only``, ``rl_only``, ``sft_then_rl``, ``alternating``,
            ``diversity_triggered``.
        rl_steps: Total RL optimizer steps of the run.
        period: RL steps per phase (alternating) or per entropy window (diversity_triggered).
        refresh_steps: Optimizer steps of each SFT refresh.
        refresh_learning_rate: Peak learning rate of SFT refreshes (``None``: the first SFT
            phase's ``sft.learning_rate``).
        entropy_threshold: Strategy entropy (bits) of all queries below which a refresh is
            triggered.
        entropy_drop: Relative fall of the correct rollouts' strategy entropy that triggers a
            refresh.
        pass_drop: Relative fall of the share of GRPO groups with a correct rollout that
            triggers a refresh.
        patience: Windows in a row that must show the fall (or the low entropy) to trigger.
        replay: Add successful RL episodes of under-used strategies to the pool.
        replay_max: Most episodes replayed per refresh.
        replay_rare_ratio: A strategy is under-used when its share of RL queries is below this
            ratio times its share of demonstration queries.
    """

    kind: str = "sft_then_rl"
    rl_steps: int = 60
    period: int = 10
    refresh_steps: int = 30
    refresh_learning_rate: float | None = None
    entropy_threshold: float = 0.25
    # Calibrated on 200 plain-GRPO steps from the default SFT model (results/trigger_calibration):
    # windows move by about +-4% (entropy) and +-8% (groups solved) between themselves, and the
    # squeeze took the first figure down 12% and the second 16%.
    entropy_drop: float = 0.1
    pass_drop: float = 0.15
    patience: int = 1
    replay: bool = False
    replay_max: int = 64
    replay_rare_ratio: float = 0.5

    def __post_init__(self) -> None:
        _finite("schedule", self)
        _check(self.kind in SCHEDULE_KINDS,
               f"schedule.kind must be one of {SCHEDULE_KINDS}, got {self.kind!r}")
        _positive("schedule", rl_steps=self.rl_steps, period=self.period,
                  refresh_steps=self.refresh_steps, replay_max=self.replay_max,
                  patience=self.patience,
                  replay_rare_ratio=self.replay_rare_ratio)
        _within("schedule.entropy_drop", self.entropy_drop, 0.0, 1.0,
                "a relative fall of the strategy entropy", low_open=True, high_open=True)
        _within("schedule.pass_drop", self.pass_drop, 0.0, 1.0,
                "a relative fall of the share of groups solved; 1 never fires", low_open=True)
        _within("schedule.entropy_threshold", self.entropy_threshold, 0.0, math.inf,
                "strategy entropy is >= 0 bits, so a negative floor never fires")
        if self.refresh_learning_rate is not None:
            _learning_rate("schedule.refresh_learning_rate", self.refresh_learning_rate)
        _check(not self.replay or self.kind in ("alternating", "diversity_triggered"),
               f"schedule.replay needs SFT refreshes (kind 'alternating' or "
               f"'diversity_triggered'), got kind {self.kind!r}")
