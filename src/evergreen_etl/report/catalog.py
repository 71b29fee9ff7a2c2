"""The analyses: what each report is, which SQL answers it, and how its rows are published."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Generic, cast

from sqlalchemy import JSON, BindParameter, Boolean, DateTime, Engine, Integer, bindparam, text
from sqlalchemy.types import TypeEngine

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.report.boundaries import basis_title
from evergreen_etl.report.disclosure import (
    Difference,
    DisclosureRule,
    describe,
    min_count_of,
    publish_row,
    publish_totals,
)
from evergreen_etl.report.results import (
    Analysis,
    AnalysisRow,
    AuthorityMoves,
    Boundaries,
    BoundaryBasis,
    CountryUsers,
    LocalAuthorityUsers,
    PostcodeStatusUsers,
    RegionUsers,
    RowT,
    RunQuality,
    SexAgeBandUsers,
    SnapshotChanges,
)
from evergreen_etl.warehouse import sqlfiles

HEADLINE = "local-authority"
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
_TIME_PARAMETERS = ("as_of", "from_time", "to_time")

LOCATION_STATUS = {
    "full_matched": "full postcode found in the lookup",
    "partial_resolved": "outward code alone, within one authority",
    "partial_unresolved": "outward code alone, spanning several authorities",
    "unmatched": "full postcode not in the lookup",
    "no_authority": "postcode whose authority is a pseudo-code",
    "invalid": "not a UK postcode",
    "missing": "no postcode given",
}


def read_sql(name: str) -> str:
    """The text of a report query shipped with the package (``report/sql/<name>.sql``), with
    its shared fragments filled in."""
    return sqlfiles.read_sql("report", name)


@dataclass(frozen=True)
class ReportSpec(Generic[RowT]):
    """One analysis: its name and one-line summary, SQL file, row model and counts."""

    name: str
    summary: str
    title: str
    sql: str
    row: type[RowT]
    counts: tuple[str, ...]
    totals: tuple[str, ...] = ()
    differences: tuple[Difference, ...] = ()
    by_authority: bool = False  # --boundaries applies
    period: bool = False  # --from and --to instead of --as-of
    by_run: bool = False  # one row per load up to --as-of
    chart: tuple[str, str, str] | None = None  # label column, value column, what rows are
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    result_types: Mapping[str, TypeEngine[Any]] | None = None
    # Rows are put in order after disclosure control, by the published value of the first
    # column (largest first, suppressed last), then the others: ordering by a true count
    # would tell which suppressed cells are larger.
    order_by: tuple[str, ...] = ()
    # Whether ``sql`` counts users per authority code through {{ counts }}, which a report
    # fills from the periodic-snapshot facts when they hold the knowledge asked for
    # (warehouse/snapshot_facts.py; tests hold the two equal at every time).
    facts: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The row's columns, in order (without ``suppressed``)."""
        return tuple(name for name in self.row.model_fields if name != "suppressed")

    @property
    def published_counts(self) -> tuple[str, ...]:
        """Every column under disclosure control: the counts and their differences."""
        return self.counts + tuple(d.name for d in self.differences)


def _postcode_status(raw: dict[str, Any]) -> dict[str, Any]:
    status = str(raw["location_status"])
    description = LOCATION_STATUS.get(status, status)
    if raw["terminated"]:
        description += ", terminated"
    return {**raw, "terminated": bool(raw["terminated"]), "description": description}


def _run_quality(raw: dict[str, Any]) -> dict[str, Any]:
    row = dict(raw)
    details = row.pop("details") or {}
    location = details.get("location") or {}
    anonymised = details.get("anonymise") or {}
    row["rejected"] = row.pop("rejected_records")
    row["records_read"] = anonymised.get("records_read")
    for status in LOCATION_STATUS:
        # A status the load did not meet is 0; a run without location counts is unknown.
        row[status] = location.get(status, 0) if location else None
    return row


_LOCATION_COUNTS = tuple(LOCATION_STATUS)

REPORTS: dict[str, ReportSpec[Any]] = {
    spec.name: spec
    for spec in (
        ReportSpec(
            name=HEADLINE,
            summary="distinct users by local authority (the default report)",
            title="Distinct users by local authority",
            sql="users_by_local_authority",
            facts=True,
            row=LocalAuthorityUsers,
            counts=("users",),
            totals=("users",),
            by_authority=True,
            chart=("local_authority_name", "users", "local authorities"),
            order_by=("users", "local_authority_code"),
        ),
        ReportSpec(
            name="region",
            summary="distinct users by region (Wales, Scotland, Northern Ireland as their own)",
            title="Distinct users by region",
            sql="users_by_region",
            facts=True,
            row=RegionUsers,
            counts=("users",),
            totals=("users",),
            by_authority=True,
            chart=("region_name", "users", "regions"),
            order_by=("users", "region_code"),
        ),
        ReportSpec(
            name="country",
            summary="distinct users by country of the UK",
            title="Distinct users by country",
            sql="users_by_country",
            facts=True,
            row=CountryUsers,
            counts=("users",),
            totals=("users",),
            by_authority=True,
            chart=("country_name", "users", "countries"),
            order_by=("users", "country_code"),
        ),
        ReportSpec(
            name="sex-age",
            summary="distinct users by sex and age band within each local authority",
            title="Distinct users by sex and age band within local authority",
            sql="users_by_sex_age_band",
            row=SexAgeBandUsers,
            counts=("users",),
            totals=("users",),
            by_authority=True,
        ),
        ReportSpec(
            name="movers",
            summary="users who moved between local authorities from --from to --to: "
            "inflow, outflow, net",
            title="Moves between local authorities",
            sql="movers",
            row=AuthorityMoves,
            counts=("inflow", "outflow"),
            totals=("inflow", "outflow"),
            differences=(Difference("net", "inflow", "outflow"),),
            by_authority=True,
            period=True,
            chart=("local_authority_name", "inflow", "local authorities"),
            order_by=("net", "local_authority_code"),
        ),
        ReportSpec(
            name="joiners-leavers",
            summary="new, returned, moved and departed users per loaded snapshot",
            title="Joiners and leavers per snapshot",
            sql="snapshot_changes",
            row=SnapshotChanges,
            counts=("new_users", "returned_users", "moved_users", "left_users", "users"),
            totals=("new_users", "returned_users", "moved_users", "left_users"),
            by_run=True,
            result_types={"as_of": DateTime()},
        ),
        ReportSpec(
            name="postcode-status",
            summary="users by how their postcode was located: unmatched, terminated, partial, …",
            title="Distinct users by postcode status",
            sql="postcode_status",
            row=PostcodeStatusUsers,
            counts=("users",),
            totals=("users",),
            chart=("description", "users", "postcode statuses"),
            order_by=("users", "location_status", "terminated"),
            prepare=_postcode_status,
            result_types={"terminated": Boolean()},
        ),
        ReportSpec(
            name="data-quality",
            summary="per load: records read, rejected, duplicates and how users were located",
            title="Data quality per load",
            sql="run_quality",
            row=RunQuality,
            counts=(
                "records_read",
                "rejected",
                "duplicates",
                "users_in_snapshot",
                *_LOCATION_COUNTS,
            ),
            by_run=True,
            prepare=_run_quality,
            result_types={"as_of": DateTime(), "details": JSON()},
        ),
    )
}


def get_spec(name: str) -> ReportSpec[Any]:
    """The analysis called ``name``; a clear error naming the choices otherwise."""
    try:
        return REPORTS[name]
    except KeyError:
        raise ConfigurationError(
            f"no report called '{name}'; choose one of: {', '.join(REPORTS)}",
            hint="evergreen-etl report --list",
        ) from None


def _bind(name: str) -> BindParameter[Any]:
    if name in _TIME_PARAMETERS:
        return bindparam(name, type_=DateTime())
    if name == "as_of_year":
        return bindparam(name, type_=Integer())
    return bindparam(name)


def run_sql(
    engine: Engine,
    name: str,
    parameters: Mapping[str, Any],
    result_types: Mapping[str, TypeEngine[Any]] | None = None,
    *,
    counts: str = sqlfiles.COUNTS[0],
) -> list[dict[str, Any]]:
    """Run ``report/sql/<name>.sql`` with the parameters it names; rows as dicts.

    ``result_types`` types result columns that a driver would otherwise return as text
    (SQLite returns times and JSON of a text query as strings). ``counts`` fills the query's
    ``{{ counts }}`` (``sqlfiles.COUNTS``): from the history, or from the facts.
    """
    sql = sqlfiles.sql_statement("report", name, counts)
    used = set(_PARAMETER.findall(sql))
    missing = used - set(parameters)
    if missing:
        raise ValueError(f"{name}.sql needs {', '.join(sorted(missing))}")
    query = text(sql).bindparams(*(_bind(p) for p in sorted(used)))
    statement = query.columns(**result_types) if result_types else query
    with engine.connect() as conn:
        return [
            dict(row._mapping) for row in conn.execute(statement, {p: parameters[p] for p in used})
        ]


def title_for(
    spec: ReportSpec[Any],
    as_of: datetime,
    from_time: datetime | None,
    boundaries: Boundaries | None,
    basis: BoundaryBasis | None = None,
) -> str:
    """The report's title, with its time (or period) and boundaries (its basis and lookup
    version when known)."""
    if spec.period and from_time is not None:
        when = f"from {from_time:%Y-%m-%d %H:%M:%S} to {as_of:%Y-%m-%d %H:%M:%S} UTC"
    elif spec.by_run:
        when = f"up to {as_of:%Y-%m-%d %H:%M:%S} UTC"
    else:
        when = f"at {as_of:%Y-%m-%d %H:%M:%S} UTC"
    suffix = " (today's authority boundaries)" if boundaries == "current" else ""
    if basis is not None:
        suffix = f" ({basis_title(basis)})"
    return f"{spec.title} {when}{suffix}"


def _published_order(columns: tuple[str, ...], row: AnalysisRow) -> tuple[Any, ...]:
    value = getattr(row, columns[0])
    return (value is None, -(value or 0), *(getattr(row, c) for c in columns[1:]))


def published(
    spec: ReportSpec[RowT],
    raw_rows: list[dict[str, Any]],
    rule: DisclosureRule,
    *,
    as_of: datetime,
    from_time: datetime | None = None,
    boundaries: Boundaries | None = None,
    basis: BoundaryBasis | None = None,
    hide: Callable[[Mapping[str, Any]], Collection[str]] | None = None,
    hide_totals: Collection[str] = (),
    prepared: bool = False,
    totals: Mapping[str, int | None] | None = None,
) -> Analysis[RowT]:
    """The typed, published result of ``spec`` from its true rows: the one disclosure step.

    ``hide`` and ``hide_totals`` name the counts hidden besides the rule's own, to protect
    them (complementary suppression, see ``report.publication``). ``prepared``: the rows
    have been through ``spec.prepare`` already; ``totals``, when given, are the published
    totals (the cell key method perturbs them as cells of their own).
    """
    if not prepared:
        raw_rows = [spec.prepare(dict(r)) if spec.prepare else dict(r) for r in raw_rows]
    rows = [
        spec.row(**publish_row(row, spec.counts, rule, spec.differences, hide(row) if hide else ()))
        for row in raw_rows
    ]
    if spec.order_by:
        rows.sort(key=partial(_published_order, spec.order_by))
    result_type = cast(type[Analysis[RowT]], Analysis[spec.row])  # type: ignore[name-defined]
    return result_type(
        name=spec.name,
        title=title_for(spec, as_of, from_time, boundaries, basis),
        as_of=as_of,
        from_time=from_time,
        boundaries=boundaries,
        columns=spec.columns,
        counts=spec.published_counts,
        rows=rows,
        totals=dict(totals)
        if totals is not None
        else {
            name: None if name in hide_totals else value
            for name, value in publish_totals(raw_rows, spec.totals, rule).items()
        },
        disclosure=rule.name,
        min_count=min_count_of(rule),
        note=describe(rule),
        basis=basis,
    )
