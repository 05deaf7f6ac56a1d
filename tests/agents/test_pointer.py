import math

import pytest
import torch

import corpora
from agents.lm import train_tokenizer
from agents.lm.pointer import PointerHead, uncopyable_ids

# Four positions; the states at 0 and 2 are equal, so a query like them points at both.
HIDDEN = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 0.0]]])
IDS = torch.tensor([[5, 1, 3, 4]])
VOCAB = 6


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(corpora.load("synthetic", size="tiny"),
                           cache_dir=tmp_path_factory.mktemp("cache"))


def _head(gate_bias: float, skip_ids: tuple[int, ...] = ()) -> PointerHead:
    """Identity query and key projections, a gate that is ``sigmoid(gate_bias)`` everywhere."""
    head = PointerHead(2, VOCAB, skip_ids)
    with torch.no_grad():
        head.pointer_query.weight.copy_(torch.eye(2))
        head.pointer_key.weight.copy_(torch.eye(2))
        head.pointer_gate.weight.zero_()
        head.pointer_gate.bias.fill_(gate_bias)
    return head




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


def test_skipped_tokens_are_never_copied():
    probs = _probs(_head(gate_bias=50.0, skip_ids=(1, 4)))
    # t = 3 could point at slots 0, 1, 2 (tokens 1, 3, 4); only token 3 may be copied.
    assert probs[0, 3, 3].item() > 0.999
    torch.testing.assert_close(probs[0, 1], torch.full((VOCAB,), 1 / VOCAB))  # nothing to copy


def test_spaces_punctuation_and_tags_are_uncopyable(tokenizer):
    skip = set(uncopyable_ids(tokenizer))
    for text in (" ", ".", "?", "(", "<search>", "</answer>"):
        assert tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))[0] in skip, text
    assert tokenizer.eos_token_id in skip and tokenizer.pad_token_id in skip
    for word in ("Drourtox", "1987"):  # every piece with a letter or digit is copyable
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        pieces = [i for i in ids if any(ch.isalnum() for ch in tokenizer.decode([i]))]
        assert len(pieces) >= 2 and not skip & set(pieces), word


def test_gradients_reach_the_query_key_and_gate():
    head = PointerHead(2, VOCAB)
    logits = head(HIDDEN, IDS, torch.zeros((1, 4, VOCAB)), torch.arange(4))
    logits[0, 2, 3].backward()
    for linear in (head.pointer_query, head.pointer_key, head.pointer_gate):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0


def _induction_head(width: int = 128) -> tuple[PointerHead, torch.nn.Embedding]:
    """A head that matches on token identities alone, and orthogonal token embeddings."""
    head = PointerHead(width, VOCAB)  # token terms start as 0.5 * identity
    with torch.no_grad():
        head.pointer_query.weight.zero_()
        head.pointer_key.weight.zero_()
        head.pointer_gate.bias.fill_(50.0)
    embed = torch.nn.Embedding(VOCAB, width)
    with torch.no_grad():
        embed.weight.copy_(3.0 * torch.eye(VOCAB, width))
    return head, embed


def _copy_probs(ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    head, embed = _induction_head()
    hidden = torch.zeros((*ids.shape, 128))
    logits = torch.zeros((*ids.shape, VOCAB))
    return head(hidden, ids, logits, torch.arange(ids.shape[1]), mask,
                embeddings=embed(ids)).exp()


def test_token_terms_alone_make_an_induction_head():
    probs = _copy_probs(torch.tensor([[2, 5, 1, 3, 2]]))
    # t = 4 holds token 2, which was followed by 5 earlier: the copy favours 5.
    assert probs[0, 4].argmax().item() == 5
    assert probs[0, 4, 5].item() > 2 * probs[0, 4, 1].item()


def test_token_pairs_tell_apart_continuations_of_a_shared_piece():
    # Token 1 follows 4 (then 2) and follows 5 (then 3); at t = 7 it follows 4 again.
    probs = _copy_probs(torch.tensor([[4, 1, 2, 5, 1, 3, 4, 1]]))
    assert probs[0, 7, 2].item() > 5 * probs[0, 7, 3].item()


def test_padding_before_a_sequence_changes_no_token_match():
    ids = torch.tensor([[2, 5, 1, 3, 2]])
    padded = torch.cat([torch.tensor([[4, 4]]), ids], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    torch.testing.assert_close(_copy_probs(padded, mask)[:, 2:], _copy_probs(ids))
