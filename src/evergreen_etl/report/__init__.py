"""The ``report`` stage: distinct users by local authority, now or at any past time, and the
analyses around it (region, country, sex and age band, movers, joiners and leavers, postcode
status, data quality), each a typed result from one ``.sql`` file under disclosure control.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.models import Report
from evergreen_etl.privacy.disclosure import NO_DISCLOSURE_CONTROL
from evergreen_etl.report.boundaries import basis_name, basis_parameters, measure_basis
from evergreen_etl.report.catalog import (
    HEADLINE,
    REPORTS,
    ReportSpec,
    get_spec,
    read_sql,
    run_sql,
)
from evergreen_etl.report.disclosure import (
    DisclosureRule,
    MinCount,
    NoDisclosureControl,
    rule_for,
)
from evergreen_etl.report.publication import publish_report
from evergreen_etl.report.results import Analysis, Boundaries, UserMap
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.engine import open_warehouse
from evergreen_etl.warehouse.snapshot_facts import facts_known_since
from evergreen_etl.warehouse.sqlfiles import COUNTS

if TYPE_CHECKING:
    from evergreen_etl.report.chart_data import Chart

# The pictures (HTML, PNG, SVG) and reading the warehouse as known at a past run are imported
# where they are used: a plain report does without them, and starts quicker.

__all__ = [
    "HEADLINE",
    "REPORTS",
    "Analysis",
    "Boundaries",
    "DisclosureRule",
    "MinCount",
    "NoDisclosureControl",
    "Report",
    "analysis",
    "list_reports",
    "pictures",
    "read_sql",
    "report",
    "rule_for",
    "write_pictures",
]


def list_reports() -> dict[str, str]:
    """Every analysis by name, with its one-line summary."""
    return {name: spec.summary for name, spec in REPORTS.items()}


def _moment(value: datetime | None) -> datetime:
    return to_utc_naive(value) if value else utc_now()


def _parameters(moment: datetime, boundaries: Boundaries) -> dict[str, Any]:
    return {"as_of": moment, "as_of_year": moment.year, "boundaries": boundaries}


def report(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    engine: Engine | None = None,
    boundaries: Boundaries = "lookup",
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    as_known_at: int | datetime | None = None,
) -> Report:
    """Distinct users by local authority at ``as_of`` (default: now), unknown row included:
    the headline analysis, an :class:`Analysis` like every other.

    Under a ``disclosure`` rule small counts are suppressed (``users`` is None); ``total``
    is the number of distinct users as the rule publishes totals. ``as_known_at`` (a run id,
    or a time: the last run finished by then) reads the warehouse as it was right after that
    run.
    """
    result = analysis(
        settings,
        HEADLINE,
        as_of=as_of,
        boundaries=boundaries,
        disclosure=disclosure,
        engine=engine,
        as_known_at=as_known_at,
    )
    return cast(Report, result)


def analysis(
    settings: Settings,
    name: str = HEADLINE,
    *,
    as_of: datetime | None = None,
    from_time: datetime | None = None,
    to_time: datetime | None = None,
    boundaries: Boundaries | None = None,
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    engine: Engine | None = None,
    as_known_at: int | datetime | None = None,
) -> Analysis[Any]:
    """Run the analysis called ``name`` (see :func:`list_reports`) and publish its rows.

    ``as_of`` (default now) is the time of a report by place, or the latest snapshot of a
    report by run. ``movers`` compares ``from_time`` with ``to_time`` (default ``as_of``).
    ``boundaries`` applies to reports by authority (see :mod:`evergreen_etl.report.boundaries`):
    ``lookup`` (the default; ``supplied`` is its old name), ``recorded`` or ``current``; the
    result's ``basis`` says which, and on which lookup version. ``as_known_at`` reads the
    warehouse as it was right after that run (see :func:`report`), on the lookup version
    loaded by then.
    """
    spec = get_spec(name)
    _check_options(spec, from_time=from_time, to_time=to_time, boundaries=boundaries)
    basis = basis_name(boundaries)
    moment = _moment(to_time or as_of)
    start = to_utc_naive(from_time) if from_time else None
    if start is not None and start >= moment:
        raise ConfigurationError("--from must be before --to")
    parameters = _parameters(moment, basis)
    parameters.update(from_time=start, to_time=moment)
    with open_warehouse(settings, engine) as eng, _known_at(eng, as_known_at) as past:
        with past.connect() as conn:
            by_run = None
            if as_known_at is not None:
                from evergreen_etl.warehouse.history import resolve_known_at

                by_run = resolve_known_at(conn, as_known_at)
            basis_sql, version = basis_parameters(conn, basis, by_run=by_run)
        if by_run is None:
            facts = True
        else:
            # The periodic-snapshot facts hold what every run since they were kept in recorded
            # time knew; what an earlier run knew is read from the history.
            with eng.connect() as conn:
                facts = by_run >= facts_known_since(conn)
        parameters.update(basis_sql)
        counts = COUNTS[1] if facts and spec.facts else COUNTS[0]
        raw = run_sql(past, spec.sql, parameters, spec.result_types, counts=counts)
        stated = (
            measure_basis(past, basis, version, parameters, disclosure, counts=counts)
            if spec.by_authority
            else None
        )
        return publish_report(
            past,
            spec,
            raw,
            rule=disclosure,
            as_of=moment,
            from_time=start,
            # As asked ('supplied' stays the old name of 'lookup'); the default is 'lookup'.
            boundaries=(boundaries or basis) if spec.by_authority else None,
            basis=stated,
        )


def _known_at(engine: Engine, value: int | datetime | None) -> AbstractContextManager[Engine]:
    """``engine``, or with ``value`` one that reads the warehouse as known then
    (:func:`evergreen_etl.warehouse.history.known_at`)."""
    if value is None:
        return nullcontext(engine)
    from evergreen_etl.warehouse.history import known_at

    return known_at(engine, value)


def pictures(
    settings: Settings,
    result: Analysis[Any],
    *,
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    engine: Engine | None = None,
) -> tuple[Chart, UserMap]:
    """The bar chart and users map that go with ``result``, under the same disclosure rule.

    The chart shows the report's own rows when they are by place, else the top authorities
    at the same time; the map shows users at the report's time (the end of a period).
    """
    from evergreen_etl.report.chart_data import chart, user_map

    with open_warehouse(settings, engine) as eng:
        source = result
        if REPORTS[result.name].chart is None:
            source = analysis(
                settings,
                HEADLINE,
                as_of=result.as_of,
                boundaries=result.boundaries,
                disclosure=disclosure,
                engine=eng,
            )
        return chart(source), user_map(eng, result.as_of, disclosure)


def write_pictures(
    settings: Settings,
    result: Analysis[Any],
    *,
    html: Path | None = None,
    png: Path | None = None,
    svg: Path | None = None,
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    engine: Engine | None = None,
) -> list[Path]:
    """Write the HTML page (table, chart, map) and/or the chart as PNG or SVG; the paths."""
    if html is None and png is None and svg is None:
        return []
    from evergreen_etl.report.chart_png import caption, render_png, render_svg
    from evergreen_etl.report.html import render_html

    bars, users = pictures(settings, result, disclosure=disclosure, engine=engine)
    written = []
    if html is not None:
        html.write_text(render_html(result, bars, users), encoding="utf-8")
        written.append(html)
    if png is not None:
        png.write_bytes(render_png(bars, caption(result)))
        written.append(png)
    if svg is not None:
        svg.write_text(render_svg(bars), encoding="utf-8")
        written.append(svg)
    return written


def _check_options(
    spec: ReportSpec[Any],
    *,
    from_time: datetime | None,
    to_time: datetime | None,
    boundaries: Boundaries | None,
) -> None:
    if boundaries is not None and not spec.by_authority:
        by_authority = ", ".join(n for n, s in REPORTS.items() if s.by_authority)
        raise ConfigurationError(
            f"--boundaries does not apply to '{spec.name}'; it applies to: {by_authority}"
        )
    if spec.period and from_time is None:
        raise ConfigurationError(f"'{spec.name}' needs --from (and --to, default now)")
    if not spec.period and (from_time is not None or to_time is not None):
        raise ConfigurationError(f"--from and --to apply to movers; '{spec.name}' takes --as-of")
