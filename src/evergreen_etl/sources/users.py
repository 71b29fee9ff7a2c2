"""Stream user records out of a JSON export without holding the file in memory.

The export is a stream of JSON objects written one after another (usually pretty-printed),
but a JSON array and newline-delimited JSON are accepted too; the format is detected.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evergreen_etl.errors import SourceError

_CHUNK = 1 << 20
MAX_RECORD_CHARS = 64 << 20
"""The longest record (one top-level JSON value, its fields included) the reader accepts.

A real record is a few hundred characters; the bound stops one endless record (a string or
array that never closes) from being buffered without end.
"""
_WHITESPACE = " \t\r\n"
_decoder = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One top-level value of the export: its 1-based position, first line, and the value."""

    position: int
    line: int
    value: Any


class UsersReader:
    """Iterate the records of a users export, detecting array / NDJSON / concatenated objects.

    After iteration, ``input_format`` says which form was seen. Errors raise ``SourceError``
    naming the file and the line, never quoting the content (it is personal data).
    """

    def __init__(
        self,
        path: Path,
        *,
        chunk_size: int = _CHUNK,
        label: str | None = None,
        max_record_chars: int = MAX_RECORD_CHARS,
    ) -> None:
        self.path = path
        self.label = label or path.name
        self.chunk_size = chunk_size
        self.max_record_chars = max_record_chars
        self.input_format = "empty"

    def _fail(self, line: int, what: str) -> SourceError:
        return SourceError(f"{self.label}: line {line}: {what}")

    def _too_long(self, line: int) -> SourceError:
        return self._fail(
            line, f"a record longer than {self.max_record_chars:,} characters; not a users export"
        )

    def __iter__(self) -> Iterator[SourceRecord]:
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot open users file ({exc.strerror})") from None
        with handle:
            yield from self._records(handle)

    def _records(self, handle: Any) -> Iterator[SourceRecord]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        buf = ""
        pos = 0
        line = 1
        eof = False
        in_array: bool | None = None
        array_closed = False
        position = 0
        multiline = False
        read_size = self.chunk_size

        def more() -> bool:
            nonlocal buf, pos, eof, read_size
            if eof:
                return False
            data = handle.read(read_size)
            pending = decoder.getstate()[0]  # bytes of a character cut by the last read
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                # The bad byte's line: lines already counted, then those before it.
                before = (pending + data)[: max(exc.start, 0)]
                bad_line = line + buf.count("\n", pos) + before.count(b"\n")
                raise self._fail(bad_line, "not valid UTF-8") from None
            if not data:
                eof = True
            buf = buf[pos:] + text
            pos = 0
            return True

        def skip(separators: str) -> None:
            nonlocal pos, line
            while True:
                n = len(buf)
                start = pos
                while pos < n and buf[pos] in separators:
                    pos += 1
                line += buf.count("\n", start, pos)
                if pos < n or not more():
                    return

        while True:
            skip(_WHITESPACE if not in_array else _WHITESPACE + ",")
            if pos >= len(buf):
                break
            if in_array is None:
                in_array = buf[pos] == "["
                if in_array:
                    self.input_format = "array"
                    pos += 1
                    continue
            if in_array and buf[pos] == "]":
                pos += 1
                array_closed = True
                skip(_WHITESPACE)
                if pos < len(buf):
                    raise self._fail(line, "unexpected content after the closing ']'")
                break
            if not in_array and buf[pos] not in "{[":
                raise self._fail(line, "not JSON: expected an object")
            while True:
                try:
                    value, end = _decoder.raw_decode(buf, pos)
                    break
                except RecursionError:
                    # Python's decoder recurses per level; junk nested deeper cannot be read.
                    raise self._fail(line, "nested too deeply to read") from None
                except json.JSONDecodeError as exc:
                    # Incomplete (needs more text) or malformed? A value cut by the end of the
                    # buffer fails near that end (inside a literal such as `tru`) or in a
                    # string that runs off it. Reading more and retrying settles it.
                    near_end = exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated")
                    if near_end and not eof:
                        if len(buf) - pos > self.max_record_chars:
                            raise self._too_long(line) from None
                        read_size = min(read_size * 2, 64 * _CHUNK)
                        more()
                        continue
                    if _is_truncation(buf, exc):
                        raise self._fail(line, "truncated: the file ends inside a record") from None
                    bad_line = line + buf.count("\n", pos, exc.pos)
                    raise self._fail(bad_line, f"not valid JSON ({exc.msg})") from None
                except ValueError:
                    # Python refuses to convert an integer of more than 4,300 digits.
                    raise self._fail(line, "not valid JSON (a number too long to read)") from None
            if end - pos > self.max_record_chars:
                raise self._too_long(line)
            # Back to the normal read size: it grows only while one record spans the buffer,
            # so memory follows the largest record, never the size of the file.
            read_size = self.chunk_size
            position += 1
            newlines = buf.count("\n", pos, end)
            if newlines:
                multiline = True
            yield SourceRecord(position=position, line=line, value=value)
            line += newlines
            pos = end
        if in_array and not array_closed:
            raise self._fail(line, "truncated: the JSON array is not closed")
        if not in_array and position:
            self.input_format = "concatenated" if multiline or position == 1 else "ndjson"


def _is_truncation(buf: str, exc: json.JSONDecodeError) -> bool:
    """At end of file: did the decoder fail only because the text stopped?"""
    if exc.msg.startswith("Unterminated"):
        return True
    rest = buf[exc.pos :].strip()
    return not rest or any(word.startswith(rest) for word in ("true", "false", "null"))
