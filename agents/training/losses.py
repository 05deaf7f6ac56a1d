"""Per-token policy losses for entropy-regulated GRPO, registered by name, and their aggregation.

Conventions shared by every function here:

- per-token tensors have shape ``[B, T]``;
- ``mask`` is a {0, 1} float or bool ``[B, T]`` tensor marking the tokens that carry loss (agent
  tokens); it is 0 on prompt padding and on retrieved ``<information>`` tokens. Values of any
  other tensor at ``mask == 0`` positions are never read into a result (they may be garbage,
  even ``inf``/``nan``) and receive exactly zero gradient;
- ``advantages`` is ``[B]`` (one value per sequence, broadcast over ``T``) or ``[B, T]``;
- ``logp`` are the current per-token log-probs (with grad), ``old_logp`` the sampling-time ones;
- a policy loss (:data:`POLICY_LOSSES`) returns the float32 per-token loss ``[B, T]``, exactly 0
  where ``mask`` is 0, and a dict of float statistics; :func:`aggregate` reduces it to a scalar.

Aggregation (TRL's ``loss_type`` names), over the valid tokens only: ``grpo`` averages each
sequence's tokens, then the ``B`` sequences (a sequence without valid tokens counts 0);
``bnpo`` averages all tokens of the batch; ``dr_grpo`` sums and divides by
``B * max_completion_length``; ``dapo`` sums and divides by a normalizer, the number of valid
tokens of the whole accumulation window (default: of this batch).

Methods: Clip-Cov / KL-Cov (Cui et al. 2025, arXiv 2505.22617; selection rules as in verl's
``compute_policy_loss_clip_cov`` and ``compute_policy_loss_kl_cov``,
``verl/trainer/ppo/core_algos.py``), planning-token advantage boost (HICRA, arXiv 2509.03646),
clip-higher (DAPO) and adaptive entropy control (Skywork-OR1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from agents.training.config import EntropyRegulation

__all__ = [
    "POLICY_LOSSES",
    "AdaptiveEntropyCoef",
    "PolicyLoss",
    "aggregate",
    "clip_cov_select",
    "kl_cov_select",
    "planning_boost",
    "register_policy_loss",
    "token_covariance",
]


class PolicyLoss(Protocol):
    """A whole per-token policy loss (see the module docstring for the conventions)."""

    def __call__(self, logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                 reg: EntropyRegulation, generator: torch.Generator | None = None,
                 ) -> tuple[Tensor, dict[str, float]]:
        """Return the per-token loss ``[B, T]`` and the loss's statistics."""


#: Policy losses by name (``EntropyRegulation.policy_loss``).
POLICY_LOSSES: dict[str, PolicyLoss] = {}


def register_policy_loss(name: str) -> Callable[[PolicyLoss], PolicyLoss]:
    """Register the decorated function in :data:`POLICY_LOSSES` under ``name``."""
    def register(loss: PolicyLoss) -> PolicyLoss:
        if name in POLICY_LOSSES:
            raise ValueError(f"a policy loss named {name!r} is already registered")
        POLICY_LOSSES[name] = loss
        return loss
    return register


def _valid(mask: Tensor) -> Tensor:
    """Return ``mask`` as a bool tensor."""
    return mask if mask.dtype == torch.bool else mask != 0


def _expand_advantages(advantages: Tensor, like: Tensor) -> Tensor:
    """Broadcast ``[B]`` advantages to the ``[B, T]`` shape of ``like``."""
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1)
    return advantages.expand_as(like)


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


def _surrogate(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
               reg: EntropyRegulation) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The PPO terms, float32 and 0 on masked tokens: mask, log-ratio, advantages, unclipped, loss.

    The loss is ``max(-A * ratio, -A * clamp(ratio, 1 - epsilon_low, 1 + epsilon_high))``.
    """
    valid = _valid(mask)
    zero = torch.zeros((), dtype=torch.float32, device=logp.device)
    # Select before any arithmetic so garbage on masked tokens never reaches forward or backward.
    log_ratio = torch.where(valid, logp.float() - old_logp.detach().float(), zero)
    adv = torch.where(valid, _expand_advantages(advantages.detach(), logp).float(), zero)
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - reg.epsilon_low, 1.0 + reg.epsilon_high)
    return valid, log_ratio, adv, unclipped, torch.maximum(unclipped, clipped)


@register_policy_loss("clip")
def clip_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
              reg: EntropyRegulation, generator: torch.Generator | None = None,
              ) -> tuple[Tensor, dict[str, float]]:
    """PPO/GRPO clipped surrogate, clip-higher when ``epsilon_high > epsilon_low``; no stats."""
    return _surrogate(logp, old_logp, advantages, mask, reg)[4], {}


@register_policy_loss("clip_cov")
def clip_cov_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                  reg: EntropyRegulation, generator: torch.Generator | None = None,
                  ) -> tuple[Tensor, dict[str, float]]:
    """Clip-Cov: the clipped surrogate, with the loss of a few high-covariance tokens set to 0.

    The tokens are drawn by :func:`clip_cov_select` (``clip_cov_ratio``, ``clip_cov_lb``,
    ``clip_cov_ub``; tokens already clipped by the ratio clip are not eligible, as in verl)
    from :func:`token_covariance`. They give no gradient and no loss value, but still count in
    the aggregation's denominators. Stats: ``clip_cov_fraction`` (selected / valid tokens).
    """
    valid, _, adv, unclipped, ppo = _surrogate(logp, old_logp, advantages, mask, reg)
    selected = clip_cov_select(token_covariance(logp, adv, valid), valid, reg.clip_cov_ratio,
                               reg.clip_cov_lb, reg.clip_cov_ub, generator,
                               exclude=valid & (ppo > unclipped))
    fraction = int(selected.sum().item()) / max(int(valid.sum().item()), 1)
    return torch.where(selected, torch.zeros_like(ppo), ppo), {"clip_cov_fraction": fraction}


@register_policy_loss("kl_cov")
def kl_cov_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                reg: EntropyRegulation, generator: torch.Generator | None = None,
                ) -> tuple[Tensor, dict[str, float]]:
    """KL-Cov: the clipped surrogate, with a KL penalty on the top-k covariance tokens.

    On the tokens chosen by :func:`kl_cov_select` (``kl_cov_ratio``) from
    :func:`token_covariance`, the loss is the unclipped ``-A * ratio + kl_cov_beta *
    |logp - old_logp|``; other tokens keep the clipped loss (verl's KL-Cov uses the unclipped
    loss on every token, which ``epsilon_low = epsilon_high = inf`` gives). Stats:
    ``kl_cov_fraction`` (selected / valid tokens) and ``kl_cov_penalty`` (mean penalty over the
    selected tokens, 0 if none).
    """
    valid, log_ratio, adv, unclipped, ppo = _surrogate(logp, old_logp, advantages, mask, reg)
    selected = kl_cov_select(token_covariance(logp, adv, valid), valid, reg.kl_cov_ratio)
    penalty = reg.kl_cov_beta * log_ratio.abs()
    n_selected = int(selected.sum().item())
    stats = {"kl_cov_fraction": n_selected / max(int(valid.sum().item()), 1),
             "kl_cov_penalty": float(penalty.detach()[selected].mean()) if n_selected else 0.0}
    return torch.where(selected, unclipped + penalty, ppo), stats


def aggregate(per_token: Tensor, mask: Tensor, loss_type: str, *,
              max_completion_length: int | None = None,
              normalizer: float | Tensor | None = None) -> Tensor:
    """Reduce a per-token loss to a scalar as ``loss_type`` says (see the module docstring).

    Args:
        per_token: Per-token loss ``[B, T]``.
        mask: Valid-token mask ``[B, T]``.
        loss_type: ``grpo``, ``bnpo``, ``dr_grpo`` or ``dapo``.
        max_completion_length: ``dr_grpo``'s fixed length.
        normalizer: ``dapo``'s denominator (default: the valid tokens of this batch).
    """
    valid = _valid(mask)
    total = torch.where(valid, per_token, torch.zeros_like(per_token))
    if loss_type == "grpo":
        return (total.sum(-1) / valid.sum(-1).clamp(min=1)).mean()
    if loss_type == "bnpo":
        return total.sum() / valid.sum().clamp(min=1)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type 'dr_grpo' needs max_completion_length")
        return total.sum() / (total.size(0) * max_completion_length)
    if loss_type == "dapo":
        return total.sum() / (valid.sum().clamp(min=1) if normalizer is None else normalizer)
    raise ValueError(f"loss_type must be 'grpo', 'bnpo', 'dr_grpo' or 'dapo', got {loss_type!r}")


@dataclass
class AdaptiveEntropyCoef:
    """Adaptive entropy-bonus coefficient (Skywork-OR1, with TRL's ``use_adaptive_entropy`` rule).

    At the end of each optimizer step :meth:`update` takes the step's mean token entropy: the
    coefficient grows by ``step`` when it is at or below ``target`` and shrinks by ``step`` when
    above, clamped to ``[coef_min, coef_max]``. During a step the bonus uses :attr:`applied`:
    the coefficient while the last measured entropy is at or below target, else 0 (so 0 before
    the first measurement).

    Attributes:
        target: Target mean token entropy (nats).
        coef: Current coefficient.
        step: Additive step per update.
        coef_max: Upper clamp.
        coef_min: Lower clamp.
        last_entropy: Entropy of the last update (``inf`` before the first).
    """

    target: float
    coef: float = 0.0
    step: float = 0.005
    coef_max: float = 1.0
    coef_min: float = 0.0
    last_entropy: float = math.inf

    @property
    def applied(self) -> float:
        """The coefficient to apply now."""
        return self.coef if self.last_entropy <= self.target else 0.0

    def update(self, entropy: float) -> float:
        """Record one optimizer step's mean token entropy; return the new coefficient."""
        if entropy <= self.target:
            self.coef = min(self.coef + self.step, self.coef_max)
        else:
            self.coef = max(self.coef - self.step, self.coef_min)
        self.last_entropy = entropy
        return self.coef
