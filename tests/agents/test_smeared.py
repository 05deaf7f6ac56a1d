import pytest
import torch
from transformers import AutoModelForCausalLM

from agents.lm.sampling import generate_batch
from agents.lm.smeared import SmearedKeyAttention, SmearedLlamaConfig, SmearedLlamaForCausalLM


def _model(seed: int = 0, pointer: bool = False) -> SmearedLlamaForCausalLM:
    config = SmearedLlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                tie_word_embeddings=True, pad_token_id=0, pointer=pointer,
                                pointer_skip_ids=[0, 7, 12] if pointer else None)
    torch.manual_seed(seed)
    model = SmearedLlamaForCausalLM(config).eval()
    with torch.no_grad():  # every lag in use, so a wrong shift or a lost cached step shows
        for layer in model.model.layers:
            for mix in (layer.self_attn.query_mix, layer.self_attn.key_mix):
                mix.copy_(torch.randn(mix.shape))
        if model.pointer is not None:  # sharp pointer attention, a gate that matters
            for linear in (model.pointer.pointer_query, model.pointer.pointer_key):
                linear.weight.copy_(torch.randn(linear.weight.shape))
            model.pointer.pointer_gate.bias.fill_(1.0)
    return model


with_pointer = pytest.mark.parametrize("pointer", [False, True], ids=["no_pointer", "pointer"])


def test_new_model_starts_with_queries_as_they_are_and_keys_half_previous():
    attn = SmearedLlamaForCausalLM(_model().config).model.layers[1].self_attn
    assert isinstance(attn, SmearedKeyAttention)
    assert attn.query_mix[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert attn.key_mix[:, 0].tolist() == [0.5, 0.5, 0.0]


def test_mix_is_a_causal_convolution_over_time():
    attn = _model().model.layers[0].self_attn
    x = torch.tensor([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]])  # (batch, time, channels)
    weight = torch.tensor([[1.0, 2.0], [0.5, 0.0], [0.25, 1.0]])  # (lag, channels)
    out = attn.mix(x, weight, "key")
    expected = torch.tensor([[[1.0, 20.0], [2.5, 40.0], [3.0 + 1.0 + 0.25, 60.0 + 10.0]]])
    torch.testing.assert_close(out, expected)  # lags before t=0 contribute zeros
    attn.padding = torch.tensor([[0, 1, 1]])  # the first position is padding
    try:
        padded = attn.mix(x, weight, "key")
    finally:
        attn.padding = None
    torch.testing.assert_close(padded[0, 1:], torch.tensor([[2.0, 40.0], [3.0 + 1.0, 60.0]]))


@with_pointer
def test_cached_generation_computes_what_a_full_pass_computes(pointer):
    model = _model(pointer=pointer)
    ids = torch.randint(1, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    ids[0, :3], mask[0, :3] = 0, 0  # left padding, as the policy batches prompts
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
        out = model(input_ids=ids[:, :8], attention_mask=mask[:, :8], use_cache=True)
        cache = out.past_key_values
        for t in range(8, 12):
            out = model(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                        cache=cache, use_cache=True)
            torch.testing.assert_close(out.logits[:, -1], full[:, t], atol=1e-5, rtol=1e-4)
    cached = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5,
                            do_sample=False)
    uncached = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=5,
                              do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


@with_pointer
def test_left_padding_changes_nothing(pointer):
    model = _model(pointer=pointer)
    ids = torch.randint(1, 50, (1, 7), generator=torch.Generator().manual_seed(4))
    padded = torch.cat([torch.zeros((1, 3), dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros((1, 3), dtype=torch.long), torch.ones_like(ids)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        alone = model(input_ids=ids).logits
        batched = model(input_ids=padded, attention_mask=mask, position_ids=positions).logits
    torch.testing.assert_close(batched[:, 3:], alone, atol=1e-5, rtol=1e-4)


@with_pointer
def test_sampler_dropping_finished_rows_matches_one_row_at_a_time(pointer):
    model = _model(pointer=pointer)
    gen = torch.Generator().manual_seed(5)
    contexts = [torch.randint(1, 50, (n,), generator=gen).tolist() for n in (5, 9, 7)]
    # Budgets differ, so rows leave the batch (and its cache) at different steps.
    kw = {"pad_id": 0, "stop_ids": {0}, "temperature": 0.0}
    together = generate_batch(model, contexts, [2, 6, 4], **kw)
    for context, budget, got in zip(contexts, [2, 6, 4], together, strict=True):
        alone = generate_batch(model, [context], [budget], **kw)
        assert got.ids == alone[0].ids and len(got.ids) == budget
        torch.testing.assert_close(got.logprobs, alone[0].logprobs, atol=1e-4, rtol=1e-4)


def test_smearing_changes_the_model_and_the_weights_learn():
    model = _model()
    ids = torch.randint(1, 50, (2, 10), generator=torch.Generator().manual_seed(2))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    for layer in model.model.layers:
        assert layer.self_attn.query_mix.grad.abs().sum() > 0
        assert layer.self_attn.key_mix.grad.abs().sum() > 0
    with torch.no_grad():
        before = model(input_ids=ids).logits
        for layer in model.model.layers:
            for mix in (layer.self_attn.query_mix, layer.self_attn.key_mix):
                mix.zero_()
                mix[0] = 1.0  # no mixing: plain Llama queries and keys
        after = model(input_ids=ids).logits
    assert not torch.allclose(before, after)


@with_pointer
def test_saved_checkpoint_loads_as_the_same_model(tmp_path, pointer):
    model = _model(pointer=pointer)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, SmearedLlamaForCausalLM)
    ids = torch.randint(1, 50, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


@pytest.mark.parametrize("smear", [True, False])
def test_tiny_config_picks_the_architecture(smear):
    from agents.lm.model import tiny_llama_config

    config = tiny_llama_config(64, hidden_size=32, num_heads=4, smear_keys=smear, pointer=smear)
    assert (config.model_type == "forksearch_llama") is smear
    assert getattr(config, "pointer", False) is smear
    with pytest.raises(ValueError, match="smear_keys"):
        tiny_llama_config(64, smear_keys=False, pointer=True)
