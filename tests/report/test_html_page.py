"""The HTML page is self-contained and opens offline in headless Chromium with its pictures."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from evergreen_etl.report import analysis, rule_for, write_pictures
from report.scenario import Warehouse

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
AFTER_LAST = datetime(2024, 4, 15)


@pytest.fixture
def page(sqlite_scenario: Warehouse, tmp_path: Path) -> Path:
    """The headline's page for the scenario, with suppression (K = 2)."""
    result = analysis(
        sqlite_scenario.settings,
        as_of=AFTER_LAST,
        disclosure=rule_for(2),
        engine=sqlite_scenario.engine,
    )
    path = tmp_path / "report.html"
    write_pictures(
        sqlite_scenario.settings,
        result,
        html=path,
        disclosure=rule_for(2),
        engine=sqlite_scenario.engine,
    )
    return path


def test_page_needs_nothing_from_the_network(page: Path) -> None:
    """No script, style, image or font is loaded from anywhere; a CSP forbids it anyway."""
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""\b(src|href)\s*=|url\(|@import""", html)
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"] * 2
    assert "default-src 'none'" in html


def test_page_holds_table_chart_and_map(page: Path) -> None:
    """The page has the report's table, the bar chart and the map, and marks suppressed rows."""
    html = page.read_text(encoding="utf-8")
    assert '<table id="report-table">' in html
    assert html.count('<td class="num suppressed"') == 5
    assert '<svg id="chart"' in html
    assert html.count('<rect class="bar') == 1  # only Hartlepool's 3 is published
    assert '<svg id="map"' in html
    assert html.count('<rect class="cell"') == 1  # the six full postcodes share one cell


def _chromium(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium for the page test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    chromium = CHROMIUM

    def run(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        return subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _png_is_blank(path: Path) -> bool:
    """True when the PNG is one flat colour: filtered scanlines of a flat image are ~all zero."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1600)
    idat, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(idat)
    distinct = len(set(raw))
    nonzero = sum(1 for byte in raw[::97] if byte) / len(raw[::97])
    return distinct < 16 or nonzero < 0.002


def test_chromium_shows_the_page_without_errors(page: Path, tmp_path: Path) -> None:
    """Headless Chromium renders the table, chart and map, runs the script, logs nothing."""
    chromium = _chromium(tmp_path)
    dom = chromium(page.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="report-table"' in dom.stdout
    assert 'data-sortable="ready"' in dom.stdout  # the inline script ran to its end
    assert '<svg id="chart"' in dom.stdout
    assert 'class="bar"' in dom.stdout
    assert '<svg id="map"' in dom.stdout
    assert _console_messages(dom.stderr) == []

    shot = tmp_path / "page.png"
    taken = chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert _console_messages(taken.stderr) == []
    assert shot.stat().st_size > 20_000
    assert not _png_is_blank(shot)


def test_the_checks_catch_a_blank_page_and_a_script_error(tmp_path: Path) -> None:
    """The checks above can fail: a blank page is blank, a broken script is logged."""
    chromium = _chromium(tmp_path)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    assert (
        chromium(blank.as_uri(), f"--screenshot={shot}", "--window-size=1200,1600").returncode == 0
    )
    assert _png_is_blank(shot)
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><script>notDefined();</script>", encoding="utf-8")
    assert _console_messages(chromium(broken.as_uri(), "--dump-dom").stderr)
