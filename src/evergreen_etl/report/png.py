"""The bar chart as a PNG, drawn with the standard library alone (zlib and a 5x7 pixel font).

No imaging library: a chart of a few dozen bars needs rectangles and capital letters, and a
dependency on Pillow or a browser for that would weigh more than the whole package.
"""

from __future__ import annotations

import struct
import zlib

from evergreen_etl.report.chart_data import Chart

RGB = tuple[int, int, int]
_WHITE: RGB = (255, 255, 255)
_INK: RGB = (29, 42, 51)
_MUTED: RGB = (93, 107, 117)
_BAR: RGB = (47, 125, 91)
_UNKNOWN: RGB = (154, 165, 173)
_RULE: RGB = (216, 222, 227)

# Each glyph: seven rows of five pixels, top to bottom. Labels are drawn in capitals.
_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 11001 10101 10011 10001 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    "'": "00100 00100 01000 00000 00000 00000 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "&": "01100 10010 10100 01000 10101 10010 01101",
    "/": "00001 00010 00010 00100 01000 01000 10000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    "?": "01110 10001 00001 00010 00100 00000 00100",
}
_FONT = {
    char: [[bit == "1" for bit in row] for row in rows.split()] for char, rows in _GLYPHS.items()
}
_SCALE = 2  # each font pixel is a 2x2 square
_ADVANCE = 6 * _SCALE  # five columns and a gap
_TEXT_HEIGHT = 7 * _SCALE


class _Canvas:
    """An RGB pixel buffer with just enough drawing for a bar chart."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(_WHITE) * (width * height))

    def rect(self, x: int, y: int, width: int, height: int, colour: RGB) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, self.width), min(y + height, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        line = bytes(colour) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(line)] = line

    def text(self, x: int, y: int, text: str, colour: RGB) -> None:
        for i, char in enumerate(text.upper()):
            glyph = _FONT.get(char, _FONT["?"])
            for r, row in enumerate(glyph):
                for c, on in enumerate(row):
                    if on:
                        self.rect(
                            x + i * _ADVANCE + c * _SCALE, y + r * _SCALE, _SCALE, _SCALE, colour
                        )

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[row * self.width * 3 : (row + 1) * self.width * 3])
            for row in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _fit(text: str, columns: int) -> str:
    return text if len(text) <= columns else text[: columns - 1] + "."


def render_png(chart: Chart) -> bytes:
    """The chart's bars, labels and values as a PNG image (suppressed rows are not in it)."""
    label_columns, bar_width, row_height, margin = 28, 440, 26, 16
    label_width = label_columns * _ADVANCE
    width = margin + label_width + 12 + bar_width + 10 * _ADVANCE + margin
    top = margin + _TEXT_HEIGHT * 2 + 12
    height = top + row_height * max(len(chart.bars), 1) + margin + _TEXT_HEIGHT
    canvas = _Canvas(width, height)
    canvas.text(margin, margin, _fit(chart.title, (width - 2 * margin) // _ADVANCE), _INK)
    if chart.note:
        canvas.text(margin, margin + _TEXT_HEIGHT + 8, _fit(chart.note, 70), _MUTED)
    most = max((bar.value for bar in chart.bars), default=0)
    x_bars = margin + label_width + 12
    canvas.rect(x_bars - 1, top - 4, 1, row_height * max(len(chart.bars), 1) + 4, _RULE)
    if not chart.bars:
        canvas.text(x_bars + 8, top + 5, "NOTHING TO DRAW", _MUTED)
    for i, bar in enumerate(chart.bars):
        y = top + i * row_height
        label = _fit(bar.label, label_columns)
        canvas.text(x_bars - 12 - len(label) * _ADVANCE, y + 5, label, _INK)
        length = max(round(bar.value / most * bar_width), 1) if most else 0
        canvas.rect(x_bars, y + 3, length, row_height - 6, _UNKNOWN if bar.unknown else _BAR)
        canvas.text(x_bars + length + 8, y + 5, f"{bar.value:,}", _INK)
    return canvas.png()
