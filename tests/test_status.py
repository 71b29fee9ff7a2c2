"""`evergreen-etl status`: the warehouse at a glance on SQLite and PostgreSQL, creating nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.config import redact_url
from evergreen_etl.settings import Settings
from evergreen_etl.status import warehouse_status
from support.keys import TEST_KEY
from support.sources import LoadSnapshot, user


def test_status_after_two_loads(settings: Settings, load_snapshot: LoadSnapshot) -> None:
    """After two loads: schema current, two snapshots, newest as-of, both key ids, last run."""
    load_snapshot([user("a@example.com", "AB1 2CD")], "2024-01-01")
    load_snapshot([user("a@example.com", "AB1 2CD")], "2024-02-01")
    status = warehouse_status(settings)
    assert status.exists
    assert status.schema_current
    assert status.schema_revision == status.schema_head
    assert status.snapshots_loaded == 2
    assert status.newest_as_of == datetime(2024, 2, 1)
    assert status.configured_key_id == status.warehouse_key_id is not None
    assert status.last_run is not None
    assert (status.last_run.status, status.last_run.run_id) == ("succeeded", 2)
    assert status.lookup_version == "1 (1980-01)"  # nspl_row's newest introduction date


def test_status_command_prints_json_with_the_password_hidden(
    settings: Settings, load_snapshot: LoadSnapshot
) -> None:
    """`status --format json` shows the warehouse URL without its password, times with Z."""
    load_snapshot([user("a@example.com", "AB1 2CD")], "2024-01-01")
    url = settings.effective_database_url
    if url.startswith("postgresql"):  # the test server trusts local connections: any password
        url = make_url(url).set(password="hunter2-secret").render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app,
        [
            "status",
            "--data-dir",
            str(settings.data_dir),
            "--database-url",
            url,
            "--format",
            "json",
        ],
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["warehouse"] == redact_url(url)
    assert document["newest_as_of"] == "2024-01-01T00:00:00Z"
    assert document["snapshots_loaded"] == 1
    assert document["last_run"]["status"] == "succeeded"
    assert "hunter2-secret" not in result.stdout


def test_status_of_a_missing_warehouse_creates_nothing(tmp_path: Path) -> None:
    """Before the first load: status says so and creates neither the database nor a key."""
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["status", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert "no (the first load creates it)" in result.stdout
    assert "snapshots loaded:    0" in result.stdout
    assert not data.exists()


def test_status_reports_an_out_of_date_schema(sqlite_settings: Settings) -> None:
    """A warehouse behind the newest migration is reported as out of date."""
    from evergreen_etl.warehouse.migrate import downgrade, upgrade

    url = sqlite_settings.effective_database_url
    sqlite_settings.data_dir.mkdir(parents=True)
    upgrade(url)
    downgrade(url, "-1")
    status = warehouse_status(sqlite_settings)
    assert status.exists
    assert not status.schema_current
    assert status.schema_revision != status.schema_head


def test_redact_url_hides_passwords_and_secret_parameters() -> None:
    """The password and query values named like secrets are hidden; the rest is kept as written."""
    assert redact_url("sqlite:////tmp/w.db") == "sqlite:////tmp/w.db"
    assert (
        redact_url("postgresql+psycopg://bob:p%40ss@db:5432/wh?sslmode=require&password=x")
        == "postgresql+psycopg://bob:***@db:5432/wh?sslmode=require&password=***"
    )
