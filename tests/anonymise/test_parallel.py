"""The anonymise stage reads users in a worker process or in-process, with the same outcome.

The mode is chosen by the users file's size (``PARALLEL_MIN_BYTES``) and the number of CPUs:
these tests set ``PARALLEL_MIN_BYTES`` to 0 to force the worker and to a huge value to read
in-process, pin ``os.cpu_count`` so that a one-CPU machine does not silently read in-process,
and check through a recording ``WorkerBatches`` that a worker really ran.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import SourceError
from evergreen_etl.models import AnonymiseResult
from evergreen_etl.settings import Settings
from evergreen_etl.workers import WorkerBatches
from support.keys import TEST_KEY
from support.processes import is_running
from support.sources import user, write_users

# The module itself: ``evergreen_etl.anonymise`` is the package's lazily exported function.
stage = importlib.import_module("evergreen_etl.anonymise.stage")

Style = Literal["concatenated", "array", "ndjson"]
STYLES: list[Style] = ["concatenated", "array", "ndjson"]
STAGED = ("users.csv", "rejects.csv")
NEVER = 1 << 62  # a PARALLEL_MIN_BYTES no file reaches: read in-process
RECORD_COUNT = 25_000  # several of the stage's batches of 10,000

_ABSENT = object()  # leave the field out of the record

EMAILS: list[Any] = [
    " Jane.Doe@Example.COM ",
    "UPPER@EXAMPLE.COM",
    "\tTabbed@Example.com\n",
    "zoë@example.com",
    "\uff46\uff55\uff4c\uff4c@example.com",  # full-width letters: NFKC makes them ASCII
    "not-an-email",
    "two@@example.com",
    "a@b",
    "",
    "   ",
    None,
    _ABSENT,
    42,
    1.5,
    True,
    ["a@example.com"],
    {"address": "a@example.com"},
]
SEXES: list[Any] = [
    "F",
    "Female",
    "m",
    "MALE",
    " f ",
    "Other",
    "x",
    "",
    "   ",
    None,
    _ABSENT,
    1,
    True,
    ["F"],
    {"value": "F"},
]
BIRTH_DATES: list[Any] = [
    "1984-03-02",
    "02/03/1984",
    "2/3/1984",
    " 1970-01-01 ",
    "1984-03-02T10:00:00Z",
    "1984-02-30",
    "31/02/1984",
    "1984",
    "19840302",
    "1899-12-31",
    "3000-01-01",
    "yesterday",
    "",
    " ",
    None,
    _ABSENT,
    1984,
    1984.5,
    False,
    ["1984-03-02"],
    {"year": 1984},
]
POSTCODES: list[Any] = [
    "AB1 3QF",
    "ab1 3qf",
    "AB13QF",
    " ab1  3qf ",
    "sw1a1aa",
    "GIR 0AA",
    "CA3",
    "ca3 ",
    "SW1A",
    "NOT KNOWN",
    "AB1 3QFX",
    "\u01311 1AA",  # a dotless i: not ASCII
    "",
    "  ",
    None,
    _ABSENT,
    12345,
    ["AB1 3QF"],
    {"code": "AB1 3QF"},
]
ADDRESSES: list[Any] = [None, "AB1 3QF", ["AB1 3QF"], 7, {}, {"street": "1 Testing Lane"}]
# Records that are not objects: only an array may hold scalars (the other forms must start
# each record with '{' or '[').
NON_OBJECTS_ANY_STYLE: list[Any] = [[], [1, 2], [{"email": "in-a-list@example.com"}]]
NON_OBJECTS_ARRAY_ONLY: list[Any] = [7, -1.5, "a string", "x@example.com", None, True]


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    """A user, mostly plausible, often messy in one or more fields."""
    if rng.random() < 0.8:
        email: Any = f"User{index % 9_000}@Example.com"  # repeats: the same person again
    else:
        email = rng.choice(EMAILS)
    record: dict[str, Any] = {"email": email, "givenName": "Testgiven"}
    for field, values in (("sex", SEXES), ("dateOfBirth", BIRTH_DATES)):
        value = rng.choice(values)
        if value is not _ABSENT:
            record[field] = value
    if rng.random() < 0.1:
        record["address"] = rng.choice(ADDRESSES)
    else:
        postcode = rng.choice(POSTCODES)
        address: dict[str, Any] = {"street": "1 Testing Lane"}
        if postcode is not _ABSENT:
            address["postcode"] = postcode
        record["address"] = address
    return {k: v for k, v in record.items() if v is not _ABSENT}


def _messy_records(style: Style, count: int = RECORD_COUNT) -> list[Any]:
    rng = random.Random(f"anonymise-parallel-{count}")  # the same records for each style
    non_objects = NON_OBJECTS_ANY_STYLE + (NON_OBJECTS_ARRAY_ONLY if style == "array" else [])
    records: list[Any] = []
    for index in range(count):
        if index % 499 == 7:
            records.append(non_objects[(index // 499) % len(non_objects)])
        else:
            records.append(_record(rng, index))
    return records


def _settings(tmp_path: Path, name: str) -> Settings:
    """Settings with a fixed key and no reject-rate limit, in a data dir of their own."""
    return Settings(data_dir=tmp_path / name, pseudonym_key=TEST_KEY, max_reject_rate=1.0)


@pytest.fixture(autouse=True)
def _two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker is used only with more than one CPU: pretend there are two."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


@pytest.fixture(autouse=True)
def _no_children_left() -> Iterator[None]:
    """No test leaves a worker process behind."""
    yield
    assert multiprocessing.active_children() == []


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process ids of the workers the anonymise stage starts (the real WorkerBatches)."""
    started: list[int] = []

    class RecordingWorkerBatches(WorkerBatches[Any]):
        def __enter__(self) -> WorkerBatches[Any]:
            entered = super().__enter__()
            started.append(self._worker.pid)
            return entered

    monkeypatch.setattr(stage, "WorkerBatches", RecordingWorkerBatches)
    return started


def _anonymise(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, path: Path, *, worker: bool
) -> AnonymiseResult:
    monkeypatch.setattr(stage, "PARALLEL_MIN_BYTES", 0 if worker else NEVER)
    return anonymise(settings, users_path=path, progress=False)


def _staged(settings: Settings) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(settings.staged_dir.iterdir())}


def _comparable(result: AnonymiseResult) -> dict[str, Any]:
    return result.model_dump(exclude={"staged_path", "rejects_path", "summary_path"})


def _summary(settings: Settings) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((settings.staged_dir / "summary.json").read_text())
    del summary["anonymised_at"]
    return summary


def _assert_worker_gone(workers: list[int]) -> None:
    assert len(workers) == 1
    assert multiprocessing.active_children() == []
    assert not is_running(workers[0])


@pytest.mark.parametrize("style", STYLES)
def test_worker_and_in_process_stage_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[int], style: Style
) -> None:
    """Messy records in several batches: identical users.csv, rejects.csv and counts."""
    records = _messy_records(style)
    path = write_users(tmp_path / "users.json", records, style=style)
    by_worker, in_process = _settings(tmp_path, "worker"), _settings(tmp_path, "in-process")

    worker_result = _anonymise(monkeypatch, by_worker, path, worker=True)
    _assert_worker_gone(workers)
    local_result = _anonymise(monkeypatch, in_process, path, worker=False)

    assert len(workers) == 1  # the second run read in-process
    for name in STAGED:
        assert _staged(by_worker)[name] == _staged(in_process)[name], name
    assert _comparable(worker_result) == _comparable(local_result)
    assert _summary(by_worker) == _summary(in_process)
    # The records really were messy and many: every path of the stage was taken.
    assert len(records) > 2 * stage._BATCH
    assert worker_result.records_read == len(records)
    assert worker_result.input_format == style
    assert set(worker_result.rejects_by_reason) == {
        "not_an_object",
        "email_missing",
        "email_invalid",
    }
    assert all(worker_result.postcodes_by_kind.values())
    assert worker_result.sex_unrecognised > 0
    assert worker_result.birth_date_invalid > 0


def test_a_spawned_worker_stages_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[int]
) -> None:
    """With another thread running the worker is spawned, not forked: the same output."""
    records = _messy_records("array", count=3_000)
    path = write_users(tmp_path / "users.json", records, style="array")
    by_worker, in_process = _settings(tmp_path, "worker"), _settings(tmp_path, "in-process")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="test-thread")
    thread.start()
    try:
        worker_result = _anonymise(monkeypatch, by_worker, path, worker=True)
    finally:
        stop.set()
        thread.join()
    local_result = _anonymise(monkeypatch, in_process, path, worker=False)

    _assert_worker_gone(workers)
    for name in STAGED:
        assert _staged(by_worker)[name] == _staged(in_process)[name], name
    assert _comparable(worker_result) == _comparable(local_result)


# Each bad file holds 12,000 records (NDJSON, concatenated or an array) with its fault after
# the first batch of 10,000, so that the worker has sent a batch before it fails.
GOOD_LINES = [json.dumps(user(f"u{i}@example.com", "AB1 3QF")) for i in range(12_000)]


def _invalid_utf8(path: Path) -> str:
    lines = [line.encode() for line in GOOD_LINES]
    lines[11_499] = b'{"email": "caf\xe9@example.com", "sex": "F"}'  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")
    return f"{path}: line 11500: not valid UTF-8"


def _invalid_json(path: Path) -> str:
    lines = list(GOOD_LINES)
    lines[10_006] = '{"email": "x@example.com",, "sex": "F"}'
    path.write_text("\n".join(lines) + "\n")
    return f"{path}: line 10007: not valid JSON (Expecting property name enclosed in double quotes)"


def _truncated(path: Path) -> str:
    text = "\n".join(json.dumps(json.loads(line), indent=2) for line in GOOD_LINES) + "\n"
    last = text.rindex("\n{") + 1
    path.write_text(text[: last + 20])  # cut inside the last record
    return (
        f"{path}: line {text.count(chr(10), 0, last) + 1}: truncated: the file ends inside a record"
    )


def _unclosed_array(path: Path) -> str:
    text = json.dumps([json.loads(line) for line in GOOD_LINES], indent=2)
    path.write_text(text[: text.rindex("]")])
    return f"{path}: line {text.count(chr(10)) + 1}: truncated: the JSON array is not closed"


@pytest.mark.parametrize("write_bad", [_invalid_utf8, _invalid_json, _truncated, _unclosed_array])
def test_a_bad_users_file_fails_alike_and_keeps_the_earlier_staged_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[int],
    write_bad: Callable[[Path], str],
) -> None:
    """The same SourceError in both modes; the earlier staged files stay, no temporary file."""
    good = write_users(tmp_path / "good.json", _messy_records("ndjson", 300), style="ndjson")
    bad = tmp_path / "bad.json"
    expected = write_bad(bad)
    messages: dict[bool, str] = {}
    for worker in (True, False):
        settings = _settings(tmp_path, f"worker-{worker}")
        _anonymise(monkeypatch, settings, good, worker=worker)
        before = _staged(settings)
        assert set(before) == {"users.csv", "rejects.csv", "summary.json"}

        with pytest.raises(SourceError) as raised:
            _anonymise(monkeypatch, settings, bad, worker=worker)

        messages[worker] = str(raised.value)
        assert _staged(settings) == before  # byte for byte, and no temporary file left
    assert messages[True] == messages[False] == expected
    assert len(workers) == 2  # the good and the bad run of the worker mode
    assert multiprocessing.active_children() == []
    assert not any(is_running(pid) for pid in workers)


def test_a_deeply_nested_field_is_staged_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[int]
) -> None:
    """A sex nested 600 arrays deep is just an unrecognised sex, in either mode."""
    nested = "[" * 600 + "]" * 600
    path = tmp_path / "users.json"
    path.write_text(
        f'{{"email": "a@example.com", "sex": {nested}}}\n{{"email": "b@example.com"}}\n'
    )
    local = _anonymise(monkeypatch, _settings(tmp_path, "in-process"), path, worker=False)
    assert (local.users_staged, local.sex_unrecognised) == (2, 1)

    by_worker = _anonymise(monkeypatch, _settings(tmp_path, "worker"), path, worker=True)

    assert _comparable(by_worker) == _comparable(local)


def test_a_small_file_is_read_in_process_by_default(tmp_path: Path, workers: list[int]) -> None:
    """Below PARALLEL_MIN_BYTES (16 MB) no worker process is started."""
    path = write_users(tmp_path / "users.json", _messy_records("ndjson", 200), style="ndjson")
    assert path.stat().st_size < stage.PARALLEL_MIN_BYTES

    result = anonymise(_settings(tmp_path, "data"), users_path=path, progress=False)

    assert result.records_read == 200
    assert workers == []


def test_the_worker_is_used_from_parallel_min_bytes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[int]
) -> None:
    """A file of PARALLEL_MIN_BYTES or more is read by a worker; one byte less, in-process."""
    path = write_users(tmp_path / "users.json", _messy_records("ndjson", 200), style="ndjson")
    size = path.stat().st_size

    monkeypatch.setattr(stage, "PARALLEL_MIN_BYTES", size + 1)
    below = anonymise(_settings(tmp_path, "below"), users_path=path, progress=False)
    assert workers == []
    monkeypatch.setattr(stage, "PARALLEL_MIN_BYTES", size)
    at = anonymise(_settings(tmp_path, "at"), users_path=path, progress=False)
    assert len(workers) == 1
    monkeypatch.setattr(stage, "PARALLEL_MIN_BYTES", 0)
    above = anonymise(_settings(tmp_path, "above"), users_path=path, progress=False)
    assert len(workers) == 2

    assert _comparable(below) == _comparable(at) == _comparable(above)


@pytest.mark.parametrize("cpus", [1, None])
def test_one_cpu_reads_in_process_whatever_the_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[int], cpus: int | None
) -> None:
    """With a single (or an unknown number of) CPU a worker would only add its cost."""
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    path = write_users(tmp_path / "users.json", _messy_records("ndjson", 200), style="ndjson")

    _anonymise(monkeypatch, _settings(tmp_path, "data"), path, worker=True)

    assert workers == []
