"""Complementary (secondary) suppression over the additive relations of a publication.

Primary suppression hides the small cells; on its own it can be undone by arithmetic: a
total minus the published cells of its row gives back a hidden cell. Here the published
figures are seen as they are by an attacker: cells bound by linear relations (a total is the
sum of its rows, a region the sum of its authorities, a snapshot's users the previous users
plus joiners minus leavers ...). A relation that holds on the true figures is one an attacker
may use. Complementary suppression then hides more cells until, in every relation that holds
a hidden cell, at least two cells are hidden and the hidden cells together hold at least
``threshold`` users: the relation alone then leaves every hidden cell of it an interval at
least ``threshold`` wide. The tests check the result with linear programming over all the
relations at once, independently of this code (tests/privacy/audit.py).

Complements are chosen among published non-zero cells: cells that are not a total first, the
smallest that brings the hidden mass up to the threshold (else the largest), so that as
little as possible is hidden.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from evergreen_etl.privacy.disclosure import NHS_SUPPRESS_UP_TO, DisclosureRule

Cell = Hashable


@dataclass(frozen=True)
class Relation:
    """``sum(coefficient * value) == 0`` over its cells: e.g. total - row1 - row2 = 0."""

    terms: tuple[tuple[Cell, int], ...]

    @classmethod
    def total(cls, total: Cell, parts: Iterable[Cell]) -> Relation:
        """``total`` is the sum of ``parts``."""
        return cls(((total, 1), *((part, -1) for part in parts)))

    @property
    def cells(self) -> tuple[Cell, ...]:
        """The cells the relation binds."""
        return tuple(cell for cell, _ in self.terms)

    def holds(self, values: Mapping[Cell, int]) -> bool:
        """Whether the relation holds on ``values`` (every cell known, the sum zero)."""
        if any(cell not in values for cell in self.cells):
            return False
        return sum(coefficient * values[cell] for cell, coefficient in self.terms) == 0


def protection_threshold(rule: DisclosureRule) -> int | None:
    """How many users the hidden cells of a relation must hold at least, for ``rule``.

    K for ``--min-count K``, 8 for the NHS rule (which hides 1 to 7), None for a rule that
    hides nothing (or perturbs instead of hiding: its relations do not hold exactly).
    """
    k = getattr(rule, "k", None)
    if isinstance(k, int):
        return k
    if rule.name == "nhs":
        return NHS_SUPPRESS_UP_TO + 1
    return None


def complementary_suppression(
    values: Mapping[Cell, int],
    relations: Iterable[Relation],
    primary: Iterable[Cell],
    threshold: int,
    *,
    totals: Iterable[Cell] = (),
) -> frozenset[Cell]:
    """Every cell to hide: the ``primary`` ones and the complements that protect them.

    ``relations`` that do not hold on ``values`` are ignored (nobody can use them);
    ``totals`` are hidden as complements only when no other cell of a relation can be.
    """
    usable = [relation for relation in relations if relation.holds(values)]
    by_cell: dict[Cell, list[int]] = defaultdict(list)
    for index, relation in enumerate(usable):
        for cell in relation.cells:
            by_cell[cell].append(index)
    hidden = set(primary)
    is_total = set(totals)
    pending = sorted({i for cell in hidden for i in by_cell.get(cell, ())})
    while pending:
        index = pending.pop()
        relation = usable[index]
        cells = relation.cells
        unknown = [cell for cell in cells if cell in hidden]
        mass = sum(values[cell] for cell in unknown)
        if not unknown or (len(unknown) >= 2 and mass >= threshold):
            continue
        candidates = [cell for cell in cells if cell not in hidden and values[cell] > 0]
        if not candidates:
            continue
        complement = _complement(candidates, values, is_total, threshold - mass)
        hidden.add(complement)
        pending.extend(i for i in by_cell[complement] if i not in pending)
        pending.append(index)
    return frozenset(hidden)


def _complement(
    candidates: list[Cell], values: Mapping[Cell, int], is_total: set[Cell], needed: int
) -> Cell:
    def rank(cell: Cell) -> tuple[bool, bool, int, str]:
        value = values[cell]
        enough = value >= needed
        # Not a total first; then one that is enough, the smallest of those (else the largest).
        return (cell in is_total, not enough, value if enough else -value, repr(cell))

    return min(candidates, key=rank)
