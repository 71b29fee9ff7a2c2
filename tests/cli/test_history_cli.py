"""The history commands on the command line: list, undo, --replace, --as-known-at, revisions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from evergreen_etl.anonymise import anonymise
from evergreen_etl.cli import app
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import user, write_lookup_zip, write_users

S1 = [user("alice@example.com", "AB1 1AA"), user("bob@example.com", "AB2 1AA")]
S2 = [user("alice@example.com", "AB2 1AB"), user("bob@example.com", "AB2 1AA")]
S3 = [user("alice@example.com", "AB2 1AB")]

Invoke = Callable[..., Result]


@pytest.fixture
def cli(runner: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run a command against the test warehouse and data dir (small snapshots: no volume
    guard)."""
    monkeypatch.setenv("EVERGREEN_MAX_LEFT_RATE", "1")

    def _invoke(*args: str) -> Result:
        where = ["--data-dir", str(settings.data_dir), "--database-url"]
        return runner.invoke(app, [*args, *where, settings.effective_database_url])

    return _invoke


@pytest.fixture
def load(cli: Invoke, tmp_path: Path) -> Callable[..., Result]:
    """Stage ``records`` (anonymise through the library) and run `load --as-of` on them."""
    counter = iter(range(1000))

    def _load(records: list[dict[str, object]], as_of: str, *extra: str) -> Result:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=None,
            pseudonym_key=TEST_KEY,
            max_reject_rate=1.0,
        )
        settings.raw_dir.mkdir(parents=True, exist_ok=True)
        write_lookup_zip(settings.raw_dir / "postcodes.zip")
        users = write_users(tmp_path / f"users-{next(counter)}.json", records)
        anonymise(settings, users_path=users, progress=False)
        return cli("load", "--as-of", as_of, "--quiet", *extra)

    return _load


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A SQLite warehouse under the test's data dir (the CLI contract is the same on both)."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'warehouse.db'}",
        pseudonym_key=TEST_KEY,
    )


def test_late_snapshot_loads_and_different_snapshot_at_a_loaded_time_exits_5(
    load: Callable[..., Result],
) -> None:
    """An older snapshot loads (exit 0); another at a loaded time exits 5 with a hint."""
    assert load(S1, "2024-01-01").exit_code == 0
    assert load(S3, "2024-03-01").exit_code == 0
    late = load(S2, "2024-02-01")
    assert late.exit_code == 0, late.stderr
    assert json.loads(late.stdout)["replayed"] > 0
    refused = load(S3, "2024-02-01")
    assert refused.exit_code == 5
    assert refused.stderr.startswith("error: a different snapshot as of 2024-02-01")
    assert "--replace" in refused.stderr
    replaced = load(S3, "2024-02-01", "--replace")
    assert replaced.exit_code == 0, replaced.stderr
    assert json.loads(replaced.stdout)["replaced_run_id"] == 3


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_history_list_in_every_format(fmt: str, cli: Invoke, load: Callable[..., Result]) -> None:
    """`history list` prints every load with its status, in each output format."""
    load(S1, "2024-01-01")
    load(S2, "2024-02-01")
    result = cli("history", "list", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    if fmt == "json":
        runs = json.loads(result.stdout)
        assert [(r["run_id"], r["status"]) for r in runs] == [(1, "succeeded"), (2, "succeeded")]
    else:
        assert "succeeded" in result.stdout
        assert "2024-02-01" in result.stdout


def test_history_undo_then_again_then_unknown(cli: Invoke, load: Callable[..., Result]) -> None:
    """Undo exits 0; again it is a no-op (exit 0); an unknown run exits 2."""
    load(S1, "2024-01-01")
    load(S2, "2024-02-01")
    first = cli("history", "undo", "--run", "2")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["undo_run_id"] == 3
    again = cli("history", "undo", "--run", "2")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["undo_run_id"] is None
    unknown = cli("history", "undo", "--run", "42")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: history undo: no such run")


def test_report_as_known_at_reproduces_the_report_printed_then(
    cli: Invoke, load: Callable[..., Result]
) -> None:
    """`report --as-known-at 2` prints, byte for byte, what `report` printed after run 2."""
    load(S1, "2024-01-01")
    load(S3, "2024-03-01")
    printed = cli("report", "--as-of", "2024-02-15", "--format", "json").stdout
    load(S2, "2024-02-01")
    assert cli("report", "--as-of", "2024-02-15", "--format", "json").stdout != printed
    again = cli("report", "--as-of", "2024-02-15", "--as-known-at", "2", "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert again.stdout == printed
    assert cli("report", "--as-known-at", "9").exit_code == 2


def test_report_revisions(cli: Invoke, load: Callable[..., Result]) -> None:
    """`report revisions --as-of T --since RUN` gives then, now and the difference."""
    load(S1, "2024-01-01")
    load(S3, "2024-03-01")
    load(S2, "2024-02-01")
    result = cli("report", "revisions", "--as-of", "2024-02-15", "--since", "2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(r["difference"] == r["known_now"] - r["known_then"] for r in rows)
    assert any(r["difference"] for r in rows)
    assert cli("report", "revisions", "--as-of", "2024-02-15").exit_code == 2
