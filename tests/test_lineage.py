"""OpenLineage: START and COMPLETE/FAIL per stage under a parent run, through both transports,
valid against the spec's JSON schema."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.sample import SampleResult, generate_sample
from support.lineage_events import LineageReceiver, validate_event
from support.runs import invoke_load, invoke_run

STAGES = ("extract", "anonymise", "load", "report")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    """Small generated sources."""
    return generate_sample(
        tmp_path_factory.mktemp("sample"), users=150, postcodes=1500, snapshots=1, seed=5
    )


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _by_job(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["job"]["name"], e["eventType"]) for e in events]


def _expected_sequence(
    command: str, stages: tuple[str, ...], end: str = "COMPLETE"
) -> list[tuple[str, str]]:
    parent = f"evergreen_etl.{command}"
    middle = [(f"{parent}.{s}", t) for s in stages for t in ("START", "COMPLETE")]
    return [(parent, "START"), *middle, (parent, end)]


def test_file_transport_events_are_valid_and_complete(tmp_path: Path, sample: SampleResult) -> None:
    """--lineage-file gets a parent START, START/COMPLETE per stage and the parent COMPLETE."""
    lineage, record = tmp_path / "lineage.jsonl", tmp_path / "run.json"
    result = invoke_run(
        tmp_path / "d", sample, "--lineage-file", str(lineage), "--summary-json", str(record)
    )
    assert result.exit_code == 0, result.stderr
    events = _read(lineage)
    assert _by_job(events) == _expected_sequence("run", STAGES)
    for event in events:
        validate_event(event)
    parent_run = events[0]["run"]["runId"]
    for event in events[1:-1]:
        assert event["run"]["facets"]["parent"]["run"]["runId"] == parent_run
        assert event["run"]["facets"]["parent"]["job"]["name"] == "evergreen_etl.run"
    assert events[-1]["run"]["runId"] == parent_run


def test_datasets_carry_schema_and_row_counts(tmp_path: Path, sample: SampleResult) -> None:
    """Sources, the staged file and the warehouse tables appear with schema and row counts."""
    lineage, record = tmp_path / "lineage.jsonl", tmp_path / "run.json"
    assert (
        invoke_run(
            tmp_path / "d", sample, "--lineage-file", str(lineage), "--summary-json", str(record)
        ).exit_code
        == 0
    )
    counts = {s["stage"]: s["counts"] for s in json.loads(record.read_text())["stages"]}
    complete = {
        e["job"]["name"].rsplit(".", 1)[1]: e
        for e in _read(lineage)
        if e["eventType"] == "COMPLETE"
    }
    extract_inputs = [d["name"] for d in complete["extract"]["inputs"]]
    assert extract_inputs == [
        str(sample.users_paths[0].resolve()),
        str(sample.postcodes_path.resolve()),
    ]
    staged = complete["anonymise"]["outputs"][0]
    assert staged["name"].endswith("staged/users.csv")
    assert [f["name"] for f in staged["facets"]["schema"]["fields"]][:2] == [
        "position",
        "pseudonym",
    ]
    assert (
        staged["outputFacets"]["outputStatistics"]["rowCount"]
        == counts["anonymise"]["users_staged"]
    )
    tables = {d["name"]: d for d in complete["load"]["outputs"]}
    assert set(tables) == {"dim_postcode", "dim_user", "user_address", "etl_run"}
    assert (
        tables["dim_user"]["outputFacets"]["outputStatistics"]["rowCount"] == counts["load"]["new"]
    )
    assert (
        tables["dim_postcode"]["outputFacets"]["outputStatistics"]["rowCount"]
        == counts["load"]["postcodes_loaded"]
    )
    assert "pseudonym" in [f["name"] for f in tables["dim_user"]["facets"]["schema"]["fields"]]
    assert all(d["namespace"].startswith("sqlite://") for d in tables.values())
    assert [d["name"] for d in complete["report"]["inputs"]] == [
        "user_address",
        "dim_user",
        "dim_local_authority",
    ]


def test_failed_stage_sends_fail_with_the_error(tmp_path: Path, sample: SampleResult) -> None:
    """A failing stage sends FAIL with the one-line error; so does the parent run."""
    lineage = tmp_path / "lineage.jsonl"
    result = invoke_run(
        tmp_path / "d", sample, "--lineage-file", str(lineage), users=tmp_path / "missing.json"
    )
    assert result.exit_code == 3
    events = _read(lineage)
    assert _by_job(events) == [
        ("evergreen_etl.run", "START"),
        ("evergreen_etl.run.extract", "START"),
        ("evergreen_etl.run.extract", "FAIL"),
        ("evergreen_etl.run", "FAIL"),
    ]
    for event in events:
        validate_event(event)
    message = events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert "missing.json" in message
    assert "\n" not in message


def test_http_transport_posts_the_same_events(tmp_path: Path, sample: SampleResult) -> None:
    """--lineage-url posts every event to a real receiver on 127.0.0.1, valid against the spec."""
    with LineageReceiver() as receiver:
        result = invoke_run(tmp_path / "d", sample, "--lineage-url", receiver.url)
    assert result.exit_code == 0, result.stderr
    assert _by_job(receiver.events) == _expected_sequence("run", STAGES)
    assert set(receiver.paths) == {"/api/v1/lineage"}
    for event in receiver.events:
        validate_event(event)


def test_openlineage_url_environment_is_honoured(tmp_path: Path, sample: SampleResult) -> None:
    """With OPENLINEAGE_URL set and no option, events go to that receiver."""
    with LineageReceiver() as receiver:
        result = invoke_run(tmp_path / "d", sample, env={"OPENLINEAGE_URL": receiver.url})
    assert result.exit_code == 0, result.stderr
    assert len(receiver.events) == 10


def test_load_is_its_own_parent_run(tmp_path: Path, sample: SampleResult) -> None:
    """`load --lineage-file` sends a parent `evergreen_etl.load` around its one stage."""
    assert invoke_run(tmp_path / "d", sample).exit_code == 0
    lineage = tmp_path / "load.jsonl"
    result = invoke_load(tmp_path / "d", "--lineage-file", str(lineage))
    assert result.exit_code == 0, result.stderr
    events = _read(lineage)
    assert _by_job(events) == _expected_sequence("load", ("load",))
    for event in events:
        validate_event(event)


def test_receiver_down_does_not_fail_the_run(tmp_path: Path, sample: SampleResult) -> None:
    """A lineage receiver that refuses connections is a warning; the run succeeds."""
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke_run(tmp_path / "d", sample, "--lineage-url", f"http://127.0.0.1:{port}")
    assert result.exit_code == 0, result.stderr
    assert "lineage events not sent" in result.stderr
