"""The HTML report renders in a real browser: headless Chromium, no webdriver.

A copy of ``report.html`` gets a small script that, on ``load``, checks every image and the
results table and writes a JSON verdict into the DOM; ``chromium --dump-dom`` prints the DOM
and the test reads the verdict back. Chromium (Debian's ``chromium`` package) is installed
when missing and this runs as root with apt-get; otherwise the test is skipped, saying why.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fathom.report.build import ReportFiles

_CHROMIUM_NAMES = ("chromium", "chromium-browser")
_install_attempt: dict[str, str] = {}

PROBE = """
<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(t && t !== window && t.tagName
      ? "failed to load <" + t.tagName.toLowerCase() + ">"
      : String(e.message || e));
  }, true);
  var origError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return origError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    var imgs = Array.prototype.map.call(document.images, function (img) {
      var r = img.getBoundingClientRect();
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
              naturalHeight: img.naturalHeight, width: r.width, height: r.height,
              dataUri: img.src.indexOf("data:image/png;base64,") === 0};
    });
    var table = document.querySelector("table.results");
    var tr = table ? table.getBoundingClientRect() : null;
    var verdict = {
      errors: errors,
      images: imgs,
      tableRows: table ? table.tBodies[0].rows.length : 0,
      tableSize: tr ? [tr.width, tr.height] : [0, 0],
      title: document.title
    };
    var pre = document.createElement("pre");
    pre.id = "verdict";
    pre.textContent = JSON.stringify(verdict);
    document.body.appendChild(pre);
  });
})();
</script>
"""


def _find_chromium() -> str | None:
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _install_chromium() -> str:
    """Try ``apt-get install -y chromium`` once per session; return why it failed ('' if not)."""
    if "result" in _install_attempt:
        return _install_attempt["result"]
    reason = ""
    apt = shutil.which("apt-get")
    if apt is None:
        reason = "not installed and apt-get is not available"
    elif not hasattr(os, "geteuid") or os.geteuid() != 0:
        reason = "not installed and not running as root (run: sudo apt-get install -y chromium)"
    else:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            proc = subprocess.run(
                [apt, "install", "-y", "--no-install-recommends", "chromium"],
                capture_output=True,
                text=True,
                timeout=600,
                env=env,
                check=False,
            )
            if proc.returncode != 0:  # stale package lists: update once, then retry
                subprocess.run(
                    [apt, "update"], capture_output=True, timeout=300, env=env, check=False
                )
                proc = subprocess.run(
                    [apt, "install", "-y", "--no-install-recommends", "chromium"],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    env=env,
                    check=False,
                )
            if proc.returncode != 0:
                tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])
                reason = f"apt-get install chromium failed (exit {proc.returncode}): {tail}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"apt-get install chromium failed: {exc}"
        if not reason and _find_chromium() is None:
            reason = "apt-get install chromium succeeded but no chromium binary was found"
    _install_attempt["result"] = reason
    return reason


@pytest.fixture(scope="session")
def chromium() -> str:
    found = _find_chromium()
    if found is None:
        reason = _install_chromium()
        found = _find_chromium()
        if found is None:
            pytest.skip(f"chromium not available: {reason}")
    return found


def test_report_renders_in_headless_chromium(
    chromium: str, report: ReportFiles, tmp_path: Path
) -> None:
    page = report.html.read_text(encoding="utf-8")
    assert "</body>" in page
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    profile = tmp_path / "profile"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,2000",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish rendering the report within 120 s")
    match = re.search(r'<pre id="verdict">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no verdict in chromium's DOM (exit {proc.returncode}): {proc.stderr[-2000:]}"
    verdict = json.loads(html.unescape(match.group(1)))

    assert verdict["errors"] == []
    assert verdict["title"] == "CSBM <depth> sweep & friends"
    assert verdict["tableRows"] == len(report.groups) == 6
    assert min(verdict["tableSize"]) > 0
    images = verdict["images"]
    assert len(images) == len(report.plots) == 4
    for img in images:
        assert img["alt"], img
        assert img["dataUri"], img
        assert img["complete"], img
        assert img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert img["width"] > 0 and img["height"] > 0, img
