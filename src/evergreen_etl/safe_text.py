"""Text that leaves the program safely, whatever the sources held.

Three outlets, three rules:

* **CSV** (reports, rejects): a cell that a spreadsheet would evaluate as a formula (one that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading
  apostrophe, which spreadsheets show as text. Only text cells are touched: numbers stay numbers.
* **The terminal**: control characters (C0, DEL, C1) and the Unicode bidirectional controls are
  removed, so a name in the lookup cannot move the cursor, recolour the screen, set the window
  title or reorder what is shown.
* **Rich markup**: messages are printed as plain text, never parsed for ``[style]`` tags.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["FORMULA_PREFIXES", "csv_cell", "csv_writer", "escaped", "plain", "terminal_text"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet evaluates: formula-like text gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer``'s ``writerow`` and ``writerows``, with every cell passed through
    ``csv_cell``."""

    def __init__(self, handle: IO[str], **options: Any) -> None:
        options.setdefault("lineterminator", "\n")
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[object]) -> None:
        """Write one row."""
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write many rows."""
        self._writer.writerows([csv_cell(value) for value in row] for row in rows)


def csv_writer(handle: IO[str], **options: Any) -> SafeCsvWriter:
    """A CSV writer (Unix line ends unless told) that neutralises formula-like cells."""
    return SafeCsvWriter(handle, **options)


def terminal_text(text: str) -> str:
    """``text`` without control characters or bidirectional controls, for a terminal."""
    return _CONTROLS.sub("", text)


def escaped(text: str) -> str:
    """``text`` on one line: each control or bidirectional character written as its escape
    (a line break as ``\\n``, ESC as ``\\x1b``), so nothing is lost and nothing is acted on."""
    return _CONTROLS.sub(lambda match: repr(match.group(0))[1:-1], text)


def plain(text: str, style: str | None = None) -> Text:
    """``text`` for a Rich console, printed literally (no markup) and free of controls."""
    from rich.text import Text

    return Text(terminal_text(text), style=style or "")
