from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import corpora
from agents.analysis.tokens import (
    gradient_share,
    group_advantages,
    score_tokens,
    token_kinds,
)
from agents.lm import build_tiny_model, train_tokenizer
from agents.trajectory import TokenRecord, Trajectory


class BigramBias(nn.Module):
    """``logits[t] = bias + table[input_ids[t]]``.

    So ``grad log p(y | x)`` is ``onehot(y) - softmax(bias + table[x])`` on ``bias`` and on row
    ``x`` of ``table``, and zero on the other rows.
    """

    def __init__(self, table, bias, dropout: float = 0.0):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))
        self.bias = nn.Parameter(torch.tensor(bias, dtype=torch.float32))
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.dropout(self.bias + self.table[input_ids]))


def record(prompt, completion, env_mask, query_mask=None, answer_mask=None):
    n = len(completion)
    return TokenRecord(prompt_ids=list(prompt), completion_ids=list(completion),
                       env_mask=list(env_mask), logprobs=[0.0] * n, entropies=[0.0] * n,
                       query_mask=list(query_mask or [0] * n),
                       answer_mask=list(answer_mask or [0] * n))


# ----------------------------------------------------------------- gradient share, by hand

LN3 = math.log(3.0)
H_UNIFORM = math.log(2.0)  # entropy after token 0: p = (1/2, 1/2)
H_PEAKED = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # after token 1: p = (3/4, 1/4)


def hand_model(train_bias: bool, dropout: float = 0.0) -> BigramBias:
    model = BigramBias([[0.0, 0.0], [LN3, 0.0]], [0.0, 0.0], dropout)
    model.bias.requires_grad_(train_bias)
    return model


# Completion 1, 1, 0 after prompt 0; the middle token is the environment's.
# Token 1 after 0: H = ln 2, gradient on row 0 (and bias): (0, 1) - (1/2, 1/2) = (-1/2, 1/2).
# Token 0 after 1: H = 0.562, gradient on row 1 (and bias): (1, 0) - (3/4, 1/4) = (1/4, -1/4).
HAND_RECORDS = [record([0], [1, 1, 0], [1, 0, 1])]


def test_gradient_share_by_hand_orthogonal_parts():
    # Only the table trains: g_top lives on row 0, g_rest on row 1, so they are orthogonal
    # and the shares are the squared-norm fractions 0.5 / 0.625 and 0.125 / 0.625.
    out = gradient_share(hand_model(train_bias=False), HAND_RECORDS, [1.0], top_fraction=0.5)
    assert out["threshold"] == pytest.approx((H_UNIFORM + H_PEAKED) / 2, abs=1e-6)
    assert out["top_tokens"] == 0.5
    assert out["top_norm"] == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert out["rest_norm"] == pytest.approx(math.sqrt(0.125), abs=1e-6)
    assert out["total_norm"] == pytest.approx(math.sqrt(0.625), abs=1e-6)
    assert out["top_share"] == pytest.approx(0.8, abs=1e-6)
    assert out["rest_share"] == pytest.approx(0.2, abs=1e-6)


def test_gradient_share_by_hand_overlapping_parts():
    # With the bias trainable both parts also push the bias, in opposite directions:
    # g_top = (-1/2, 1/2 | bias -1/2, 1/2), g_rest = (1/4, -1/4 | bias 1/4, -1/4);
    # |g_top|^2 = 1, |g_rest|^2 = 1/4, <g_top, g_rest> = -1/4, |g|^2 = 3/4,
    # <g_top, g> = 3/4: the rest's gradient is orthogonal to g, its share is 0 though
    # its norm is 0.5 (a norm ratio would give it 58%).
    out = gradient_share(hand_model(train_bias=True), HAND_RECORDS, [1.0], top_fraction=0.5)
    assert out["top_norm"] == pytest.approx(1.0, abs=1e-6)
    assert out["rest_norm"] == pytest.approx(0.5, abs=1e-6)
    assert out["total_norm"] == pytest.approx(math.sqrt(0.75), abs=1e-6)
    assert out["top_share"] == pytest.approx(1.0, abs=1e-6)
    assert out["rest_share"] == pytest.approx(0.0, abs=1e-6)


def test_gradient_share_scales_with_advantage_and_ignores_its_sign():
    out = gradient_share(hand_model(train_bias=False), HAND_RECORDS, [-2.0], top_fraction=0.5)
    assert out["total_norm"] == pytest.approx(2 * math.sqrt(0.625), abs=1e-6)
    assert out["top_share"] == pytest.approx(0.8, abs=1e-6)


def test_gradient_share_zero_advantages_give_no_gradient():
    out = gradient_share(hand_model(train_bias=True), HAND_RECORDS * 2, [0.0, 0.0],
                         top_fraction=0.5)
    assert out["total_norm"] == out["top_norm"] == out["rest_norm"] == 0.0
    assert math.isnan(out["top_share"]) and math.isnan(out["rest_share"])
    assert out["top_tokens"] == 0.5  # the entropies are still measured


def test_gradient_share_runs_in_eval_mode_and_restores_the_mode():
    model = hand_model(train_bias=False, dropout=0.9).train()
    out = gradient_share(model, HAND_RECORDS, [1.0], top_fraction=0.5)
    assert model.training
    assert out["top_share"] == pytest.approx(0.8, abs=1e-6)  # no dropout applied


def test_gradient_share_checks_its_arguments():
    with pytest.raises(ValueError, match="one advantage per record"):
        gradient_share(hand_model(True), HAND_RECORDS, [1.0, 2.0])
    with pytest.raises(ValueError, match="top_fraction"):
        gradient_share(hand_model(True), HAND_RECORDS, [1.0], top_fraction=0.0)


# ----------------------------------------------------------- gradient share, any records


def reference(table, bias, records, advantages, top_fraction):
    """The formulas of gradient_share written out in numpy for a BigramBias model."""
    entropy, agent, contributions = [], [], []
    for rec, adv in zip(records, advantages):
        ids = rec.prompt_ids + rec.completion_ids
        for j, token in enumerate(rec.completion_ids):
            context = ids[len(rec.prompt_ids) + j - 1]
            p = np.exp(bias + table[context])
            p /= p.sum()
            entropy.append(-(p * np.log(p)).sum())
            agent.append(bool(rec.env_mask[j]))
            contributions.append((context, adv * (np.eye(len(p))[token] - p)))
    entropy, agent = np.array(entropy), np.array(agent)
    threshold = np.quantile(entropy[agent], 1 - top_fraction)
    top = agent & (entropy >= threshold)
    grads = {part: (np.zeros_like(table), np.zeros_like(bias)) for part in ("top", "rest")}
    for t, (context, grad) in enumerate(contributions):
        if agent[t]:
            g_table, g_bias = grads["top" if top[t] else "rest"]
            g_table[context] += grad
            g_bias += grad
    flat = {k: np.concatenate([t.ravel(), b]) for k, (t, b) in grads.items()}
    g = flat["top"] + flat["rest"]
    return {"threshold": threshold, "top_tokens": top.sum() / agent.sum(),
            "top_norm": np.linalg.norm(flat["top"]), "rest_norm": np.linalg.norm(flat["rest"]),
            "total_norm": np.linalg.norm(g), "top_share": flat["top"] @ g / (g @ g),
            "rest_share": flat["rest"] @ g / (g @ g)}, entropy


def random_records(rng, n, vocab):
    out = []
    for _ in range(n):
        prompt = rng.integers(0, vocab, rng.integers(1, 4)).tolist()
        size = int(rng.integers(0, 9))
        out.append(record(prompt, rng.integers(0, vocab, size).tolist(),
                          (rng.random(size) < 0.7).astype(int).tolist()))
    return out


def test_gradient_share_matches_the_formula_on_padded_batches():
    rng = np.random.default_rng(0)
    table, bias = rng.normal(size=(5, 5)), rng.normal(size=5)
    records = random_records(rng, 7, 5)
    advantages = [0.5, -1.0, 0.0, 2.0, -0.25, 1.0, 0.75]
    expected, entropy = reference(table, bias, records, advantages, 0.3)
    model = BigramBias(table, bias)
    scores = score_tokens(model, records, batch_size=3)
    np.testing.assert_allclose(np.concatenate([s.entropy for s in scores]), entropy, atol=1e-5)
    out = gradient_share(model, records, advantages, top_fraction=0.3, batch_size=2)
    assert out == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_score_tokens_of_the_hand_model():
    (scores,) = score_tokens(hand_model(True), HAND_RECORDS)
    np.testing.assert_allclose(scores.entropy, [H_UNIFORM, H_PEAKED, H_PEAKED], atol=1e-6)
    np.testing.assert_allclose(scores.logprob, np.log([0.5, 0.25, 0.75]), atol=1e-6)


def test_score_tokens_needs_a_prompt_token():
    with pytest.raises(ValueError, match="prompt token"):
        score_tokens(hand_model(True), [record([], [1], [1])])


# ----------------------------------------------------------------- the tiny model


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(corpora.load("synthetic", size="tiny"),
                           cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def tiny_records(tokenizer):
    rng = np.random.default_rng(1)
    out = []
    for length in (12, 30, 5, 21, 17):
        ids = rng.integers(3, len(tokenizer), length).tolist()
        out.append(record(ids[:4], ids[4:], (rng.random(length - 4) < 0.6).astype(int)))
    return out


def test_score_tokens_equals_a_forward_per_sequence(tokenizer, tiny_records):
    model = build_tiny_model(tokenizer, seed=0).eval()
    scores = score_tokens(model, tiny_records, batch_size=3)
    with torch.no_grad():
        for rec, got in zip(tiny_records, scores):
            ids = torch.tensor([rec.prompt_ids + rec.completion_ids])
            logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
            logp = logp[len(rec.prompt_ids) - 1:-1]
            targets = torch.tensor(rec.completion_ids)
            np.testing.assert_allclose(got.entropy, -(logp.exp() * logp).sum(-1), atol=1e-5)
            np.testing.assert_allclose(got.logprob, logp[range(len(targets)), targets],
                                       atol=1e-5)


def test_gradient_share_leaves_parameters_and_grads_unchanged(tokenizer, tiny_records):
    model = build_tiny_model(tokenizer, seed=0).train()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.125)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = gradient_share(model, tiny_records, [1.0, -1.0, 0.5, 0.0, 2.0])
    assert out["total_norm"] > 0
    assert out["top_share"] + out["rest_share"] == pytest.approx(1.0)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(torch.equal(p.grad, torch.full_like(p, 0.125)) for p in model.parameters())


# ----------------------------------------------------------------- token kinds


def agent_turn(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    inside = {"search": [0] * len(ids), "answer": [0] * len(ids)}
    tag_ids = {tokenizer.convert_tokens_to_ids(t): t for t in
               ("<search>", "</search>", "<answer>", "</answer>")}
    open_tag = None
    for i, token in enumerate(ids):
        tag = tag_ids.get(token)
        if tag is not None:
            open_tag = None if tag.startswith("</") else tag.strip("<>")
        elif open_tag is not None:
            inside[open_tag][i] = 1
    return ids, inside["search"], inside["answer"]


def test_token_kinds_with_the_tiny_tokenizer(tokenizer):
    rec = TokenRecord(prompt_ids=tokenizer("Question: Where?")["input_ids"])
    turns = ["<think>plan</think><search>Ada Lovelace</search>", "Done<answer>London</answer>"]
    ids, query, answer = agent_turn(tokenizer, turns[0])
    rec.add_turn(ids, [0.0] * len(ids), [0.0] * len(ids), query, answer)
    # The environment quotes an unclosed <think>: it must not turn "Done" into thinking.
    env = tokenizer("\n<information>no <think> here</information>\n",
                    add_special_tokens=False)["input_ids"]
    rec.add_observation(env)
    ids2, query2, answer2 = agent_turn(tokenizer, turns[1])
    rec.add_turn(ids2, [0.0] * len(ids2), [0.0] * len(ids2), query2, answer2)

    kinds = token_kinds(tokenizer, rec)
    n_plan = len(tokenizer("plan", add_special_tokens=False)["input_ids"])
    n_query = sum(query)
    n_done = len(tokenizer("Done", add_special_tokens=False)["input_ids"])
    n_answer = sum(answer2)
    assert n_query > 1 and n_answer >= 1
    assert kinds == (["tag"] + ["think"] * n_plan + ["tag", "tag"] + ["query"] * n_query
                     + ["tag"] + ["env"] * len(env) + ["other"] * n_done + ["tag"]
                     + ["answer"] * n_answer + ["tag"])


class PieceTokenizer:
    """Decodes each id to a fixed piece of text: tags split across tokens."""

    def __init__(self, pieces):
        self.pieces = pieces

    def decode(self, ids, **kwargs):
        return "".join(self.pieces[i] for i in ids)


def test_token_kinds_finds_tags_split_across_tokens():
    pieces = ["<th", "ink>", "go", "</", "think><sea", "rch>", "Ada", "</search", ">", "info",
              "<", "answer>", "x", "</answer>", "obs", "<think>", "hmm"]
    tok = PieceTokenizer(pieces)
    completion = list(range(17))
    env = [1] * 9 + [0] + [1] * 4 + [0] + [1] * 2
    query = [0] * 6 + [1] + [0] * 10
    answer = [0] * 12 + [1] + [0] * 4
    kinds = token_kinds(tok, record([0], completion, env, query, answer))
    assert kinds == ["tag", "tag", "think", "tag", "tag", "tag", "query", "tag", "tag", "env",
                     "tag", "tag", "answer", "tag", "env", "tag", "think"]  # unclosed: to the end


# ----------------------------------------------------------------- advantages


def test_group_advantages_subtract_the_question_mean():
    rewards = [("a", 1.0), ("a", 0.0), ("a", 0.0), ("b", 1.0), ("c", 0.5), ("c", 0.5)]
    trajectories = [Trajectory(qid=q, question="?", agent="lm", reward=r) for q, r in rewards]
    assert group_advantages(trajectories) == pytest.approx([2 / 3, -1 / 3, -1 / 3, 0, 0, 0])
