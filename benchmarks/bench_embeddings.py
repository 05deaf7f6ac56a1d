"""What query embeddings cost ``forksearch-bench``: the CLI with and without them.

Runs ``forksearch-bench max_questions=N`` (synthetic corpus, default agents) as a user would,
once with ``embed_queries=true`` and once with ``false`` per repeat (alternating, so a burst
of load elsewhere hits both), and prints the wall-clock seconds of each run. The last line is
JSON: the fastest run of each (the least disturbed) and their ratio.

    python benchmarks/bench_embeddings.py                      # 100 questions, one run each
    python benchmarks/bench_embeddings.py --questions 50 --repeats 2
    python benchmarks/bench_embeddings.py -o agents=[base_verbatim,base_random]

Timings on a shared machine are noisy: repeat, and compare the ratio rather than seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_bench(questions: int, embed: bool, overrides: list[str], run_dir: Path) -> float:
    """Wall-clock seconds of one ``forksearch-bench`` run (process start to exit)."""
    args = ["forksearch-bench", f"max_questions={questions}",
            f"embed_queries={str(embed).lower()}", f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    run = subprocess.run(args, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{run.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100, help="max_questions (100)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each kind (1)")
    parser.add_argument("-o", "--override", action="append", default=[],
                        help="extra forksearch-bench override, e.g. agents=[base_random]")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for kind in ("with", "without"):
                seconds = time_bench(args.questions, kind == "with", args.override,
                                     Path(tmp) / f"{kind}-{rep}")
                times[kind].append(seconds)
                print(f"{kind} embeddings, run {rep + 1}: {seconds:.1f} s", flush=True)
    best = {kind: min(values) for kind, values in times.items()}
    print(json.dumps({
        "questions": args.questions,
        "overrides": args.override,
        "with_embeddings_s": round(best["with"], 2),
        "without_embeddings_s": round(best["without"], 2),
        "ratio": round(best["with"] / best["without"], 3),
        "runs_s": {kind: [round(s, 2) for s in values] for kind, values in times.items()},
    }))


if __name__ == "__main__":
    main()
