"""A bad users export, end to end through the CLI: refused in one PII-free line naming the file
and line, with the previous staged files (and the warehouse) exactly as they were.

``anonymise`` reads ``raw/users.json`` as extract left it; a bad export does land in ``raw/``
(extract does not parse users: that is a full read, which anonymise does anyway), where it
stays for inspection. What must survive is the last good staged snapshot and the warehouse.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner, Result

from evergreen_etl.anonymise import anonymise
from evergreen_etl.extract import extract
from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from reliability.checks import assert_fails_cleanly, invoke, tree, warehouse_digest
from support.sources import user, write_lookup_zip, write_users

GOOD = [user("one@example.com", "AB1 1AA"), user("two@example.com", "CV4 9RE")]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory whose staged/ holds a good snapshot anonymised from raw/users.json."""
    directory = tmp_path / "data"
    (directory / "raw").mkdir(parents=True)
    write_users(directory / "raw" / "users.json", GOOD)
    anonymise(Settings(data_dir=directory), progress=False)
    return directory


def _anonymise(runner: CliRunner, data: Path, content: bytes, *options: str) -> Result:
    (data / "raw" / "users.json").write_bytes(content)
    return invoke(runner, "anonymise", "--data-dir", str(data), "-q", *options)


def _concatenated(records: list[Any]) -> bytes:
    return ("\n".join(json.dumps(r, indent=2) for r in records) + "\n").encode()


MALFORMED = {
    "csv-not-json": (b"email,givenName\nsomeone@example.com,Someone\n", 1, "not JSON"),
    "html-error-page": (b"<!DOCTYPE html>\n<html><body>503</body></html>\n", 1, "not JSON"),
    "scalar-stream": (b'"someone@example.com"\n"other@example.com"\n', 1, "not JSON"),
    "truncated-mid-object": (
        b'{"email": "a@example.com"}\n{\n  "email": "someone@exa',
        2,
        "truncated: the file ends inside a record",
    ),
    "truncated-array": (
        b'[\n  {"email": "a@example.com"},\n  {"email": "someone@example.com"}',
        3,
        "truncated: the JSON array is not closed",
    ),
    "broken-between-records": (
        b'{"email": "a@example.com"}\n{"email": "someone@example.com",,}\n',
        2,
        "not valid JSON",
    ),
    "latin-1-bytes": (
        '{"email": "a@example.com"}\n{"email": "zoë@example.com"}\n'.encode("latin-1"),
        2,
        "not valid UTF-8",
    ),
    "utf-16": (_concatenated(GOOD).decode().encode("utf-16"), 1, "not valid UTF-8"),
    "gzip-compressed": (gzip.compress(_concatenated(GOOD), mtime=0), 1, "not valid UTF-8"),
}


@pytest.mark.parametrize(("content", "line", "what"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_export_is_refused_and_staged_files_kept(
    runner: CliRunner, data: Path, content: bytes, line: int, what: str
) -> None:
    """Exit 3, one line naming users.json and the line, no value quoted, staged/ unchanged."""
    before = tree(data / "staged")

    result = _anonymise(runner, data, content)

    assert_fails_cleanly(result, 3, rf"raw/users\.json: line {line}: {what}")
    assert "someone" not in result.stderr
    assert tree(data / "staged") == before


DEEP = 100_000
NESTED = {
    "arrays": b"[" * DEEP + b"]" * DEEP,
    "objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "inside-a-record": b'{"email": "a@example.com", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
}


@pytest.mark.parametrize("content", NESTED.values(), ids=NESTED.keys())
def test_deeply_nested_junk_fails_in_one_line_without_a_traceback(
    runner: CliRunner, data: Path, content: bytes
) -> None:
    """100,000 nested arrays or objects do not crash the CLI: one line, staged/ unchanged."""
    before = tree(data / "staged")

    result = _anonymise(runner, data, content)

    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert tree(data / "staged") == before


@pytest.mark.parametrize("content", NESTED.values(), ids=NESTED.keys())
def test_deeply_nested_junk_is_a_source_error_naming_the_line(
    runner: CliRunner, data: Path, content: bytes
) -> None:
    """Nesting Python cannot parse is bad input (exit 3) at a line, not an unexpected error."""
    result = _anonymise(runner, data, content)

    assert_fails_cleanly(result, 3, r"raw/users\.json: line 1: .*nested too deeply")


@pytest.mark.parametrize("style", ["concatenated", "array", "ndjson"])
def test_the_three_forms_stage_the_same_users(
    runner: CliRunner, data: Path, tmp_path: Path, style: Literal["concatenated", "array", "ndjson"]
) -> None:
    """Concatenated objects, an array and NDJSON are detected and give identical staged users."""
    expected = (data / "staged" / "users.csv").read_bytes()
    source = write_users(tmp_path / f"{style}.json", GOOD, style)

    result = _anonymise(runner, data, source.read_bytes())

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input_format"] == style
    assert (data / "staged" / "users.csv").read_bytes() == expected


def test_a_50_megabyte_record_is_read_in_bounded_memory(
    runner: CliRunner, data: Path, tmp_path: Path
) -> None:
    """One 50 MB record (a huge unknown field) is staged; memory stays a small multiple of it."""
    size = 50_000_000
    big = user("big@example.com", "AB1 1AA", attachment="x" * size)
    source = write_users(tmp_path / "big.json", [big, user("next@example.com", "CV4 9RE")])

    tracemalloc.start()
    try:
        result = _anonymise(runner, data, source.read_bytes())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["users_staged"] == 2
    assert peak < 5 * size


EMPTY = {"zero-bytes": b"", "blank-lines": b" \n\n\t\n", "empty-array": b"[]\n"}


@pytest.mark.parametrize("content", EMPTY.values(), ids=EMPTY.keys())
def test_empty_export_is_refused_and_staged_files_kept(
    runner: CliRunner, data: Path, content: bytes
) -> None:
    """An export without a record is not an empty snapshot (everyone would leave): exit 4."""
    before = tree(data / "staged")

    result = _anonymise(runner, data, content)

    assert_fails_cleanly(result, 4, r"raw/users\.json: holds no user records; nothing was staged")
    assert tree(data / "staged") == before


INVALID = {
    "no-usable-email": _concatenated([user("not-an-email"), user(""), {"givenName": "Someone"}]),
    "not-objects": b'[1, "someone@example.com", null, [true]]\n',
}


@pytest.mark.parametrize("content", INVALID.values(), ids=INVALID.keys())
def test_all_records_invalid_trips_the_reject_rate_guard(
    runner: CliRunner, data: Path, content: bytes
) -> None:
    """100% rejected is exit 4 with the figures (never the values); staged/ unchanged."""
    before = tree(data / "staged")

    result = _anonymise(runner, data, content)

    assert_fails_cleanly(
        result,
        4,
        r"raw/users\.json: (\d+) of \1 records rejected \(100\.0%, above the limit of 25\.0%\)",
    )
    assert "not-an-email" not in result.stderr
    assert tree(data / "staged") == before


ONE_IN_FOUR_BAD = _concatenated(
    [*GOOD, user("three@example.com", "AB1 1AA"), user("not-an-email", "AB1 1AA")]
)


@pytest.mark.parametrize(
    ("options", "env", "exit_code"),
    [
        ([], None, 0),
        (["--max-reject-rate", "0.25"], None, 0),
        (["--max-reject-rate", "0.2"], None, 4),
        ([], "0.2", 4),
        (["--max-reject-rate", "0.5"], "0.2", 0),
    ],
    ids=["default-25%", "at-the-limit", "over-the-option", "over-the-env", "option-beats-env"],
)
def test_max_reject_rate_is_a_strict_upper_bound(
    runner: CliRunner,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    env: str | None,
    exit_code: int,
) -> None:
    """1 rejected of 4 (25%) passes a 25% limit and fails a 20% one, from option or env."""
    if env is not None:
        monkeypatch.setenv("EVERGREEN_MAX_REJECT_RATE", env)
    before = tree(data / "staged")

    result = _anonymise(runner, data, ONE_IN_FOUR_BAD, *options)

    if exit_code:
        assert_fails_cleanly(
            result, 4, r"1 of 4 records rejected \(25\.0%, above the limit of 20\.0%\)"
        )
        assert tree(data / "staged") == before
    else:
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["rejected"] == 1


@pytest.fixture
def loaded(tmp_path: Path) -> Settings:
    """A warehouse (SQLite) holding one good snapshot, loaded through the library."""
    www = tmp_path / "www"
    www.mkdir()
    write_users(www / "users.json", GOOD)
    write_lookup_zip(www / "postcodes.zip")
    settings = Settings(data_dir=tmp_path / "warehouse-data")
    extract(
        settings,
        users_url=str(www / "users.json"),
        postcodes_url=str(www / "postcodes.zip"),
        progress=False,
    )
    anonymise(settings, progress=False)
    load(settings, as_of=datetime(2024, 1, 1), progress=False)
    return settings


def _run_all_invalid(
    runner: CliRunner, settings: Settings, tmp_path: Path, *options: str
) -> Result:
    users = tmp_path / "all-invalid.json"
    users.write_bytes(INVALID["no-usable-email"])
    return invoke(
        runner,
        "run",
        "--data-dir",
        str(settings.data_dir),
        "--users-url",
        str(users),
        "--postcodes-url",
        str(tmp_path / "www" / "postcodes.zip"),
        "--as-of",
        "2024-02-01",
        "-q",
        *options,
    )


def test_run_with_all_records_invalid_leaves_the_warehouse_alone(
    runner: CliRunner, loaded: Settings, tmp_path: Path
) -> None:
    """`run` stops at the guard (exit 4): the warehouse and staged snapshot are unchanged."""
    digest = warehouse_digest(loaded.data_dir / "warehouse.db")
    staged = tree(loaded.staged_dir)

    result = _run_all_invalid(runner, loaded, tmp_path)

    assert_fails_cleanly(result, 4, r"3 of 3 records rejected")
    assert warehouse_digest(loaded.data_dir / "warehouse.db") == digest
    assert tree(loaded.staged_dir) == staged


def test_run_with_no_usable_record_never_empties_the_warehouse(
    runner: CliRunner, loaded: Settings, tmp_path: Path
) -> None:
    """Even with --max-reject-rate 1, a snapshot with no usable user is not loaded."""
    digest = warehouse_digest(loaded.data_dir / "warehouse.db")

    result = _run_all_invalid(runner, loaded, tmp_path, "--max-reject-rate", "1")

    assert_fails_cleanly(result, 4, r"no usable user")
    assert warehouse_digest(loaded.data_dir / "warehouse.db") == digest
