"""The self-contained HTML report of ``forksearch-analyze``.

One file, no network: inline CSS, no script, images embedded as data URIs, so the report opens
offline in any browser and can be mailed or archived as is. Every piece of text is escaped:
model output is data and may well contain ``<script>`` or other tags.

The trajectory view shades each agent token by its entropy (a 10-step white -> red scale relative
to the run's 99th-percentile entropy, so a single outlier does not wash the rest out), outlines
forking tokens, collapses the retrieved passages and shows each query's strategy label as a badge
after the turn that issued it.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.strategies import LABELS

__all__ = [
    "ENTROPY_COLORS",
    "RunReport",
    "TokenView",
    "TrajectoryView",
    "render_report",
    "write_report",
]


@dataclass
class TokenView:
    """One completion token as the report shows it."""

    text: str
    entropy: float | None  # nats; None for environment tokens
    kind: str  # "query" | "answer" | "tag" | "think" | "other" | "env"
    forking: bool  # entropy above the run's top-20% threshold


@dataclass
class TrajectoryView:
    """One episode: agent turns alternating with environment observations."""

    question: str
    agent: str
    reward: float
    em: float
    strategy_labels: list[str]  # one per query, in order
    segments: list[list[TokenView]]  # a segment whose tokens are all "env" is an observation


@dataclass
class RunReport:
    """Everything the report shows for one run directory."""

    name: str
    summary: dict[str, Any] = field(default_factory=dict)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)
    trajectories: list[TrajectoryView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


ENTROPY_COLORS: tuple[str, ...] = (
    "#ffffff",
    "#fff3e3",
    "#fee3c2",
    "#fdd09b",
    "#fdb77a",
    "#fc9a5c",
    "#f57b45",
    "#e85a35",
    "#d43d26",
    "#b02418",
)
"""Background of the entropy bins, lowest first (the last two take white text)."""

# Tab10, in LABELS order (strategies, then wrong_entity), as the plots of agents/plots.py.
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_STRATEGY_COLORS = {label: _TAB10[i % len(_TAB10)] for i, label in enumerate(LABELS)}
_KINDS = ("query", "answer", "tag", "think", "other", "env")
# Nothing but inline styles and data: images may load; no script runs even if escaping failed.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_OPEN_TRAJECTORIES = 5  # the rest start collapsed, to keep long reports scannable

_SANS = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)
_MONO = (
    'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", '
    "monospace"
)


def _css() -> str:
    bins = "\n".join(
        f".e{i}{{background:{c};{'color:#fff;' if i >= len(ENTROPY_COLORS) - 2 else ''}}}"
        for i, c in enumerate(ENTROPY_COLORS)
    )
    badges = "\n".join(
        f".s-{label}{{color:{c};border-color:{c};background:{c}14}}"
        for label, c in _STRATEGY_COLORS.items()
    )
    return f"""
:root{{color-scheme:light;--fg:#1d2330;--muted:#5f6b7a;--line:#dfe3ea;--soft:#f5f7fa;
  --accent:#1f4e9c;--fork:#5c0a0a}}
*{{box-sizing:border-box}}
body{{margin:0;font-family:{_SANS};font-size:15px;line-height:1.5;color:var(--fg);
  background:#fff;-webkit-text-size-adjust:100%}}
main{{max-width:1120px;margin:0 auto;padding:28px 28px 64px}}
h1{{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}}
h2{{font-size:21px;margin:0 0 14px;padding-bottom:6px;border-bottom:2px solid var(--line)}}
h3{{font-size:16px;margin:26px 0 10px;color:#2a3342}}
a{{color:var(--accent);text-decoration:none}}
a:hover{{text-decoration:underline}}
.sub{{color:var(--muted);margin:0 0 22px}}
.muted{{color:var(--muted);font-weight:400}}
code,.mono{{font-family:{_MONO};font-size:.92em}}
nav.index{{background:var(--soft);border:1px solid var(--line);border-radius:8px;
  padding:12px 18px;margin:0 0 28px}}
nav.index ol{{margin:6px 0 0;padding-left:22px}}
nav.index li{{margin:2px 0}}
nav.index .links{{color:var(--muted);font-size:13px}}
section.run{{margin:0 0 48px;scroll-margin-top:12px}}
table{{border-collapse:collapse;margin:6px 0 18px;font-size:14px;
  font-variant-numeric:tabular-nums}}
caption{{caption-side:top;text-align:left;font-weight:600;padding:0 0 6px;color:#2a3342}}
th,td{{padding:5px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}}
thead th{{background:var(--soft);border-bottom:2px solid var(--line);font-weight:600}}
tbody tr:hover{{background:#fafbfd}}
td.num{{text-align:right;font-family:{_MONO};font-size:13px}}
table.summary th{{background:none;font-weight:500;color:var(--muted);
  border-bottom:1px solid var(--line)}}
.scroll{{overflow-x:auto}}
figure{{margin:8px 0 24px}}
figure img{{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px}}
figcaption{{color:var(--muted);font-size:13px;margin-top:4px}}
ul.notes{{background:#fffaf0;border-left:3px solid #f0b44c;padding:8px 12px 8px 30px;
  margin:6px 0 18px;border-radius:0 6px 6px 0}}
.legend{{display:flex;flex-wrap:wrap;align-items:center;gap:6px 22px;font-size:13px;
  color:var(--muted);margin:4px 0 14px}}
.scale{{display:inline-flex;align-items:center;gap:6px}}
.swatches{{display:inline-flex;border:1px solid var(--line);border-radius:3px;overflow:hidden}}
.swatches span{{width:20px;height:14px}}
details.traj{{border:1px solid var(--line);border-radius:8px;margin:0 0 14px;background:#fff}}
details.traj>summary{{cursor:pointer;padding:10px 14px;background:var(--soft);
  border-radius:8px;list-style-position:inside}}
details.traj[open]>summary{{border-bottom:1px solid var(--line);border-radius:8px 8px 0 0}}
.qtext{{font-weight:600}}
.meta{{display:flex;flex-wrap:wrap;gap:6px 8px;margin-top:5px;font-size:12.5px;color:var(--muted)}}
.pill{{display:inline-block;padding:0 8px;border-radius:10px;border:1px solid var(--line);
  background:#fff;font-variant-numeric:tabular-nums}}
.pill.ok{{border-color:#2ca02c;color:#1c6b1c;background:#eef8ee}}
.pill.bad{{border-color:#d9a3a3;color:#8b2a2a;background:#fcf1f1}}
.body{{padding:10px 14px 12px}}
.turn{{white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.9;font-size:14.5px;
  margin:4px 0}}
.t{{border-radius:2px;-webkit-box-decoration-break:clone;box-decoration-break:clone}}
{bins}
.t.na{{background:none;color:#8a94a3}}
.t.f{{font-weight:700;outline:1.5px solid var(--fork);outline-offset:0}}
.t.nl.f::before{{content:"\\21B5";color:var(--fork);font-weight:400}}
.k-tag{{color:#51607a}}
.k-tag.e8,.k-tag.e9{{color:#fff}}
.k-query{{text-decoration:underline;text-decoration-color:var(--accent);
  text-decoration-thickness:1.5px;text-underline-offset:3px}}
.k-answer{{text-decoration:underline;text-decoration-color:#2ca02c;
  text-decoration-thickness:1.5px;text-underline-offset:3px}}
.badges{{display:inline-flex;flex-wrap:wrap;gap:4px;margin-left:8px;vertical-align:1px;
  white-space:normal}}
.badge{{display:inline-block;font-size:11.5px;line-height:1.5;padding:0 7px;border:1px solid #888;
  border-radius:9px;font-weight:600;color:#555;background:#f4f4f4}}
{badges}
details.obs{{margin:6px 0 8px;border-left:3px solid var(--line);padding:0 0 0 10px}}
details.obs>summary{{cursor:pointer;color:var(--muted);font-size:13px}}
.obs-body{{white-space:pre-wrap;overflow-wrap:anywhere;font-family:{_MONO};font-size:12.5px;
  color:#3b4452;background:var(--soft);padding:8px 10px;border-radius:6px;margin:6px 0;
  max-height:420px;overflow-y:auto}}
footer{{color:var(--muted);font-size:12px;margin-top:40px;border-top:1px solid var(--line);
  padding-top:10px}}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    """Numbers to 3 decimals (integers as they are); anything else as its ``str``."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        return "\u2014" if math.isnan(x) else f"{x:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cell(value: Any, tag: str = "td") -> str:
    cls = ' class="num"' if _is_number(value) else ""
    return f"<{tag}{cls}>{_esc(_fmt(value))}</{tag}>"


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table><caption>{_esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _summary_table(summary: dict[str, Any]) -> str:
    rows = "\n".join(
        f'<tr><th scope="row">{_esc(k)}</th>{_cell(v)}</tr>' for k, v in summary.items()
    )
    return f'<table class="summary"><tbody>\n{rows}\n</tbody></table>'


_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".webp": "image/webp"}


def _figure(caption: str, path: Path | str) -> str:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        # A missing plot should cost one figure, not the whole report.
        missing = f"image not found: {path} ({exc.strerror})"
        return f'<ul class="notes"><li>{_esc(missing)}</li></ul>'
    mime = _MIME.get(path.suffix.lower(), "image/png")
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (
        f'<figure><img src="{uri}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _entropy(token: TokenView) -> float | None:
    if token.kind == "env" or token.entropy is None:
        return None
    x = float(token.entropy)
    return x if math.isfinite(x) else None


def _scale_top(trajectories: Sequence[TrajectoryView]) -> float:
    """The entropy at the top of the colour scale: the 99th percentile of the agent tokens."""
    values = sorted(
        x for t in trajectories for seg in t.segments for tok in seg
        if (x := _entropy(tok)) is not None
    )
    if not values:
        return 1.0
    top = values[min(len(values) - 1, int(0.99 * len(values)))]
    if top <= 0:
        top = values[-1]
    return top if top > 0 else 1.0


def _bin(entropy: float, top: float) -> int:
    n = len(ENTROPY_COLORS)
    return max(0, min(n - 1, int(entropy / top * n)))


def _is_env(segment: Sequence[TokenView]) -> bool:
    return bool(segment) and all(tok.kind == "env" for tok in segment)


def _token(tok: TokenView, top: float) -> str:
    x = _entropy(tok)
    kind = tok.kind if tok.kind in _KINDS else "other"
    classes = ["t", f"k-{kind}"]
    if x is None:
        classes.append("na")
        title = f"entropy n/a \u00b7 {kind}"
    else:
        classes.append(f"e{_bin(x, top)}")
        title = f"H = {x:.3f} nats \u00b7 {kind}"
    if tok.forking:
        classes.append("f")
        title += " \u00b7 forking"
    if "\n" in tok.text and not tok.text.strip():
        # A forking newline would be invisible: the CSS draws a return arrow before it.
        classes.append("nl")
    return f'<span class="{" ".join(classes)}" title="{_esc(title)}">{_esc(tok.text)}</span>'


def _badge(label: str, index: int) -> str:
    cls = f"s-{label}" if label in _STRATEGY_COLORS else "s-other"
    return f'<span class="badge {cls}" title="query {index + 1}: strategy">{_esc(label)}</span>'


def _query_runs(segment: Sequence[TokenView]) -> int:
    """How many separate queries a turn holds: maximal runs of "query" tokens."""
    runs, prev = 0, False
    for tok in segment:
        cur = tok.kind == "query"
        runs += cur and not prev
        prev = cur
    return runs


def _labels_per_segment(traj: TrajectoryView) -> dict[int, list[tuple[int, str]]]:
    """Which strategy labels go after which agent turn, as (query index, label) pairs.

    The labels are matched to the query spans of the turns; if their counts disagree (the
    token kinds did not mark queries), one label goes to each turn followed by an observation,
    and any left over to the last agent turn, so no label is dropped.
    """
    agent = [i for i, seg in enumerate(traj.segments) if seg and not _is_env(seg)]
    counts = {i: _query_runs(traj.segments[i]) for i in agent}
    if sum(counts.values()) != len(traj.strategy_labels):
        searched = [
            i for i in agent
            if i + 1 < len(traj.segments) and _is_env(traj.segments[i + 1])
        ]
        counts = dict.fromkeys(agent, 0) | dict.fromkeys(searched, 1)
    placed: dict[int, list[tuple[int, str]]] = {}
    labels = list(enumerate(traj.strategy_labels))
    for i in agent:
        take, labels = labels[: counts[i]], labels[counts[i]:]
        if take:
            placed[i] = take
    if labels and agent:
        placed.setdefault(agent[-1], []).extend(labels)
    return placed


def _trajectory(traj: TrajectoryView, index: int, top: float) -> str:
    badges = _labels_per_segment(traj)
    parts = []
    for i, seg in enumerate(traj.segments):
        if not seg:
            continue
        if _is_env(seg):
            # The newlines around an observation only separate it from the turns: drop them.
            text = "".join(tok.text for tok in seg).strip("\n")
            parts.append(
                f'<details class="obs"><summary>retrieved passages '
                f'<span class="muted">({len(seg)} tokens)</span></summary>'
                f'<div class="obs-body">{_esc(text)}</div></details>'
            )
            continue
        spans = "".join(_token(tok, top) for tok in seg)
        after = ""
        if i in badges:
            labels = "".join(_badge(label, q) for q, label in badges[i])
            after = f'<span class="badges">{labels}</span>'
        parts.append(f'<div class="turn">{spans}{after}</div>')
    agent_tokens = [tok for seg in traj.segments if not _is_env(seg) for tok in seg]
    n_fork = sum(tok.forking for tok in agent_tokens)
    n_queries = len(traj.strategy_labels)
    ok = "ok" if traj.em > 0 else "bad"
    meta = (
        f'<span class="pill">#{index + 1}</span>'
        f'<span class="pill">{_esc(traj.agent)}</span>'
        f'<span class="pill {ok}">EM {_esc(_fmt(traj.em))}</span>'
        f'<span class="pill">reward {_esc(_fmt(traj.reward))}</span>'
        f'<span class="pill">{n_queries} quer{"y" if n_queries == 1 else "ies"}</span>'
        f'<span class="pill">forking {n_fork}/{len(agent_tokens)} tokens</span>'
    )
    opened = " open" if index < _OPEN_TRAJECTORIES else ""
    return (
        f'<details class="traj"{opened}><summary><span class="qtext">{_esc(traj.question)}</span>'
        f'<div class="meta">{meta}</div></summary>'
        f'<div class="body">{"".join(parts)}</div></details>'
    )


def _legend(top: float) -> str:
    swatches = "".join(f'<span class="e{i}"></span>' for i in range(len(ENTROPY_COLORS)))
    return (
        '<div class="legend">'
        f'<span class="scale">token entropy: 0 <span class="swatches">{swatches}</span> '
        f"\u2265 {top * (len(ENTROPY_COLORS) - 1) / len(ENTROPY_COLORS):.2f} nats</span>"
        '<span><span class="t e9 f">forking</span> top-20% entropy</span>'
        '<span><span class="t k-query">query</span> / '
        '<span class="t k-answer">answer</span> underlined</span>'
        '<span><span class="badge">strategy</span> label of each query</span>'
        "<span>hover a token for its entropy</span>"
        "</div>"
    )


def _run_section(run: RunReport, n: int) -> str:
    parts = [f'<section class="run" id="run-{n}"><h2>{_esc(run.name)}</h2>']
    if run.notes:
        notes = "".join(f"<li>{_esc(x)}</li>" for x in run.notes)
        parts.append(f'<ul class="notes">{notes}</ul>')
    if run.summary:
        parts.append(f"<h3>Summary</h3>{_summary_table(run.summary)}")
    for caption, header, rows in run.tables:
        parts.append(_table(caption, header, rows))
    for caption, path in run.images:
        parts.append(_figure(caption, path))
    # The first run's trajectories are also #trajectories, the address a reader is given.
    anchor = '<span id="trajectories"></span>' if n == 1 else ""
    parts.append(f'{anchor}<h3 id="trajectories-{n}">Trajectories '
                 f'<span class="muted">({len(run.trajectories)})</span></h3>')
    if run.trajectories:
        top = _scale_top(run.trajectories)
        parts.append(_legend(top))
        parts.extend(_trajectory(t, i, top) for i, t in enumerate(run.trajectories))
    else:
        parts.append('<p class="muted">no trajectories saved for this run</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _comparison(runs: Sequence[RunReport]) -> str:
    """A sweep's headline figures side by side: one row per run, the union of summary keys."""
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run.summary if k not in keys)
    if not keys:
        return ""
    rows = "\n".join(
        f'<tr><td><a href="#run-{n}">{_esc(run.name)}</a></td>'
        + "".join(_cell(run.summary.get(k)) for k in keys) + "</tr>"
        for n, run in enumerate(runs, 1)
    )
    head = "<th>run</th>" + "".join(f"<th>{_esc(k)}</th>" for k in keys)
    return (
        '<div class="scroll"><table><caption>Headline figures</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table></div>"
    )


def render_report(runs: Sequence[RunReport], title: str = "forksearch-analyze") -> str:
    """The whole report as one self-contained HTML document (inline CSS, no script, no network)."""
    items = "\n".join(
        f'<li><a href="#run-{n}">{_esc(run.name)}</a> <span class="links">\u00b7 '
        f'<a href="#trajectories-{n}">trajectories ({len(run.trajectories)})</a></span></li>'
        for n, run in enumerate(runs, 1)
    )
    index = f'<nav class="index"><strong>Runs</strong><ol>\n{items}\n</ol>'
    if len(runs) > 1:
        index += _comparison(runs)
    index += "</nav>"
    sections = "\n".join(_run_section(run, n) for n, run in enumerate(runs, 1))
    plural = "s" if len(runs) != 1 else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{_esc(title)}</title>
<style>{_css()}</style>
</head>
<body>
<main>
<h1>{_esc(title)}</h1>
<p class="sub">{len(runs)} run{plural} \u00b7 where the learning signal concentrates</p>
{index}
{sections}
<footer>Written by forksearch-analyze. Self-contained: no scripts, no network.</footer>
</main>
</body>
</html>
"""


def write_report(path: Path, runs: Sequence[RunReport], title: str = "forksearch-analyze") -> Path:
    """Render ``runs`` and write the report to ``path`` (parents created); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(runs, title), encoding="utf-8")
    return path
