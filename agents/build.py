"""The composition root: the one place that builds corpora, environments and LM policies.

Training, the final test evaluation and ``forksearch-bench`` all build their objects here, so
they cannot drift apart (a policy renders prompts the same way everywhere, a corpus is loaded
once per process however many callers ask for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.lm.model import TINY
from agents.training.config import EnvConfig, ModelConfig
from agents.training.trainer_args import resolve_device
from corpora import Corpus, Retriever
from envs.batch import SearchEnvBatch
from envs.cache import shared_corpus, shared_retriever
from envs.search_env import SearchEnv


def _split_spec(spec: Mapping[str, Any], part: str) -> tuple[str, dict[str, Any]]:
    options = dict(spec)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"{part} config needs a `name` (choose one with {part}=<name>), "
                         f"got {spec}")
    return name, options


def load_corpus(spec: Mapping[str, Any]) -> Corpus:
    """The corpus of a ``{"name": ..., **loader options}`` spec, loaded once per process.

    Shared with the environments ``gymnasium.make`` builds; a data file that changed is re-read.
    """
    return shared_corpus(*_split_spec(spec, "corpus"))


def build_retriever(spec: Mapping[str, Any], corpus: Corpus) -> Retriever:
    """The retriever of a ``{"name": ..., **options}`` spec over ``corpus``, built once."""
    name, options = _split_spec(spec, "retriever")
    return shared_retriever(name, corpus, options)


def make_envs(corpus: Corpus, retriever: Retriever, env: EnvConfig, split: str,
              size: int | None = None) -> SearchEnvBatch:
    """``size`` (default ``env.batch_size``) environments on ``split`` sharing one retriever."""
    return SearchEnvBatch([
        SearchEnv(corpus, split, retriever, top_k=env.top_k, max_turns=env.max_turns,
                  reward=env.reward, format_penalty=env.format_penalty)
        for _ in range(max(1, size or env.batch_size))])


def load_model(source: str, model: ModelConfig, corpus: Corpus | None = None,
               seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A model and tokenizer on ``model.device``: ``tiny`` (built for ``corpus``) or a folder."""
    sizes: dict[str, Any] = ({**model.tiny, "smear_keys": model.smear_keys,
                              "pointer": model.pointer} if source == TINY else {})
    return load_model_and_tokenizer(source, corpus, seed=seed,
                                    device=resolve_device(model.device), **sizes)


def uses_chat_template(model: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> bool:
    """``model.use_chat_template``, or (unset) whether the tokenizer has a chat template."""
    if model.use_chat_template is not None:
        return model.use_chat_template
    return bool(getattr(tokenizer, "chat_template", None))


def make_policy(lm: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model: ModelConfig, *,
                temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                name: str = "lm") -> LMPolicy:
    """The LM policy over ``lm``: prompt rendering and lengths from ``model``, sampling given."""
    return LMPolicy(lm, tokenizer, temperature=temperature, top_p=top_p,
                    max_new_tokens=model.max_new_tokens, max_length=model.max_length, name=name,
                    use_chat_template=uses_chat_template(model, tokenizer), seed=seed)
