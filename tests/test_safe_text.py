"""The three safe outlets: CSV cells, terminal text and Rich markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from evergreen_etl.errors import SourceError
from evergreen_etl.safe_text import csv_cell, csv_writer, escaped, plain, terminal_text


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+cmd", "@SUM(A1)", "\tx", "\rx"])
def test_formula_like_text_gets_an_apostrophe(text: str) -> None:
    """Text a spreadsheet would evaluate is written behind a leading apostrophe."""
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-3, -0.5, 0, "Hartlepool", "", None])
def test_numbers_and_plain_text_are_unchanged(value: object) -> None:
    """Numbers (even negative) and ordinary text pass through as they are."""
    assert csv_cell(value) == value


def test_csv_writer_neutralises_every_cell() -> None:
    """The writer passes every cell of every row through csv_cell, with Unix line ends."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["=a", 1])
    writer.writerows([["@b", -2]])

    assert out.getvalue() == "'=a,1\n'@b,-2\n"


def test_terminal_text_drops_control_and_bidi_characters() -> None:
    """ESC sequences lose their ESC, BEL, C1 CSI and right-to-left overrides are removed."""
    assert terminal_text("a\x1b[31mb\x07c\x9b2J\u202ed\ne") == "a[31mbc2Jde"


def test_plain_text_is_printed_literally_by_rich() -> None:
    """Markup-like text comes out as written, with no style applied and no error."""
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    console.print(plain("[bold]x [/] y [red]z"))

    assert console.file.getvalue() == "[bold]x [/] y [red]z\n"  # type: ignore[attr-defined]


def test_escaped_text_is_one_line_and_loses_nothing() -> None:
    """Line breaks, ESC and bidi controls become their escapes; other text is unchanged."""
    assert escaped("a\nb\x1bc\u202ed é") == "a\\nb\\x1bc\\u202ed é"


def test_error_messages_are_one_line_whatever_they_quote() -> None:
    """An error quoting a name with a line break in it is still one line."""
    error = SourceError("postcodes.zip: a\nb.csv: line 2: bad", hint="x\ry")

    assert str(error) == "postcodes.zip: a\\nb.csv: line 2: bad"
    assert error.hint == "x\\ry"
