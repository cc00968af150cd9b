"""report.html (from `weakdis analyze`) opened in a real browser: headless Chromium loads it, every
figure decodes (no broken image), the page logs no error, and a screenshot is taken.

Chromium is Debian's `chromium` package; `.ci/run` installs it when missing and sets
WEAKDIS_REQUIRE_BROWSER=1, so in CI this test fails rather than skips without a browser. Set
WEAKDIS_SCREENSHOT_DIR to keep the screenshot (report.png) for a person to look at.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from analysis.report import analyze
from test_analysis_report import _run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-dev-shm-usage")

# Injected first into a copy of the page: records script errors, failed resource loads (capture
# phase) and console.error / console.warn calls, then, once everything has loaded, every image's
# state, into an attribute that --dump-dom prints.
PROBE = """<script>
(function () {
  var problems = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    problems.push(t && t.tagName ? 'failed to load <' + t.tagName.toLowerCase() + '> ' + (t.alt || t.src || '').slice(0, 80)
                                 : 'script error: ' + e.message);
  }, true);
  ['error', 'warn'].forEach(function (level) {
    var original = console[level];
    console[level] = function () { problems.push('console.' + level + ': ' + Array.prototype.join.call(arguments, ' ')); original.apply(console, arguments); };
  });
  window.addEventListener('load', function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
    });
    document.documentElement.setAttribute('data-weakdis-check', JSON.stringify({images: images, problems: problems}));
  });
})();
</script>"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    path = find_browser()
    if path is None:
        message = "no chromium on PATH (apt-get install chromium)"
        if os.environ.get("WEAKDIS_REQUIRE_BROWSER"):
            pytest.fail(message + "; WEAKDIS_REQUIRE_BROWSER is set")
        pytest.skip(message)
    return path


def run_browser(browser: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                               *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    run = _run(root, partial=True)
    output = analyze(run, root / "analysis", images=False, formats=("png",))
    return output.report


def test_every_figure_loads_and_the_page_logs_no_error(browser, report):
    text = report.read_text()
    probe = report.with_name("probe.html")
    probe.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    result = run_browser(browser, "--virtual-time-budget=10000", "--run-all-compositor-stages-before-draw",
                         "--dump-dom", probe.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r"data-weakdis-check=\"([^\"]*)\"", result.stdout)
    assert match, "the page never finished loading: " + result.stderr[-2000:]
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    expected = text.count("<img ")
    assert expected >= 3
    assert len(check["images"]) == expected
    broken = [image["alt"] for image in check["images"] if not (image["complete"] and image["width"] > 0)]
    assert broken == [], f"broken images: {broken}"
    assert check["problems"] == []
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console


def test_screenshot_shows_a_rendered_page(browser, report):
    shot = report.with_name("report.png")
    result = run_browser(browser, "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    # text, tables and figures: many distinct colours and a mostly light page, not a blank or error page
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 200
    assert 0.6 < rgb.mean() / 255 < 0.99
    keep = os.environ.get("WEAKDIS_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(report, Path(keep) / "report.html")
