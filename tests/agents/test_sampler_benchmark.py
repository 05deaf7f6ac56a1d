import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sampler_vs_generate.py"


def test_sampler_benchmark_times_both_generators_per_batch_size():
    run = subprocess.run([sys.executable, str(SCRIPT), "--batches", "1", "3", "--new-tokens", "4",
                          "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(run.stdout.splitlines()[-1])["rows"]
    assert [r["batch"] for r in rows] == [1, 3]
    for r in rows:
        assert r["sampler_tokens_per_s"] > 0 and r["generate_tokens_per_s"] > 0
        ratio = r["sampler_tokens_per_s"] / r["generate_tokens_per_s"]
        assert abs(r["sampler_over_generate"] - ratio) < 0.01 * ratio + 0.002
