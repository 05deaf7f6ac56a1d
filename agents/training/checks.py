"""Validation helpers of the configuration dataclasses: errors name the key and the value."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any


def check(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``."""
    if not ok:
        raise ValueError(message)


def positive(owner: str, **values: float) -> None:
    """Check that every named value is > 0 (``owner.name`` in the message)."""
    for name, value in values.items():
        check(value > 0, f"{owner}.{name} must be > 0, got {value}")


def finite(owner: str, config: Any, unbounded: tuple[str, ...] = ()) -> None:
    """Check that no number of the dataclass ``config`` (nor of its dict fields) is NaN or inf.

    Range checks alone would let NaN through (every comparison with NaN is false).

    Args:
        owner: The config key of ``config`` (``env``, ``rl``...).
        config: A config dataclass.
        unbounded: Fields where +inf means something (e.g. no clip); NaN is refused there too.
    """
    for f in fields(config):
        value = getattr(config, f.name)
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, number in items:
            if not isinstance(number, float) or math.isfinite(number):
                continue
            key = f"{owner}.{f.name}" + (f".{sub}" if sub else "")
            check(f.name in unbounded and number > 0,
                  f"{key} must be a finite number{' or inf' if f.name in unbounded else ''}, "
                  f"got {number}")


def within(key: str, value: float, low: float, high: float, why: str, *,
           low_open: bool = False, high_open: bool = False) -> None:
    """Check ``low <= value <= high`` (strict where ``low_open`` / ``high_open``).

    Args:
        key: The dotted config key, as the user types it.
        value: Its value.
        low: Lower bound (``-math.inf``: none).
        high: Upper bound (``math.inf``: none).
        why: What a value outside the range would do (ends the message, in parentheses).
        low_open: Exclude ``low``.
        high_open: Exclude ``high``.
    """
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    lo, hi = _number(low), _number(high)
    if math.isinf(high):
        bound = f"{'>' if low_open else '>='} {lo}"
    elif math.isinf(low):
        bound = f"{'<' if high_open else '<='} {hi}"
    else:
        bound = f"in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
    check(above and below, f"{key} must be {bound} ({why}), got {value}")


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


def learning_rate(key: str, value: float) -> None:
    """Check that a learning rate is in (0, 1)."""
    within(key, value, 0.0, 1.0, "Adam moves every weight by about the learning rate each step: "
           "1 or more diverges", low_open=True, high_open=True)
