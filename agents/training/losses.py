"""Pure torch loss and mask functions for entropy-regulated GRPO.

Conventions shared by every function here:

- per-token tensors have shape ``[B, T]``;
- ``mask`` is a {0, 1} float or bool ``[B, T]`` tensor marking the tokens that carry loss (agent
  tokens); it is 0 on prompt padding and on retrieved ``<information>`` tokens. Values of any
  other tensor at ``mask == 0`` positions are never read into a result (they may be garbage,
  even ``inf``/``nan``) and receive exactly zero gradient;
- ``advantages`` is ``[B]`` (one value per sequence, broadcast over ``T``) or ``[B, T]``;
- ``logp`` are the current per-token log-probs (with grad), ``old_logp`` the sampling-time ones.

Methods: forking tokens (Wang et al. 2025, arXiv 2506.01939), Clip-Cov / KL-Cov (Cui et al. 2025,
arXiv 2505.22617; selection rules as in verl's ``compute_policy_loss_clip_cov`` and
``compute_policy_loss_kl_cov``, ``verl/trainer/ppo/core_algos.py``), planning-token advantage
boost (HICRA, arXiv 2509.03646), clip-higher (DAPO) and adaptive entropy control (Skywork-OR1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "AdaptiveEntropyCoef",
    "ClipCovConfig",
    "KLCovConfig",
    "clip_cov_select",
    "entropy_bonus",
    "forking_mask",
    "kl_cov_select",
    "planning_boost",
    "policy_loss",
    "token_covariance",
]

LossType = Literal["dapo", "grpo"]


@dataclass(frozen=True)
class ClipCovConfig:
    """Clip-Cov settings (Cui et al. 2025).

    Attributes:
        ratio: Fraction of the valid tokens whose gradient is cut (``r``).
        lb: Lower bound (exclusive) of the covariance band eligible for selection.
        ub: Upper bound (exclusive) of the covariance band eligible for selection.
    """

    ratio: float = 2e-4
    lb: float = 1.0
    ub: float = 5.0


@dataclass(frozen=True)
class KLCovConfig:
    """KL-Cov settings (Cui et al. 2025).

    Attributes:
        ratio: Fraction of the valid tokens that get the KL penalty (``k``).
        beta: Weight of the ``|logp - old_logp|`` penalty.
    """

    ratio: float = 2e-4
    beta: float = 1.0


def _valid(mask: Tensor) -> Tensor:
    """Return ``mask`` as a bool tensor."""
    return mask if mask.dtype == torch.bool else mask != 0


def _expand_advantages(advantages: Tensor, like: Tensor) -> Tensor:
    """Broadcast ``[B]`` advantages to the ``[B, T]`` shape of ``like``."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    return advantages.expand_as(like)


def forking_mask(entropies: Tensor, mask: Tensor, rho: float = 0.2) -> Tensor:
    """Mark the high-entropy "forking" tokens of a batch (Wang et al. 2025).

    The threshold is ``torch.quantile(entropies[valid], 1 - rho)`` (linear interpolation) over
    the valid tokens of the whole batch, and a valid token is kept when its entropy is
    ``>= threshold``. ``rho = 1`` keeps every valid token; ``rho = 0`` keeps the maximum.
    With ``N`` distinct values, exactly ``N - ceil((1 - rho) * (N - 1))`` tokens are kept. Ties:
    every token equal to the threshold is kept, so with repeated values more than that many (and
    more than a ``rho`` share) may be kept. This matches TRL's ``top_entropy_quantile`` rule.
    ``torch.quantile`` accepts at most 2**24 valid tokens per call.

    Args:
        entropies: Per-token entropies ``[B, T]``.
        mask: Valid-token mask ``[B, T]``.
        rho: Share of valid tokens to keep, in ``[0, 1]``.

    Returns:
        Bool ``[B, T]`` mask, always False where ``mask`` is 0.
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    valid = _valid(mask)
    if not bool(valid.any()):
        return torch.zeros_like(valid)
    values = entropies.detach().float()
    threshold = torch.quantile(values[valid], 1.0 - rho)
    return valid & (values >= threshold)


def planning_boost(advantages: Tensor, query_mask: Tensor, alpha: float = 0.2) -> Tensor:
    """Boost the advantage of planning (query) tokens: ``A' = A + alpha * |A|`` (HICRA).

    Positive advantages grow by a factor ``1 + alpha``, negative ones shrink in magnitude by
    ``1 - alpha``; tokens outside ``query_mask`` keep ``A``.

    Args:
        advantages: ``[B]`` or ``[B, T]`` advantages.
        query_mask: ``[B, T]`` mask of the query tokens.
        alpha: Boost factor.

    Returns:
        ``[B, T]`` advantages.
    """
    adv = _expand_advantages(advantages, query_mask)
    return torch.where(_valid(query_mask), adv + alpha * adv.abs(), adv)


def token_covariance(logp: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Per-token covariance between log-prob and advantage (Cui et al. 2025).

    ``cov_t = (A_t - mean A) * (logp_t - mean logp)``, the means taken over the valid tokens of
    the whole batch. The result is detached (it only drives token selection) and 0 where
    ``mask`` is 0.

    Args:
        logp: Current per-token log-probs ``[B, T]``.
        advantages: ``[B]`` or ``[B, T]`` advantages.
        mask: Valid-token mask ``[B, T]``.

    Returns:
        Detached float ``[B, T]`` covariance.
    """
    valid = _valid(mask)
    zero = torch.zeros((), dtype=torch.float32, device=logp.device)
    lp = torch.where(valid, logp.detach().float(), zero)
    adv = torch.where(valid, _expand_advantages(advantages.detach(), logp).float(), zero)
    n = valid.sum().clamp(min=1)
    cov = (adv - adv.sum() / n) * (lp - lp.sum() / n)
    return torch.where(valid, cov, zero)


def clip_cov_select(
    cov: Tensor,
    mask: Tensor,
    clip_ratio: float = 2e-4,
    lb: float = 1.0,
    ub: float = 5.0,
    generator: torch.Generator | None = None,
    *,
    exclude: Tensor | None = None,
) -> Tensor:
    """Pick the Clip-Cov tokens whose gradient is cut.

    Rule (verl ``compute_policy_loss_clip_cov``): with ``N`` valid tokens, the candidates are the
    valid tokens with ``lb < cov < ub`` (and not in ``exclude``; verl excludes the tokens already
    clipped by the PPO ratio clip). ``n = max(1, int(clip_ratio * N))`` of them are drawn
    uniformly without replacement, or all candidates if fewer. So at least one token is chosen
    whenever a candidate exists (never rounded down to zero); none when there is no candidate.

    Args:
        cov: Per-token covariance ``[B, T]`` (see :func:`token_covariance`).
        mask: Valid-token mask ``[B, T]``.
        clip_ratio: Fraction ``r`` of the valid tokens to select; must be > 0.
        lb: Exclusive lower bound of the eligible covariance band.
        ub: Exclusive upper bound of the eligible covariance band.
        generator: Random generator for a reproducible draw.
        exclude: Optional ``[B, T]`` mask of tokens that may not be chosen.

    Returns:
        Bool ``[B, T]`` mask of the selected tokens.
    """
    if clip_ratio <= 0:
        raise ValueError(f"clip_ratio must be > 0, got {clip_ratio}")
    valid = _valid(mask)
    candidates = valid & (cov > lb) & (cov < ub)
    if exclude is not None:
        candidates = candidates & ~_valid(exclude)
    selected = torch.zeros_like(valid)
    flat_idx = torch.nonzero(candidates.reshape(-1), as_tuple=True)[0]
    n_candidates = flat_idx.numel()
    if n_candidates == 0:
        return selected
    n_select = min(max(1, int(clip_ratio * int(valid.sum().item()))), n_candidates)
    perm_device = generator.device if generator is not None else flat_idx.device
    perm = torch.randperm(n_candidates, generator=generator, device=perm_device)
    chosen = flat_idx[perm[:n_select].to(flat_idx.device)]
    selected.view(-1)[chosen] = True
    return selected


def kl_cov_select(cov: Tensor, mask: Tensor, k_ratio: float = 2e-4) -> Tensor:
    """Pick the KL-Cov tokens: the top-k valid tokens by covariance.

    Rule (verl ``compute_policy_loss_kl_cov``): with ``N`` valid tokens,
    ``k = max(1, int(k_ratio * N))`` (capped at ``N``) tokens with the largest ``cov`` are chosen;
    none when ``N == 0``. The top-k is taken regardless of the sign of ``cov``; ties at the k-th
    value are broken by ``torch.topk``.

    Args:
        cov: Per-token covariance ``[B, T]`` (see :func:`token_covariance`).
        mask: Valid-token mask ``[B, T]``.
        k_ratio: Fraction ``k`` of the valid tokens to select; must be > 0.

    Returns:
        Bool ``[B, T]`` mask of the selected tokens.
    """
    if k_ratio <= 0:
        raise ValueError(f"k_ratio must be > 0, got {k_ratio}")
    valid = _valid(mask)
    selected = torch.zeros_like(valid)
    flat_idx = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    n_valid = flat_idx.numel()
    if n_valid == 0:
        return selected
    k = min(max(1, int(k_ratio * n_valid)), n_valid)
    top = torch.topk(cov.reshape(-1)[flat_idx].float(), k, largest=True).indices
    selected.view(-1)[flat_idx[top]] = True
    return selected


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    clip_cov: ClipCovConfig | None = None,
    kl_cov: KLCovConfig | None = None,
    generator: torch.Generator | None = None,
    loss_type: LossType = "dapo",
    keep_mask: Tensor | None = None,
    normalizer: float | Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped PPO/GRPO policy loss with optional Clip-Cov and KL-Cov.

    Per valid token, with ``ratio = exp(logp - old_logp)``:
    ``pg = max(-A * ratio, -A * clamp(ratio, 1 - epsilon_low, 1 + epsilon_high))``.

    - Clip-Cov: ``cov`` from :func:`token_covariance`; tokens chosen by :func:`clip_cov_select`
      (tokens already clipped by the ratio clip are not eligible, as in verl) have their loss
      multiplied by 0, so they give no gradient (and no loss value) but, as in verl, still count
      in the denominator.
    - KL-Cov: on the tokens chosen by :func:`kl_cov_select` the loss is the unclipped
      ``-A * ratio + beta * |logp - old_logp|``. Other tokens keep the clipped loss; verl's KL-Cov
      uses the unclipped loss on every token, which ``epsilon_low = epsilon_high = inf`` gives.
    - A token chosen by both gets the Clip-Cov treatment (zero).

    Aggregation: ``"dapo"`` sums over valid tokens and divides by ``normalizer`` (default: the
    number of valid tokens in the batch); ``"grpo"`` averages over each sequence's valid tokens,
    then over all ``B`` sequences (as TRL's ``"grpo"``; a sequence without valid tokens counts 0).

    Args:
        logp: Current per-token log-probs ``[B, T]`` (with grad).
        old_logp: Sampling-time per-token log-probs ``[B, T]``.
        advantages: ``[B]`` or ``[B, T]`` advantages.
        mask: Valid-token mask ``[B, T]``; masked tokens get exactly zero gradient.
        epsilon_low: Lower ratio clip.
        epsilon_high: Upper ratio clip (clip-higher when > ``epsilon_low``).
        clip_cov: Clip-Cov settings, or None to disable.
        kl_cov: KL-Cov settings, or None to disable.
        generator: Random generator for the Clip-Cov draw.
        loss_type: ``"dapo"`` or ``"grpo"``.
        keep_mask: Optional ``[B, T]`` mask multiplied into the per-token loss after selection,
            without changing denominators (e.g. :func:`forking_mask`, as TRL applies
            ``top_entropy_quantile``).
        normalizer: Denominator for ``"dapo"`` (e.g. the token count of a whole accumulation
            window); defaults to the number of valid tokens here.

    Returns:
        ``(loss, stats)``: ``loss`` is a float32 scalar; ``stats`` holds floats
        ``clip_cov_fraction`` and ``kl_cov_fraction`` (selected / valid tokens), ``clip_ratio``
        (share of valid tokens whose loss uses the clipped branch, i.e. clipped term > unclipped
        term) and ``kl_cov_penalty`` (mean ``beta * |logp - old_logp|`` over the KL-Cov tokens,
        0 if none).
    """
    if loss_type not in ("dapo", "grpo"):
        raise ValueError(f"loss_type must be 'dapo' or 'grpo', got {loss_type!r}")
    valid = _valid(mask)
    zero = torch.zeros((), dtype=torch.float32, device=logp.device)
    # Select before any arithmetic so garbage on masked tokens never reaches forward or backward.
    # Computed in float32 whatever the input precision.
    log_ratio = torch.where(valid, logp.float() - old_logp.detach().float(), zero)
    adv = torch.where(valid, _expand_advantages(advantages.detach(), logp).float(), zero)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    per_token = torch.maximum(unclipped, clipped)
    clip_active = valid & (clipped > unclipped)

    n_valid = int(valid.sum().item())
    stats = {"clip_cov_fraction": 0.0, "kl_cov_fraction": 0.0, "kl_cov_penalty": 0.0}
    if clip_cov is not None or kl_cov is not None:
        cov = token_covariance(logp, adv, valid)
        if kl_cov is not None:
            kl_sel = kl_cov_select(cov, valid, kl_cov.ratio)
            penalty = kl_cov.beta * log_ratio.abs()
            per_token = torch.where(kl_sel, unclipped + penalty, per_token)
            clip_active = clip_active & ~kl_sel
            n_kl = int(kl_sel.sum().item())
            stats["kl_cov_fraction"] = n_kl / max(n_valid, 1)
            if n_kl:
                stats["kl_cov_penalty"] = float(penalty.detach()[kl_sel].mean().item())
        if clip_cov is not None:
            cc_sel = clip_cov_select(
                cov, valid, clip_cov.ratio, clip_cov.lb, clip_cov.ub, generator, exclude=clip_active
            )
            per_token = torch.where(cc_sel, zero, per_token)
            stats["clip_cov_fraction"] = int(cc_sel.sum().item()) / max(n_valid, 1)
    stats["clip_ratio"] = int(clip_active.sum().item()) / max(n_valid, 1)

    if keep_mask is not None:
        per_token = torch.where(_valid(keep_mask), per_token, zero)
    per_token = torch.where(valid, per_token, zero)

    if loss_type == "dapo":
        denom = normalizer if normalizer is not None else max(n_valid, 1)
        loss = per_token.sum() / denom
    else:
        per_seq = valid.sum(dim=-1).clamp(min=1).float()
        loss = (per_token.sum(dim=-1) / per_seq).mean()
    return loss, stats


def entropy_bonus(entropies: Tensor, mask: Tensor) -> Tensor:
    """Mean entropy over the valid tokens (0 if none), for a loss term ``-coef * H``.

    Args:
        entropies: Per-token entropies ``[B, T]`` (with grad).
        mask: Valid-token mask ``[B, T]``.

    Returns:
        Scalar mean entropy.
    """
    valid = _valid(mask)
    zero = torch.zeros((), dtype=entropies.dtype, device=entropies.device)
    return torch.where(valid, entropies, zero).sum() / valid.sum().clamp(min=1)


@dataclass
class AdaptiveEntropyCoef:
    """Adaptive entropy-bonus coefficient (Skywork-OR1, as TRL's ``use_adaptive_entropy``).

    Each :meth:`update` adds ``step`` to ``coef`` when the entropy is at or below ``target`` and
    subtracts it when above, clamped to ``[coef_min, coef_max]``. Skywork-OR1 applies the bonus only
    while entropy is at or below target; :meth:`effective` returns that gated value.

    Attributes:
        target: Target mean token entropy (nats).
        coef: Current coefficient.
        step: Additive step per update.
        coef_min: Lower clamp.
        coef_max: Upper clamp.
    """

    target: float
    coef: float = 0.0
    step: float = 0.005
    coef_min: float = 0.0
    coef_max: float = 1.0

    def __post_init__(self) -> None:
        if self.coef_min > self.coef_max:
            raise ValueError(f"coef_min {self.coef_min} > coef_max {self.coef_max}")
        if self.step < 0:
            raise ValueError(f"step must be >= 0, got {self.step}")
        self.coef = min(max(self.coef, self.coef_min), self.coef_max)

    def update(self, current_entropy: float) -> float:
        """Move the coefficient one step toward restoring the target entropy.

        Args:
            current_entropy: Mean token entropy measured this step.

        Returns:
            The new coefficient.
        """
        delta = self.step if current_entropy <= self.target else -self.step
        self.coef = min(max(self.coef + delta, self.coef_min), self.coef_max)
        return self.coef

    def effective(self, current_entropy: float) -> float:
        """Return the coefficient to apply: ``coef`` at or below target, else 0."""
        return self.coef if current_entropy <= self.target else 0.0
