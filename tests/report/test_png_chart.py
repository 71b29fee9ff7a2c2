"""The chart as PNG (matplotlib) and SVG: bars only for published rows, a caption, a clear
error without the charts extra."""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.report import analysis, pictures, rule_for
from evergreen_etl.report.chart_data import Bar, Chart
from evergreen_etl.report.chart_png import caption, render_png, render_svg
from report.scenario import Warehouse
from report.test_report_command import args

BAR, UNKNOWN = (47, 125, 91), (154, 165, 173)


def decode(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    data = image.tobytes()
    return width, height, [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]  # type: ignore[misc]


def test_png_draws_bars_in_proportion() -> None:
    """Each bar's length follows its value; the unknown row is grey."""
    chart = Chart(
        title="Top local authorities by users",
        value_label="users",
        bars=[Bar(label="Hartlepool", value=100), Bar(label="Unknown", value=50, unknown=True)],
    )
    width, height, pixels = decode(render_png(chart))
    assert width > 600
    assert height > 80
    bar, grey = pixels.count(BAR), pixels.count(UNKNOWN)
    assert bar == pytest.approx(2 * grey, rel=0.02)


def test_png_is_not_blank_and_has_its_caption_size() -> None:
    """The image is the expected size, mostly white, with dark text pixels (title, labels)."""
    chart = Chart(title="Users", value_label="users", bars=[Bar(label="Leeds (city)", value=7)])
    width, height, pixels = decode(render_png(chart, "As of 2024-04-15 00:00 UTC."))
    assert (width, height) == (900, 192)
    dark = sum(1 for p in pixels if sum(p) < 200)
    assert dark > 200
    assert pixels.count((255, 255, 255)) > len(pixels) // 2


@pytest.mark.parametrize(("k", "bars"), [(None, 6), (2, 1), (7, 0)])
def test_png_leaves_suppressed_rows_out(
    sqlite_scenario: Warehouse, k: int | None, bars: int
) -> None:
    """The PNG of the scenario's chart has one bar per published row and none for the others."""
    result = analysis(
        sqlite_scenario.settings,
        as_of=datetime(2024, 4, 15),
        disclosure=rule_for(k),
        engine=sqlite_scenario.engine,
    )
    chart, _ = pictures(
        sqlite_scenario.settings, result, disclosure=rule_for(k), engine=sqlite_scenario.engine
    )
    assert len(chart.bars) == bars
    _, _, pixels = decode(render_png(chart))
    coloured = pixels.count(BAR) + pixels.count(UNKNOWN)
    assert (coloured > 0) == (bars > 0)


def test_caption_says_time_and_boundaries(sqlite_scenario: Warehouse) -> None:
    """The caption names the report's as-of time, its boundaries and its disclosure note."""
    result = analysis(
        sqlite_scenario.settings,
        as_of=datetime(2024, 4, 15),
        disclosure=rule_for(2),
        boundaries="current",
        engine=sqlite_scenario.engine,
    )
    text = caption(result)
    assert text.startswith("As of 2024-04-15 00:00 UTC; boundaries: current.")
    assert result.note is not None
    assert text.endswith(result.note)


def test_svg_is_a_standalone_chart(sqlite_scenario: Warehouse) -> None:
    """The SVG parses as XML on its own, carries its style and one bar per published row."""
    result = analysis(
        sqlite_scenario.settings, as_of=datetime(2024, 4, 15), engine=sqlite_scenario.engine
    )
    chart, _ = pictures(sqlite_scenario.settings, result, engine=sqlite_scenario.engine)
    root = ET.fromstring(render_svg(chart).encode("utf-8"))  # noqa: S314 - our own output
    namespace = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{namespace}svg"
    assert root.find(f"{namespace}style") is not None
    bars = [r for r in root.iter(f"{namespace}rect") if "bar" in r.get("class", "")]
    assert len(bars) == len(chart.bars) == 6


def test_png_without_matplotlib_exits_2_naming_the_extra(
    sqlite_scenario: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib, `report --png` says what to install, exits 2 and prints nothing."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    chart = tmp_path / "chart.png"
    result = CliRunner().invoke(app, args(sqlite_scenario, "--png", str(chart)))
    assert result.exit_code == 2
    assert "pip install 'evergreen-etl[charts]'" in result.stderr
    assert result.stdout == ""
    assert not chart.exists()


def test_svg_needs_no_extra(
    sqlite_scenario: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report --svg` works without matplotlib."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    chart = tmp_path / "chart.svg"
    result = CliRunner().invoke(app, args(sqlite_scenario, "--svg", str(chart)))
    assert result.exit_code == 0, result.stderr
    assert chart.read_text(encoding="utf-8").startswith("<?xml")
    assert f"wrote {chart}" in result.stderr
