import subprocess
import sys

import pytest


def train(*overrides, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "agents.cli.train", *overrides],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )


@pytest.fixture()
def train_cli():
    """``train(*overrides, cwd=None)``: runs ``forksearch-train`` and returns the process."""
    return train


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """``forksearch-train experiment=smoke``: its run directory and its standard output."""
    run_dir = tmp_path_factory.mktemp("smoke")
    result = train("experiment=smoke", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result.stdout
