"""The HTML report (`make grade PHASE=n HTML=report.html`): one self-contained page.

Everything the page shows is inside the file: CSS inline, figures drawn with matplotlib's Agg
backend and inlined as base64 PNG data URIs, no script and no network. It holds the points
table, then per exercise every failing check (message, smallest failing input, hint, the
recognised mistake, the tail of what the student's code printed) with the pictures its
evidence allows (grader.evidence): got beside expected and their difference, curves, a
decision boundary. The timed tiers close the page: every check's time, FULL=1 checks marked,
and the perf measurements.

Every string from a submission (messages quote its output and exceptions) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from grader.evidence import Evidence, worst
from grader.runner import KINDS, CheckResult, ExerciseResult, PhaseResult

COLOURS = {
    "passed": "#1a7f37",
    "partial": "#9a6700",
    "not implemented yet": "#6e7781",
    "failed": "#cf222e",
    "forbidden API": "#8250df",
    "does not import": "#cf222e",
}

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: .3rem .7rem; text-align: left;
         vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
section.exercise { border-top: 2px solid #d0d7de; margin-top: 1.5rem; }
div.check { margin: 1rem 0 1rem .5rem; padding-left: .8rem; border-left: 4px solid #cf222e; }
div.check.perf { border-left-color: #0969da; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; white-space: pre-wrap;
      font-size: 13px; }
.hint { color: #0550ae; } .mistake { color: #8250df; } .dim { color: #6e7781; }
img { max-width: 100%; display: block; margin: .5rem 0; }
"""


def write_html(result: PhaseResult, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result), encoding="utf-8")


def render(result: PhaseResult) -> str:
    """The whole page as one string."""
    from grader.report import hidden_line, reason

    phase = result.phase
    title = f"Phase {phase.number} — {phase.title}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p><strong>{result.score:g} / {result.max_score:g} points</strong> for "
        f"<code>{_e(result.target)}</code> ({result.seconds:.1f} s)</p>",
    ]
    if result.import_error:
        parts.append(f"<pre>{_e(result.import_error)}</pre>")
    if result.withheld:
        parts.append(f"<p class='dim'>{_e(hidden_line(result))}</p>")
    if result.isolation:
        parts.append(f"<p class='dim'>worker isolation: {_e(result.isolation)}</p>")
    parts += [
        "<table id='scores'><tr><th>exercise</th><th>points</th><th>status</th>"
        "<th>what next</th></tr>",
        *(
            f"<tr><td>{_e(ex.exercise.id)}</td><td class='num'>{ex.score:g} / "
            f"{ex.max_score:g}</td><td style='color:{COLOURS.get(ex.status, '')}'>"
            f"{_e(ex.status)}</td><td>{_e(reason(ex))}</td></tr>"
            for ex in result.exercises
        ),
        "</table>",
    ]
    for ex in result.exercises:
        if ex.failures and ex.status not in ("not implemented yet", "does not import"):
            parts.append(_exercise(ex))
    parts.append(_passing_pictures(result))
    parts.append(_measurements(result))
    parts.append("</body></html>")
    return "\n".join(parts)


def _exercise(ex: ExerciseResult) -> str:
    parts = [
        f"<section class='exercise' id='{_e(ex.exercise.id)}'>",
        f"<h2>{_e(ex.exercise.id)} — {_e(ex.exercise.title)} "
        f"<span class='dim'>({ex.score:g} / {ex.max_score:g})</span></h2>",
    ]
    if ex.blocked_by:
        parts.append(
            f"<p>Fix first: {_e(', '.join(ex.blocked_by))} (this exercise builds on it)</p>"
        )
    for check in ex.failures:
        parts.append(_check(check))
    parts.append(f"<p>Read: {_e(ex.exercise.reading)}</p></section>")
    return "\n".join(parts)


def _check(check: CheckResult) -> str:
    spec = check.spec
    parts = [
        f"<div class='check' id='{_e(spec.exercise)}-{_e(spec.name)}'>",
        f"<h3>✗ {_e(spec.description)}</h3>",
        f"<p class='dim'>{_e(spec.name)} · {_e(spec.category)} · {_e(KINDS[check.kind])} · "
        f"{check.seconds:.2f} s</p>",
        f"<pre>{_e(check.message)}</pre>",
    ]
    if check.mistake:  # under the failures it explains only
        parts.append(
            f"<p class='mistake'><strong>Recognised mistake:</strong> {_e(check.mistake)}</p>"
        )
    if check.example:
        parts.append(f"<p>Smallest failing input: <code>{_e(check.example)}</code></p>")
    if check.hint:
        parts.append(f"<p class='hint'><strong>Hint:</strong> {_e(check.hint)}</p>")
    parts += [_evidence(item) for item in check.evidence]
    if check.output:
        parts.append(f"<p>Your code printed (the end):</p><pre>{_e(check.output)}</pre>")
    parts.append("</div>")
    return "\n".join(parts)


def _evidence(item: Evidence) -> str:
    parts = [f"<figure><figcaption>{_e(item.title)}</figcaption>"]
    try:
        image = DRAW[item.kind](item)
    except Exception as error:  # noqa: BLE001 - a picture that fails leaves its text
        image = None
        parts.append(f"<p class='dim'>(no picture: {_e(type(error).__name__)})</p>")
    if image:
        parts.append(f"<img alt='{_e(item.title)}' src='data:image/png;base64,{image}'>")
    rows = worst(item)
    if rows:
        parts.append("<table><tr><th>index</th><th>got</th><th>expected</th></tr>")
        parts += [
            f"<tr><td>{list(i)}</td><td class='num'>{g:.6g}</td><td class='num'>{e:.6g}</td></tr>"
            for i, g, e in rows
        ]
        parts.append("</table>")
    if item.note:
        parts.append(f"<p>{_e(item.note)}</p>")
    parts.append("</figure>")
    return "\n".join(parts)


def _passing_pictures(result: PhaseResult) -> str:
    """What passing checks drew (the loss curve of a training run, a decision boundary)."""
    shown = [
        (ex, check, item)
        for ex in result.exercises
        for check in ex.checks
        if check.passed
        for item in check.evidence
        if item.kind != "note"
    ]
    if not shown:
        return ""
    parts = ["<section class='exercise' id='pictures'><h2>What the passing checks saw</h2>"]
    for ex, check, item in shown:
        parts.append(f"<h3>{_e(ex.exercise.id)}: {_e(check.spec.description)}</h3>")
        parts.append(_evidence(item))
    return "\n".join(parts + ["</section>"])


def _measurements(result: PhaseResult) -> str:
    """Every check's time (the FULL=1 tier marked) and the perf notes."""
    rows = []
    for ex in result.exercises:
        for check in ex.checks:
            tier = "FULL" if check.spec.full_only else ""
            note = " ".join(e.note for e in check.evidence if e.kind == "note")
            rows.append(
                f"<tr><td>{_e(ex.exercise.id)}</td><td>{_e(check.spec.description)}</td>"
                f"<td>{_e(check.spec.category)}</td><td>{tier}</td>"
                f"<td>{'passed' if check.passed else _e(KINDS[check.kind])}</td>"
                f"<td class='num'>{check.seconds:.2f} s</td><td>{_e(note)}</td></tr>"
            )
    return (
        "<section class='exercise' id='timings'><h2>Every check and its time</h2>"
        "<details open><summary>checks</summary><table><tr><th>exercise</th><th>check</th>"
        "<th>category</th><th>tier</th><th>result</th><th>time</th><th>measured</th></tr>"
        + "\n".join(rows)
        + "</table></details></section>"
    )


# pictures ---------------------------------------------------------------------------------
def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=80, layout="constrained")


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plane(array: np.ndarray) -> np.ndarray:
    """The first 2-D slice of an array (leading indices 0), as float64."""
    array = np.asarray(array, dtype=np.float64)
    while array.ndim > 2:
        array = array[0]
    return array


def _draw_compare(item: Evidence) -> str | None:
    got, expected = item.arrays.get("got"), item.arrays.get("expected")
    if got is None or got.ndim == 0 or got.size < 2:
        return None
    if got.ndim == 1:
        figure = _figure(7, 2.8)
        axes = figure.subplots()
        axes.plot(got, "o-", label="yours", markersize=3)
        if expected is not None:
            axes.plot(expected, "x--", label="expected", markersize=4)
        axes.set_xlabel("index")
        axes.legend()
        return _png(figure)
    panels = [("yours", _plane(got))]
    if expected is not None and expected.shape == got.shape:
        theirs = _plane(expected)
        panels += [("expected", theirs), ("|yours − expected|", np.abs(panels[0][1] - theirs))]
    figure = _figure(3.2 * len(panels), 3.0)
    low = min(np.nanmin(p) for _, p in panels[:2])
    high = max(np.nanmax(p) for _, p in panels[:2])
    for axes, (name, plane) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        shared = {} if name.startswith("|") else {"vmin": low, "vmax": high}
        shown = axes.imshow(plane, cmap="magma" if name.startswith("|") else "viridis", **shared)
        axes.set_title(name)
        figure.colorbar(shown, ax=axes, shrink=0.8)
    return _png(figure)


def _draw_curves(item: Evidence) -> str | None:
    figure = _figure(7, 3)
    axes = figure.subplots()
    for name, series in item.arrays.items():
        if name.startswith("_"):
            continue
        axes.plot(np.asarray(series, dtype=np.float64).reshape(-1), label=name)
    if "_log" in item.arrays:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.legend()
    return _png(figure)


def _draw_boundary(item: Evidence) -> str | None:
    X, y, grid = item.arrays["X"], item.arrays["y"], item.arrays["grid"]
    xs, ys = item.arrays["xs"], item.arrays["ys"]
    predicted = item.arrays.get("predicted")
    figure = _figure(4.5, 4.2)
    axes = figure.subplots()
    axes.contourf(xs, ys, grid, levels=[-0.5, 0.5, 1.5], colors=["#ddeeff", "#ffe4cc"])
    for label, colour in ((0, "#0969da"), (1, "#bc4c00")):
        chosen = y == label
        axes.scatter(X[chosen, 0], X[chosen, 1], s=8, c=colour, label=f"class {label}")
    if predicted is not None:
        wrong = predicted != y
        axes.scatter(X[wrong, 0], X[wrong, 1], s=30, marker="x", c="k", label="misclassified")
    if "radius" in item.arrays:
        from matplotlib.patches import Circle

        axes.add_patch(Circle((0, 0), float(item.arrays["radius"]), fill=False, color="k"))
    axes.set_aspect("equal")
    axes.legend(loc="upper right", fontsize=8)
    return _png(figure)


DRAW = {
    "compare": _draw_compare,
    "curves": _draw_curves,
    "boundary": _draw_boundary,
    "note": lambda item: None,
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
