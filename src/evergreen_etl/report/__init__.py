"""The ``report`` stage: distinct users by local authority, now or at any past time."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files

from sqlalchemy import DateTime, Engine, bindparam, text

from evergreen_etl.models import Report, ReportRow
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import require_current_schema

__all__ = ["read_sql", "report"]


def read_sql(name: str) -> str:
    """The text of a report query shipped with the package (``report/sql/<name>.sql``)."""
    return (files("evergreen_etl") / "report" / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def _statement(sql: str) -> str:
    # Comment lines may mention :parameters, which the driver would count as placeholders.
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def report(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    min_count: int | None = None,
    engine: Engine | None = None,
) -> Report:
    """Distinct users by local authority at ``as_of`` (default: now), unknown row included.

    With ``min_count``, counts below it are suppressed (``users`` is None); the total is
    the true number of distinct users.
    """
    moment = to_utc_naive(as_of) if as_of else utc_now()
    own_engine = engine is None
    engine = engine or make_engine(settings.effective_database_url)
    try:
        require_current_schema(engine)
        query = text(_statement(read_sql("users_by_local_authority"))).bindparams(
            bindparam("as_of", type_=DateTime())
        )
        with engine.connect() as conn:
            rows = conn.execute(query, {"as_of": moment}).all()
    finally:
        if own_engine:
            engine.dispose()
    total = sum(int(row.users) for row in rows)
    report_rows = [
        ReportRow(
            local_authority_code=row.local_authority_code,
            local_authority_name=row.local_authority_name,
            users=None if min_count is not None and row.users < min_count else int(row.users),
            suppressed=min_count is not None and row.users < min_count,
        )
        for row in rows
    ]
    return Report(as_of=moment, rows=report_rows, total=total, min_count=min_count)
