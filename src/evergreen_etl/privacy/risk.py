"""Re-identification risk: k-anonymity of the warehouse over sets of quasi-identifiers.

A pseudonymised user can still be singled out by what is kept beside the pseudonym; this
measures how many users share each combination of quasi-identifiers (an equivalence class of
size k). Small classes are where re-identification by linkage is easiest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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

    @property
    def smallest_k(self) -> int | None:
        """The smallest class over every quasi-identifier set (None with no users)."""
        ks = [row.smallest_k for row in self.rows if row.smallest_k is not None]
        return min(ks) if ks else None


def risk_report(
    settings: Settings, *, as_of: datetime | None = None, threshold: int = DEFAULT_K_THRESHOLD
) -> RiskReport:
    """Measure the warehouse configured in ``settings`` (see ``measure_risk``)."""
    with open_warehouse(settings) as engine, engine.connect() as conn:
        return measure_risk(conn, as_of=as_of, threshold=threshold)


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
