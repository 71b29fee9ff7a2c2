"""The postcode lookup parsed in a worker process gives what reading it in-process gives."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import zipfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.sources import nspl
from evergreen_etl.sources.nspl import PostcodeLookupReader, PostcodeRow
from evergreen_etl.workers import WorkerBatches
from support.sources import DATA_MEMBER, NSPL_HEADER, nspl_row

ROW_COUNT = 6_000  # ~1.2 MB of CSV: several of the worker's 256 KiB blocks
BATCH = 500


def _line(row: dict[str, str]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow([row.get(column, "") for column in NSPL_HEADER])
    return text.getvalue()


def _messy_row(index: int) -> dict[str, str]:
    """A lookup row; one in a few has a terminated, oddly written or unlocated postcode."""
    area = "ABCDEFGHKLMNPRSTUWY"[index % 19]
    pcds = f"{area}{index % 97 + 1} {index % 10}{'ABDEFGHJLNPQRSTUWXYZ'[index % 20]}Q"
    laua = f"E0{6000001 + index % 50}"
    kind = index % 13
    if kind == 1:
        return nspl_row(pcds, laua, doterm="202001")  # terminated
    if kind == 2:
        return {**nspl_row(pcds, laua), "pcds": pcds.lower()}
    if kind == 3:
        return {**nspl_row(pcds, laua), "pcds": pcds.replace(" ", "")}
    if kind == 4:
        return {**nspl_row(pcds, laua), "pcds": f" {pcds.replace(' ', '  ')} "}
    if kind == 5:
        return nspl_row(pcds, laua, lat="99.999999", long="0.000000")  # no grid reference
    if kind == 6:
        return nspl_row(pcds, laua, lat="", long="")
    if kind == 7:
        return nspl_row(pcds, "E99999999", ctry="", rgn="W99999999")  # pseudo-codes
    if kind == 8:
        return nspl_row(pcds, laua, lat=" 51.5 ", long="-0.1 ", dointr=" 199901 ")
    if kind == 9:
        return {**nspl_row(pcds, laua), "pcds": "   "}  # no postcode: skipped
    return nspl_row(pcds, laua)


def _messy_lines(count: int = ROW_COUNT, *, quoted_from: int | None = None) -> list[str]:
    """The data CSV's lines: messy rows and blank lines; from ``quoted_from`` on, quoted fields
    (which hand the rest of the file to csv.reader)."""
    lines = [",".join(NSPL_HEADER)]
    for index in range(count):
        if index % 101 == 50:
            lines.append("")
        row = _messy_row(index)
        if quoted_from is not None and index >= quoted_from and index % 7 == 0:
            row["usertype"] = "0,1"  # a quoted comma in a column no role reads
        lines.append(_line(row))
    return lines


def _zip(path: Path, lines: list[str], *, newline: str = "\n") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(DATA_MEMBER, newline.join(lines) + newline)
    return path


def _batches(path: Path, *, parallel: bool) -> list[list[PostcodeRow]]:
    return list(PostcodeLookupReader(path).batches(BATCH, parallel=parallel))


@pytest.fixture(autouse=True)
def _no_children_left() -> Iterator[None]:
    """No test leaves a worker process behind."""
    yield
    assert multiprocessing.active_children() == []


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The labels of the workers ``batches`` starts (the real WorkerBatches, recorded)."""
    started: list[str] = []

    class RecordingWorkerBatches(WorkerBatches[Any]):
        def __enter__(self) -> WorkerBatches[Any]:
            started.append(self._label)
            return super().__enter__()

    monkeypatch.setattr(nspl, "WorkerBatches", RecordingWorkerBatches)
    return started


@pytest.mark.parametrize(
    ("quoted_from", "newline"),
    [(None, "\n"), (None, "\r\n"), (2_500, "\n")],
    ids=["split", "crlf", "csv-reader-part-way"],
)
def test_worker_gives_the_same_rows_in_the_same_order(
    tmp_path: Path, workers: list[str], quoted_from: int | None, newline: str
) -> None:
    """Messy rows over many batches: the worker's rows equal the in-process rows, in order."""
    path = _zip(tmp_path / "postcodes.zip", _messy_lines(quoted_from=quoted_from), newline=newline)

    in_process = _batches(path, parallel=False)
    assert workers == []
    by_worker = _batches(path, parallel=True)

    assert workers == ["postcodes.zip"]
    rows = [row for batch in in_process for row in batch]
    assert [row for batch in by_worker for row in batch] == rows
    assert all(by_worker)  # no empty batch
    # The file really was messy and long: every kind of row came through, in many batches.
    assert len(in_process) > 2
    assert all(len(batch) <= BATCH for batch in in_process)
    assert len(by_worker) > 2
    assert len(rows) == ROW_COUNT - ROW_COUNT // 13 - (ROW_COUNT % 13 > 9)
    assert any(row[8] == "202001" for row in rows)
    assert any(row[5] is None and row[6] is None for row in rows)
    assert any(row[2] is None for row in rows)
    assert all(row[0] == row[0].strip().upper() and row[0].count(" ") == 1 for row in rows)


def test_worker_gives_the_same_rows_for_a_minimal_header(tmp_path: Path) -> None:
    """An old vintage (pcd, laua only; no coordinates or dates) reads alike in both modes."""
    lines = ["pcd,laua"] + [
        f"{'AB' if i % 3 else 'ab'}{i % 90 + 1:<3}{i % 10}AA,E0{6000001 + i % 7}"
        for i in range(3_000)
    ]
    path = _zip(tmp_path / "postcodes.zip", lines)

    in_process = _batches(path, parallel=False)
    by_worker = _batches(path, parallel=True)

    rows = [row for batch in in_process for row in batch]
    assert [row for batch in by_worker for row in batch] == rows
    assert len(rows) == 3_000
    assert rows[1] == ("AB2 1AA", "AB2", "E06000002", None, None, None, None, None, None)


def _short_row_at(line: int, *, quoted_from: int | None) -> list[str]:
    lines = _messy_lines(quoted_from=quoted_from)
    lines[line - 1] = "AB1 3QF,E06000001"
    return lines


BAD_FILES: dict[str, tuple[Callable[[], list[str]], str]] = {
    "short-row": (
        lambda: _short_row_at(4_321, quoted_from=None),
        f"postcodes.zip: {DATA_MEMBER}: line 4321: expected at least 42 columns, found 2",
    ),
    "short-row-in-quoted-part": (
        lambda: _short_row_at(4_321, quoted_from=2_500),
        f"postcodes.zip: {DATA_MEMBER}: line 4321: expected at least 42 columns, found 2",
    ),
    "header-only": (
        lambda: [",".join(NSPL_HEADER)],
        f"postcodes.zip: {DATA_MEMBER} holds a header but no postcode rows; "
        "refusing an empty lookup",
    ),
    "header-and-blank-lines": (
        lambda: [",".join(NSPL_HEADER), "", "", ""],
        f"postcodes.zip: {DATA_MEMBER} holds a header but no postcode rows; "
        "refusing an empty lookup",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_lookup_fails_with_the_same_message(
    tmp_path: Path, workers: list[str], case: str
) -> None:
    """A short row on a known line, or no rows at all: one SourceError message in both modes."""
    make_lines, expected = BAD_FILES[case]
    path = _zip(tmp_path / "postcodes.zip", make_lines())
    messages = []
    for parallel in (False, True):
        with pytest.raises(SourceError) as raised:
            _batches(path, parallel=parallel)
        messages.append(str(raised.value))

    assert messages == [expected, expected]
    assert workers == ["postcodes.zip"]


def test_invalid_utf8_fails_with_the_same_message(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 on a known line: the same SourceError in both modes."""
    text = "\n".join(_messy_lines()) + "\n"
    line = 3_210
    start = sum(len(part) + 1 for part in text.split("\n")[: line - 1])
    data = text[:start].encode() + b"\xff" + text[start:].encode()
    path = tmp_path / "postcodes.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(DATA_MEMBER, data)
    messages = []
    for parallel in (False, True):
        with pytest.raises(SourceError) as raised:
            _batches(path, parallel=parallel)
        messages.append(str(raised.value))

    assert messages == [f"postcodes.zip: {DATA_MEMBER}: line {line}: not valid UTF-8"] * 2


def test_stopping_early_stops_the_worker(tmp_path: Path, workers: list[str]) -> None:
    """A caller that stops after the first batch leaves no worker process behind."""
    path = _zip(tmp_path / "postcodes.zip", _messy_lines())
    batches = PostcodeLookupReader(path).batches(BATCH, parallel=True)

    assert isinstance(batches, Generator)
    first = next(batches)
    assert multiprocessing.active_children() != []
    batches.close()

    assert first
    assert workers == ["postcodes.zip"]
    assert multiprocessing.active_children() == []


def test_the_worker_is_used_from_parallel_min_bytes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """By default a small lookup is read in-process; from PARALLEL_MIN_BYTES on, by a worker."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    path = _zip(tmp_path / "postcodes.zip", _messy_lines(500))
    reader = PostcodeLookupReader(path)
    assert reader.data_bytes < nspl.PARALLEL_MIN_BYTES

    default = [row for batch in reader.batches(BATCH) for row in batch]
    assert workers == []
    monkeypatch.setattr(nspl, "PARALLEL_MIN_BYTES", reader.data_bytes + 1)
    list(reader.batches(BATCH))
    assert workers == []
    monkeypatch.setattr(nspl, "PARALLEL_MIN_BYTES", reader.data_bytes)
    at_threshold = [row for batch in reader.batches(BATCH) for row in batch]

    assert workers == ["postcodes.zip"]
    assert at_threshold == default
