"""The shareable HTML report, opened in a real headless browser (Debian's chromium,
installed by .ci/run): it renders offline, its numbers equal the --json ones, and its
screenshot is not blank."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capacity.cli.app import app

from .conftest import ROOT

runner = CliRunner()
FAST = ("--replications", "4", "--horizon", "15m", "--seed", "1", "-q")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is not installed (.ci/run installs Debian's chromium)"
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         *args], capture_output=True, text=True, timeout=120)


class _Keys(html.parser.HTMLParser):
    """Text of every element carrying a data-key attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.append(dict(attrs).get("data-key"))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in self._open:
            if key:
                self.values[key] = self.values.get(key, "") + data


def _lookup(data: object, key: str) -> object:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]  # type: ignore[index]
    return data


@pytest.fixture(name="report", scope="module")
def _report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A report of web-research with a what-if comparison, and the --json it must match."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = runner.invoke(app, ["report", "web-research", "-o", str(out), "--compare",
                                 "second-deployment", "--scenario",
                                 "bucket:quotas.deployment.enforcement={type: token_bucket}",
                                 *FAST], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ceiling = json.loads(runner.invoke(app, ["ceiling", "web-research", "--json",
                                             *FAST]).stdout)
    compare = json.loads(runner.invoke(app, [
        "compare", "web-research", "second-deployment", "--scenario",
        "bucket:quotas.deployment.enforcement={type: token_bucket}", "--json"]).stdout)
    return out, {**ceiling, "compare": compare}


def test_page_is_self_contained(report: tuple[Path, dict[str, object]]) -> None:
    """No script, no external stylesheet, font or image: readable offline."""
    text = report[0].read_text()
    assert "<script" not in text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert "@import" not in text and "url(" not in text
    assert "<svg" in text  # the saturation curve is inline
    for section in ("Ceilings", "Saturation curve", "What-if comparison", "Inputs",
                    "Reproduce"):
        assert section in text
    assert "capacity report web-research" in text
    assert "quotas:" in text  # the profile it was computed from


def test_renders_in_chromium_with_the_json_numbers(report: tuple[Path, dict[str, object]],
                                                   tmp_path: Path) -> None:
    """The DOM chromium builds shows the same figures as --json."""
    dom = _chromium(tmp_path, "--dump-dom", report[0].as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    keys = _Keys()
    keys.feed(dom.stdout)
    data = report[1]
    assert keys.values, "no data-key elements in the rendered page"
    checked = 0
    for key, shown in keys.values.items():
        if key == "binding":
            b = data["binding_constraint"]  # type: ignore[index]
            assert shown == f"{b['quota']}.{b['dimension']}"  # type: ignore[index]
            continue
        if key.startswith("sweep."):
            continue
        want = _lookup(data, key)
        # Counts are shown whole; a fractional mean-value ceiling with one decimal.
        assert float(shown.replace(",", "")) == pytest.approx(float(want), abs=0.05), \
            (key, shown, want)
        checked += 1
    assert checked >= 6


def test_screenshot_is_not_blank(report: tuple[Path, dict[str, object]],
                                 tmp_path: Path) -> None:
    """A screenshot of the page has text and a curve on it, not a white page."""
    from PIL import Image

    png = tmp_path / "shot.png"
    shot = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1000,1400",
                     "--hide-scrollbars", report[0].as_uri())
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    with Image.open(png) as img:
        grey = img.convert("L")
        hist = grey.histogram()
    dark = sum(hist[:128]) / sum(hist)
    assert 0.005 < dark < 0.6, dark  # some ink, not a blank (or black) page
    assert len([h for h in hist if h]) > 20  # many shades: text, lines, fills


def test_ceiling_format_html(tmp_path: Path) -> None:
    """`ceiling --format html -o FILE` writes the same kind of page."""
    out = tmp_path / "c.html"
    result = runner.invoke(app, ["ceiling", "web-research", "--method", "analytic",
                                 "--format", "html", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    data = json.loads(runner.invoke(app, ["ceiling", "web-research", "--method", "analytic",
                                          "--json"]).stdout)
    assert page.startswith("<!doctype html>")
    assert f'data-key="burst_ceiling">{data["burst_ceiling"]}<' in page
    assert str(ROOT) not in page.split("<h2>Reproduce</h2>")[1]
