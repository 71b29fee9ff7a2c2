"""``evergreen-etl status``: where the warehouse is and what it holds, at a glance.

Like ``dbt debug`` or ``dlt pipeline info``: the warehouse URL (password hidden), its schema
revision and whether it is the newest, the snapshots loaded, the newest as-of, the lookup
version, the key id, and the last run with its outcome. It never creates the warehouse or a
key: a missing one is reported as missing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from evergreen_etl.config import redact_url
from evergreen_etl.settings import Settings
from evergreen_etl.times import UtcDateTime


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LastRun(_Frozen):
    """The newest row of the audit table."""

    run_id: int
    status: str
    as_of: UtcDateTime
    started_at: UtcDateTime
    finished_at: UtcDateTime | None


class WarehouseStatus(_Frozen):
    """What ``status`` reports."""

    package_version: str
    warehouse: str = Field(description="The warehouse URL with its password hidden")
    backend: str
    exists: bool = Field(description="False when the SQLite file or the schema is not there")
    schema_revision: str | None
    schema_head: str | None
    schema_current: bool
    snapshots_loaded: int
    newest_as_of: UtcDateTime | None
    lookup_version: str | None = Field(
        None,
        description="The postcode lookup version in use and its publication month, "
        "e.g. '2 (2025-11)' (`lookup list`); None before the first lookup",
    )
    configured_key_id: str | None = Field(description="None when no key is configured yet")
    warehouse_key_id: str | None
    last_run: LastRun | None


def warehouse_status(settings: Settings) -> WarehouseStatus:
    """Read the warehouse's state for ``settings``; create nothing."""
    from evergreen_etl import __version__
    from evergreen_etl.warehouse.engine import open_warehouse
    from evergreen_etl.warehouse.migrate import current_revision, head_revision

    url = make_url(settings.effective_database_url)
    head = head_revision()
    common: dict[str, object] = {
        "package_version": __version__,
        "warehouse": redact_url(settings.effective_database_url),
        "backend": url.get_backend_name(),
        "schema_head": head,
        "configured_key_id": configured_key_id(settings),
    }
    sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if sqlite_file and not _sqlite_exists(url.database):
        return _empty(common)
    with open_warehouse(settings, schema="any") as engine:
        if "etl_run" not in inspect(engine).get_table_names():
            return _empty(common)
        revision = current_revision(engine)
        with engine.connect() as conn:
            return WarehouseStatus.model_validate(
                {
                    **common,
                    "exists": True,
                    "schema_revision": revision,
                    "schema_current": revision is not None and revision == head,
                    **_history(conn),
                }
            )


def _sqlite_exists(database: str | None) -> bool:
    return database is not None and Path(database).exists()


def _empty(common: dict[str, object]) -> WarehouseStatus:
    return WarehouseStatus.model_validate(
        {
            **common,
            "exists": False,
            "schema_revision": None,
            "schema_current": False,
            "snapshots_loaded": 0,
            "newest_as_of": None,
            "warehouse_key_id": None,
            "last_run": None,
        }
    )


def _history(conn: Connection) -> dict[str, object]:
    from evergreen_etl.privacy.rekey import warehouse_key_id

    loaded = conn.execute(
        text("SELECT COUNT(*) AS n, MAX(as_of) AS newest FROM etl_run WHERE status = 'succeeded'")
    ).one()
    last = conn.execute(
        text(
            "SELECT run_id, status, as_of, started_at, finished_at FROM etl_run "
            "ORDER BY run_id DESC LIMIT 1"
        )
    ).first()
    return {
        "snapshots_loaded": int(loaded.n),
        "newest_as_of": _time(loaded.newest),
        "warehouse_key_id": warehouse_key_id(conn),
        "last_run": None if last is None else LastRun.model_validate(dict(last._mapping)),
        "lookup_version": _lookup_version(conn),
    }


def _lookup_version(conn: Connection) -> str | None:
    from evergreen_etl.warehouse.lookup_versions import newest_version

    if not inspect(conn).has_table("lookup_version"):  # a schema from before versions
        return None
    version = newest_version(conn)
    if version is None:
        return None
    return f"{version.version_id} ({version.published or 'month unknown'})"


def _time(value: object) -> object:
    # SQLite returns MAX() of a DATETIME column as text.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def configured_key_id(settings: Settings) -> str | None:
    """The configured key's id, read without creating a key file (None when there is none)."""
    from evergreen_etl.privacy.pseudonym import PseudonymKey, read_key_file

    if settings.pseudonym_key is not None:
        return PseudonymKey.from_text(settings.pseudonym_key.get_secret_value()).key_id
    path = settings.effective_key_file
    if not path.exists():
        return None
    return PseudonymKey.from_text(read_key_file(path)).key_id


def render_status(status: WarehouseStatus) -> str:
    """The status for people: one ``name: value`` line per fact."""
    last = status.last_run
    schema = status.schema_revision or "none"
    if status.exists:
        schema += (
            " (current)" if status.schema_current else f" (out of date; head {status.schema_head})"
        )
    lines = [
        ("evergreen-etl", status.package_version),
        ("warehouse", status.warehouse),
        ("backend", status.backend),
        ("created", "yes" if status.exists else "no (the first load creates it)"),
        ("schema", schema),
        ("snapshots loaded", str(status.snapshots_loaded)),
        ("newest as-of", _when(status.newest_as_of)),
        ("lookup version", status.lookup_version or "unknown"),
        ("key id (configured)", status.configured_key_id or "none yet (created on first use)"),
        ("key id (warehouse)", status.warehouse_key_id or "none yet"),
        (
            "last run",
            "none"
            if last is None
            else f"#{last.run_id} {last.status}, as of {_when(last.as_of)}, "
            f"started {_when(last.started_at)}",
        ),
    ]
    width = max(len(name) for name, _ in lines)
    return "".join(f"{name + ':':<{width + 1}} {value}\n" for name, value in lines)


def _when(moment: object) -> str:
    if isinstance(moment, datetime):
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return "none"
