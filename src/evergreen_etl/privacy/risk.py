"""Re-identification risk: k-anonymity of the warehouse over sets of quasi-identifiers.

A pseudonymised user can still be singled out by what is kept beside the pseudonym; this
measures how many users share each combination of quasi-identifiers (an equivalence class of
size k). Small classes are where re-identification by linkage is easiest.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, DateTime, bindparam, text

from evergreen_etl.errors import DataQualityError
from evergreen_etl.safe_text import csv_writer
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import require_current_schema

# Quasi-identifier sets and the SQL that measures each (privacy/sql/<name>.sql).
QUASI_IDENTIFIER_SETS: dict[str, str] = {
    "local authority x age band x sex": "risk_authority_age_sex",
    "postcode district x birth year x sex": "risk_district_birth_year_sex",
}
DEFAULT_K_THRESHOLD = 5
log = logging.getLogger("evergreen_etl.privacy")


class RiskRow(BaseModel):
    """k-anonymity figures for one set of quasi-identifiers."""

    model_config = ConfigDict(frozen=True)

    quasi_identifiers: str
    users: int
    classes: int
    smallest_k: int | None
    users_below_threshold: int
    unique_users: int
    unique_share: float


class RiskReport(BaseModel):
    """Re-identification risk of the users whose address was valid at ``as_of``."""

    model_config = ConfigDict(frozen=True)

    as_of: datetime
    threshold: int
    rows: list[RiskRow]

    @property
    def smallest_k(self) -> int | None:
        """The smallest class over every quasi-identifier set (None with no users)."""
        ks = [row.smallest_k for row in self.rows if row.smallest_k is not None]
        return min(ks) if ks else None


def risk_report(
    settings: Settings, *, as_of: datetime | None = None, threshold: int = DEFAULT_K_THRESHOLD
) -> RiskReport:
    """Measure the warehouse configured in ``settings`` (see ``measure_risk``)."""
    engine = make_engine(settings.effective_database_url)
    try:
        require_current_schema(engine)
        with engine.connect() as conn:
            return measure_risk(conn, as_of=as_of, threshold=threshold)
    finally:
        engine.dispose()


def render_risk(report: RiskReport, fmt: str) -> str:
    """The risk report as a table, CSV or JSON (a list of objects, one per quasi-identifier set)."""
    if fmt == "json":
        rows = [row.model_dump() for row in report.rows]
        return json.dumps(rows, indent=2) + "\n"
    columns = list(RiskRow.model_fields)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(columns)
        writer.writerows([getattr(row, c) for c in columns] for row in report.rows)
        return out.getvalue()
    lines = [
        f"Re-identification risk at {report.as_of:%Y-%m-%d %H:%M:%S} UTC "
        f"(classes below k={report.threshold} are at risk)"
    ]
    for row in report.rows:
        lines.append(
            f"  {row.quasi_identifiers}: {row.users} users in {row.classes} classes, "
            f"smallest k={row.smallest_k}, {row.users_below_threshold} users below the "
            f"threshold, {row.unique_users} unique ({row.unique_share:.1%})"
        )
    return "\n".join(lines) + "\n"


def _sql(name: str) -> str:
    raw = (files("evergreen_etl") / "privacy" / "sql" / f"{name}.sql").read_text(encoding="utf-8")
    # Comment lines may mention :names, which the driver would count as placeholders.
    return "\n".join(line for line in raw.splitlines() if not line.lstrip().startswith("--"))


def measure_risk(
    conn: Connection, *, as_of: datetime | None = None, threshold: int = DEFAULT_K_THRESHOLD
) -> RiskReport:
    """k-anonymity over each quasi-identifier set, at ``as_of`` (default now)."""
    moment = to_utc_naive(as_of) if as_of else utc_now()
    params = {"as_of": moment, "as_of_year": moment.year, "threshold": threshold}
    rows = []
    for label, name in QUASI_IDENTIFIER_SETS.items():
        query = text(_sql(name)).bindparams(bindparam("as_of", type_=DateTime()))
        result = conn.execute(query, params).one()
        users = int(result.users)
        rows.append(
            RiskRow(
                quasi_identifiers=label,
                users=users,
                classes=int(result.classes),
                smallest_k=None if result.smallest_k is None else int(result.smallest_k),
                users_below_threshold=int(result.users_below_threshold),
                unique_users=int(result.unique_users),
                unique_share=round(int(result.unique_users) / users, 4) if users else 0.0,
            )
        )
    return RiskReport(as_of=moment, threshold=threshold, rows=rows)


@dataclass(frozen=True)
class KAnonymityGuard:
    """Check k-anonymity after a merge: warn, or fail the load (it then rolls back)."""

    min_k: int
    policy: Literal["warn", "fail"] = "warn"

    def check(self, conn: Connection, as_of: datetime) -> RiskReport:
        """Measure inside the load's transaction; raise DataQualityError when told to fail."""
        risk = measure_risk(conn, as_of=as_of, threshold=self.min_k)
        for row in risk.rows:
            if row.smallest_k is None or row.smallest_k >= self.min_k:
                continue
            message = (
                f"k-anonymity over {row.quasi_identifiers} is {row.smallest_k}, below the "
                f"configured {self.min_k} ({row.users_below_threshold} users in smaller classes)"
            )
            if self.policy == "fail":
                raise DataQualityError(f"{message}; nothing was loaded")
            log.warning(message)
        return risk
