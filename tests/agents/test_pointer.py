import math

import torch

from agents.lm.pointer import PointerHead


def _head(gate_bias: float) -> PointerHead:
    """Identity query and key projections, a gate that is ``sigmoid(gate_bias)`` everywhere."""
    head = PointerHead(2)
    with torch.no_grad():
        head.pointer_query.weight.copy_(torch.eye(2))
        head.pointer_key.weight.copy_(torch.eye(2))
        head.pointer_gate.weight.zero_()
        head.pointer_gate.bias.fill_(gate_bias)
    return head


# Four positions; the states at 0 and 2 are equal, so a query like them points at both.
HIDDEN = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 0.0]]])
IDS = torch.tensor([[5, 1, 3, 4]])
VOCAB = 6


def _probs(head: PointerHead, mask: torch.Tensor | None = None,
           vocab_logits: torch.Tensor | None = None) -> torch.Tensor:
    logits = torch.zeros((1, 4, VOCAB)) if vocab_logits is None else vocab_logits
    return head(HIDDEN, IDS, logits, torch.arange(4), mask).exp()


def test_copy_distribution_matches_a_hand_computation():
    probs = _probs(_head(gate_bias=50.0))  # gate = 1: the copy distribution alone
    # t = 0 has no earlier state to match: the gate closes, the vocabulary (uniform) remains.
    torch.testing.assert_close(probs[0, 0], torch.full((VOCAB,), 1 / VOCAB))
    # t = 1 may only use slot 0 (state 0 -> token 1).
    assert probs[0, 1, 1].item() > 0.999
    # t = 2 (state [2, 0]): slot 0 (state [2, 0], emits 1) scores 4/sqrt(2), slot 1 scores 0.
    w = math.exp(4 / math.sqrt(2))
    assert math.isclose(probs[0, 2, 1].item(), w / (w + 1), rel_tol=1e-5)
    assert math.isclose(probs[0, 2, 3].item(), 1 / (w + 1), rel_tol=1e-5)
    # t = 3 (state 0): all three slots score 0 and emit tokens 1, 3, 4 equally; never 5, which
    # no slot emits (position 0 has no state before it).
    torch.testing.assert_close(probs[0, 3, [1, 3, 4]], torch.full((3,), 1 / 3))
    assert probs[0, 3, 5].item() < 1e-9


def test_gate_mixes_the_copy_and_vocabulary_distributions():
    vocab_logits = torch.randn((1, 4, VOCAB), generator=torch.Generator().manual_seed(0))
    closed = _probs(_head(gate_bias=-50.0), vocab_logits=vocab_logits)
    torch.testing.assert_close(closed, vocab_logits.softmax(-1))
    copy = _probs(_head(gate_bias=50.0), vocab_logits=vocab_logits)
    half = _probs(_head(gate_bias=0.0), vocab_logits=vocab_logits)
    torch.testing.assert_close(half[0, 1:], 0.5 * closed[0, 1:] + 0.5 * copy[0, 1:])
    torch.testing.assert_close(half.sum(-1), torch.ones((1, 4)))


def test_padding_is_never_pointed_at():
    # Position 1 is padding: slot 0 (emits the padding) and slot 1 (state of the padding) go.
    probs = _probs(_head(gate_bias=50.0), mask=torch.tensor([[1, 0, 1, 1]]))
    assert probs[0, 3, 4].item() > 0.999  # only slot 2 (state 2 -> token 4) is left
    torch.testing.assert_close(probs[0, 2], torch.full((VOCAB,), 1 / VOCAB))  # none left


def test_gradients_reach_the_query_key_and_gate():
    head = PointerHead(2)
    logits = head(HIDDEN, IDS, torch.zeros((1, 4, VOCAB)), torch.arange(4))
    logits[0, 2, 3].backward()
    for linear in (head.pointer_query, head.pointer_key, head.pointer_gate):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0
