"""Causal LMs for the policy: the embedded tiny Llama, or any local Hugging Face checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from agents.lm.pointer import uncopyable_ids
from agents.lm.smeared import SmearedLlamaConfig, SmearedLlamaForCausalLM
from agents.lm.tokenizer import train_tokenizer
from corpora import Corpus

TINY = "tiny"


def tiny_llama_config(
    vocab_size: int,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 512,
    max_position_embeddings: int = 1024,
    smear_keys: bool = True,
    pointer: bool = True,
) -> LlamaConfig:
    """Build a small Llama configuration (tied embeddings, no key/value head sharing).

    With ``smear_keys`` the model is a ``SmearedLlamaForCausalLM`` (see ``agents.lm.smeared``:
    it learns to copy names within a CPU run, a plain Llama does not); with ``pointer`` as
    well it has a pointer head that can emit any token of its context (``agents.lm.pointer``).
    """
    if hidden_size % num_heads:
        raise ValueError(
            f"expected hidden_size divisible by num_heads, got {hidden_size=}, {num_heads=}"
        )
    if pointer and not smear_keys:
        raise ValueError("pointer=True needs smear_keys=True (the forksearch_llama architecture)")
    config = (SmearedLlamaConfig if smear_keys else LlamaConfig)(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
    )
    if smear_keys:
        config.pointer = pointer
    return config


def build_tiny_model(
    tokenizer: PreTrainedTokenizerBase, seed: int = 0, **config_overrides: Any
) -> LlamaForCausalLM:
    """Build a randomly initialised tiny Llama sized for ``tokenizer``.

    Args:
        tokenizer: Sets the vocabulary size and the pad/bos/eos ids.
        seed: Seeds the weight initialisation (the global RNG state is left as it was).
        **config_overrides: Arguments of ``tiny_llama_config`` other than ``vocab_size``.
    """
    config = tiny_llama_config(len(tokenizer), **config_overrides)
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    if getattr(config, "pointer", False):
        config.pointer_skip_ids = uncopyable_ids(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        smeared = isinstance(config, SmearedLlamaConfig)
        model = (SmearedLlamaForCausalLM if smeared else LlamaForCausalLM)(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load_model_and_tokenizer(
    name_or_path: str,
    corpus: Corpus | None = None,
    *,
    vocab_size: int = 1024,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    tokenizer_cache_dir: str | Path | None = None,
    **config_overrides: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer.

    Args:
        name_or_path: ``"tiny"`` builds an untrained tiny Llama with a tokenizer trained on
            ``corpus``; a directory loads a saved checkpoint (``save_pretrained`` of model and
            tokenizer); anything else is a Hugging Face hub name, which must already be in the
            local cache when ``HF_HUB_OFFLINE`` is set.
        corpus: Required for ``"tiny"`` (the tokenizer is trained on it); ignored otherwise.
        vocab_size: Tokenizer vocabulary bound for ``"tiny"``.
        seed: Weight initialisation seed for ``"tiny"``.
        device: Where to put the model (default: CPU).
        dtype: Parameter dtype (default: float32 for ``"tiny"``, the checkpoint's otherwise).
        tokenizer_cache_dir: Cache root for the tiny tokenizer (default: ``corpora.paths``).
        **config_overrides: ``tiny_llama_config`` arguments (``hidden_size``, ``num_layers``...),
            for ``"tiny"`` only.

    Returns:
        ``(model, tokenizer)``, the model in eval mode; the tokenizer has a pad token.
    """
    if name_or_path == TINY:
        if corpus is None:
            raise ValueError(
                "expected a corpus for the 'tiny' model: its tokenizer is trained on it"
            )
        tokenizer: PreTrainedTokenizerBase = train_tokenizer(
            corpus, vocab_size=vocab_size, cache_dir=tokenizer_cache_dir
        )
        model: PreTrainedModel = build_tiny_model(tokenizer, seed=seed, **config_overrides)
    else:
        if config_overrides:
            raise ValueError(
                f"model size options {sorted(config_overrides)} apply to 'tiny' only; "
                f"{name_or_path!r} brings its own config"
            )
        model, tokenizer = _from_pretrained(name_or_path, dtype)
    if tokenizer.pad_token_id is None:  # many causal LMs ship without one; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    module: torch.nn.Module = model  # typed as a Module: transformers' ``to`` wrapper confuses mypy
    module.to(device=torch.device(device or "cpu"), dtype=dtype)
    model.eval()
    return model, tokenizer


def check_model_source(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a local folder (else a hub id); fail early on a bad path.

    Raises:
        FileNotFoundError: A path (absolute, ``./``, ``~``) that is not a directory.
    """
    if name_or_path == TINY:
        return False
    path = Path(name_or_path).expanduser()
    looks_local = path.is_absolute() or name_or_path.startswith((".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise FileNotFoundError(
            f"no checkpoint directory {str(path)!r}; expected a folder written by "
            "save_pretrained (config.json, weights, tokenizer files), or 'tiny'"
        )
    return looks_local


def _from_pretrained(
    name_or_path: str, dtype: torch.dtype | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    path = Path(name_or_path).expanduser()
    looks_local = check_model_source(name_or_path)
    kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if looks_local else name_or_path)
        model = AutoModelForCausalLM.from_pretrained(
            str(path) if looks_local else name_or_path, **kwargs
        )
    except OSError as err:
        if looks_local or not _offline():
            raise
        raise OSError(
            f"cannot load {name_or_path!r}: it is not a local directory, not in the Hugging Face "
            "cache, and HF_HUB_OFFLINE is set, so it cannot be downloaded. Pass the path of a "
            "local checkpoint directory instead (or 'tiny' for the embedded model)."
        ) from err
    return model, tokenizer


def _offline() -> bool:
    flags = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in {"1", "true", "yes", "on"} for f in flags)
