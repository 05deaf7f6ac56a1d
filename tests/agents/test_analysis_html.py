"""The HTML report of forksearch-analyze: escaping, embedding, structure, and a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from agents.analysis.html import (  # noqa: E402
    ENTROPY_COLORS,
    RunReport,
    TokenView,
    TrajectoryView,
    render_report,
    write_report,
)

EVIL = "<script>alert(1)</script> & co"


def _tok(text: str, entropy: float | None, kind: str = "think", forking: bool = False) -> TokenView:
    return TokenView(text=text, entropy=entropy, kind=kind, forking=forking)


def _turn(words: list[tuple[str, float, str]], threshold: float = 1.5) -> list[TokenView]:
    return [_tok(w, h, k, h >= threshold) for w, h, k in words]


def _env(text: str) -> list[TokenView]:
    return [_tok(piece, None, "env") for piece in re.findall(r"\S+\s*|\s+", text)]


def _trajectory(question: str = f"Who directed the film with {EVIL} in it?") -> TrajectoryView:
    turn1 = _turn([
        ("<think>", 0.02, "tag"), ("I", 0.3, "think"), (" need", 0.4, "think"),
        (" the", 0.1, "think"), (" film", 0.9, "think"), (" first", 2.6, "think"),
        (".", 0.2, "think"), ("</think>", 0.01, "tag"), ("\n", 1.9, "other"),
        ("<search>", 0.05, "tag"), (" " + EVIL, 1.7, "query"), (" film", 0.6, "query"),
        ("</search>", 0.02, "tag"),
    ])
    turn2 = _turn([
        ("<think>", 0.02, "tag"), ("The", 0.5, "think"), (" film", 0.3, "think"),
        (" is", 0.2, "think"), (" Heat", 3.1, "think"), (";", 1.1, "think"),
        (" now", 0.8, "think"), (" the", 0.2, "think"), (" director", 2.0, "think"),
        (".", 0.1, "think"), ("</think>", 0.01, "tag"), ("\n", 0.1, "other"),
        ("<search>", 0.05, "tag"), (" Heat", 0.4, "query"), (" 1995", 1.2, "query"),
        (" director", 0.7, "query"), ("</search>", 0.02, "tag"),
    ])
    turn3 = _turn([
        ("<answer>", 0.3, "tag"), (" Michael", 1.6, "answer"), (" Mann", 0.05, "answer"),
        ("</answer>", 0.01, "tag"),
    ])
    obs1 = _env("\n<information>Doc 1 (Title: Heat) Heat is a 1995 crime film & more "
                "<b>bold</b>.\nDoc 2 (Title: Al Pacino) ...</information>\n")
    obs2 = _env("\n<information>Doc 1 (Title: Michael Mann) Mann directed Heat.</information>\n")
    return TrajectoryView(
        question=question, agent="grpo", reward=1.0, em=1.0,
        strategy_labels=["verbatim", "bridge"],
        segments=[turn1, obs1, turn2, obs2, turn3],
    )


def _plot(path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot([0, 1, 2, 3], [0.1, 0.4, 0.35, 0.6], marker="o")
    ax.set_title("test EM")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _runs(tmp_path: Path) -> list[RunReport]:
    png = _plot(tmp_path / "curve.png")
    first = RunReport(
        name="default_seed0",
        summary={"test EM": 0.6081234, "pass@4": 0.86, "strategy entropy": 1.2345,
                 "questions": 200},
        tables=[("Entropy by token kind", ["kind", "mean H", "share forking"],
                 [["query", 1.0123, 0.31], ["think", 0.7, 0.18], [EVIL, 0.1, 0.0]])],
        images=[("Training curve " + EVIL, png)],
        trajectories=[_trajectory(), _trajectory("A second question?")],
        notes=["only one saved model: no sparsity", EVIL],
    )
    second = RunReport(name="sweep <lr=1e-6>", summary={"test EM": 0.55},
                       trajectories=[_trajectory()])
    return [first, second]


def test_render_escapes_embeds_and_structures(tmp_path: Path) -> None:
    page = render_report(_runs(tmp_path), title="analysis " + EVIL)
    # Model output and names are data: no tag they contain survives unescaped.
    assert "<script" not in page.lower()
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "sweep &lt;lr=1e-6&gt;" in page
    # Self-contained: the plot is a data URI, nothing is fetched.
    assert "data:image/png;base64," in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page
    # One section per run, reachable from the index.
    for n in (1, 2):
        assert f'id="run-{n}"' in page and f'href="#run-{n}"' in page
        assert f'id="trajectories-{n}"' in page and f'href="#trajectories-{n}"' in page
    assert page.count('id="trajectories"') == 1
    # Observations collapsed, strategy badges after their turns, tooltips with entropies.
    assert page.count('<details class="obs">') == 6
    assert "<summary>retrieved passages" in page
    assert re.search(r'<span class="badge s-verbatim"[^>]*>verbatim</span>', page)
    assert re.search(r'<span class="badge s-bridge"[^>]*>bridge</span>', page)
    assert re.search(r'<span class="t k-think e\d f" title="H = 2\.600 nats[^"]*forking">'
                     r" first</span>", page)
    # Headline numbers to 3 decimals; integers untouched.
    assert ">0.608<" in page and ">1.234<" in page and ">200<" in page
    assert "only one saved model: no sparsity" in page


def test_badges_fall_back_to_turns_when_queries_are_unmarked(tmp_path: Path) -> None:
    traj = _trajectory()
    for seg in traj.segments:
        for tok in seg:
            if tok.kind == "query":
                tok.kind = "other"
    traj.strategy_labels = ["entity", "keyword", "novel"]  # one more label than searches
    page = render_report([RunReport(name="r", trajectories=[traj])])
    turns = page.split('<div class="turn">')[1:]
    assert "s-entity" in turns[0] and "s-keyword" in turns[1]
    assert "s-novel" in turns[2]  # the leftover is kept, on the last turn


def test_write_report_creates_parents(tmp_path: Path) -> None:
    out = write_report(tmp_path / "a" / "b" / "analysis.html", _runs(tmp_path))
    assert out.is_file() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    empty = render_report([RunReport(name="no trajectories")])
    assert "no trajectories saved for this run" in empty
    # A missing plot costs that figure only.
    missing = render_report([RunReport(name="r", images=[("gone", tmp_path / "gone.png")])])
    assert "image not found" in missing and "<img" not in missing


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    if found is None:
        pytest.skip("no headless browser installed (apt-get install chromium)")
    return found


def _headless(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # HOME and --user-data-dir in tmp_path: the browser must not touch the user's profile.
    env = {**os.environ, "HOME": str(tmp_path)}
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=False)


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def test_report_in_a_real_browser(tmp_path: Path) -> None:
    browser = _browser()
    report = write_report(tmp_path / "analysis.html", _runs(tmp_path))
    url = report.resolve().as_uri()
    logging = ("--enable-logging=stderr", "--v=0", "--dump-dom")

    # Control: the browser does report console messages in this format (here a script the
    # report's Content-Security-Policy blocks), so an empty list below means something.
    control = tmp_path / "control.html"
    control.write_text(report.read_text(encoding="utf-8").replace(
        "</body>", "<script>console.log(1)</script></body>"), encoding="utf-8")
    blocked = _headless(browser, tmp_path, *logging, control.resolve().as_uri())
    assert any("Content Security Policy" in line for line in _console(blocked.stderr)), (
        blocked.stderr[-2000:])

    dom = _headless(browser, tmp_path, *logging, url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="trajectories"' in dom.stdout and 'class="turn"' in dom.stdout
    assert "<script" not in dom.stdout.lower()  # the escaped text stayed text
    # Chromium logs every console message at INFO, errors included, and the report has no
    # script: any console line (an error, a resource the CSP refused) is a failure.
    assert not _console(dom.stderr), _console(dom.stderr)

    # Headless --screenshot captures from the top of the document even when the fragment
    # scrolled the viewport (leaving the rest unpainted), so the window is made taller than
    # this report (~2.6k px): #trajectories then resolves without scrolling anything away.
    shot = tmp_path / "shot.png"
    run = _headless(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,2800",
                    url + "#trajectories")
    assert shot.is_file(), run.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3] * 255.0
    assert pixels.std() > 5.0  # not a blank page
    # The hottest entropy bin is painted somewhere: the shading reached the screen.
    hottest = _hex_rgb(ENTROPY_COLORS[-1])
    distance = np.abs(pixels - hottest).max(axis=-1)
    assert (distance < 12).sum() > 50
