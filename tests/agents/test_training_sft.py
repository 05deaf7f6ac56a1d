"""SFT phase: the demonstration token layout, loss masks, and no loss on environment tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig

import corpora
from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.lm.tokenizer import decode
from agents.rollout import rollout
from agents.training.config import SFTPhaseConfig
from agents.training.demonstrations import build_pool
from agents.training.metrics import MetricsLog
from agents.training.monitor import PhaseInfo, PhaseMonitor
from agents.training.sft import DemoCollator, DemoSFTTrainer, encode_demonstration
from agents.training.trainer_args import common_args
from agents.trajectory import Trajectory
from envs.batch import SearchEnvBatch
from envs.protocol import render_prompt
from envs.search_env import SearchEnv


@pytest.fixture(scope="module")
def world():
    corpus = corpora.load("synthetic", size="tiny")
    retriever = corpora.make_retriever("bm25", corpus)
    batch = SearchEnvBatch([SearchEnv(corpus, "train", retriever) for _ in range(8)])
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0)
    return corpus, batch, model, tokenizer


@pytest.fixture(scope="module")
def demos(world) -> list[Trajectory]:
    corpus, batch, _, _ = world
    qids = [q.qid for q in corpus.split("train")[:20]]
    return build_pool(batch, qids, ["entity", "bridge"], max_searches=3).demos


def _runs(ids: list[int], mask: list[int], value: int) -> list[int]:
    return [t for t, m in zip(ids, mask) if m == value]


def test_layout_matches_what_the_policy_sees(world) -> None:
    corpus, batch, model, tokenizer = world
    policy = LMPolicy(model, tokenizer, max_new_tokens=12, seed=1)
    episodes = rollout(policy, batch, [q.qid for q in corpus.split("train")[:6]])
    for t in episodes:
        enc = encode_demonstration(policy, t, policy.max_length)
        n = len(t.tokens.prompt_ids)
        assert enc["input_ids"][:n] == t.tokens.prompt_ids and not any(enc["assistant_masks"][:n])
        # Observation tokens are encoded exactly as the policy appended them during the episode.
        assert (_runs(enc["input_ids"][n:], enc["assistant_masks"][n:], 0)
                == _runs(t.tokens.completion_ids, t.tokens.env_mask, 0))


def test_loss_masks_cover_actions_only(world, demos) -> None:
    _, _, model, tokenizer = world
    policy = LMPolicy(model, tokenizer)
    demo = next(d for d in demos if len(d.actions) >= 2)
    enc = encode_demonstration(policy, demo, policy.max_length)
    ids, agent = enc["input_ids"], enc["assistant_masks"]
    assert decode(tokenizer, _runs(ids, agent, 1)) == "".join(demo.actions)
    # Environment tokens: the prompt and each observation, each encoded on its own.
    env_ids = list(tokenizer(render_prompt(demo.question))["input_ids"])
    for observation in demo.observations[:-1]:
        env_ids += tokenizer(observation, add_special_tokens=False)["input_ids"]
    assert _runs(ids, agent, 0) == env_ids
    assert "<information>" in decode(tokenizer, env_ids)
    query = decode(tokenizer, [t for t, q in zip(ids, enc["query_mask"]) if q])
    assert query == "".join(demo.queries)
    answer = decode(tokenizer, [t for t, a in zip(ids, enc["answer_mask"]) if a])
    assert answer == demo.actions[-1].removeprefix("<answer>").removesuffix("</answer>")


def _trainer(world, demos: list[Trajectory], rows: list[dict], tmp_path: Path) -> DemoSFTTrainer:
    _, _, model, tokenizer = world
    monitor = PhaseMonitor(PhaseInfo("sft", 0, 0, 1), MetricsLog(tmp_path / "m.jsonl"),
                           evaluate=lambda m: {}, commit=lambda *a: None, progress=False)
    cfg = SFTPhaseConfig(steps=1, batch_size=len(rows))
    args = SFTConfig(**common_args(tmp_path, 1, 10, [], "cpu", 0, False),
                     per_device_train_batch_size=cfg.batch_size, remove_unused_columns=False,
                     max_length=None, shuffle_dataset=False, train_sampling_strategy="sequential")
    return DemoSFTTrainer(monitor=monitor, demos=demos, model=model, args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          data_collator=DemoCollator(tokenizer.pad_token_id))


def _grads(trainer: DemoSFTTrainer, rows: list[dict]) -> list[torch.Tensor]:
    model = trainer.model
    model.zero_grad()
    model.train()
    batch = trainer.data_collator(rows)
    trainer.compute_loss(model, batch).backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_information_tokens_carry_no_sft_loss(world, demos, tmp_path: Path) -> None:
    """Changing a trailing <information> block leaves the gradient unchanged."""
    _, _, model, tokenizer = world
    policy = LMPolicy(model, tokenizer)
    demo = next(d for d in demos if len(d.actions) >= 2)
    enc = encode_demonstration(policy, demo, policy.max_length)
    # Keep the episode up to the end of its first <information> block (a truncated episode).
    info_end = next(i for i in range(len(enc["input_ids"]) - 1, 0, -1)
                    if enc["assistant_masks"][i] == 0 and enc["assistant_masks"][i - 1] == 1)
    cut = next(i for i in range(info_end, len(enc["input_ids"])) if enc["assistant_masks"][i])
    row = {k: v[:cut] for k, v in enc.items()} | {"demo_index": 0}
    changed = dict(row, input_ids=row["input_ids"][:info_end] + [
        (t * 7 + 3) % len(tokenizer) for t in row["input_ids"][info_end:]])
    trainer = _trainer(world, demos, [row, changed], tmp_path)
    prepared = [trainer.train_dataset[i] for i in range(2)]
    for r in prepared:  # TRL turned assistant_masks into labels: -100 off the agent tokens
        assert [lab != -100 for lab in r["labels"]] == [
            bool(a) for a in (row["assistant_masks"])]
    assert prepared[0]["input_ids"] != prepared[1]["input_ids"]
    same = [torch.equal(a, b) for a, b in zip(_grads(trainer, prepared[:1]),
                                              _grads(trainer, prepared[1:]))]
    assert all(same)
    # Control: with loss on every token the same change does move the gradient.
    leaky = [dict(r, labels=list(r["input_ids"])) for r in prepared]
    assert not all(torch.equal(a, b) for a, b in zip(_grads(trainer, leaky[:1]),
                                                     _grads(trainer, leaky[1:])))


def test_entity_renamer_renames_names_consistently_and_keeps_the_rest(world, demos) -> None:
    import random
    import re

    from agents.training.demonstrations import EntityRenamer

    corpus = world[0]
    renamer = EntityRenamer(corpus)
    assert renamer.name_words and not renamer.name_words & {"The", "the", "of"}
    demo = next(d for d in demos if len(d.actions) > 1)
    renamed = renamer(demo, random.Random(0))
    before = " ".join([demo.question, *demo.actions, *demo.observations])
    after = " ".join([renamed.question, *renamed.actions, *renamed.observations])
    old, new = re.findall(r"[A-Za-z]+|\S", before), re.findall(r"[A-Za-z]+|\S", after)
    assert len(old) == len(new)  # word for word: only names change, each to one word
    mapping: dict[str, str] = {}
    for a, b in zip(old, new):
        if a in renamer.name_words:
            assert mapping.setdefault(a, b) == b and b not in renamer.name_words
        else:
            assert a == b
    assert mapping and len(set(mapping.values())) == len(mapping)  # distinct names stay distinct
    assert renamed.answer == re.sub(r"[A-Za-z]+", lambda m: mapping.get(m[0], m[0]),
                                    demo.answer or "")
    assert renamer.augment(demos, 0.0, seed=0) == list(demos)
    assert all(a != b for a, b in zip(renamer.augment(demos, 1.0, seed=0), demos))
