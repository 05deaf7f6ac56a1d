"""Validation helpers of the configuration dataclasses: errors name the key and the value."""

from __future__ import annotations


def check(ok: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``ok``."""
    if not ok:
        raise ValueError(message)


def positive(owner: str, **values: float) -> None:
    """Check that every named value is > 0 (``owner.name`` in the message)."""
    for name, value in values.items():
        check(value > 0, f"{owner}.{name} must be > 0, got {value}")
