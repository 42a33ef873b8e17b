"""The HTML report: self-contained, escaped, with the failing checks' pictures — and what a real
browser (headless Chromium) renders of it."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SOLUTION0

from grader.html_report import render, write_html
from grader.runner import grade

# three mistakes, one per kind of picture: a 1-D output (relu), a 2-D output (layer norm with
# the unbiased variance) and a full-Jacobian gradient check (cross-entropy not divided by N);
# relu also prints, with markup the page must not execute
MISTAKES = {
    "    return np.maximum(x, 0)\n": "    print('<b>relu</b> <script>x</script>')\n"
    "    return np.maximum(x, 0.1)\n",
    "np.sqrt(x.var(axis=-1, keepdims=True) + self.eps)": "np.sqrt(x.var(axis=-1, keepdims=True, "
    "ddof=1) + self.eps)",
    "    return float(loss), dlogits / N\n": "    return float(loss), dlogits\n",
}
GRADED = ["activations", "layernorm", "losses"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    source = SOLUTION0.read_text()
    for old, new in MISTAKES.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    path = tmp_path_factory.mktemp("html") / "phase0_foundations.py"
    path.write_text(source)
    return path


@pytest.fixture(scope="module")
def page(broken):
    from grader import registry

    result = grade(registry.phase(0), broken, exercises=GRADED)
    out = broken.parent / "report.html"
    write_html(result, out)
    return result, out


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([^']+)'", text)]


def test_the_page_is_self_contained(page):
    _, out = page
    text = out.read_text()
    assert "<script" not in text.replace("&lt;script&gt;", "")
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text), "the page loads something"
    images = _images(text)
    assert len(images) >= 3
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert text.count("<img") == len(images)  # every image is inlined


def test_every_failing_check_is_there_with_its_diagnosis(page):
    result, out = page
    text = out.read_text()
    for ex in result.exercises:
        for check in ex.failures:
            assert f"id='{check.spec.exercise}-{check.spec.name}'" in text
            if check.hint:
                assert _html(check.hint) in text
    assert "Recognised mistake" in text or not any(e.mistake for e in result.exercises)
    assert "largest differences" not in text  # that phrase is Markdown's; here it is a table
    assert "<th>got</th><th>expected</th>" in text


def test_student_output_is_shown_escaped(page):
    _, out = page
    text = out.read_text()
    assert "&lt;b&gt;relu&lt;/b&gt; &lt;script&gt;x&lt;/script&gt;" in text
    assert "<b>relu</b>" not in text


def test_a_full_jacobian_failure_draws_both_gradients(page):
    result, _ = page
    losses = next(e for e in result.exercises if e.exercise.id == "losses")
    gradient = next(c for c in losses.failures if c.spec.category == "gradient")
    (item,) = [e for e in gradient.evidence if e.kind == "compare"]
    got, expected = item.arrays["got"], item.arrays["expected"]
    assert got.shape == expected.shape == (4, 3)
    # the student forgot /N (N = 4): their gradient is N times the finite differences
    np.testing.assert_allclose(got, 4 * expected, rtol=1e-5, atol=1e-7)


def test_the_cli_writes_the_page(broken, tmp_path):
    out = tmp_path / "cli.html"
    run = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--phase", "0", "--file", str(broken),
         "--exercise", "layernorm", "--quiet", "--html", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "layernorm" in out.read_text() and _images(out.read_text())


def test_a_passing_run_renders_too(solution_result):
    text = render(solution_result)
    assert "Every check and its time" in text and "✗" not in text


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# a real browser ---------------------------------------------------------------------------
def _text(dom: str) -> str:
    """The text a reader sees in a serialised DOM."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("style", "script")

        def handle_endtag(self, tag):
            self.skip -= tag in ("style", "script")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(dom)
    return " ".join(" ".join(parser.parts).split())


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def _run_browser(browser: str, profile, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(
    _browser() is None,
    reason="no chromium here (.ci/run installs the Debian package when it runs as root)",
)
def test_chromium_renders_the_page(page, tmp_path):
    """What the browser saw: the checks' names in the DOM, a screenshot that is not blank,
    and no console error (a page that fetched anything would log one: DNS is disabled)."""
    import matplotlib.image

    result, out = page
    browser = _browser()
    dom = _run_browser(browser, tmp_path / "profile-dom", "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = _text(dom.stdout)
    for ex in result.exercises:
        assert ex.exercise.id in text
        for check in ex.failures:
            assert check.spec.description in text
    assert "<b>relu</b> <script>x</script>" in text  # shown as text, not run
    assert dom.stdout.count("<img") == len(_images(out.read_text()))
    shot = tmp_path / "page.png"
    run = _run_browser(
        browser, tmp_path / "profile-shot", "--hide-scrollbars", "--window-size=1200,2000",
        f"--screenshot={shot}", out.as_uri(),
    )  # fmt: skip
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # text, table rules and plots, not one colour
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 50  # the plots' colours
    console = [line for line in (dom.stderr + run.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console
    print(
        f"\nchromium saw: page {out.stat().st_size} bytes, {dom.stdout.count('<img')} images, "
        f"{sum(len(e.failures) for e in result.exercises)} failing checks of "
        f"{', '.join(GRADED)}; screenshot {shot.stat().st_size} bytes"
    )
