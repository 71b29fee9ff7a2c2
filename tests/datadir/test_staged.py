"""The staged-file contract: one definition for the file, the stg_user table and the model."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from evergreen_etl.anonymise import anonymise
from evergreen_etl.datadir.staged import (
    REJECT_COLUMNS,
    STAGED_COLUMNS,
    Reject,
    StagedUser,
    check_staged_columns,
    read_staged_summary,
)
from evergreen_etl.errors import SourceError
from evergreen_etl.load import load
from evergreen_etl.privacy.ckm import record_key
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.scd2 import stage_snapshot
from support.keys import TEST_KEY
from support.sources import user, write_users

RECORDS = [
    user("jane@example.com", "AB1 3QF", sex="Female", dateOfBirth="1984-03-02"),
    user("john@example.com", "CA3", sex="m", dateOfBirth="1970-01-01"),
    user("sam@example.com", None, sex="Other"),
    user("not-an-email", "AB1 3QF"),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fixed key and no reject-rate limit."""
    return Settings(data_dir=tmp_path / "data", pseudonym_key=TEST_KEY, max_reject_rate=1.0)


@pytest.fixture
def staged(settings: Settings, tmp_path: Path) -> Settings:
    """The four records anonymised into the data directory."""
    path = write_users(tmp_path / "users.json", RECORDS, style="ndjson")
    anonymise(settings, users_path=path, progress=False)
    return settings


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_staged_row_is_a_staged_user(staged: Settings) -> None:
    """The staged file's header is the model's fields and every row validates as the model."""
    path = staged.data.staged_users
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))

    rows = _rows(path)

    assert tuple(header) == STAGED_COLUMNS == tuple(StagedUser.model_fields)
    assert len(rows) == 3
    for row in rows:
        StagedUser.model_validate({k: v or None for k, v in row.items()})


def test_every_reject_row_is_a_reject(staged: Settings) -> None:
    """The rejects file's header is the Reject model's fields and its row validates."""
    rows = _rows(staged.data.rejects)

    assert tuple(rows[0]) == REJECT_COLUMNS == tuple(Reject.model_fields)
    assert [Reject.model_validate(row).reason for row in rows] == ["email_invalid"]


def test_the_staging_table_has_the_staged_columns(staged: Settings) -> None:
    """stg_user is created from the contract: its columns are the staged file's, in order."""
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        count = stage_snapshot(conn, staged.data.staged_users)
        columns = [column["name"] for column in inspect(conn).get_columns("stg_user")]

    assert count == 3
    assert tuple(columns) == STAGED_COLUMNS


def test_the_summary_is_read_from_the_staged_directory(staged: Settings) -> None:
    """The summary reader finds the counts anonymise wrote."""
    summary = read_staged_summary(staged.staged_dir)

    assert summary["users_staged"] == 3
    assert summary["rejected"] == 1


def test_a_missing_summary_names_the_fix(tmp_path: Path) -> None:
    """Without a summary the reader says to run anonymise first."""
    with pytest.raises(SourceError, match="run `evergreen-etl anonymise` first"):
        read_staged_summary(tmp_path)


def test_each_staged_user_carries_the_record_key_of_its_pseudonym(staged: Settings) -> None:
    """anonymise computes the cell key method's record key once, from the pseudonym."""
    rows = _rows(staged.data.staged_users)

    assert [int(row["record_key"]) for row in rows] == [record_key(r["pseudonym"]) for r in rows]


def test_a_staged_file_of_another_version_is_refused_by_name(staged: Settings) -> None:
    """A staged file without this version's columns is refused before anything is loaded,
    naming the columns and the fix, never quoting the file's own header."""
    path = staged.data.staged_users
    lines = path.read_text().splitlines()
    older = [",".join(STAGED_COLUMNS[:-1])] + [line.rsplit(",", 1)[0] for line in lines[1:]]
    path.write_text("\n".join(older) + "\n")

    with pytest.raises(SourceError, match="run `evergreen-etl anonymise` again") as caught:
        load(staged, progress=False)

    assert "record_key" in str(caught.value)
    assert not (staged.data_dir / "warehouse.db").exists()  # refused before the warehouse


def test_a_staged_file_that_is_not_ours_is_refused_without_quoting_it(tmp_path: Path) -> None:
    """Whatever the first line holds, the message does not repeat it."""
    path = tmp_path / "users.csv"
    path.write_text("jane@example.com,Jane,Doe\n")

    with pytest.raises(SourceError) as caught:
        check_staged_columns(path)

    assert "jane" not in str(caught.value)
