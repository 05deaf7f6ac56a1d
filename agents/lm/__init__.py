"""The LM policy: tokenizer and tiny model for the embedded default, batched sampling."""

from agents.lm.model import build_tiny_model, load_model_and_tokenizer, tiny_llama_config
from agents.lm.policy import LMPolicy
from agents.lm.tokenizer import TAGS, train_tokenizer

__all__ = [
    "TAGS",
    "LMPolicy",
    "build_tiny_model",
    "load_model_and_tokenizer",
    "tiny_llama_config",
    "train_tokenizer",
]
