"""A pointer (copy) head: the next token may be copied from the context, for the tiny model.

A search agent's hard tokens are names it has never been trained on: the entity in a held-out
question, the bridge entity in a retrieved passage. A language-model head can only emit them
after it has learned, per token, to pass a token's identity through attention into its output
embedding, which a 2-layer model trained from scratch on 2 CPU cores does not learn for rare
name pieces within a run. A pointer head (Vinyals et al., 2015; See et al., 2017) emits a
context token directly: attention over the context picks a position, and the token there is
the prediction, whatever it is.

Here the query is the final hidden state at ``t`` and the key of position ``j`` is the final
hidden state at ``j - 1``, which is the state that had to predict token ``j``; the head emits
token ``j``. So "continue a name the way its earlier occurrence went on" is one match of two
states, and starting a name is a match of the question's state with the passage's state before
the name. A learned gate mixes the copy distribution into the language-model distribution::

    p(x_{t+1}) = (1 - g_t) softmax(W h_t) + g_t sum_j a_{t,j} [x_j = x_{t+1}]

The returned logits are ``log p``, so losses, sampling, temperatures and entropies downstream
treat them as any logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Attribute of a generation cache holding the pointer's keys and token ids so far.
MEMORY = "_forksearch_pointer_memory"
_FLOOR = 1e-12  # probability floor: the log stays finite when the gate saturates


class PointerHead(nn.Module):
    """Query, key and gate projections of the copy distribution (see the module docstring)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.pointer_query = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.pointer_gate = nn.Linear(hidden_size, 1)

    def forward(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        vocab_logits: torch.Tensor,
        query_positions: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
    ) -> torch.Tensor:
        """Mix the copy distribution into ``vocab_logits``; return the mixture's log-probs.

        Args:
            hidden: Final hidden states of this forward pass, ``(batch, time, hidden)``.
            input_ids: The tokens of this pass, ``(batch, time)``.
            vocab_logits: Language-model logits at the query positions, ``(batch, q, vocab)``.
            query_positions: Indices into this pass's ``time`` of the ``q`` query positions.
            attention_mask: 2-D padding mask over the whole sequence (cache included), or None.
            cache: The generation cache, or None; the head keeps its keys and ids on it.
        """
        keys = self.pointer_key(hidden)
        ids = input_ids
        past = 0
        if cache is not None:
            past = cache.get_seq_length() - hidden.shape[1]
            memory = cache.__dict__.get(MEMORY) if past > 0 else None
            if past > 0 and (memory is None or memory[1].shape[1] != past):
                raise RuntimeError(
                    f"the cache holds {past} positions but the pointer head remembers "
                    f"{0 if memory is None else memory[1].shape[1]}: fill the cache with this "
                    "model's own forward passes"
                )
            if memory is not None:
                keys = torch.cat([memory[0], keys], dim=1)
                ids = torch.cat([memory[1], ids], dim=1)
            cache.__dict__[MEMORY] = (keys.detach(), ids)
        length = ids.shape[1]
        real = (torch.ones_like(ids, dtype=torch.bool) if attention_mask is None
                else attention_mask[:, -length:].bool())
        # Slot j (0-based, j < length - 1) matches the state at j and emits the token at j + 1.
        slot_ok = real[:, :-1] & real[:, 1:]
        now = query_positions.to(ids.device) + past  # absolute position of each query
        causal = torch.arange(length - 1, device=ids.device)[None, :] < now[:, None]
        allowed = slot_ok[:, None, :] & causal[None, :, :]  # (batch, q, slots)
        queries = self.pointer_query(hidden[:, query_positions])
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
