"""An attacker's audit of a publication, written apart from the suppression code.

Given the tables published together, it writes down every additive relation an attacker
knows between their counts (a total is the sum of its rows; a region the sum of its
authorities, a country of its regions, an authority of its sex and age cells; a district of
today the sum of the districts it took over; a snapshot's users the previous users plus
joiners, returners, less leavers; data quality's records = rejected + duplicates + users =
rejected + duplicates + the location counts; ...) and keeps those that hold on the true
figures. Then, as tau-ARGUS does, it asks a linear program for the smallest and the largest
value each suppressed cell can take given everything published (published counts exact for
``min-count``, within 2 of the rounded figure for the NHS rule; suppressed ones >= 0).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import linprog
from sqlalchemy import Engine, text

KEYS = {
    "local-authority": ("local_authority_code",),
    "region": ("region_code",),
    "country": ("country_code",),
    "sex-age": ("local_authority_code", "sex", "age_band"),
    "postcode-status": ("location_status", "terminated"),
    "movers": ("local_authority_code",),
    "joiners-leavers": ("run_id",),
    "data-quality": ("run_id",),
}
AT_ONE_TIME = {"local-authority", "region", "country", "sex-age", "postcode-status"}
LOCATIONS = (
    "full_matched",
    "partial_resolved",
    "partial_unresolved",
    "unmatched",
    "no_authority",
    "invalid",
    "missing",
)
Cell = tuple[str, str | None, tuple[Any, ...] | None, str]
Rule = Literal["min-count", "nhs"]


@dataclass
class Table:
    """One published table: rows (counts None when suppressed) and totals."""

    name: str
    boundaries: str | None
    rows: list[dict[str, Any]]
    totals: dict[str, int | None] = field(default_factory=dict)
    counts: tuple[str, ...] = ()

    def cells(self) -> dict[Cell, int | None]:
        """Every count of the table by cell."""
        out: dict[Cell, int | None] = {}
        for row in self.rows:
            key = tuple(_plain(row[c]) for c in KEYS[self.name])
            for column in self.counts:
                if column in row:
                    out[(self.name, self.boundaries, key, column)] = _int(row[column])
        for column, value in self.totals.items():
            out[(self.name, self.boundaries, None, column)] = _int(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value in ("True", "False"):
        return value == "True"
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _int(value: Any) -> int | None:
    if value is None or value in ("", "suppressed"):
        return None
    return int(value)


@dataclass(frozen=True)
class Interval:
    """What an attacker can tell of one suppressed cell."""

    cell: Cell
    low: float
    high: float
    true: int

    @property
    def width(self) -> float:
        return self.high - self.low


def hierarchy(engine: Engine) -> list[dict[str, Any]]:
    """The authority table, read directly (not through the report code)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, region_code, country_code, current_code FROM dim_local_authority")
        )
        return [dict(r._mapping) for r in rows]


def _places(authorities: list[dict[str, Any]], boundaries: str) -> tuple[dict, dict]:
    """Authority -> region and region -> country, under ``boundaries``."""
    by_code = {a["code"]: a for a in authorities}
    region_of: dict[str, str] = {}
    country_of: dict[str, str] = {}
    for a in authorities:
        today = by_code.get(a["current_code"]) if boundaries == "current" else None
        code = today["code"] if today else a["code"]
        region = None
        if today:
            region = today["region_code"] or today["country_code"]
        region = region or a["region_code"] or a["country_code"] or "UNKNOWN"
        country = (today["country_code"] if today else None) or a["country_code"] or "UNKNOWN"
        region_of.setdefault(code, region)
        country_of.setdefault(region, country)
    return region_of, country_of


def relations(
    tables: Mapping[tuple[str, str | None], Table], authorities: list[dict[str, Any]]
) -> list[dict[Cell, int]]:
    """Every relation an attacker knows between the cells of ``tables``."""
    out: list[dict[Cell, int]] = []

    def rows(name: str, boundaries: str | None) -> list[dict[str, Any]]:
        table = tables.get((name, boundaries))
        return table.rows if table else []

    def key(name: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_plain(row[c]) for c in KEYS[name])

    def sum_of(whole: tuple[str, str | None], part: tuple[str, str | None], parent: Any) -> None:
        if whole not in tables or part not in tables:
            return
        groups: dict[Any, list[Cell]] = defaultdict(list)
        for row in rows(*part):
            groups[parent(row)].append((*part, key(part[0], row), "users"))
        for row in rows(*whole):
            relation = {(*whole, key(whole[0], row), "users"): 1}
            for cell in groups.get(key(whole[0], row), []):
                relation[cell] = relation.get(cell, 0) - 1
            out.append(relation)

    for (name, boundaries), table in tables.items():
        for column in table.totals:
            relation = {(name, boundaries, None, column): 1}
            for row in table.rows:
                relation[(name, boundaries, key(name, row), column)] = -1
            out.append(relation)
        if name == "movers":
            for row in table.rows:
                k = key(name, row)
                out.append(
                    {
                        (name, boundaries, k, "net"): 1,
                        (name, boundaries, k, "inflow"): -1,
                        (name, boundaries, k, "outflow"): 1,
                    }
                )
    totals = [t for t in tables if t[0] in AT_ONE_TIME]
    for a, b in itertools.pairwise(totals):
        out.append({(*a, None, "users"): 1, (*b, None, "users"): -1})
    today = {
        a["code"]: a["current_code"]
        for a in authorities
        if a["current_code"] and any(b["code"] == a["current_code"] for b in authorities)
    }
    for boundaries in ("supplied", "current"):
        region_of, country_of = _places(authorities, boundaries)
        sum_of(
            ("region", boundaries),
            ("local-authority", boundaries),
            lambda r, m=region_of: (m.get(r["local_authority_code"], "UNKNOWN"),),
        )
        sum_of(
            ("country", boundaries),
            ("region", boundaries),
            lambda r, m=country_of: (m.get(r["region_code"], "UNKNOWN"),),
        )
        sum_of(
            ("local-authority", boundaries),
            ("sex-age", boundaries),
            lambda r: (r["local_authority_code"],),
        )
    sum_of(
        ("local-authority", "current"),
        ("local-authority", "supplied"),
        lambda r: (today.get(r["local_authority_code"], r["local_authority_code"]),),
    )
    sum_of(
        ("sex-age", "current"),
        ("sex-age", "supplied"),
        lambda r: (
            today.get(r["local_authority_code"], r["local_authority_code"]),
            r["sex"],
            r["age_band"],
        ),
    )
    runs = sorted(rows("joiners-leavers", None), key=lambda r: (str(r["as_of"]), int(r["run_id"])))
    previous = None
    for row in runs:
        k = key("joiners-leavers", row)
        cell = lambda c, k=k: ("joiners-leavers", None, k, c)  # noqa: E731
        relation = {cell("users"): 1, cell("new_users"): -1, cell("returned_users"): -1}
        relation[cell("left_users")] = 1
        if previous is not None:
            relation[("joiners-leavers", None, previous, "users")] = -1
        out.append(relation)
        previous = k
    if previous is not None:
        for t in totals:
            out.append({("joiners-leavers", None, previous, "users"): 1, (*t, None, "users"): -1})
    quality = rows("data-quality", None)
    for row in quality:
        k = key("data-quality", row)
        cell = lambda c, k=k: ("data-quality", None, k, c)  # noqa: E731
        out.append(
            {
                cell("records_read"): 1,
                cell("rejected"): -1,
                cell("duplicates"): -1,
                cell("users_in_snapshot"): -1,
            }
        )
        out.append({cell("users_in_snapshot"): 1, **{cell(c): -1 for c in LOCATIONS}})
        out.append({cell("users_in_snapshot"): 1, ("joiners-leavers", None, k, "users"): -1})
    done = [r for r in quality if r.get("status") == "succeeded"]
    if done:
        last = key("data-quality", max(done, key=lambda r: (str(r["as_of"]), int(r["run_id"]))))
        for status in LOCATIONS:
            relation = {("data-quality", None, last, status): 1}
            for row in rows("postcode-status", None):
                if row["location_status"] == status:
                    relation[("postcode-status", None, key("postcode-status", row), "users")] = -1
            out.append(relation)
    return out


def audit(
    published: Iterable[Table],
    truth: Iterable[Table],
    authorities: list[dict[str, Any]],
    rule: Rule,
) -> list[Interval]:
    """The interval of every suppressed cell, given everything published."""
    shown: dict[Cell, int | None] = {}
    tables = {}
    for table in published:
        shown.update(table.cells())
        tables[(table.name, table.boundaries)] = table
    true: dict[Cell, int | None] = {}
    for table in truth:
        true.update(table.cells())
    missing = [c for c in shown if true.get(c) is None and shown[c] is not None]
    assert not missing, f"published cells without a true value: {missing[:5]}"
    usable = [
        r
        for r in relations(tables, authorities)
        if all(c in shown and true.get(c) is not None for c in r)
        and sum(coef * int(true[c] or 0) for c, coef in r.items()) == 0
    ]
    # An empty cell is shown by the absence of rows elsewhere (reports leave them out).
    hidden = [c for c, v in shown.items() if v is None and (true.get(c) or 0) > 0]
    if not hidden:
        return []
    bounds = {c: _bounds(shown.get(c), rule) for r in usable for c in r}
    bounds.update({c: _bounds(None, rule) for c in hidden})
    out = []
    for component, component_relations in _components(usable, bounds):
        out.extend(_intervals(component, component_relations, bounds, hidden, true))
    return out


def _components(
    usable: list[dict[Cell, int]], bounds: Mapping[Cell, tuple[float | None, float | None]]
) -> Iterable[tuple[list[Cell], list[dict[Cell, int]]]]:
    """Groups of cells that are not known exactly, bound together by relations."""
    parent: dict[Cell, Cell] = {}

    def find(cell: Cell) -> Cell:
        while parent.setdefault(cell, cell) != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    def free(cell: Cell) -> bool:
        low, high = bounds[cell]
        return low is None or high is None or low != high

    for relation in usable:
        cells = [c for c in relation if free(c)]
        for cell in cells[1:]:
            parent[find(cell)] = find(cells[0])
    members: dict[Cell, list[Cell]] = defaultdict(list)
    for cell in bounds:
        if free(cell):
            members[find(cell)].append(cell)
    touching: dict[Cell, list[dict[Cell, int]]] = defaultdict(list)
    for relation in usable:
        cells = [c for c in relation if free(c)]
        if cells:
            touching[find(cells[0])].append(relation)
    for root, cells in members.items():
        yield sorted(cells, key=repr), touching.get(root, [])


def _intervals(
    cells: list[Cell],
    relations: list[dict[Cell, int]],
    bounds: Mapping[Cell, tuple[float | None, float | None]],
    hidden: Sequence[Cell],
    true: Mapping[Cell, int | None],
) -> Iterable[Interval]:
    wanted = [c for c in cells if c in set(hidden)]
    if not wanted:
        return
    index = {c: i for i, c in enumerate(cells)}
    a_eq = np.zeros((max(len(relations), 1), len(cells)))
    b_eq = np.zeros(a_eq.shape[0])
    for i, relation in enumerate(relations):
        for cell, coefficient in relation.items():
            if cell in index:
                a_eq[i, index[cell]] = coefficient
            else:  # known exactly
                b_eq[i] -= coefficient * float(bounds[cell][0] or 0.0)
    column_bounds = [bounds[c] for c in cells]
    for cell in wanted:
        objective = np.zeros(len(cells))
        objective[index[cell]] = 1.0
        low = _solve(objective, a_eq, b_eq, column_bounds)
        high = -_solve(-objective, a_eq, b_eq, column_bounds)
        value = int(true[cell] or 0)
        assert low - 1e-6 <= value <= high + 1e-6, (cell, low, value, high)
        yield Interval(cell, low, high, value)


def _bounds(value: int | None, rule: Rule) -> tuple[float | None, float | None]:
    """What the attacker knows of a cell from its own published figure."""
    if value is None:
        return (0.0, None)
    if rule == "nhs" and value != 0:
        return (value - 2.0, value + 2.0)
    return (float(value), float(value))


def _solve(objective: np.ndarray, a_eq: Any, b_eq: np.ndarray, bounds: Sequence[Any]) -> float:
    result = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if result.status == 3:  # unbounded
        return -np.inf
    assert result.status == 0, result.message
    return float(result.fun)


def narrow(intervals: Iterable[Interval], width: int) -> list[Interval]:
    """The intervals narrower than ``width``: cells an attacker could come close to."""
    return [i for i in intervals if i.width < width - 1e-6]


def table_of(result: Any) -> Table:
    """A Table from a report's typed result (an ``Analysis``)."""
    return Table(
        name=result.name,
        boundaries=result.boundaries,
        rows=[row.model_dump() for row in result.rows],
        totals=dict(result.totals),
        counts=tuple(result.counts),
    )
