"""How sparse and how low-rank the parameter update of a training run is.

Mukherjee et al. 2025, "Reinforcement Learning Finetunes Small Subnetworks in Large Language
Models" (arXiv 2505.11711), find that RL leaves most parameters bit-for-bit unchanged, while
the update of each weight matrix is nevertheless close to full rank. This module measures both
on a user's own run, from the state dicts saved before and after training: the fraction of
entries unchanged (exactly, and up to a relative tolerance), overall and per transformer block,
and the rank of the update of every weight matrix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

__all__ = ["load_state_dict", "param_group", "update_sparsity"]

_CHUNK = 1 << 24
"""Entries compared per slice, so a large embedding never needs several full-size copies."""

_SMALL_MATRIX = 1 << 20
"""Matrices with at most this many entries get their rank computed in float64."""

_LAYER = re.compile(r"^((?:.*?\.)?layers\.\d+)\.")


def param_group(name: str) -> str:
    """The group a parameter is reported under.

    Parameters of a transformer block are grouped by the block (the name up to and including
    the layer index: ``model.layers.3.self_attn.q_proj.weight`` -> ``model.layers.3``); any
    other parameter by its module path (``model.embed_tokens.weight`` ->
    ``model.embed_tokens``, ``lm_head.weight`` -> ``lm_head``). A name without a dot is its
    own group.

    Args:
        name: A state-dict key.

    Returns:
        The group name.
    """
    match = _LAYER.match(name)
    if match:
        return match.group(1)
    return name.rsplit(".", 1)[0]


def _check_same_layout(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor]
) -> None:
    """Raise ``ValueError`` naming every key not in both dicts or with differing shapes."""
    problems = []
    only_before = sorted(set(before) - set(after))
    only_after = sorted(set(after) - set(before))
    if only_before:
        problems.append(f"only in before: {', '.join(only_before)}")
    if only_after:
        problems.append(f"only in after: {', '.join(only_after)}")
    shapes = [
        f"{key} {tuple(before[key].shape)} vs {tuple(after[key].shape)}"
        for key in sorted(set(before) & set(after))
        if before[key].shape != after[key].shape
    ]
    if shapes:
        problems.append(f"different shapes: {'; '.join(shapes)}")
    if problems:
        raise ValueError("the two models do not match (" + "; ".join(problems) + ")")


def _compute_dtype(a: torch.Tensor, b: torch.Tensor) -> torch.dtype:
    """A floating dtype that holds both tensors' values exactly: at least float32."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:  # integer or bool buffers: float64 is exact enough
        return torch.float64
    return torch.promote_types(dtype, torch.float32)


def _chunks(before: torch.Tensor, after: torch.Tensor) -> Iterator[tuple[torch.Tensor, ...]]:
    """Matching flat slices of the two tensors, cast to a common floating dtype."""
    dtype = _compute_dtype(before, after)
    flat_before, flat_after = before.reshape(-1), after.reshape(-1)
    for start in range(0, flat_before.numel(), _CHUNK):
        stop = start + _CHUNK
        yield flat_before[start:stop].to(dtype), flat_after[start:stop].to(dtype)


def _count_unchanged(before: torch.Tensor, after: torch.Tensor, rel_tol: float) -> tuple[int, int]:
    """Number of entries exactly unchanged and number changed by a small relative amount.

    An entry is *small* when ``|after - before| <= rel_tol * max(|before|, tiny)``, with
    ``tiny`` the smallest normal number of the compute dtype (so an entry that starts at zero
    is small only if it barely moves off zero); exactly unchanged entries are small too, which
    also covers infinities, whose difference is NaN.
    """
    unchanged = small = 0
    for b, a in _chunks(before, after):
        same = a == b  # upcasting is exact, so this is bit-level equality of the values
        scale = b.abs().clamp_min(torch.finfo(b.dtype).tiny)
        close = (a - b).abs() <= rel_tol * scale
        unchanged += int(same.sum())
        small += int((same | close).sum())
    return unchanged, small


def _fractions(params: int, unchanged: int, small: int) -> dict[str, Any]:
    """The report entry for a set of entries; fractions of an empty set are 0.0."""
    return {
        "params": params,
        "unchanged": unchanged / params if params else 0.0,
        "small": small / params if params else 0.0,
    }


def _delta_rank(before: torch.Tensor, after: torch.Tensor) -> int:
    """Numerical rank of ``after - before`` for a 2-D tensor.

    Uses ``torch.linalg.matrix_rank``'s default tolerance, ``max(m, n) * eps * sigma_max``:
    relative to the largest singular value, so a zero update has rank 0, and at machine
    precision, so an update is counted full rank unless it is low rank up to round-off. This is
    the rank of the update as stored: rounding ``after`` to its storage dtype is part of it, so
    a low-rank step applied to nonzero float32 or bfloat16 weights usually shows up near full
    rank, as in Mukherjee et al. Small matrices are decomposed in float64; large ones in
    float32 to halve memory. The SVD costs
    ``O(m * n * min(m, n))``: seconds for a 4096 x 4096 matrix on a CPU, minutes and gigabytes
    for an embedding of a large vocabulary.
    """
    dtype = torch.float64 if before.numel() <= _SMALL_MATRIX else torch.float32
    delta = after.to(dtype) - before.to(dtype)
    return int(torch.linalg.matrix_rank(delta))


def update_sparsity(
    before: Mapping[str, torch.Tensor],
    after: Mapping[str, torch.Tensor],
    rel_tol: float = 1e-5,
    *,
    compute_rank: bool = True,
) -> dict[str, Any]:
    """Sparsity of the update between two state dicts of the same model.

    For every entry, *unchanged* means ``after == before`` exactly and *small* means
    ``|after - before| <= rel_tol * max(|before|, tiny)`` (``tiny``: the smallest normal
    number of the compute dtype, at least float32), i.e. a relative change of at most
    ``rel_tol``; unchanged entries count as small. NaN entries are neither. Values are compared
    in a common dtype of at least float32, to which both sides convert exactly.

    Args:
        before: State dict before training (name -> tensor).
        after: State dict after training; same keys and shapes.
        rel_tol: Relative change at or below which an entry counts as small.
        compute_rank: Whether to compute the rank of each 2-D update; an SVD per matrix, the
            dominant cost on large models (see ``_delta_rank``).

    Returns:
        ``{"overall": {"params", "unchanged", "small"}, "layers": {group: same keys},
        "matrices": {name: {"shape": [r, c], "rank", "rank_ratio"}}}``, with ``params`` an
        entry count, ``unchanged`` and ``small`` fractions of it (0.0 for no entries), groups
        as given by ``param_group``, and ``rank_ratio = rank / min(r, c)``. ``matrices`` holds
        the 2-D tensors only and is empty when ``compute_rank`` is false.

    Raises:
        ValueError: If a key is in only one dict or a tensor's shape differs between them.
    """
    _check_same_layout(before, after)
    totals = [0, 0, 0]
    groups: dict[str, list[int]] = {}
    matrices: dict[str, dict[str, Any]] = {}
    for name in sorted(before):
        old, new = before[name].detach(), after[name].detach()
        unchanged, small = _count_unchanged(old, new, rel_tol)
        counts = groups.setdefault(param_group(name), [0, 0, 0])
        for acc in (totals, counts):
            acc[0] += old.numel()
            acc[1] += unchanged
            acc[2] += small
        if compute_rank and old.dim() == 2:
            rows, cols = old.shape
            rank = _delta_rank(old, new)
            side = min(rows, cols)
            matrices[name] = {
                "shape": [rows, cols],
                "rank": rank,
                "rank_ratio": rank / side if side else 0.0,
            }
    return {
        "overall": _fractions(*totals),
        "layers": {group: _fractions(*counts) for group, counts in groups.items()},
        "matrices": matrices,
    }


def load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Read the weights of a Hugging Face ``save_pretrained`` folder.

    Reads ``model.safetensors``, or the shards listed in ``model.safetensors.index.json``, or
    failing an index every ``model-*-of-*.safetensors``. A path to a ``.safetensors`` file is
    read directly. Only safetensors are read: not ``pytorch_model.bin``, and not PEFT adapter
    files (merge the adapters first, as the training runner does).

    Args:
        folder: The saved model's folder.

    Returns:
        The state dict, on the CPU.

    Raises:
        FileNotFoundError: If no weights file is found, or the index names a missing shard.
    """
    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".safetensors":
        return load_file(folder)
    single = folder / "model.safetensors"
    if single.is_file():
        return load_file(single)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shard_names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        shards = [folder / shard for shard in shard_names]
        missing = [str(shard) for shard in shards if not shard.is_file()]
        if missing:
            raise FileNotFoundError(f"{index} names missing shards: {', '.join(missing)}")
    else:
        shards = sorted(folder.glob("model-*-of-*.safetensors"))
    if not shards:
        raise FileNotFoundError(
            f"no model weights in {folder}: expected model.safetensors or sharded "
            "model-0000x-of-0000y.safetensors from save_pretrained"
        )
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(load_file(shard))
    return state
