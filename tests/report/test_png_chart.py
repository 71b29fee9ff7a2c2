"""The chart as PNG: a valid image from the standard library, bars only for published rows."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime

import pytest

from evergreen_etl.report import analysis, pictures, rule_for
from evergreen_etl.report.chart_data import Bar, Chart
from evergreen_etl.report.png import render_png
from report.scenario import Warehouse

BAR, UNKNOWN = (47, 125, 91), (154, 165, 173)


def decode(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and pixels of an 8-bit RGB PNG with unfiltered rows; CRCs checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    offset = 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        offset += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (1 + 3 * width)
    pixels = []
    for row in range(height):
        line = raw[row * (1 + 3 * width) : (row + 1) * (1 + 3 * width)]
        assert line[0] == 0
        pixels += [tuple(line[1 + 3 * i : 4 + 3 * i]) for i in range(width)]
    assert b"IEND" in chunks
    return width, height, pixels  # type: ignore[return-value]


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
