"""Every object built from config goes through here (``hydra.utils.instantiate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import corpora
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


def env_sources(corpus_cfg: DictConfig, retriever_cfg: DictConfig) -> dict[str, Any]:
    """``EnvConfig`` fields for the ``corpus`` and ``retriever`` config groups.

    A corpus entry targeting ``corpora.load`` passes its name and options through; any other
    ``_target_`` (a user's loader) is built here and registered under its ``name`` (or the
    target's name), so the trainer can load it by name like a built-in corpus.
    """
    corpus = to_plain(corpus_cfg)
    target = corpus.pop("_target_", "corpora.load")
    if target == "corpora.load":
        name = corpus.pop("name")
    else:
        name = str(corpus.get("name") or target.rsplit(".", 1)[-1])
        built = build_corpus(corpus_cfg)
        if name not in corpora.available():
            corpora.register_corpus(name)(lambda: built)
        corpus = {}
    retriever = to_plain(retriever_cfg)
    if retriever.pop("_target_", "corpora.make_retriever") != "corpora.make_retriever":
        raise ValueError("retriever configs must target corpora.make_retriever (set `kind`)")
    retriever.pop("_partial_", None)
    return {
        "corpus": name,
        "corpus_options": corpus,
        "retriever": retriever.pop("kind"),
        "retriever_options": retriever,
    }
