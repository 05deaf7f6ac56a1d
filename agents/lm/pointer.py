"""A pointer (copy) head: the next token may be copied from the context, for the tiny model.

A search agent's hard tokens are names it has never been trained on: the entity in a held-out
question, the bridge entity in a retrieved passage. A language-model head can only emit them
after it has learned, per token, to pass a token's identity through attention into its output
embedding, which a 2-layer model trained from scratch on 2 CPU cores does not learn for rare
name pieces within a run. A pointer head (Vinyals et al., 2015; See et al., 2017) emits a
context token directly: attention over the context picks a position, and the token there is
the prediction, whatever it is.

Here the query is made from position ``t`` and the key of slot ``j`` from position ``j - 1``
(the position that had to predict token ``j``); the head emits token ``j``. Both are a
projection of the final hidden state plus projections of the token there and the token before
it, so "continue a name the way its earlier occurrence went on" is a match of token pairs that
works from the first step (an induction head), and starting a name is a match of the
question's state with the passage's state before the name. Only word and number pieces are
copied: punctuation and tags (``skip_ids``) come from the language-model head. A learned gate
mixes the copy distribution into the language-model distribution::

    p(x_{t+1}) = (1 - g_t) softmax(W h_t) + g_t sum_j a_{t,j} [x_j = x_{t+1}]

The returned logits are ``log p``, so losses, sampling, temperatures and entropies downstream
treat them as any logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

#: Attribute of a generation cache holding the pointer's keys and token ids so far.
MEMORY = "_forksearch_pointer_memory"
_FLOOR = 1e-12  # probability floor: the log stays finite when the gate saturates


class PointerHead(nn.Module):
    """Query, key and gate projections of the copy distribution (see the module docstring)."""

    def __init__(self, hidden_size: int, vocab_size: int, skip_ids: Sequence[int] = ()) -> None:
        super().__init__()
        self.pointer_query = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_gate = nn.Linear(hidden_size, 1)
        # The identities of a position's token and the one before it, in its query and key:
        # matching them is an induction head on token pairs from the first step (one token is
        # not enough: name pieces such as "es" recur inside many names).
        self.pointer_query_token = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_key_token = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_query_previous = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_key_previous = nn.Linear(hidden_size, hidden_size, bias=False)
        self.reset_token_match()
        self.vocab_size = vocab_size
        #: Tokens never copied (spaces, punctuation, tags): they come from the LM head alone.
        self.skip_ids = list(skip_ids)
        self._skip: torch.Tensor | None = None

    def reset_token_match(self, scale: float = 0.5) -> None:
        """Start the token terms as ``scale`` times the identity (a rotation for the previous).

        On unit-RMS embeddings a matching token then adds ``scale**2 * sqrt(hidden)`` (2.8 at
        128) to a score, a matching token pair twice that; an unrelated token about
        ``N(0, scale**2)``.
        """
        size = self.pointer_query_token.weight.shape[0]
        # The previous token goes through a fixed rotation, so that it matches the previous
        # token and not the current one (the cross terms of two identities would match both).
        generator = torch.Generator().manual_seed(0)
        rotation, _ = torch.linalg.qr(torch.randn((size, size), generator=generator))
        with torch.no_grad():
            for linear in (self.pointer_query_token, self.pointer_key_token):
                linear.weight.copy_(scale * torch.eye(size))
            for linear in (self.pointer_query_previous, self.pointer_key_previous):
                linear.weight.copy_(scale * rotation)

    def skip_mask(self, device: torch.device) -> torch.Tensor:
        """``(vocab,)`` boolean mask of ``skip_ids`` on ``device``."""
        # Built on first use, not a buffer: from_pretrained materialises modules from the meta
        # device and would leave a non-persistent buffer uninitialised.
        if self._skip is None or self._skip.device != device:
            skip = torch.zeros(self.vocab_size, dtype=torch.bool, device=device)
            skip[self.skip_ids] = True
            self._skip = skip
        return self._skip

    def forward(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        vocab_logits: torch.Tensor,
        query_positions: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        embeddings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mix the copy distribution into ``vocab_logits``; return the mixture's log-probs.

        Args:
            hidden: Final hidden states of this forward pass, ``(batch, time, hidden)``.
            input_ids: The tokens of this pass, ``(batch, time)``.
            vocab_logits: Language-model logits at the query positions, ``(batch, q, vocab)``.
            query_positions: Indices into this pass's ``time`` of the ``q`` query positions.
            attention_mask: 2-D padding mask over the whole sequence (cache included), or None.
            cache: The generation cache, or None; the head keeps its keys and ids on it.
            embeddings: Input embeddings of this pass's tokens, ``(batch, time, hidden)``, or
                None to match on hidden states alone.
        """
        past, memory = 0, None
        if cache is not None:
            past = cache.get_seq_length() - hidden.shape[1]
            memory = cache.__dict__.get(MEMORY) if past > 0 else None
            if past > 0 and (memory is None or memory[1].shape[1] != past):
                raise RuntimeError(
                    f"the cache holds {past} positions but the pointer head remembers "
                    f"{0 if memory is None else memory[1].shape[1]}: fill the cache with this "
                    "model's own forward passes"
                )
        keys = self.pointer_key(hidden)
        queries = self.pointer_query(hidden[:, query_positions])
        last = None
        if embeddings is not None:
            unit = embeddings * torch.rsqrt(embeddings.pow(2).mean(-1, keepdim=True) + 1e-6)
            if attention_mask is not None:  # padding has no token to match
                unit = unit * attention_mask[:, -unit.shape[1]:, None].to(unit.dtype)
            before = unit.new_zeros(unit[:, :1].shape) if memory is None else memory[2]
            previous = torch.cat([before, unit[:, :-1]], dim=1)
            keys = keys + self.pointer_key_token(unit) + self.pointer_key_previous(previous)
            queries = (queries + self.pointer_query_token(unit[:, query_positions])
                       + self.pointer_query_previous(previous[:, query_positions]))
            last = unit[:, -1:].detach()
        ids = input_ids
        if memory is not None:
            keys = torch.cat([memory[0], keys], dim=1)
            ids = torch.cat([memory[1], ids], dim=1)
        if cache is not None:
            cache.__dict__[MEMORY] = (keys.detach(), ids, last)
        length = ids.shape[1]
        real = (torch.ones_like(ids, dtype=torch.bool) if attention_mask is None
                else attention_mask[:, -length:].bool())
        # Slot j (0-based, j < length - 1) matches the state at j and emits the token at j + 1.
        slot_ok = real[:, :-1] & real[:, 1:] & ~self.skip_mask(ids.device)[ids[:, 1:]]
        now = query_positions.to(ids.device) + past  # absolute position of each query
        causal = torch.arange(length - 1, device=ids.device)[None, :] < now[:, None]
        allowed = slot_ok[:, None, :] & causal[None, :, :]  # (batch, q, slots)
        scores = queries @ keys[:, :-1].transpose(1, 2) / keys.shape[-1] ** 0.5
        # A large finite fill (not -inf) keeps rows with no allowed slot finite; they get g = 0.
        scores = scores.float().masked_fill(~allowed, torch.finfo(torch.float32).min)
        weights = scores.softmax(-1) * allowed
        emitted = ids[:, None, 1:].expand(-1, weights.shape[1], -1)
        copy = torch.zeros(vocab_logits.shape, dtype=torch.float32, device=ids.device)
        copy = copy.scatter_add(2, emitted, weights)
        gate = torch.sigmoid(self.pointer_gate(hidden[:, query_positions]).float())
        gate = gate * allowed.any(-1, keepdim=True)
        mix = (1 - gate) * vocab_logits.float().softmax(-1) + gate * copy
        return mix.clamp_min(_FLOOR).log()


def uncopyable_ids(tokenizer: Any) -> list[int]:
    """Ids of the tokens the pointer never emits: those without a letter or digit, and tags.

    Args:
        tokenizer: A Hugging Face tokenizer; its special and added tokens (protocol tags) count
            as uncopyable whatever their text.
    """
    added = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    return [i for i in range(len(tokenizer))
            if i in added or not any(ch.isalnum() or ch == "\ufffd"  # a byte of a letter
                                     for ch in tokenizer.decode([i]))]
