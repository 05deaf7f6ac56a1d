from __future__ import annotations

import copy
import math
import re

import pytest
import torch

import corpora
from agents.lm import (
    TAGS,
    LMPolicy,
    build_tiny_model,
    load_model_and_tokenizer,
    sampling,
    tiny_llama_config,
    train_tokenizer,
)
from agents.lm import tokenizer as tokenizer_module
from agents.lm.tokenizer import decode
from agents.rollout import rollout
from agents.trajectory import TokenRecord, Trajectory, load_jsonl, save_jsonl
from corpora import Hit
from envs.batch import SearchEnvBatch
from envs.protocol import render_prompt
from envs.search_env import SearchEnv


class WordOverlapRetriever:
    """Stand-in for BM25 while ``corpora.make_retriever`` is not available."""

    def __init__(self, corpus):
        self.docs = corpus.documents

    def search(self, queries, k):
        def words(text):
            return set(re.findall(r"\w+", text.lower()))

        out = []
        for query in queries:
            q = words(query)
            scores = [len(q & words(f"{d.title} {d.text}")) for d in self.docs]
            order = sorted(range(len(self.docs)), key=lambda i: (-scores[i], i))[:k]
            out.append([Hit(self.docs[i].doc_id, float(scores[i])) for i in order])
        return out


@pytest.fixture(scope="module")
def corpus():
    return corpora.load("synthetic", size="tiny")


@pytest.fixture(scope="module")
def retriever(corpus):
    if hasattr(corpora, "make_retriever"):
        return corpora.make_retriever("bm25", corpus)
    return WordOverlapRetriever(corpus)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tokenizer(corpus, cache_root):
    return train_tokenizer(corpus, cache_dir=cache_root)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_model(tokenizer, seed=0).eval()


def make_batch(n, corpus, retriever, max_turns=3):
    return SearchEnvBatch(
        [SearchEnv(corpus, "test", retriever, top_k=3, max_turns=max_turns) for _ in range(n)]
    )


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def runs(mask, value):
    """Index lists of the maximal runs of ``value`` in ``mask``."""
    out, current = [], []
    for i, m in enumerate(mask):
        if m == value:
            current.append(i)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


# --- tokenizer ---------------------------------------------------------------------------------


def test_tags_are_single_tokens_that_decode_as_text(tokenizer):
    for tag in TAGS:
        ids = ids_of(tokenizer, tag)
        assert len(ids) == 1, tag
        assert decode(tokenizer, ids) == tag
        assert ids[0] in ids_of(tokenizer, f"x{tag}y")
    for special in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id):
        assert special is not None
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3


def test_names_split_into_shared_pieces(corpus, tokenizer):
    text = " ".join(f"{d.title} {d.text}" for d in corpus.documents)
    assert "Drourtox" not in text and "Groais" not in text
    for word in ("Drourtox", "Groais"):
        pieces = ids_of(tokenizer, word)
        assert len(pieces) >= 2
        assert tokenizer.unk_token_id not in pieces
    # Corpus names are not whole tokens either: most multi-syllable name words split.
    words = {w for q in corpus.questions for e in q.entities for w in e.split() if len(w) > 5}
    split = [len(ids_of(tokenizer, w)) >= 2 for w in words]
    assert sum(split) / len(split) > 0.6  # 0.92 on the default world
    # A name is the same tokens wherever it stands, so it can be copied token by token.
    name = corpus.split("test")[0].entities[0]
    pieces = ids_of(tokenizer, name)
    for text in (f"<search>{name}</search>", f"was {name}.", f"Which company does {name} work"):
        ids = ids_of(tokenizer, text)
        assert any(ids[i:i + len(pieces)] == pieces for i in range(len(ids))), text


@pytest.mark.parametrize(
    "text",
    [
        "In which city was Koux Drofaizoun born?",
        "  two  spaces,\ttabs\nand newlines\n\n",
        "Around 1,771,000 people live there. (Title: X) #$%&*+-/:;=@[]^_`{|}~'\"",
        "<search>Drourtox Groais</search>\n<information>Doc 1 (Title: A) b.</information>\n",
        "",
    ],
)
def test_decode_encode_round_trip(tokenizer, text):
    # The raw decode has the space the normalizer puts before each segment; decode drops it.
    tags = "(" + "|".join(re.escape(t) for t in TAGS) + ")"
    spaced = "".join(p if p in TAGS else " " + p for p in re.split(tags, text) if p)
    assert tokenizer.decode(ids_of(tokenizer, text)) == spaced
    assert decode(tokenizer, ids_of(tokenizer, text)) == text
    with_bos = tokenizer(text)["input_ids"]
    assert with_bos[0] == tokenizer.bos_token_id
    assert decode(tokenizer, with_bos, skip_special_tokens=True) == text
    assert decode(tokenizer, with_bos) == "<s>" + text


def test_tokenizer_cache_is_reused(corpus, tokenizer, cache_root, monkeypatch):
    path = cache_root / "tokenizers" / f"{tokenizer_module.text_fingerprint(corpus)}-1024"
    assert (path / "tokenizer.json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although a cached tokenizer exists")

    monkeypatch.setattr(tokenizer_module, "build_tokenizer", no_training)
    again = train_tokenizer(corpus, cache_dir=cache_root)
    assert again.get_vocab() == tokenizer.get_vocab()
    assert len(again) == len(tokenizer) <= 1024
    assert decode(again, ids_of(again, "<answer>Rolmuar</answer>")) == "<answer>Rolmuar</answer>"


def test_tokenizer_cache_key_covers_questions(corpus):
    # The tokenizer is trained on questions too: same documents, other questions, other key.
    fewer = corpora.Corpus(corpus.name, corpus.documents, corpus.questions[1:])
    assert fewer.fingerprint == corpus.fingerprint
    assert tokenizer_module.text_fingerprint(fewer) != tokenizer_module.text_fingerprint(corpus)
    same = corpora.Corpus(corpus.name, corpus.documents, corpus.questions)
    assert tokenizer_module.text_fingerprint(same) == tokenizer_module.text_fingerprint(corpus)


# --- model -------------------------------------------------------------------------------------


def test_tiny_model_config(tokenizer, model):
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert tiny_llama_config(100).num_hidden_layers == 2
    other = build_tiny_model(tokenizer, seed=0)
    assert torch.equal(other.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_save_pretrained_round_trip(corpus, model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model2, tokenizer2 = load_model_and_tokenizer(str(tmp_path))
    assert tokenizer2.get_vocab() == tokenizer.get_vocab()
    text = render_prompt(corpus.split("test")[0].question)
    assert tokenizer2(text)["input_ids"] == tokenizer(text)["input_ids"]
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        assert torch.allclose(model(ids).logits, model2(ids).logits, atol=1e-5)


def test_load_errors_are_clear(corpus):
    with pytest.raises(ValueError, match="corpus"):
        load_model_and_tokenizer("tiny")
    with pytest.raises(OSError, match="local"):
        load_model_and_tokenizer("forksearch-no-such-org/no-such-model")
    with pytest.raises(FileNotFoundError):
        load_model_and_tokenizer("./no/such/checkpoint")
    with pytest.raises(ValueError, match="tiny"):
        load_model_and_tokenizer("./somewhere", hidden_size=64)


# --- sampling ----------------------------------------------------------------------------------


def test_sample_tokens_greedy_top_p_and_banned():
    logits = torch.tensor([[0.0, 2.0, 1.0, 5.0], [3.0, 0.0, 0.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    tokens, logps, ents = sampling.sample_tokens(logits, 0.0, 1.0, gen)
    assert tokens.tolist() == [3, 0]
    expected = torch.log_softmax(logits, -1)
    assert torch.allclose(logps, expected[[0, 1], [3, 0]])
    assert torch.allclose(ents, -(expected.exp() * expected).sum(-1))
    for _ in range(20):  # a tiny nucleus keeps only the top token
        assert sampling.sample_tokens(logits, 1.0, 0.01, gen)[0].tolist() == [3, 0]
    for _ in range(20):
        tokens, logps, _ = sampling.sample_tokens(logits, 2.0, 1.0, gen, banned_ids=[3, 0])
        assert not set(tokens.tolist()) & {0, 3}
        assert (logps <= 0).all()


# --- policy ------------------------------------------------------------------------------------


def check_record(record, tokenizer):
    tokens = record.tokens
    n = len(tokens.completion_ids)
    for key in ("env_mask", "logprobs", "entropies", "query_mask", "answer_mask"):
        assert len(getattr(tokens, key)) == n, key
    assert decode(tokenizer, tokens.prompt_ids, skip_special_tokens=True) == render_prompt(
        record.question
    )
    env_runs = runs(tokens.env_mask, 0)
    decoded = [decode(tokenizer, [tokens.completion_ids[i] for i in r]) for r in env_runs]
    assert decoded == record.observations[:-1]
    agent_runs = runs(tokens.env_mask, 1)
    decoded = [
        decode(tokenizer, [tokens.completion_ids[i] for i in r], skip_special_tokens=True)
        for r in agent_runs
    ]
    assert decoded == record.actions
    for m, lp, ent in zip(tokens.env_mask, tokens.logprobs, tokens.entropies, strict=True):
        if m:
            assert lp <= 0.0 and ent >= 0.0
        else:
            assert lp == 0.0 and ent == 0.0


def test_untrained_rollout_records_tokens(corpus, retriever, model, tokenizer, tmp_path):
    policy = LMPolicy(model, tokenizer, max_new_tokens=24, seed=1)
    qids = [q.qid for q in corpus.split("test")[:3]]
    trajectories = rollout(policy, make_batch(4, corpus, retriever), qids, samples=2)
    assert [(t.qid, t.sample) for t in trajectories] == [(q, s) for q in qids for s in range(2)]
    for record in trajectories:
        assert record.agent == "lm"
        check_record(record, tokenizer)
    assert load_jsonl(save_jsonl(trajectories, tmp_path / "t.jsonl")) == trajectories


def test_token_record_grows_aligned_and_loads_strictly(tmp_path):
    tokens = TokenRecord(prompt_ids=[1])
    tokens.add_turn([2, 3], [-0.5, -0.1], [0.7, 0.2], [0, 1], [0, 0])
    tokens.add_observation([4])
    assert (len(tokens), tokens.env_mask, tokens.logprobs) == (4, [1, 1, 0], [-0.5, -0.1, 0.0])
    with pytest.raises(ValueError, match="one value per token"):
        tokens.add_turn([5], [0.0], [], [0], [0])
    path = save_jsonl([Trajectory("q", "Q?", "lm", tokens=tokens)], tmp_path / "t.jsonl")
    path.write_text(path.read_text().replace('"answer_mask"', '"mask"'))
    with pytest.raises(ValueError, match=r"t\.jsonl:1: unknown trajectory fields \['tokens\.mask"):
        load_jsonl(path)


def force(monkeypatch, script):
    """Make sampling emit ``script`` (one row), reporting the model's real log-probabilities."""
    tokens = iter(script)

    def fake(logits, temperature, top_p, generator, banned_ids=()):
        token = torch.tensor([next(tokens)])
        logp = torch.log_softmax(logits.float() / temperature, -1)
        return token, logp[:, token[0]], -(logp.exp() * logp).sum(-1)

    monkeypatch.setattr(sampling, "sample_tokens", fake)


def test_forced_search_and_answer_masks(corpus, retriever, model, tokenizer, monkeypatch):
    question = corpus.split("test")[0]
    name = question.entities[0]
    search = ids_of(tokenizer, f"<search>{name}</search>")
    answer = ids_of(tokenizer, f"<answer>{name}</answer>")
    force(monkeypatch, search + answer)
    policy = LMPolicy(model, tokenizer, max_new_tokens=40)
    (record,) = rollout(policy, make_batch(1, corpus, retriever), [question.qid])
    assert record.actions == [f"<search>{name}</search>", f"<answer>{name}</answer>"]
    assert record.queries == [name]
    observation = record.observations[0]
    assert observation.startswith("\n<information>")
    obs = ids_of(tokenizer, observation)
    tokens = record.tokens
    assert tokens.completion_ids == search + obs + answer
    assert tokens.env_mask == [1] * len(search) + [0] * len(obs) + [1] * len(answer)
    name_ids = ids_of(tokenizer, name)
    assert len(name_ids) >= 2
    inside = [0] + [1] * len(name_ids) + [0]
    assert tokens.query_mask == inside + [0] * (len(obs) + len(answer))
    assert tokens.answer_mask == [0] * (len(search) + len(obs)) + inside
    check_record(record, tokenizer)
    assert all(lp < 0 for lp, m in zip(tokens.logprobs, tokens.env_mask, strict=True) if m)


def test_closing_tag_in_pieces_ends_the_turn(corpus, model, tokenizer, monkeypatch):
    pieces = tokenizer.convert_tokens_to_ids(list("</search>"))  # one byte-level token each
    script = ids_of(tokenizer, "<search>Foo") + pieces
    force(monkeypatch, script + ids_of(tokenizer, "never reached"))
    policy = LMPolicy(model, tokenizer, max_new_tokens=30)
    question = corpus.split("test")[0]
    policy.begin(0, question.question, question.qid, render_prompt(question.question))
    assert policy.act([0], [render_prompt(question.question)]) == ["<search>Foo</search>"]
    record = policy.token_record(0)
    assert record.completion_ids == script
    assert record.query_mask == [0] + [1] * len(ids_of(tokenizer, "Foo")) + [0] * len(pieces)


def test_greedy_is_batch_invariant(corpus, model, tokenizer):
    questions = corpus.split("test")[:4]
    prompts = [render_prompt(q.question) for q in questions]
    feedback = "\nInvalid action: no <search> or <answer> tag. Write <search>query</search>.\n"

    def play(slots_per_call):
        policy = LMPolicy(model, tokenizer, temperature=0.0, max_new_tokens=10)
        for i, (q, p) in enumerate(zip(questions, prompts, strict=True)):
            policy.begin(i, q.question, q.qid, p)
        texts = []
        for turn_obs in (prompts, [feedback * (i + 1) for i in range(4)]):
            turn = []
            for start in range(0, 4, slots_per_call):
                slots = list(range(start, start + slots_per_call))
                turn += policy.act(slots, [turn_obs[s] for s in slots])
            texts.append(turn)
        return texts, [policy.token_record(i) for i in range(4)]

    texts1, records1 = play(1)
    texts4, records4 = play(4)
    assert texts1 == texts4
    for r1, r4 in zip(records1, records4, strict=True):
        assert r1.completion_ids == r4.completion_ids
        assert all(
            math.isclose(a, b, abs_tol=1e-4)
            for a, b in zip(r1.logprobs, r4.logprobs, strict=True)
        )


def test_sampling_is_seeded(corpus, model, tokenizer):
    question = corpus.split("test")[0]
    prompt = render_prompt(question.question)

    def sample(seed):
        policy = LMPolicy(model, tokenizer, max_new_tokens=12, seed=seed, top_p=0.9)
        for slot in range(3):
            policy.begin(slot, question.question, question.qid, prompt)
        return policy.act([0, 1, 2], [prompt] * 3)

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)


def test_length_limit_ends_turns_without_error(corpus, retriever, model, tokenizer):
    question = corpus.split("test")[0]
    prompt_len = len(tokenizer(render_prompt(question.question))["input_ids"])
    max_length = prompt_len + 6
    policy = LMPolicy(model, tokenizer, max_new_tokens=40, max_length=max_length)
    (record,) = rollout(policy, make_batch(1, corpus, retriever, max_turns=3), [question.qid])
    assert len(record.actions) == 3
    generated = [i for i, m in enumerate(record.tokens.env_mask) if m]
    assert generated and prompt_len + generated[-1] < max_length
    assert record.actions[1:] == ["", ""]


def test_chat_template_renders_the_prompt(corpus, model, tokenizer):
    chat = copy.deepcopy(tokenizer)
    chat.chat_template = (
        "{{ bos_token }}{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    question = corpus.split("test")[0]
    prompt = render_prompt(question.question)
    policy = LMPolicy(model, chat, use_chat_template=True, max_new_tokens=4)
    policy.begin(0, question.question, question.qid, prompt)
    prompt_ids = policy.token_record(0).prompt_ids
    assert prompt_ids.count(chat.bos_token_id) == 1
    assert decode(chat, prompt_ids) == f"<s>User: {prompt}\nAssistant:"
    with pytest.warns(UserWarning, match="chat template"):
        LMPolicy(model, tokenizer, use_chat_template=True)


def test_rows_leaving_the_batch_do_not_disturb_the_others(corpus, model, tokenizer):
    contexts = [tokenizer(render_prompt(q.question))["input_ids"] for q in corpus.split("test")[:4]]
    contexts[1] = contexts[1][:7]  # very different lengths: heavy left padding
    budgets = [3, 12, 0, 7]  # rows finish at different steps (and one never starts)
    kwargs = {"pad_id": tokenizer.pad_token_id, "stop_ids": set(), "temperature": 0.0}
    together = sampling.generate_batch(model, contexts, budgets, **kwargs)
    assert [len(g.ids) for g in together] == budgets
    for context, budget, gen in zip(contexts, budgets, together, strict=True):
        (alone,) = sampling.generate_batch(model, [context], [budget], **kwargs)
        assert alone.ids == gen.ids
        pairs = zip(alone.logprobs, gen.logprobs, strict=True)
        assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in pairs)
