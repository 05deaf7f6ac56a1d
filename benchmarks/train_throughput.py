"""Trainer throughput and where an RL step's time goes, with the tiny model.

Usage:
    python benchmarks/train_throughput.py [--sft-steps 40] [--rl-steps 8]
        [--questions-per-step 4] [--num-generations 4] [-o OVERRIDE ...]

Runs a short ``sft_then_rl`` schedule of the default experiment (entropy regulation included)
in a temporary run directory and prints, as measured by the trainer, each phase's steps/s and
tokens/s (SFT: every token of the demonstration batches; RL: prompt and completion tokens of
the rollout batches, rollouts included in the time), then the RL phase's profile
(:mod:`agents.profiling`): each section's seconds and share of the phase:

- ``step/generation/rollout``: playing the episodes (``policy``: ``encode`` observations,
  ``generate`` tokens, ``decode`` turns; ``env``: parsing actions, retrieval, formatting
  observations; ``labels``: strategy labels of finished episodes);
- ``step/generation`` beyond the rollout: TRL's rewards, advantages and old log-probs;
- ``step/loss``: the loss's forward pass; ``step`` beyond generation and loss: the backward;
- ``eval``: held-out evaluation; ``checkpoint``: writing checkpoints; the rest of the phase
  (optimizer steps, logging) is ``other``.

The last line is one JSON object with every figure. ``env_share_of_episode`` is the
environment's share of the rollouts' wall time. The one-minute load average is printed too: on
a shared machine it explains most of the spread between runs.
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
from agents.profiling import Timings, profiling  # noqa: E402
from agents.training import grpo  # noqa: E402
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.runner import train  # noqa: E402

ROLLOUT = "rl/step/generation/rollout"


def rl_profile(timings: Timings, phase_seconds: float) -> dict[str, object]:
    """The RL phase's sections as shares of the phase, and the derived figures."""
    sections = {r["section"]: r for r in timings.table() if str(r["section"]).startswith("rl/")}
    seconds = {path: float(r["seconds"]) for path, r in sections.items()}
    rollout = seconds.get(ROLLOUT, 0.0)
    step = seconds.get("rl/step", 0.0)
    generation = seconds.get("rl/step/generation", 0.0)
    loss = seconds.get("rl/step/loss", 0.0)
    named = {
        "rollout: generate": timings.total("policy/generate", ROLLOUT),
        "rollout: encode observations": timings.total("policy/encode", ROLLOUT),
        "rollout: decode turns": timings.total("policy/decode", ROLLOUT),
        "rollout: env (parse, retrieve, format)": timings.total("/env", ROLLOUT),
        "rollout: strategy labels": timings.total("/labels", ROLLOUT),
        "TRL scoring (rewards, advantages, old logps)": generation - rollout,
        "loss forward": loss,
        "backward": step - generation - loss,
        "evaluation": seconds.get("rl/eval", 0.0),
        "checkpoints": timings.total("/checkpoint", "rl/"),
    }
    named["rollout: other (episode bookkeeping)"] = rollout - sum(
        v for k, v in named.items() if k.startswith("rollout"))
    named["other (optimizer, logging)"] = phase_seconds - sum(named.values())
    return {
        "phase_seconds": round(phase_seconds, 2),
        "parts": {k: {"seconds": round(v, 2), "share": round(v / phase_seconds, 4)}
                  for k, v in named.items()},
        "env_share_of_episode": round(named["rollout: env (parse, retrieve, format)"]
                                      / max(rollout, 1e-9), 4),
        "model_share": round((named["rollout: generate"] + loss + named["backward"])
                             / phase_seconds, 4),
        "sections": sections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="default", help="synthetic world size")
    parser.add_argument("--sft-steps", type=int, default=40)
    parser.add_argument("--sft-batch", type=int, default=16)
    parser.add_argument("--rl-steps", type=int, default=8)
    parser.add_argument("--questions-per-step", type=int, default=4)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--forward-rows", type=int, default=grpo.FORWARD_ROWS,
                        help="episodes per loss forward pass (a huge number: the whole batch "
                        "at once, as before agents/training/buckets.py)")
    parser.add_argument("-o", "--override", action="append", default=[],
                        help="extra forksearch-train override (repeatable)")
    args = parser.parse_args()
    grpo.FORWARD_ROWS = args.forward_rows
    cfg = compose_config("train", TrainConfig, [
        f"+corpus.size={args.size}", f"sft.steps={args.sft_steps}",
        f"sft.batch_size={args.sft_batch}", f"rl.questions_per_step={args.questions_per_step}",
        f"rl.num_generations={args.num_generations}", "schedule=sft_then_rl",
        f"schedule.rl_steps={args.rl_steps}", "eval.max_questions=20", "eval.every=0",
        "save_steps=1000", "report_to=[]", "progress=false", *args.override])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir, profiling() as timings:
        summary = train(cfg, Path(run_dir))
    phases = [{"phase": p["kind"], "steps": p["steps"], "seconds": round(p["seconds"], 1),
               "steps_per_s": round(p["steps_per_s"], 3), "tokens_per_s": round(p["tokens_per_s"])}
              for p in summary["phases"]]
    rl_seconds = sum(p["seconds"] for p in summary["phases"] if p["kind"] == "rl")
    profile = rl_profile(timings, rl_seconds)
    episodes = args.questions_per_step * args.num_generations
    print(f"episodes per RL step: {episodes}, {args.forward_rows} per loss forward pass; "
          f"load average {os.getloadavg()[0]:.2f}")
    for p in phases:
        print(f"{p['phase']:>4}: {p['steps']} steps in {p['seconds']} s, "
              f"{p['steps_per_s']} steps/s, {p['tokens_per_s']} tokens/s")
    print(f"RL phase, {profile['phase_seconds']} s:")
    parts: dict[str, dict[str, float]] = profile["parts"]  # type: ignore[assignment]
    for name, part in parts.items():
        print(f"  {name:<46} {part['seconds']:>8.2f} s  {100 * part['share']:5.1f}%")
    env, model = float(profile["env_share_of_episode"]), float(profile["model_share"])  # type: ignore[arg-type]
    print(f"  env share of episode time: {100 * env:.2f}%; "
          f"model work (generate, loss, backward): {100 * model:.1f}%")
    print(json.dumps({"size": args.size, "episodes_per_step": episodes,
                      "forward_rows": args.forward_rows,
                      "load_avg_1m": os.getloadavg()[0], "overrides": args.override,
                      "total_seconds": round(time.perf_counter() - start, 1), "phases": phases,
                      "rl_profile": profile}))


if __name__ == "__main__":
    main()
