"""Re-identification risk: k-anonymity of the warehouse over sets of quasi-identifiers.

A pseudonymised user can still be singled out by what is kept beside the pseudonym; this
measures how many users share each combination of quasi-identifiers (an equivalence class of
size k). Small classes are where re-identification by linkage is easiest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, DateTime, bindparam, text

from evergreen_etl.errors import DataQualityError
from evergreen_etl.models import Analysis, AnalysisRow
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import open_warehouse
from evergreen_etl.warehouse.sqlfiles import sql_statement

# Quasi-identifier sets and the SQL that measures each (privacy/sql/<name>.sql).
QUASI_IDENTIFIER_SETS: dict[str, str] = {
    "local authority x age band x sex": "risk_authority_age_sex",
    "postcode district x birth year x sex": "risk_district_birth_year_sex",
}
DEFAULT_K_THRESHOLD = 5
DEFAULT_MAX_UNIQUE_SHARE = 0.05
# Precisions the warehouse can give a place at, finest first (privacy/sql/risk_precision.sql),
# with the label of their quasi-identifier set.
PRECISIONS = {
    "postcode": "postcode as kept x birth year x sex",
    "sector": "postcode sector x birth year x sex",
    "district": "postcode district x birth year x sex (from the kept district)",
    "authority": "local authority x birth year x sex",
}
SEQUENCE = "sequence of postcodes (history up to the as-of time)"
MAX_SEQUENCE_POSITIONS = 200
log = logging.getLogger("evergreen_etl.privacy")


class RiskRow(AnalysisRow):
    """k-anonymity figures for one set of quasi-identifiers."""

    quasi_identifiers: str
    users: int
    classes: int
    smallest_k: int | None
    users_below_threshold: int
    unique_users: int
    unique_share: float


_RISK_COUNTS = ("users", "classes", "smallest_k", "users_below_threshold", "unique_users")


class RiskReport(Analysis[RiskRow]):
    """Re-identification risk of the users whose address was valid at ``as_of``: a report
    like every other, drawn by the reports' renderer."""

    threshold: int
    max_unique_share: float | None = None
    recommended_precision: str | None = None

    @property
    def smallest_k(self) -> int | None:
        """The smallest class over every quasi-identifier set (None with no users)."""
        ks = [row.smallest_k for row in self.rows if row.smallest_k is not None]
        return min(ks) if ks else None


def risk_report(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    threshold: int = DEFAULT_K_THRESHOLD,
    max_unique_share: float = DEFAULT_MAX_UNIQUE_SHARE,
) -> RiskReport:
    """Measure the warehouse configured in ``settings``: the sets of ``measure_risk``, then
    what the warehouse holds at its own precision (place x birth year x sex at postcode,
    sector, district and authority precision, and each user's sequence of postcodes), with
    the finest precision whose share of unique users is below ``max_unique_share``."""
    with open_warehouse(settings) as engine, engine.connect() as conn:
        base = measure_risk(conn, as_of=as_of, threshold=threshold)
        by_precision = _measure(conn, "risk_precision", base.as_of, threshold)
        rows = [
            _row(PRECISIONS[str(r["precision"])], r)
            for r in sorted(by_precision, key=lambda r: int(r["rank"]))
        ]
        rows.append(_row(SEQUENCE, _sequence(conn, base.as_of, threshold)))
    recommended = next(
        (
            precision
            for precision, row in zip(PRECISIONS, rows, strict=False)
            if row.users and row.unique_share < max_unique_share
        ),
        None,
    )
    if recommended is None:
        note = f"No precision brings the share of unique users below {max_unique_share:.1%}."
    else:
        note = (
            f"The share of unique users falls below {max_unique_share:.1%} at {recommended} "
            f"precision: --location-precision {recommended}."
        )
    return base.model_copy(
        update={
            "rows": base.rows + rows,
            "max_unique_share": max_unique_share,
            "recommended_precision": recommended,
            "note": note,
        }
    )


def _measure(
    conn: Connection, name: str, moment: datetime, threshold: int, sql: str | None = None
) -> list[dict[str, Any]]:
    query = text(sql or sql_statement("privacy", name)).bindparams(
        bindparam("as_of", type_=DateTime())
    )
    params = {"as_of": moment, "as_of_year": moment.year, "threshold": threshold}
    return [dict(r._mapping) for r in conn.execute(query, params)]


def _sequence(conn: Connection, moment: datetime, threshold: int) -> dict[str, Any]:
    longest = int(_measure(conn, "risk_longest_history", moment, threshold)[0]["longest"])
    positions = range(1, min(max(longest, 1), MAX_SEQUENCE_POSITIONS) + 1)
    sql = (
        sql_statement("privacy", "risk_postcode_sequence")
        .replace(
            "/* positions */",
            "".join(
                f", MAX(CASE WHEN position = {i} THEN postcode END) AS p{i}" for i in positions
            ),
        )
        .replace("/* position_columns */", "".join(f", p{i}" for i in positions))
    )
    return _measure(conn, "risk_postcode_sequence", moment, threshold, sql)[0]


def _row(label: str, result: Mapping[str, Any]) -> RiskRow:
    users = int(result["users"] or 0)
    unique = int(result["unique_users"] or 0)
    return RiskRow(
        quasi_identifiers=label,
        users=users,
        classes=int(result["classes"] or 0),
        smallest_k=None if result["smallest_k"] is None else int(result["smallest_k"]),
        users_below_threshold=int(result["users_below_threshold"] or 0),
        unique_users=unique,
        unique_share=round(unique / users, 4) if users else 0.0,
    )


def measure_risk(
    conn: Connection, *, as_of: datetime | None = None, threshold: int = DEFAULT_K_THRESHOLD
) -> RiskReport:
    """k-anonymity over each quasi-identifier set, at ``as_of`` (default now)."""
    moment = to_utc_naive(as_of) if as_of else utc_now()
    params = {"as_of": moment, "as_of_year": moment.year, "threshold": threshold}
    rows = []
    for label, name in QUASI_IDENTIFIER_SETS.items():
        query = text(sql_statement("privacy", name)).bindparams(
            bindparam("as_of", type_=DateTime())
        )
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
    return RiskReport(
        name="risk",
        title=f"Re-identification risk at {moment:%Y-%m-%d %H:%M:%S} UTC "
        f"(classes below k={threshold} are at risk)",
        as_of=moment,
        columns=tuple(name for name in RiskRow.model_fields if name != "suppressed"),
        counts=_RISK_COUNTS,
        rows=rows,
        totals={},
        threshold=threshold,
    )


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
