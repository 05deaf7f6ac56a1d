"""The README's "Plugging a new corpus in" section, followed literally in an empty folder.

Every file the section shows (a code block after a paragraph that starts with `path` and ends
with ":") is
written, and every command of its bash blocks is run in the order given, as a new user would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# A paragraph that starts with `path` and ends with ":", then a fenced block: the file's text.
FILE_BLOCK = re.compile(r"\n\n`([^`\s]+)`(?:[^\n]|\n(?!\n))*?:\n\n```\w*\n(.*?)```", re.S)
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Plugging a new corpus in")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def shown_files() -> dict[str, str]:
    return dict(FILE_BLOCK.findall(section()))


def shown_commands() -> list[str]:
    return [line.strip() for block in BASH_BLOCK.findall(section())
            for line in block.splitlines() if line.strip()]


def test_the_section_shows_files_and_commands() -> None:
    files, commands = shown_files(), shown_commands()
    assert set(files) == {"mydata/passages.jsonl", "mydata/questions.jsonl", "my_loader.py",
                          "conf/corpus/pioneers.yaml", "mydata/dev_contexts.jsonl",
                          "conf/corpus/pioneers_dev.yaml"}
    assert all(c.startswith("forksearch-") for c in commands), commands
    assert "forksearch-train corpus=pioneers experiment=smoke" in commands


def test_following_the_readme_gives_an_index_a_bench_table_and_a_trained_run(
        tmp_path: Path) -> None:
    for path, body in shown_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body, encoding="utf-8")
    env = {**os.environ, "FORKSEARCH_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    for command in shown_commands():
        run = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, f"{command}\n{run.stderr[-3000:]}"
        if command.startswith("forksearch-bench"):
            # One table in three parts, demonstrators set apart with what their EM means.
            assert "demonstrators" in run.stdout and "baselines" in run.stdout
            assert "evidence" in run.stdout

    outputs = tmp_path / "outputs"
    indexes = sorted(outputs.glob("index/*/index.json"), key=os.path.getmtime)
    benches = sorted(outputs.glob("bench/*/bench.json"), key=os.path.getmtime)
    assert len(indexes) == 2 and len(benches) == 2

    index = json.loads(indexes[0].read_text())
    assert index["corpus"] == "pioneers"  # the config's name, not the loader's
    assert {row["retriever"] for row in index["rows"]} == {"bm25", "dense"}
    bench = json.loads(benches[0].read_text())
    assert bench["corpus"] == "pioneers" and bench["split"] == "test"
    assert bench["questions"] == 2  # ten questions dealt 6 / 2 / 2
    groups = {row["agent"]: row["group"] for row in bench["rows"]}
    assert groups["demo_bridge"] == "demonstrators" and groups["base_keyword"] == "baselines"
    demo_em = [row["em"] for row in bench["rows"] if row["group"] == "demonstrators"]
    assert max(demo_em) == 1.0  # eight passages: some strategy finds all the evidence

    summaries = list(outputs.glob("train/*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["k"] == 2 and 0.0 <= summary["test_em"] <= 1.0
    assert set(summary["test_em_by_type"]) <= {"attribute", "bridge", "comparison"}

    dev_bench = json.loads(benches[1].read_text())
    assert dev_bench["corpus"] == "pioneers_dev" and dev_bench["questions"] == 2
    assert [row["agent"] for row in dev_bench["rows"]] == [
        "demo_bridge", "base_keyword", "base_entity_bridge"]
    # The loader's gold contexts make the demonstrator's evidence complete on both questions.
    assert dev_bench["rows"][0]["em"] == 1.0


def test_a_missing_data_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "conf/corpus").mkdir(parents=True)
    (tmp_path / "conf/corpus/pioneers.yaml").write_text("name: jsonl\npath: nowhere.jsonl\n")
    run = subprocess.run(["forksearch-bench", "corpus=pioneers"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr.startswith("forksearch-bench: error: nowhere.jsonl: no such file")


@pytest.mark.slow
def test_smoke_training_runs_on_a_real_corpus(tmp_path: Path, require_sample) -> None:
    require_sample("hotpotqa")
    run = subprocess.run(["forksearch-train", "corpus=hotpotqa", "experiment=smoke",
                          f"hydra.run.dir={tmp_path}"], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["test_em_by_type"]) <= {"bridge", "comparison"}
