"""A Llama whose attention queries and keys mix in the previous tokens', for the tiny model.

Everything a search agent does on held-out questions is copying: the entity name from the
question into a query, a bridge name or the answer out of retrieved text. A transformer copies
with an induction head: a key must carry the token *before* it, so that a query can find "the
token that followed the last occurrence of mine". A plain 2-layer Llama trained from scratch has
to build that from two heads composed across layers, and on 2 CPU cores it does not within a
training run (``benchmarks/copy_probe.py --task induction --plain``: loss still at chance after
4,000 steps). Smeared keys (Olsson et al., 2022, "In-context Learning and Induction Heads") give
every key a learned mix of its own token and the previous one, so one layer can match on the
previous token: the same probe learns the copy in about 300 steps. Here queries and keys are a
short causal depthwise convolution (Primer's multi-dconv-head attention, without the values),
which lets a name's first piece see the last two pieces before it.

With ``config.pointer`` (on in the tiny model) a pointer head (``agents.lm.pointer``) mixes a
copy distribution over the context into the output. The model is a ``LlamaForCausalLM`` in
every other respect (generation, saving, LoRA, TRL); its config type ``forksearch_llama`` is
registered with the ``Auto*`` classes when this module is imported, so
``AutoModelForCausalLM.from_pretrained`` loads saved checkpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama import modeling_llama

from agents.lm.pointer import MEMORY, PointerHead

if TYPE_CHECKING:
    from trl.trainer.utils import FusedCausalLMOutput

MODEL_TYPE = "forksearch_llama"
#: Positions each query and key mixes over (``config.smear_width`` overrides it).
DEFAULT_WIDTH = 3
#: Attribute of a generation cache that holds each layer's last unmixed queries and keys.
_LAST = "_forksearch_last_projections"


class SmearedLlamaConfig(LlamaConfig):
    """``LlamaConfig`` of the smeared-key model (its own ``model_type``, no new fields)."""

    model_type = MODEL_TYPE


class SmearedKeyAttention(modeling_llama.LlamaAttention):
    """Llama attention whose queries and keys (before RoPE) mix in the previous positions'.

    Each channel of a query or key is a learned combination of that channel at positions
    ``t, t-1, ..., t-width+1`` (a causal depthwise convolution, as in Primer, So et al. 2021;
    smeared keys are its width-2, keys-only case). Width 3 measured better than 2 on the copy
    probe (first pieces of name words: 0.475 against 0.407 teacher-forced accuracy). Keys
    start as an even mix of their own and the previous position's, queries as their own.

    A position before the start or on padding contributes zeros, so padding never changes a
    result. In cached generation the last ``width - 1`` projections are kept on the cache
    object, so a cached step computes exactly what a full forward pass computes.
    """

    def __init__(self, config: LlamaConfig, layer_idx: int) -> None:
        super().__init__(config, layer_idx)
        width = int(getattr(config, "smear_width", DEFAULT_WIDTH))
        if width < 2:
            raise ValueError(f"expected smear_width >= 2, got {width}")
        q_dim, k_dim = self.q_proj.out_features, self.k_proj.out_features
        self.query_mix = nn.Parameter(torch.zeros(width, q_dim))
        self.key_mix = nn.Parameter(torch.zeros(width, k_dim))
        self.reset_mix()
        #: The 2-D attention mask of the running forward pass (set by the model), or None.
        self.padding: torch.Tensor | None = None

    def reset_mix(self) -> None:
        """Queries start as themselves, keys as an even mix of themselves and the previous."""
        with torch.no_grad():
            self.query_mix.zero_()
            self.query_mix[0] = 1.0
            self.key_mix.zero_()
            self.key_mix[:2] = 0.5

    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Llama attention (see ``LlamaAttention.forward``) with mixed queries and keys."""
        cache = cache if cache is not None else kwargs.pop("past_key_values", None)
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.mix(self.q_proj(hidden_states), self.query_mix, "query", cache)
        key = self.mix(self.k_proj(hidden_states), self.key_mix, "key", cache)
        query = query.view(hidden_shape).transpose(1, 2)
        key = key.view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = modeling_llama.apply_rotary_pos_emb(query, key, cos, sin)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)
        attend = modeling_llama.ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, modeling_llama.eager_attention_forward
        )
        out, weights = attend(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        return self.o_proj(out.reshape(*input_shape, -1).contiguous()), weights

    def mix(self, x: torch.Tensor, weight: torch.Tensor, name: str, cache: Any = None
            ) -> torch.Tensor:
        """Causal depthwise convolution of ``x`` ``(batch, time, channels)`` along time."""
        lag = weight.shape[0] - 1
        past = x.new_zeros((x.shape[0], lag, x.shape[2]))
        if cache is not None:
            store = cache.__dict__.setdefault(_LAST, {})
            held = store.get((self.layer_idx, name))
            if held is not None and cache.get_seq_length(self.layer_idx) > 0:
                if held.shape[0] != x.shape[0]:
                    raise RuntimeError(
                        f"cache holds {held.shape[0]} rows, the batch has {x.shape[0]}: "
                        "after cache.batch_select_indices(i) call smeared.select_rows(cache, i)"
                    )
                past = held
        full = torch.cat([past, x], dim=1)
        if cache is not None:
            store[(self.layer_idx, name)] = full[:, -lag:].detach()
        if self.padding is not None:  # zero what padding (or the time before it) holds
            real = self.padding.to(x.dtype)[:, -full.shape[1] :]
            real = F.pad(real, (full.shape[1] - real.shape[1], 0))
            full = full * real[:, :, None]
        steps = x.shape[1]
        out = weight[0] * full[:, lag:]
        for i in range(1, lag + 1):
            out = out + weight[i] * full[:, lag - i : lag - i + steps]
        return out


class SmearedLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` with ``SmearedKeyAttention`` in every layer.

    With ``config.pointer`` the output also mixes in a copy distribution over the context
    (``agents.lm.pointer.PointerHead``); the logits are then the mixture's log-probabilities.
    """

    config_class = SmearedLlamaConfig
    #: Computes TRL's fused-head outputs itself (see ``forward``), so trainers must not patch it.
    fuses_own_head = True
    #: Temperature of those outputs (TRL's GRPO scores log-probs at its sampling temperature).
    fused_temperature = 1.0

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__(config)
        self.smeared = [SmearedKeyAttention(config, i) for i in range(len(self.model.layers))]
        for layer, attention in zip(self.model.layers, self.smeared, strict=True):
            layer.self_attn = attention
        self.pointer = (
            PointerHead(config.hidden_size, config.vocab_size,
                        getattr(config, "pointer_skip_ids", None) or ())
            if getattr(config, "pointer", False) else None
        )
        self.post_init()  # initialise the new weights as Llama's own
        if self.pointer is not None:
            self.pointer.reset_token_match()

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast | FusedCausalLMOutput:
        """``LlamaForCausalLM.forward``; the attention layers see the 2-D padding mask.

        With ``fused_lm_head=True`` (TRL's trainers call the model so) it returns TRL's fused
        outputs (``FusedCausalLMOutput``) computed from this model's own logits, pointer
        included.
        """
        cache = cache if cache is not None else kwargs.pop("past_key_values", None)
        fused = bool(kwargs.pop("fused_lm_head", False))
        shift_labels = kwargs.pop("shift_labels", None)
        items = kwargs.pop("num_items_in_batch", None) if fused else None
        if fused:
            use_cache, logits_to_keep = False, 0
        is_2d = attention_mask is not None and attention_mask.dim() == 2
        padding = attention_mask if is_2d else None
        for attention in self.smeared:
            attention.padding = padding
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=position_ids, cache=cache, inputs_embeds=inputs_embeds,
                      use_cache=use_cache, **kwargs)
        try:
            if self.pointer is None:
                out = super().forward(labels=None if fused else labels,
                                      logits_to_keep=logits_to_keep, **inputs)
            else:
                if input_ids is None:
                    raise ValueError("the pointer head copies token ids: pass input_ids, "
                                     "not inputs_embeds")
                out = self._pointer_forward(inputs, None if fused else labels, logits_to_keep,
                                            padding)
        finally:
            for attention in self.smeared:
                attention.padding = None
        if fused:
            return fused_output(out.logits, labels, shift_labels, self.fused_temperature, items)
        return out

    def _pointer_forward(self, inputs: dict[str, Any], labels: torch.Tensor | None,
                         logits_to_keep: int | torch.Tensor, padding: torch.Tensor | None
                         ) -> CausalLMOutputWithPast:
        outputs = self.model(**inputs)
        hidden, input_ids = outputs.last_hidden_state, inputs["input_ids"]
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        positions = (positions[-logits_to_keep:] if isinstance(logits_to_keep, int)
                     else positions[logits_to_keep.to(hidden.device)])
        assert self.pointer is not None
        logits = self.pointer(hidden, input_ids, self.lm_head(hidden[:, positions]), positions,
                              padding, outputs.cache, self.model.embed_tokens(input_ids))
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels,
                                      vocab_size=self.config.vocab_size,
                                      num_items_in_batch=inputs.get("num_items_in_batch"))
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache,
                                      hidden_states=outputs.hidden_states,
                                      attentions=outputs.attentions)


def fused_output(logits: torch.Tensor, labels: torch.Tensor | None,
                 shift_labels: torch.Tensor | None, temperature: float = 1.0,
                 num_items_in_batch: Any = None) -> FusedCausalLMOutput:
    """TRL's fused-head outputs from full ``logits`` at ``temperature``.

    Per-token fields are ``(batch, time - 1)`` (next-token labels) and zero where the label is
    -100; ``loss`` is their negative sum over ``num_items_in_batch`` (or the label count).

    Args:
        logits: ``(batch, time, vocab)`` logits of every position.
        labels: ``(batch, time)`` labels, scored against the next position's logits; or None
            with ``shift_labels``.
        shift_labels: Labels already aligned with ``logits`` (no shift), or None.
        temperature: The logits are divided by it.
        num_items_in_batch: Divides the loss (default: the number of scored labels).
    """
    if shift_labels is None:
        if labels is None:
            raise ValueError("fused_lm_head=True needs labels (or shift_labels)")
        logits, target = logits[:, :-1], labels[:, 1:]
    else:
        target = shift_labels
    from trl.trainer.utils import FusedCausalLMOutput  # only training needs TRL

    mask = target != -100
    scaled = logits.float() / temperature
    logp = scaled.log_softmax(-1)
    chosen = logp.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)
    log_probs = chosen * mask
    entropy = -(logp.exp() * logp).sum(-1) * mask
    with torch.no_grad():
        is_top1 = (logp.argmax(-1) == target) & mask
        log_sum_sq = torch.logsumexp(2 * logp, dim=-1) * mask
        mean_logits = scaled.mean(-1) * mask
    count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return FusedCausalLMOutput(
        loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
        log_sum_sq_probs=log_sum_sq, mean_logits=mean_logits, is_top1=is_top1, label_mask=mask,
    )


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep rows ``index`` of the last projections that ``cache`` holds.

    ``cache.batch_select_indices`` does the same for the cache itself; call both whenever a
    batch drops its finished rows.
    """
    last = cache.__dict__.get(_LAST, {})
    for slot, held in last.items():
        last[slot] = held[index]
    memory = cache.__dict__.get(MEMORY)
    if memory is not None:
        cache.__dict__[MEMORY] = tuple(None if held is None else held[index] for held in memory)


AutoConfig.register(MODEL_TYPE, SmearedLlamaConfig, exist_ok=True)
AutoModelForCausalLM.register(SmearedLlamaConfig, SmearedLlamaForCausalLM, exist_ok=True)
