import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.utils import add_fused_lm_head

from agents.lm.smeared import SmearedLlamaConfig, SmearedLlamaForCausalLM, fused_output
from agents.training.fused_head import keep_own_head

SIZES = dict(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
             num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True)


def _batch():
    ids = torch.randint(1, 40, (2, 7), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[0, :3] = -100  # a prompt
    return ids, labels


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_fused_output_matches_trl_fused_head(temperature):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SIZES)).eval()
    ids, labels = _batch()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    add_fused_lm_head(model, temperature=temperature,
                      outputs=("log_probs", "entropy", "is_top1", "log_sum_sq_probs",
                               "mean_logits"))
    with torch.no_grad():
        trl_out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    ours = fused_output(logits, labels, None, temperature)
    for field in ("loss", "log_probs", "entropy", "log_sum_sq_probs", "mean_logits"):
        torch.testing.assert_close(getattr(ours, field), getattr(trl_out, field),
                                   atol=1e-5, rtol=1e-4, msg=field)
    assert torch.equal(ours.is_top1, trl_out.is_top1)
    assert torch.equal(ours.label_mask, trl_out.label_mask)


def _pointer_model() -> SmearedLlamaForCausalLM:
    torch.manual_seed(0)
    return SmearedLlamaForCausalLM(SmearedLlamaConfig(**SIZES, pointer=True))


def _pointer_grad(model: SmearedLlamaForCausalLM) -> float:
    ids, labels = _batch()
    model(input_ids=ids, labels=labels, fused_lm_head=True).loss.backward()
    grad = model.pointer.pointer_gate.weight.grad
    return 0.0 if grad is None else float(grad.abs().sum())


def test_trl_patch_skips_the_pointer_head_and_keep_own_head_restores_it():
    patched = _pointer_model()
    add_fused_lm_head(patched)  # what TRL's trainers do
    assert _pointer_grad(patched) == 0.0  # TRL's head sees the backbone and lm_head only
    restored = _pointer_model()
    add_fused_lm_head(restored)
    keep_own_head(restored, temperature=0.5)
    assert restored.fused_temperature == 0.5
    assert _pointer_grad(restored) > 0.0
    ids, labels = _batch()
    with torch.no_grad():
        out = restored(input_ids=ids, labels=labels, fused_lm_head=True)
        logits = restored(input_ids=ids).logits
    torch.testing.assert_close(out.log_probs, fused_output(logits, labels, None, 0.5).log_probs)


def test_keep_own_head_leaves_other_models_patched():
    model = LlamaForCausalLM(LlamaConfig(**SIZES))
    add_fused_lm_head(model)
    keep_own_head(model, None)
    assert "forward" in model.__dict__
