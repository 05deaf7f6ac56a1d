"""Copy probe: does the tiny model learn to copy entity names it was never trained on?

Usage:
    python benchmarks/copy_probe.py [--steps 600] [--size default] [--hidden-size 128] ...
    python benchmarks/copy_probe.py --task induction [--steps 1500] [--offset fixed|variable]

Held-out (dev) questions ask about entities that no training question mentions, so a policy
answers them only if it copies names from the question into its queries and from the retrieved
text into its answer. This probe measures that one ability, in a few minutes instead of a whole
training run.

``--task sft`` (default) trains the tiny model on strategy-balanced demonstrations of the train
split with a plain PyTorch loop (the trainer's encoding, loss mask, learning rate and cosine
schedule, without TRL's overhead) and prints, every ``--every`` steps, teacher-forced accuracy
on dev demonstrations for three kinds of agent tokens:

* ``name_acc``: tokens of entity-name words inside ``<search>``/``<answer>`` (must be copied);
* ``name_first_acc``: the first token of each such word (it follows the previous word);
* ``other_acc``: every other agent token (tags, question templates: learnable by heart);
* ``query_exact``: share of queries whose every token is predicted.

``--task induction`` trains the same model on the bare copy task (random tokens ``x``, then
``x`` again) and prints the loss on the second copy. With ``--offset fixed`` the copy sits 16
tokens back and position alone solves it; with ``--offset variable`` random filler of
random length separates the copies, so only content matching (an induction head) solves it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import time
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from agents.build import make_envs  # noqa: E402
from agents.lm import LMPolicy  # noqa: E402
from agents.lm.model import load_model_and_tokenizer  # noqa: E402
from agents.training.config import DemoConfig, EnvConfig, SFTPhaseConfig  # noqa: E402
from agents.training.demonstrations import EntityRenamer, build_pool  # noqa: E402
from agents.training.sft import encode_demonstration  # noqa: E402
from agents.trajectory import Trajectory  # noqa: E402
from corpora import Corpus, load, make_retriever  # noqa: E402

_WORD = re.compile(r"[A-Za-z]+")


def name_token_mask(policy: LMPolicy, demo: Trajectory, row: dict[str, list[int]],
                    name_words: set[str]) -> list[int]:
    """1 on the tokens of ``row`` (``encode_demonstration``) that spell an entity-name word.

    Only tokens inside a ``<search>`` or ``<answer>`` span count; a token counts when its
    characters overlap a word of ``name_words``.
    """
    spans: list[int] = []
    for action in demo.actions:
        enc = policy.tokenizer(action, add_special_tokens=False, return_offsets_mapping=True)
        words = [m.span() for m in _WORD.finditer(action) if m.group() in name_words]
        spans += [int(any(s < end and start < e for s, e in words))
                  for start, end in enc["offset_mapping"]]
    agent = row["assistant_masks"]
    inside = [max(q, a) for q, a in zip(row["query_mask"], row["answer_mask"], strict=True)]
    mask, i = [0] * len(agent), 0
    for t, is_agent in enumerate(agent):
        if is_agent:
            mask[t] = spans[i] & inside[t] if i < len(spans) else 0
            i += 1
    return mask


def _batch(rows: Sequence[dict[str, list[int]]], pad_id: int) -> tuple[torch.Tensor, ...]:
    width = max(len(r["input_ids"]) for r in rows)
    out = {k: torch.zeros((len(rows), width), dtype=torch.long)
           for k in ("input_ids", "assistant_masks", "query_mask", "name_mask")}
    out["input_ids"].fill_(pad_id)
    for i, r in enumerate(rows):
        for k, v in out.items():
            v[i, : len(r[k])] = torch.tensor(r[k])
    labels = out["input_ids"].masked_fill(out["assistant_masks"] == 0, -100)
    return out["input_ids"], labels, out["query_mask"], out["name_mask"]


@torch.no_grad()
def evaluate(model: torch.nn.Module, rows: Sequence[dict[str, list[int]]],
             pad_id: int) -> dict[str, float]:
    """Teacher-forced accuracy on name tokens, other agent tokens, and whole queries."""
    model.eval()
    hits = {"name": [0, 0], "name_first": [0, 0], "other": [0, 0], "query": [0, 0]}
    for start in range(0, len(rows), 32):
        ids, labels, query, name = _batch(rows[start:start + 32], pad_id)
        pred = model(input_ids=ids).logits[:, :-1].argmax(-1)
        target, query, name = labels[:, 1:], query[:, 1:].bool(), name[:, 1:].bool()
        scored = target != -100
        right = pred == target
        # The first piece of a name word is picked by context; the later ones continue it.
        first = name & ~torch.nn.functional.pad(name[:, :-1], (1, 0))
        for key, mask in (("name", scored & name), ("name_first", scored & first),
                          ("other", scored & ~name)):
            hits[key][0] += int((right & mask).sum())
            hits[key][1] += int(mask.sum())
        for row_right, row_query in zip(right, query, strict=True):
            for span in _runs(row_query.tolist()):
                hits["query"][0] += int(row_right[span[0]:span[1]].all())
                hits["query"][1] += 1
    model.train()
    return {f"{k}_acc" if k != "query" else "query_exact": round(h / max(1, n), 3)
            for k, (h, n) in hits.items()}


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of ones in ``mask``."""
    runs, start = [], None
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


def demo_rows(corpus: Corpus, policy: LMPolicy, split: str, n_questions: int | None,
              max_length: int) -> list[dict[str, list[int]]]:
    """Encoded successful demonstrations of ``split``, with a ``name_mask`` per row."""
    retriever = make_retriever("bm25", corpus)
    batch = make_envs(corpus, retriever, EnvConfig(), split, 64)
    qids = [q.qid for q in corpus.split(split)][:n_questions]
    demos = DemoConfig()
    pool = build_pool(batch, qids, demos.strategies, demos.max_searches)
    order = pool.balanced_sample(len(pool.demos), seed=0)
    names = EntityRenamer(corpus).name_words
    rows = []
    for demo in order:
        row = encode_demonstration(policy, demo, max_length)
        rows.append({**row, "name_mask": name_token_mask(policy, demo, row, names)})
    return rows


def run_sft(args: argparse.Namespace, sizes: dict[str, Any]) -> None:
    corpus = load("synthetic", size=args.size, seed=0)
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0, **sizes)
    policy = LMPolicy(model, tokenizer, max_length=1024)
    train_rows = demo_rows(corpus, policy, "train", None, 1024)
    dev_rows = demo_rows(corpus, policy, "dev", args.dev_questions, 1024)
    print(json.dumps({"train_demos": len(train_rows), "dev_demos": len(dev_rows),
                      "dev_name_tokens": sum(map(sum, (r["name_mask"] for r in dev_rows)))}))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm)
                                              * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    rng = random.Random(0)
    model.train()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        ids, labels, _, _ = _batch(rng.sample(train_rows, args.batch_size), tokenizer.pad_token_id)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % args.every == 0 or step == args.steps:
            print(json.dumps({"step": step, "loss": round(loss.item(), 3),
                              **evaluate(model, dev_rows, tokenizer.pad_token_id),
                              "seconds": round(time.perf_counter() - start)}), flush=True)


def run_induction(args: argparse.Namespace, sizes: dict[str, Any]) -> None:
    corpus = load("synthetic", size=args.size, seed=0)
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, seed=0, **sizes)
    vocab, rng = len(tokenizer), random.Random(0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model.train()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        rows, labels = [], []
        for _ in range(args.batch_size):
            fixed = args.offset == "fixed"
            x = [rng.randrange(3, vocab) for _ in range(16 if fixed else rng.randint(4, 16))]
            gap = 0 if fixed else rng.randint(0, 60)
            head = [rng.randrange(3, vocab) for _ in range(gap)]
            filler = [rng.randrange(3, vocab) for _ in range(gap)]
            rows.append(head + x + filler + x)
            labels.append([-100] * (len(head) + len(x) + len(filler) + 1) + x[1:])
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tokenizer.pad_token_id)
        lab = torch.full((len(rows), width), -100)
        for i, (r, la) in enumerate(zip(rows, labels, strict=True)):
            ids[i, :len(r)], lab[i, :len(la)] = torch.tensor(r), torch.tensor(la)
        loss = model(input_ids=ids, labels=lab).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if step % args.every == 0 or step == args.steps:
            print(json.dumps({"step": step, "copy_loss": round(loss.item(), 3),
                              "chance_loss": round(math.log(vocab - 3), 3),
                              "seconds": round(time.perf_counter() - start)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("sft", "induction"), default="sft")
    parser.add_argument("--size", default="default", help="synthetic world size")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=SFTPhaseConfig().learning_rate,
                        help="peak learning rate (default: the SFT phase's)")
    parser.add_argument("--every", type=int, default=100, help="print every this many steps")
    parser.add_argument("--dev-questions", type=int, default=150)
    parser.add_argument("--offset", choices=("fixed", "variable"), default="variable")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--plain", action="store_true",
                        help="a plain Llama instead of the smeared-key tiny model")
    parser.add_argument("--no-pointer", action="store_true",
                        help="the tiny model without its pointer (copy) head")
    for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = {k: v for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size")
             if (v := getattr(args, k)) is not None}
    sizes["smear_keys"] = not args.plain
    sizes["pointer"] = not (args.plain or args.no_pointer)
    (run_sft if args.task == "sft" else run_induction)(args, sizes)


if __name__ == "__main__":
    main()
