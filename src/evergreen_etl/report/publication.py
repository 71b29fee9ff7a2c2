"""A publication: the tables released together, the relations between their counts, and the
cells that disclosure control must hide so that none can be worked out from the others.

Every report at one time (by authority, region, country, sex and age band, postcode status,
under both boundary sets) and every report by load up to that time (joiners and leavers,
data quality) form one publication: whichever of them ``report`` prints, and all of them that
``publish`` writes, hide the same cells, so that putting reports side by side gives back
nothing that one of them hides. ``movers`` (a period, not a time) is its own publication.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine

from evergreen_etl.privacy.disclosure import DisclosureRule
from evergreen_etl.privacy.suppression import (
    Relation,
    complementary_suppression,
    protection_threshold,
)
from evergreen_etl.report.catalog import LOCATION_STATUS, REPORTS, ReportSpec, published, run_sql
from evergreen_etl.report.cellkey import (
    AT_TIME,
    ROW_KEYS,
    perturbed,
    rule_for_report,
    uses_cell_keys,
)
from evergreen_etl.report.results import Analysis, Boundaries, BoundaryBasis
from evergreen_etl.warehouse.lookup_versions import newest_version

BY_RUN = ("joiners-leavers", "data-quality")
PUBLISHED = AT_TIME + BY_RUN
BOUNDARY_SETS: tuple[Boundaries, ...] = ("supplied", "current")
LOCATION_COLUMNS = tuple(LOCATION_STATUS)

# Counts of everybody at a load, like totals: hidden as complements only as a last resort.
TOTAL_LIKE = {
    ("joiners-leavers", "users"),
    ("data-quality", "users_in_snapshot"),
    ("data-quality", "records_read"),
}
TableId = tuple[str, Boundaries | None]
# (report, boundaries, row key or None for the total, column)
Cell = tuple[str, Boundaries | None, tuple[Any, ...] | None, str]


def row_key(name: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The columns that tell the rows of report ``name`` apart."""
    return tuple(row[column] for column in ROW_KEYS[name])


def prepared_rows(spec: ReportSpec[Any], raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The true rows as the report's row model takes them."""
    return [spec.prepare(dict(r)) if spec.prepare else dict(r) for r in raw]


@dataclass
class Publication:
    """True rows of every table released together, and where the authorities sit."""

    tables: dict[TableId, list[dict[str, Any]]]
    hierarchy: list[dict[str, Any]] = field(default_factory=list)

    def cells(self) -> Iterator[tuple[Cell, int, bool]]:
        """Every count: its cell, its true value, and whether it is a total."""
        for (name, boundaries), rows in self.tables.items():
            spec = REPORTS[name]
            for row in rows:
                for column in spec.counts:
                    if row.get(column) is not None:
                        yield (
                            (name, boundaries, row_key(name, row), column),
                            int(row[column]),
                            False,
                        )
            for column in spec.totals:
                total = sum(int(row[column] or 0) for row in rows)
                yield (name, boundaries, None, column), total, True

    def relations(self) -> list[Relation]:
        """Every additive relation between the counts (kept only where it holds, later)."""
        relations: list[Relation] = []
        for table, rows in self.tables.items():
            relations.extend(_table_totals(table, rows))
        relations.extend(_same_totals(list(self.tables)))
        for boundaries in sorted({b for _, b in self.tables if b is not None}):
            relations.extend(self._geography(boundaries))
        relations.extend(self._boundary_sets())
        relations.extend(self._by_run())
        return relations

    def _rows(self, name: str, boundaries: Boundaries | None) -> list[dict[str, Any]]:
        return self.tables.get((name, boundaries), [])

    def _geography(self, boundaries: Boundaries) -> Iterator[Relation]:
        region_of: dict[str, str] = {}
        country_of: dict[str, str] = {}
        # The recorded basis keeps the supplied codes, as the lookup basis does.
        side = "current" if boundaries == "current" else "supplied"
        for place in self.hierarchy:
            code = place[f"{side}_code"]
            region_of.setdefault(code, place[f"{side}_region"])
            country_of.setdefault(place[f"{side}_region"], place[f"{side}_country"])
        authorities = self._rows("local-authority", boundaries)
        yield from _sums(
            ("region", boundaries),
            self._rows("region", boundaries),
            ("local-authority", boundaries),
            authorities,
            lambda row: region_of.get(row["local_authority_code"], "UNKNOWN"),
        )
        yield from _sums(
            ("country", boundaries),
            self._rows("country", boundaries),
            ("region", boundaries),
            self._rows("region", boundaries),
            lambda row: country_of.get(row["region_code"], "UNKNOWN"),
        )
        yield from _sums(
            ("local-authority", boundaries),
            authorities,
            ("sex-age", boundaries),
            self._rows("sex-age", boundaries),
            lambda row: row["local_authority_code"],
        )

    def _boundary_sets(self) -> Iterator[Relation]:
        """A district of today is the sum of the supplied districts it holds."""
        today = {place["supplied_code"]: place["current_code"] for place in self.hierarchy}
        yield from _sums(
            ("local-authority", "current"),
            self._rows("local-authority", "current"),
            ("local-authority", "supplied"),
            self._rows("local-authority", "supplied"),
            lambda row: today.get(row["local_authority_code"], row["local_authority_code"]),
        )
        current_cells = self._rows("sex-age", "current")
        yield from _sums(
            ("sex-age", "current"),
            current_cells,
            ("sex-age", "supplied"),
            self._rows("sex-age", "supplied"),
            lambda row: (
                today.get(row["local_authority_code"], row["local_authority_code"]),
                row["sex"],
                row["age_band"],
            ),
        )

    def _by_run(self) -> Iterator[Relation]:
        changes = sorted(
            self._rows("joiners-leavers", None), key=lambda r: (r["as_of"], r["run_id"])
        )
        previous: tuple[Any, ...] | None = None
        for row in changes:
            key = row_key("joiners-leavers", row)

            def cell(column: str, key: tuple[Any, ...] = key) -> Cell:
                return ("joiners-leavers", None, key, column)

            # users = previous users + new + returned - left
            terms = [(cell("users"), 1), (cell("new_users"), -1), (cell("returned_users"), -1)]
            terms.append((cell("left_users"), 1))
            if previous is not None:
                terms.append((("joiners-leavers", None, previous, "users"), -1))
            yield Relation(tuple(terms))
            previous = key
        if previous is not None:
            # Summed over the snapshots: the last users = all new + all returned - all left.
            yield Relation(
                (
                    (("joiners-leavers", None, previous, "users"), 1),
                    (("joiners-leavers", None, None, "new_users"), -1),
                    (("joiners-leavers", None, None, "returned_users"), -1),
                    (("joiners-leavers", None, None, "left_users"), 1),
                )
            )
            for table in self.tables:
                if table[0] in AT_TIME:
                    yield Relation(
                        (
                            (("joiners-leavers", None, previous, "users"), 1),
                            ((table[0], table[1], None, "users"), -1),
                        )
                    )
        quality = self._rows("data-quality", None)
        for row in quality:
            key = row_key("data-quality", row)

            def cell_q(column: str, key: tuple[Any, ...] = key) -> Cell:
                return ("data-quality", None, key, column)

            read = cell_q("records_read")
            parts = [cell_q("rejected"), cell_q("duplicates"), cell_q("users_in_snapshot")]
            yield Relation.total(read, parts)
            locations = [cell_q(column) for column in LOCATION_COLUMNS]
            yield Relation.total(cell_q("users_in_snapshot"), locations)
            yield Relation.total(read, [*parts[:2], *locations])
            yield Relation(
                ((cell_q("users_in_snapshot"), 1), (("joiners-leavers", None, key, "users"), -1))
            )
        succeeded = [row for row in quality if row["status"] == "succeeded"]
        if succeeded:
            last = row_key("data-quality", max(succeeded, key=lambda r: (r["as_of"], r["run_id"])))
            statuses = self._rows("postcode-status", None)
            for column in LOCATION_COLUMNS:
                yield Relation.total(
                    ("data-quality", None, last, column),
                    [
                        ("postcode-status", None, row_key("postcode-status", row), "users")
                        for row in statuses
                        if row["location_status"] == column
                    ],
                )

    def hidden(self, rule: DisclosureRule) -> frozenset[Cell] | None:
        """The cells to hide under ``rule`` (None: the rule hides nothing)."""
        threshold = protection_threshold(rule)
        if threshold is None:
            return None
        values: dict[Cell, int] = {}
        primary: list[Cell] = []
        totals: list[Cell] = []
        for cell, value, is_total in self.cells():
            values[cell] = value
            published = rule.publish_total(value) if is_total else rule.publish(value)
            if published is None:
                primary.append(cell)
            if is_total or (cell[0], cell[3]) in TOTAL_LIKE:
                totals.append(cell)
        hidden = complementary_suppression(
            cast(Mapping[Hashable, int], values),
            self.relations(),
            primary,
            threshold,
            totals=totals,
        )
        return cast(frozenset[Cell], hidden)


def _table_totals(table: TableId, rows: Sequence[Mapping[str, Any]]) -> Iterator[Relation]:
    name, boundaries = table
    for column in REPORTS[name].totals:
        yield Relation.total(
            (name, boundaries, None, column),
            [(name, boundaries, row_key(name, row), column) for row in rows],
        )


def _same_totals(tables: Sequence[TableId]) -> Iterator[Relation]:
    """Every table at one time counts the same users in all."""
    at_time = [table for table in tables if table[0] in AT_TIME]
    for first, other in itertools.pairwise(at_time):
        yield Relation((((*first, None, "users"), 1), ((*other, None, "users"), -1)))


def _sums(
    whole: TableId,
    whole_rows: Sequence[Mapping[str, Any]],
    part: TableId,
    part_rows: Sequence[Mapping[str, Any]],
    parent: Callable[[Mapping[str, Any]], Any],
) -> Iterator[Relation]:
    """Each row of ``whole`` is the sum of the rows of ``part`` whose parent is its key."""
    if not whole_rows or not part_rows:
        return
    children: dict[Any, list[Cell]] = defaultdict(list)
    for row in part_rows:
        key = parent(row)
        children[key if isinstance(key, tuple) else (key,)].append(
            (*part, row_key(part[0], row), "users")
        )
    for row in whole_rows:
        key = row_key(whole[0], row)
        yield Relation.total((*whole, key, "users"), children.get(key, []))


@dataclass(frozen=True)
class Protection:
    """The cells of one table that disclosure control hides, as published() asks for them."""

    name: str
    boundaries: Boundaries | None
    hidden: frozenset[Cell]

    def columns(self, row: Mapping[str, Any]) -> frozenset[str]:
        """The counts of ``row`` to hide."""
        key = row_key(self.name, row)
        return frozenset(
            column
            for column in REPORTS[self.name].counts
            if (self.name, self.boundaries, key, column) in self.hidden
        )

    @property
    def totals(self) -> frozenset[str]:
        """The totals to hide."""
        return frozenset(
            column
            for column in REPORTS[self.name].totals
            if (self.name, self.boundaries, None, column) in self.hidden
        )


def gather(
    engine: Engine,
    as_of: datetime,
    names: Sequence[str] = PUBLISHED,
    boundary_sets: Sequence[Boundaries] = BOUNDARY_SETS,
) -> Publication:
    """The true rows of the reports ``names`` at ``as_of`` (under each boundary set)."""
    tables: dict[TableId, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        version = newest_version(conn)
    for name in names:
        spec = REPORTS[name]
        for boundaries in boundary_sets if spec.by_authority else (None,):
            parameters = {"as_of": as_of, "as_of_year": as_of.year}
            parameters["boundaries"] = boundaries or "supplied"
            # Every period where the newest lookup puts it, but on the recorded basis.
            relocated = version is not None and boundaries != "recorded"
            parameters["lookup_version"] = version.version_id if version and relocated else None
            raw = run_sql(engine, spec.sql, parameters, spec.result_types)
            tables[(name, boundaries)] = prepared_rows(spec, raw)
    hierarchy = run_sql(engine, "authority_hierarchy", {})
    return Publication(tables, hierarchy)


def protection(
    engine: Engine,
    spec: ReportSpec[Any],
    raw: list[dict[str, Any]],
    *,
    as_of: datetime,
    boundaries: Boundaries | None,
    rule: DisclosureRule,
) -> Protection | None:
    """What ``rule`` hides of ``spec``'s table, in the publication it belongs to.

    None when the rule hides nothing. A report at one time, or by load, is protected within
    every report of its publication (see the module's docstring); movers on its own.
    """
    if protection_threshold(rule) is None:
        return None
    table_boundaries = boundaries if spec.by_authority else None
    if spec.name in PUBLISHED:
        extra = (boundaries,) if boundaries is not None and boundaries not in BOUNDARY_SETS else ()
        publication = gather(engine, as_of, boundary_sets=(*BOUNDARY_SETS, *extra))
    else:
        publication = Publication({(spec.name, table_boundaries): prepared_rows(spec, raw)})
    hidden = publication.hidden(rule)
    assert hidden is not None
    return Protection(spec.name, table_boundaries, hidden)


def publish_report(
    engine: Engine,
    spec: ReportSpec[Any],
    raw: list[dict[str, Any]],
    *,
    rule: DisclosureRule,
    as_of: datetime,
    from_time: datetime | None = None,
    boundaries: Boundaries | None = None,
    basis: BoundaryBasis | None = None,
) -> Analysis[Any]:
    """Report ``spec``'s true rows published under ``rule``, within its publication.

    ``boundaries`` 'lookup' is the publication's 'supplied' (its old name); ``basis`` is
    stated on the result."""
    stated = boundaries
    if boundaries == "lookup":
        boundaries = "supplied"
    rule = rule_for_report(rule, spec.name)
    if uses_cell_keys(rule, spec.name):
        rows, totals = perturbed(
            engine, spec.name, prepared_rows(spec, raw), as_of=as_of, boundaries=boundaries
        )
        return published(
            spec,
            rows,
            rule,
            as_of=as_of,
            boundaries=stated,
            basis=basis,
            prepared=True,
            totals=totals,
        )
    guard = protection(engine, spec, raw, as_of=as_of, boundaries=boundaries, rule=rule)
    return published(
        spec,
        raw,
        rule,
        as_of=as_of,
        from_time=from_time,
        boundaries=stated,
        basis=basis,
        hide=guard.columns if guard else None,
        hide_totals=guard.totals if guard else (),
    )


def publish_all(
    engine: Engine,
    as_of: datetime,
    rule: DisclosureRule,
    boundary_sets: Sequence[Boundaries] = BOUNDARY_SETS,
) -> list[Analysis[Any]]:
    """Every report of the publication at ``as_of``, published together under ``rule``:
    the same cells hidden (or perturbed) as when each is asked for alone."""
    publication = gather(engine, as_of)
    hidden: dict[str, frozenset[Cell] | None] = {}
    results = []
    for (name, boundaries), rows in publication.tables.items():
        if boundaries is not None and boundaries not in boundary_sets:
            continue
        spec = REPORTS[name]
        table_rule = rule_for_report(rule, name)
        if uses_cell_keys(table_rule, name):
            noisy, totals = perturbed(engine, name, rows, as_of=as_of, boundaries=boundaries)
            results.append(
                published(
                    spec,
                    noisy,
                    table_rule,
                    as_of=as_of,
                    boundaries=boundaries,
                    prepared=True,
                    totals=totals,
                )
            )
            continue
        if table_rule.name not in hidden:
            hidden[table_rule.name] = publication.hidden(table_rule)
        cells = hidden[table_rule.name]
        guard = Protection(name, boundaries, cells) if cells is not None else None
        results.append(
            published(
                spec,
                rows,
                table_rule,
                as_of=as_of,
                boundaries=boundaries,
                hide=guard.columns if guard else None,
                hide_totals=guard.totals if guard else (),
                prepared=True,
            )
        )
    return results
