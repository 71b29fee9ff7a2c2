"""Complementary suppression: no hidden cell is the only unknown of a relation, and the
hidden cells of each relation hold at least K users between them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest

from evergreen_etl.privacy.disclosure import MinCount, NhsRule, NoDisclosureControl
from evergreen_etl.privacy.suppression import (
    Relation,
    complementary_suppression,
    protection_threshold,
)


def possible_values(
    values: Mapping[str, int], relations: list[Relation], hidden: frozenset[str], cell: str
) -> set[int]:
    """Every value ``cell`` can take, by an attacker's brute force: every assignment of the
    hidden leaves (cells that are no relation's total), from 0 up to the largest figure,
    whose sums agree with every published figure."""
    totals = {r.cells[0]: r.cells[1:] for r in relations}
    leaves = sorted(c for c in hidden if c not in totals)
    ceiling = max(values.values())
    found = set()
    for guess in itertools.product(range(ceiling + 1), repeat=len(leaves)):
        trial = {c: v for c, v in values.items() if c not in hidden}
        trial.update(zip(leaves, guess, strict=True))
        for total in sorted(totals, key=lambda t: -len(_below(t, totals))):
            if total in hidden:
                trial[total] = sum(trial.get(p, 0) for p in totals[total])
        if all(r.holds(trial) for r in relations):
            found.add(trial[cell])
    return found


def _below(cell: str, totals: Mapping[str, tuple[str, ...]]) -> set[str]:
    parts = set(totals.get(cell, ()))
    return parts.union(*(_below(p, totals) for p in parts)) if parts else set()


def test_a_row_total_needs_a_second_hidden_cell() -> None:
    """Total minus the published cells would give the hidden one back: a second one is
    hidden, the smallest that brings the hidden users up to K."""
    values = {"a": 2, "b": 6, "c": 30, "total": 38}
    relations = [Relation.total("total", ["a", "b", "c"])]
    hidden = complementary_suppression(values, relations, ["a"], 5, totals=["total"])
    assert hidden == {"a", "b"}
    assert possible_values(values, relations, hidden, "a") == set(range(9))


def test_the_total_is_hidden_only_as_a_last_resort() -> None:
    """A hidden total with every row published is recovered by adding the rows: a row is
    hidden with it."""
    values = {"a": 3, "total": 3}
    relations = [Relation.total("total", ["a"])]
    assert complementary_suppression(values, relations, ["total"], 5) == {"a", "total"}


def test_a_hidden_cell_counts_only_its_freedom() -> None:
    """A hidden complement whose own parts are published is known to hold at least their
    sum: only the rest counts towards K, so another complement is hidden."""
    values = {"region": 40, "la1": 3, "la2": 12, "la3": 25, "s1": 11, "s2": 1}
    relations = [
        Relation.total("region", ["la1", "la2", "la3"]),
        Relation.total("la2", ["s1", "s2"]),
    ]
    hidden = complementary_suppression(values, relations, ["la1", "s2"], 10)
    spread = possible_values(values, relations, hidden, "la1")
    assert max(spread) - min(spread) >= 10, (hidden, spread)


def test_relations_that_do_not_hold_are_ignored() -> None:
    """A relation false on the true figures protects nothing and forces nothing."""
    values = {"a": 2, "b": 6, "total": 99}
    relations = [Relation.total("total", ["a", "b"])]
    assert complementary_suppression(values, relations, ["a"], 5) == {"a"}


def test_empty_cells_need_no_protection() -> None:
    """A hidden 0 forces no complement: an empty row shows by its absence anyway."""
    values = {"a": 0, "b": 6, "total": 6}
    relations = [Relation.total("total", ["a", "b"])]
    assert complementary_suppression(values, relations, ["a"], 5) == {"a"}


@pytest.mark.parametrize("seed", range(12))
def test_two_level_tables_by_brute_force(seed: int) -> None:
    """On random small two-level tables (a total, two rows, two cells each), no hidden
    cell can be narrowed below K by trying every assignment."""
    import random

    rng = random.Random(seed)
    k = 3
    cells = {f"r{r}c{c}": rng.choice([0, 1, 2, 4]) for r in range(2) for c in range(2)}
    rows = {f"r{r}": cells[f"r{r}c0"] + cells[f"r{r}c1"] for r in range(2)}
    values = {**cells, **rows, "total": sum(rows.values())}
    relations = [Relation.total("total", list(rows))] + [
        Relation.total(f"r{r}", [f"r{r}c0", f"r{r}c1"]) for r in range(2)
    ]
    primary = [c for c, v in values.items() if v < k]
    hidden = complementary_suppression(values, relations, primary, k, totals=["total"])
    if "total" in hidden:
        return  # nothing fixes the others: every hidden cell is unbounded
    for cell in hidden:
        if values[cell] == 0:
            continue
        spread = possible_values(values, relations, hidden, cell)
        assert max(spread) - min(spread) >= k, (values, sorted(hidden), cell, spread)


@pytest.mark.parametrize(
    ("rule", "threshold"), [(MinCount(4), 4), (NhsRule(), 8), (NoDisclosureControl(), None)]
)
def test_protection_threshold(rule: object, threshold: int | None) -> None:
    """K for --min-count K, 8 for the NHS rule (it hides 1 to 7), nothing without a rule."""
    assert protection_threshold(rule) == threshold  # type: ignore[arg-type]
