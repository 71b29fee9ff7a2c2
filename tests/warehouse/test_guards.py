"""A cut-short snapshot or a snapshot time in the future is refused, and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.errors import DataQualityError
from evergreen_etl.load import load
from evergreen_etl.settings import Settings
from evergreen_etl.times import utc_now
from support.sources import user
from warehouse.faults import invoke_load, warehouse_rows

TEN = [user(f"user{i}@example.com", "AB1 1AA") for i in range(10)]


@pytest.fixture
def ten_loaded(settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]) -> None:
    """Ten users loaded as of 2024-01-01; a snapshot of the first five of them staged."""
    stage_snapshot(TEN)
    load(settings, as_of=datetime(2024, 1, 1), engine=engine, progress=False)
    stage_snapshot(TEN[:5])


def test_half_size_snapshot_is_refused_and_nothing_changes(
    ten_loaded: None, settings: Settings, engine: Engine
) -> None:
    """A snapshot closing half the current users is refused (exit 4), one line, no change."""
    before = warehouse_rows(engine)
    result = invoke_load(settings, "--as-of", "2024-02-01")
    assert result.exit_code == DataQualityError.exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "50.0% of the current users (5 of 10)" in lines[0]
    assert "--max-left-rate of 20.0%" in lines[0]
    assert warehouse_rows(engine) == before


def test_max_left_rate_1_allows_the_half_size_snapshot(
    ten_loaded: None, settings: Settings, engine: Engine
) -> None:
    """`--max-left-rate 1` loads a snapshot whatever share of the users it closes."""
    result = invoke_load(settings, "--as-of", "2024-02-01", "--max-left-rate", "1")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["left"] == 5


def test_max_left_rate_comes_from_the_environment(
    ten_loaded: None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EVERGREEN_MAX_LEFT_RATE sets the threshold when the option is not given."""
    monkeypatch.setenv("EVERGREEN_MAX_LEFT_RATE", "0.6")
    result = invoke_load(settings, "--as-of", "2024-02-01")
    assert result.exit_code == 0, result.stderr


def test_guard_counts_only_leavers_not_movers(
    settings: Settings, engine: Engine, stage_snapshot: Callable[..., Path]
) -> None:
    """Users who moved are still in the snapshot: a snapshot where all moved is loaded."""
    stage_snapshot(TEN)
    load(settings, as_of=datetime(2024, 1, 1), engine=engine, progress=False)
    stage_snapshot([user(f"user{i}@example.com", "CV4 9RE") for i in range(10)])
    result = load(
        settings, as_of=datetime(2024, 2, 1), engine=engine, progress=False, max_left_rate=0.2
    )
    assert (result.moved, result.left) == (10, 0)


def test_as_of_more_than_a_day_ahead_is_refused(
    ten_loaded: None, settings: Settings, engine: Engine
) -> None:
    """A snapshot time more than a day in the future is refused (exit 2) naming the value."""
    before = warehouse_rows(engine)
    result = invoke_load(settings, "--as-of", "2999-01-01", "--max-left-rate", "1")
    assert result.exit_code == 2, result.stderr
    assert "--as-of 2999-01-01 00:00:00 UTC is more than a day in the future" in result.stderr
    assert warehouse_rows(engine) == before


def test_allow_future_loads_a_future_snapshot(ten_loaded: None, settings: Settings) -> None:
    """`--allow-future` accepts a snapshot time ahead of the clock."""
    result = invoke_load(
        settings, "--as-of", "2999-01-01", "--max-left-rate", "1", "--allow-future"
    )
    assert result.exit_code == 0, result.stderr


def test_as_of_within_a_day_ahead_is_accepted(ten_loaded: None, settings: Settings) -> None:
    """Clock skew is tolerated: a snapshot time an hour ahead loads."""
    soon = (utc_now() + timedelta(hours=1)).isoformat()
    result = invoke_load(settings, "--as-of", soon, "--max-left-rate", "1")
    assert result.exit_code == 0, result.stderr


def test_future_last_modified_is_refused(
    ten_loaded: None, settings: Settings, engine: Engine
) -> None:
    """Without --as-of, a source Last-Modified more than a day ahead is refused too."""
    summary_path = settings.staged_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["source_last_modified"] = "2999-06-01T12:00:00"
    summary_path.write_text(json.dumps(summary))
    before = warehouse_rows(engine)
    result = invoke_load(settings, "--max-left-rate", "1")
    assert result.exit_code == 2, result.stderr
    assert "the users source's Last-Modified 2999-06-01 12:00:00 UTC" in result.stderr
    assert warehouse_rows(engine) == before


def test_run_refuses_a_future_as_of_before_fetching(tmp_path: Path) -> None:
    """`run --as-of` in the future fails at once, before any source is read."""
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--data-dir",
            str(tmp_path / "data"),
            "--users-url",
            str(tmp_path / "missing.json"),
            "--as-of",
            "2999-01-01",
            "-q",
        ],
    )
    assert result.exit_code == 2, result.stderr
    assert "2999-01-01 00:00:00 UTC is more than a day in the future" in result.stderr
