"""The entropy-performance law of policy RL, fitted to a training run.

Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(arXiv 2505.22617), observe that during RL the validation reward ``R`` and the policy entropy
``H`` trade off as ``R = -a * exp(H) + b``: reward is bought with entropy, and once entropy is
exhausted (``H = 0``) the reward plateaus at ``b - a``. The law is linear in ``(a, b)`` once
``x = exp(H)`` is taken as the regressor, so an ordinary least-squares line fits it exactly;
no nonlinear optimiser is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

__all__ = ["LawFit", "fit_entropy_law", "rl_batch_points"]

_MIN_POINTS = 3
"""Fewest usable points to fit: two points always fit a two-parameter line perfectly."""

_REL_EPS = 1e-12
"""Relative scale below which a spread or a residual counts as round-off, not signal."""


@dataclass(frozen=True)
class LawFit:
    """A least-squares fit of ``R = -a * exp(H) + b``.

    Attributes:
        a: Reward paid per unit of ``exp(H)``; positive when reward rises as entropy falls.
        b: Intercept of the line in ``exp(H)``.
        r2: Coefficient of determination of the fit, ``1 - SS_res / SS_tot``.
        n: Number of (entropy, reward) points the fit used.
    """

    a: float
    b: float
    r2: float
    n: int

    @property
    def ceiling(self) -> float:
        """The reward predicted at ``H = 0``, when entropy is exhausted: ``b - a``."""
        return self.b - self.a

    @overload
    def predict(self, entropy: float) -> float: ...

    @overload
    def predict(self, entropy: npt.ArrayLike) -> npt.NDArray[np.float64]: ...

    def predict(self, entropy: npt.ArrayLike | float) -> npt.NDArray[np.float64] | float:
        """Reward the law predicts at the given entropy.

        Args:
            entropy: One entropy (nats) or an array of them.

        Returns:
            ``-a * exp(entropy) + b``: a float for a scalar input, else an array.
        """
        if isinstance(entropy, (int, float)):
            return -self.a * math.exp(entropy) + self.b
        return -self.a * np.exp(np.asarray(entropy, dtype=np.float64)) + self.b

    def as_dict(self) -> dict[str, float]:
        """The fit as plain numbers, for JSON: keys ``a``, ``b``, ``r2``, ``n``, ``ceiling``."""
        return {"a": self.a, "b": self.b, "r2": self.r2, "n": self.n, "ceiling": self.ceiling}

    @classmethod
    def from_dict(cls, fit: dict[str, Any] | None) -> LawFit | None:
        """Rebuild a fit from :meth:`as_dict` (``None`` stays ``None``: no fit was possible)."""
        return None if fit is None else cls(a=fit["a"], b=fit["b"], r2=fit["r2"], n=int(fit["n"]))


def fit_entropy_law(entropy: Sequence[float], reward: Sequence[float]) -> LawFit | None:
    """Least-squares fit of ``R = -a * exp(H) + b`` to paired entropy and reward values.

    Pairs where either value, or ``exp(H)``, is not finite (NaN, inf, overflow) are dropped.
    No fit is returned when fewer than three pairs remain (two points are fitted perfectly by
    any line, so ``R^2`` would carry no evidence) or when ``exp(H)`` has no spread (the slope,
    hence ``a``, is undetermined).

    ``R^2 = 1 - SS_res / SS_tot``. When the rewards have no spread (``SS_tot`` is zero up to
    round-off) ``R^2`` is undefined; it is reported as ``1.0`` if the residuals are zero up to
    round-off too (the flat line is explained perfectly) and ``0.0`` otherwise.

    Args:
        entropy: Policy entropy per evaluation point, in nats.
        reward: Reward at the same points.

    Returns:
        The fit, or ``None`` when it would be meaningless (see above).

    Raises:
        ValueError: If the two sequences differ in length.
    """
    h = np.asarray(entropy, dtype=np.float64).ravel()
    r = np.asarray(reward, dtype=np.float64).ravel()
    if h.shape != r.shape:
        raise ValueError(f"entropy and reward differ in length: {h.size} != {r.size}")
    with np.errstate(over="ignore"):  # a huge H overflows to inf; it is dropped just below
        x = np.exp(h)
    keep = np.isfinite(x) & np.isfinite(r)
    x, r = x[keep], r[keep]
    n = int(x.size)
    if n < _MIN_POINTS:
        return None

    # Centred sums rather than the normal equations on raw x: exp(H) can be large and nearly
    # constant, where x.T @ x loses the spread to cancellation.
    x_mean, r_mean = float(x.mean()), float(r.mean())
    dx, dr = x - x_mean, r - r_mean
    sxx = float(dx @ dx)
    if sxx <= (_REL_EPS * float(np.abs(x).max())) ** 2 * n:
        return None
    slope = float(dx @ dr) / sxx
    intercept = r_mean - slope * x_mean

    residual = r - (slope * x + intercept)
    ss_res = float(residual @ residual)
    ss_tot = float(dr @ dr)
    # Round-off floor for "zero": even a constant series has a nonzero mean error of order eps.
    floor = (_REL_EPS * max(1.0, float(np.abs(r).max()))) ** 2 * n
    if ss_tot <= floor:
        r2 = 1.0 if ss_res <= floor else 0.0
    else:
        r2 = 1.0 - ss_res / ss_tot
    return LawFit(a=-slope, b=intercept, r2=r2, n=n)


def rl_batch_points(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[list[float]]]:
    """``[token entropy, batch reward]`` of each RL generation batch, per RL phase.

    One point per generation batch: with ``rl.num_iterations`` > 1 several optimizer steps log
    the same batch's entropy and reward, which would count it several times.

    Args:
        rows: A run's ``metrics.jsonl`` rows.

    Returns:
        Points keyed by phase (``"01-rl"``), in step order.
    """
    points: dict[str, list[list[float]]] = {}
    for row in rows:
        if row.get("phase") != "rl" or row.get("entropy_all") is None or row.get("reward") is None:
            continue
        batches = points.setdefault(f"{row['phase_index']:02d}-{row['phase']}", [])
        point = [row["entropy_all"], row["reward"]]
        if not batches or batches[-1] != point:  # steps that reuse one generation batch
            batches.append(point)
    return points
