"""Run records: `run`/`load --summary-json`, `run --format json`, run ids and UTC `Z` times."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.sample import SampleResult
from support.runs import invoke_load, invoke_run

_Z_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def test_first_run_record_says_what_changed(tmp_path: Path, sample: SampleResult) -> None:
    """A first run's record: succeeded, changed, each stage timed and counted, sources hashed."""
    record_path = tmp_path / "records" / "run.json"
    result = invoke_run(tmp_path / "d", sample, "--summary-json", str(record_path))
    assert result.exit_code == 0, result.stderr
    record = _read(record_path)
    assert record["command"] == "run"
    assert (record["status"], record["exit_status"], record["changed"]) == ("succeeded", 0, True)
    assert record["error"] is None
    assert record["as_of"] == "2024-01-01T00:00:00Z"
    assert [s["stage"] for s in record["stages"]] == ["extract", "anonymise", "load", "report"]
    assert all(s["status"] == "succeeded" and s["duration_s"] >= 0 for s in record["stages"])
    load = next(s for s in record["stages"] if s["stage"] == "load")
    assert load["counts"]["new"] == load["counts"]["users_in_snapshot"] > 300
    assert set(record["sources"]) == {"users", "postcodes"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", s["sha256"]) for s in record["sources"].values())
    assert record["warehouse_run"] == 1
    assert sum(row["users"] for row in record["report"]) > 300


def test_unchanged_rerun_record_says_nothing_changed(tmp_path: Path, sample: SampleResult) -> None:
    """Running again on the same sources succeeds with `"changed": false` and a new run id."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert invoke_run(tmp_path / "d", sample, "--summary-json", str(first)).exit_code == 0
    rerun = invoke_run(tmp_path / "d", sample, "--summary-json", str(second))
    assert rerun.exit_code == 0, rerun.stderr
    again = _read(second)
    assert (again["status"], again["changed"], again["warehouse_run"]) == ("succeeded", False, None)
    assert again["run_id"] != _read(first)["run_id"]
    assert {n: s["sha256"] for n, s in again["sources"].items()} == {
        n: s["sha256"] for n, s in _read(first)["sources"].items()
    }


def test_failed_run_still_writes_its_record(tmp_path: Path, sample: SampleResult) -> None:
    """A failed run writes a record with its exit status, the error line and the failed stage."""
    record_path = tmp_path / "run.json"
    result = invoke_run(
        tmp_path / "d",
        sample,
        "--summary-json",
        str(record_path),
        users=tmp_path / "missing.json",
    )
    assert result.exit_code == 3
    record = _read(record_path)
    assert (record["status"], record["exit_status"], record["changed"]) == ("failed", 3, False)
    assert record["error"]
    assert "\n" not in record["error"]
    assert [(s["stage"], s["status"]) for s in record["stages"]] == [("extract", "failed")]


def test_run_format_json_prints_the_record(tmp_path: Path, sample: SampleResult) -> None:
    """`run --format json` prints the same document that --summary-json writes."""
    record_path = tmp_path / "run.json"
    result = invoke_run(
        tmp_path / "d", sample, "--format", "json", "--summary-json", str(record_path)
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == _read(record_path)


def test_load_writes_a_record_with_the_manifest_checksums(
    tmp_path: Path, sample: SampleResult
) -> None:
    """`load --summary-json` records the load stage and the sources' checksums from the manifest."""
    data = tmp_path / "d"
    first = tmp_path / "run.json"
    assert invoke_run(data, sample, "--summary-json", str(first)).exit_code == 0
    record_path = tmp_path / "load.json"
    result = invoke_load(data, "--summary-json", str(record_path))
    assert result.exit_code == 0, result.stderr
    record = _read(record_path)
    assert record["command"] == "load"
    assert [s["stage"] for s in record["stages"]] == ["load"]
    assert record["changed"] is False
    assert record["report"] is None
    assert {n: s["sha256"] for n, s in record["sources"].items()} == {
        n: s["sha256"] for n, s in _read(first)["sources"].items()
    }


def test_every_json_log_line_has_the_run_id_and_a_utc_time(
    tmp_path: Path, sample: SampleResult
) -> None:
    """With --log-format json, every line carries the run record's run id and a `Z` time."""
    record_path = tmp_path / "run.json"
    result = invoke_run(
        tmp_path / "d",
        sample,
        "--log-format",
        "json",
        "--summary-json",
        str(record_path),
        quiet=False,
    )
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) > 4
    assert {line["run_id"] for line in lines} == {_read(record_path)["run_id"]}
    assert all(_Z_TIME.match(line["ts"]) for line in lines)


def test_every_time_in_a_record_is_utc_with_z(tmp_path: Path, sample: SampleResult) -> None:
    """Times in the run record and in `load`'s printed result end with `Z`."""
    record_path = tmp_path / "run.json"
    assert invoke_run(tmp_path / "d", sample, "--summary-json", str(record_path)).exit_code == 0
    record = _read(record_path)
    times = [record["started_at"], record["finished_at"], record["as_of"]]
    times += [s["started_at"] for s in record["stages"]]
    assert all(_Z_TIME.match(t) for t in times), times
    load = invoke_load(tmp_path / "d")
    assert _Z_TIME.match(json.loads(load.stdout)["as_of"])


def test_unwritable_record_path_fails_with_one_line(tmp_path: Path, sample: SampleResult) -> None:
    """A record that cannot be written is a one-line error and a non-zero exit."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = invoke_run(tmp_path / "d", sample, "--summary-json", str(blocker / "run.json"))
    assert result.exit_code == 1
    assert "cannot write the run record" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["run", "load"])
def test_summary_json_is_documented(runner: CliRunner, command: str) -> None:
    """`run --help` and `load --help` list --summary-json."""
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert "--summary-json" in result.stdout


def test_dry_run_record_says_nothing_changed(tmp_path: Path, sample: SampleResult) -> None:
    """`run --dry-run` computes the merge and rolls it back: its record says `changed: false`."""
    record_path = tmp_path / "run.json"
    result = invoke_run(tmp_path / "d", sample, "--dry-run", "--summary-json", str(record_path))
    assert result.exit_code == 0, result.stderr
    record = _read(record_path)
    assert (record["status"], record["changed"], record["report"]) == ("succeeded", False, None)
    load = next(s for s in record["stages"] if s["stage"] == "load")
    assert load["counts"]["dry_run"] is True
    assert load["counts"]["new"] > 0
