"""Every object built from config goes through here (``hydra.utils.instantiate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from corpora import Corpus, Retriever

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def build_corpus(cfg: DictConfig) -> Corpus:
    """The corpus named by the ``corpus`` config group."""
    corpus = instantiate(cfg)
    if not isinstance(corpus, Corpus):
        raise TypeError(f"corpus config must build a corpora.Corpus, got {type(corpus).__name__}")
    return corpus


def build_retriever(cfg: DictConfig, corpus: Corpus) -> Retriever:
    """The retriever of the ``retriever`` config group, over ``corpus``."""
    return instantiate(cfg)(corpus=corpus)


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """A resolved plain-dict copy of a config (for library calls and JSON)."""
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}
