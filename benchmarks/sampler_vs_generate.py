"""Rollout speed: forksearch's batched KV-cache sampler against Hugging Face ``generate``.

Usage:
    python benchmarks/sampler_vs_generate.py [--batches 1 16 64] [--new-tokens 32] [--repeats 3]

Both sample with temperature 1 from the same untrained tiny model (``model=tiny``, built for the
synthetic corpus), on the same left-padded prompts (test questions as the policy renders them),
for exactly ``--new-tokens`` tokens per sequence (no stop token), so the figures compare
generation machinery only. Prints a table and one JSON object on the last line: generated
tokens/s of each (best of ``--repeats``) and their ratio per batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from functools import partial

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import corpora  # noqa: E402
from agents.build import load_model  # noqa: E402
from agents.lm.sampling import generate_batch  # noqa: E402
from agents.training.config import ModelConfig  # noqa: E402
from envs.protocol import render_prompt  # noqa: E402


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls (one untimed call first warms the kernels)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.inference_mode()
def _hf_generate(model: torch.nn.Module, input_ids: torch.Tensor, attention: torch.Tensor,
                 new_tokens: int, pad_id: int) -> object:
    """Hugging Face sampling of exactly ``new_tokens`` tokens, temperature 1, no truncation."""
    return model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True,
                          temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                          min_new_tokens=new_tokens, pad_token_id=pad_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    corpus = corpora.load("synthetic")
    config = ModelConfig()
    model, tokenizer = load_model("tiny", config, corpus, seed=0)
    model.eval()
    questions = corpus.split("test")
    pad_id = tokenizer.pad_token_id
    rows = []
    for batch in args.batches:
        contexts = [list(tokenizer(render_prompt(q.question))["input_ids"])
                    for q in questions[:batch]]  # as LMPolicy encodes a prompt without template
        width = max(map(len, contexts))
        input_ids = torch.tensor([[pad_id] * (width - len(c)) + c for c in contexts])
        attention = (input_ids != pad_id).long()
        for i, c in enumerate(contexts):  # a pad-valued prompt token still counts
            attention[i, width - len(c):] = 1
        ours = partial(generate_batch, model, contexts, [args.new_tokens] * batch,
                       pad_id=pad_id, stop_ids=(), generator=torch.Generator().manual_seed(0))
        theirs = partial(_hf_generate, model, input_ids, attention, args.new_tokens, pad_id)
        tokens = batch * args.new_tokens
        ours_s, theirs_s = best_seconds(ours, args.repeats), best_seconds(theirs, args.repeats)
        rows.append({"batch": batch, "new_tokens": args.new_tokens,
                     "sampler_tokens_per_s": round(tokens / ours_s, 1),
                     "generate_tokens_per_s": round(tokens / theirs_s, 1),
                     "sampler_over_generate": round(theirs_s / ours_s, 3)})
    print(f"{'batch':>5} {'sampler tok/s':>14} {'generate tok/s':>15} {'ratio':>6}")
    for r in rows:
        print(f"{r['batch']:>5} {r['sampler_tokens_per_s']:>14} {r['generate_tokens_per_s']:>15} "
              f"{r['sampler_over_generate']:>6}")
    print(json.dumps({"threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()
