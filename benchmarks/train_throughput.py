"""Trainer throughput: SFT and RL optimizer steps/s and tokens/s with the tiny model.

Usage:
    python benchmarks/train_throughput.py [--size default] [--sft-steps 40] [--rl-steps 8]

Runs a short ``sft_then_rl`` schedule of ``agents.training`` in a temporary run directory
(demonstrations, SFT on them, GRPO with the default entropy regulation, held-out evaluation at
each phase's end) and prints each phase's figures as measured by the trainer: steps/s, and
tokens/s (SFT: every token of the demonstration batches; RL: prompt and completion tokens of
the rollout batches, rollouts included in the time). The one-minute load average is printed
too: on a shared machine it explains most of the spread between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from agents.cli.schema import compose_config  # noqa: E402
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.runner import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", help="synthetic world size")
    parser.add_argument("--sft-steps", type=int, default=40)
    parser.add_argument("--sft-batch", type=int, default=16)
    parser.add_argument("--rl-steps", type=int, default=8)
    parser.add_argument("--questions-per-step", type=int, default=4)
    parser.add_argument("--num-generations", type=int, default=4)
    args = parser.parse_args()
    # The default experiment (entropy regulation included), cut to the requested sizes.
    cfg = compose_config("train", TrainConfig, [
        f"+corpus.size={args.size}", f"sft.steps={args.sft_steps}",
        f"sft.batch_size={args.sft_batch}", f"rl.questions_per_step={args.questions_per_step}",
        f"rl.num_generations={args.num_generations}", "schedule=sft_then_rl",
        f"schedule.rl_steps={args.rl_steps}", "eval.max_questions=20", "eval.every=0",
        "save_steps=1000", "report_to=[]", "progress=false"])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train(cfg, Path(run_dir))
    rows = [{"phase": p["kind"], "steps": p["steps"], "seconds": round(p["seconds"], 1),
             "steps_per_s": round(p["steps_per_s"], 3), "tokens_per_s": round(p["tokens_per_s"])}
            for p in summary["phases"]]
    print(json.dumps({"size": args.size, "load_avg_1m": os.getloadavg()[0],
                      "total_seconds": round(time.perf_counter() - start, 1), "phases": rows},
                     indent=1))


if __name__ == "__main__":
    main()
