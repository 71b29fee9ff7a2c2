"""The data rows of a CSV member of the postcode lookup, read in bounded memory: a fast split
of blocks without quotes, ``csv.reader`` from the first quote on, and limits on a line's length.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from itertools import chain, islice
from operator import methodcaller
from typing import IO, Any

from evergreen_etl.errors import SourceError

# Blocks of ~700 lines: the rows of one block stay in the CPU's cache between passes.
_BLOCK_BYTES = 1 << 18
_CSV_BATCH_ROWS = 1000
# Bounds on what one piece of the lookup may hold, enforced while streaming, so that a hostile
# zip that passes the archive checks still cannot make a reader buffer without end. A national
# NSPL line is about 500 bytes.
MAX_LINE_BYTES = 1 << 20
"""The longest line (or quoted record spanning lines) of a CSV in the zip."""
MAX_FIELD_CHARS = 128 * 1024
"""The largest field of a quoted CSV record (Python's ``csv`` default, stated here)."""


class CsvRecords:
    """The data rows of the CSV in batches of field lists, read in bounded memory.

    A block of lines without a quote character is split on commas, which gives exactly what
    ``csv.reader`` gives for it at a fraction of the cost (the real lookup never quotes). From
    the first block holding a quote or a bare carriage return on, the rest of the stream is
    read by ``csv.reader``, which handles quoted commas and line breaks. The header line is
    skipped. ``short_row`` finds the row that was too short for the caller.
    """

    def __init__(self, raw: IO[bytes], name: str) -> None:
        self._raw = raw
        self._name = name
        self._lines_before = 0  # physical lines in the blocks before the current one
        self._block: list[str] = []
        self._csv_lines_before: int | None = None  # set once csv.reader has taken over
        self._csv: Any = None
        self._last: list[str] = []
        self._record_chars = 0  # csv.reader: the characters read for the record under way
        self._blocks = self._texts()

    def batches(self) -> Iterator[Iterator[list[str]]]:
        """Iterators of field lists: one per block of lines (or of rows, for csv.reader)."""
        split = methodcaller("split", ",")
        header = True
        for text in self._blocks:
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            if '"' in text or "\r" in text:
                self._csv_lines_before = self._lines_before
                self._csv = csv.reader(self._csv_lines(text))
                if header:
                    next(self._csv, None)
                rows = self._remember(self._csv)
                while (first := next(rows, None)) is not None:
                    yield chain((first,), islice(rows, _CSV_BATCH_ROWS - 1))
                return
            lines = text.split("\n")
            lines.pop()  # the text ends with a line break: nothing after it
            if header:
                header = False
                del lines[0]
                self._lines_before = 1
            self._block = lines
            yield map(split, lines)
            self._lines_before += len(lines)

    def _remember(self, rows: Iterator[list[str]]) -> Iterator[list[str]]:
        for row in rows:
            self._last = row
            self._record_chars = 0
            yield row

    def _csv_lines(self, first: str) -> Iterator[str]:
        yield from self._bounded(first)
        self._lines_before += first.count("\n")
        for text in self._blocks:  # the same stream of blocks, carried on
            yield from self._bounded(text)
            self._lines_before += text.count("\n")

    def _bounded(self, text: str) -> Iterator[str]:
        """The lines of ``text``, refusing a quoted record that spans more than the limit."""
        for line in io.StringIO(text, newline=""):
            self._record_chars += len(line)
            if self._record_chars > MAX_LINE_BYTES:
                raise SourceError(
                    f"{self._name}: line {self.line_num + 1}: a record longer than "
                    f"{MAX_LINE_BYTES:,} characters; not a postcode lookup"
                )
            yield line

    def _texts(self) -> Iterator[str]:
        """Decoded blocks of whole lines, each ending with a line break."""
        pending = b""
        first = True
        while True:
            chunk = self._raw.read(_BLOCK_BYTES)
            data = pending + chunk if pending else chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                # A line carried over from the last block must end within the limit; lines
                # that start in this block are shorter than a block, so within it too.
                if (not cut and len(data) > MAX_LINE_BYTES) or (
                    pending and data.find(b"\n") > MAX_LINE_BYTES
                ):
                    raise SourceError(
                        f"{self._name}: line {self._lines_before + 1}: longer than "
                        f"{MAX_LINE_BYTES:,} bytes; not a postcode lookup"
                    )
                if not cut:  # one line longer than a block: read on
                    pending = data
                    continue
                data, pending = data[:cut], data[cut:]
            elif not data:
                return
            else:
                pending = b""
                data += b"\n"
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :]
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = self._lines_before + data.count(b"\n", 0, exc.start) + 1
                raise SourceError(f"{self._name}: line {line}: not valid UTF-8") from None

    def short_row(self, width: int, index: int) -> tuple[int, int] | None:
        """``(line, columns)`` of the row that had fewer than ``width`` fields, None if blank.

        Called when picking the fields of a row failed: the row ``index`` of the current
        block of split lines (the rows before it were picked or skipped), or the row
        ``csv.reader`` gave last. One look at that row, so blank lines cost one step each.
        """
        if self._csv_lines_before is not None:
            row = self._last
            if not row or row == [""]:
                return None
            return self._csv_lines_before + int(self._csv.line_num), len(row)
        line = self._block[index]
        if not line:
            return None
        return self._lines_before + index + 1, line.count(",") + 1

    @property
    def line_num(self) -> int:
        """The number of lines read so far (for errors raised by ``csv.reader``)."""
        if self._csv_lines_before is not None:
            return self._csv_lines_before + int(self._csv.line_num)
        return self._lines_before
