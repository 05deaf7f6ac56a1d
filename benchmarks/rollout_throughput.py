"""Rollout throughput: scripted episodes/s and tiny-LM generated tokens/s at batch 1 and 64.

Usage:
    python benchmarks/rollout_throughput.py [--size small] [--episodes-lm 64] [--device cpu]

Runs on the synthetic corpus's test split with a BM25 retriever and all CPU cores as torch
threads. The LM is the untrained tiny model (its turns run to ``--max-new-tokens`` unless it
happens to emit a stop token), so the figures measure generation speed, not agent quality.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import corpora
from agents.build import make_envs
from agents.lm import LMPolicy, load_model_and_tokenizer
from agents.rollout import BatchPolicy, ScriptedPolicy, rollout
from agents.scripted.baselines import VerbatimBaseline
from agents.training.config import EnvConfig


def timed_rollout(
    policy: BatchPolicy, corpus: corpora.Corpus, batch_size: int, qids: list[str], args
) -> tuple[float, list]:
    env = EnvConfig(top_k=args.top_k, max_turns=args.max_turns)
    batch = make_envs(corpus, corpora.make_retriever("bm25", corpus), env, "test", batch_size)
    start = time.perf_counter()
    trajectories = rollout(policy, batch, qids)
    return time.perf_counter() - start, trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="synthetic corpus size")
    parser.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    parser.add_argument("--episodes-lm", type=int, default=64, help="LM episodes per batch size")
    parser.add_argument("--episodes-lm-b1", type=int, default=8, help="LM episodes at batch 1")
    parser.add_argument("--max-turns", type=int, default=4, help="turn budget per episode")
    parser.add_argument("--top-k", type=int, default=3, help="documents per search")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="tokens per LM turn")
    parser.add_argument("--device", default="cpu", help="torch device of the LM")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = corpora.load("synthetic", size=args.size)
    questions = [q.qid for q in corpus.split("test")]
    batches = [int(b) for b in args.batches.split(",")]
    model, tokenizer = load_model_and_tokenizer("tiny", corpus, device=args.device)
    timed_rollout(ScriptedPolicy(VerbatimBaseline), corpus, 1, questions[:2], args)  # warm-up
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"corpus synthetic/{args.size} test ({len(questions)} questions), bm25 top-{args.top_k}, "
        f"max_turns {args.max_turns}; torch threads {torch.get_num_threads()}, device "
        f"{args.device}; tiny LM {n_params / 1e6:.2f}M params, vocab {len(tokenizer)}, "
        f"max_new_tokens {args.max_new_tokens}"
    )
    header = f"{'policy':<22}{'batch':>6}{'episodes':>10}{'seconds':>9}{'episodes/s':>12}"
    print(header + f"{'gen tokens':>12}{'gen tokens/s':>14}")
    for batch_size in batches:
        policy = ScriptedPolicy(VerbatimBaseline)
        seconds, trajectories = timed_rollout(policy, corpus, batch_size, questions, args)
        print(
            f"{'scripted base_verbatim':<22}{batch_size:>6}{len(trajectories):>10}"
            f"{seconds:>9.2f}{len(trajectories) / seconds:>12.1f}{'-':>12}{'-':>14}"
        )
    for batch_size in batches:
        n = args.episodes_lm_b1 if batch_size == 1 else args.episodes_lm
        qids = [questions[i % len(questions)] for i in range(n)]
        policy = LMPolicy(model, tokenizer, max_new_tokens=args.max_new_tokens, name="lm:tiny")
        seconds, trajectories = timed_rollout(policy, corpus, batch_size, qids, args)
        generated = sum(sum(t.tokens.env_mask) for t in trajectories)
        print(
            f"{'tiny LM (untrained)':<22}{batch_size:>6}{len(trajectories):>10}{seconds:>9.2f}"
            f"{len(trajectories) / seconds:>12.2f}{generated:>12}{generated / seconds:>14.0f}"
        )


if __name__ == "__main__":
    main()
