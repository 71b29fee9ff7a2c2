"""Complementary (secondary) suppression over the additive relations of a publication.

Primary suppression hides the small cells; on its own it can be undone by arithmetic: a
total minus the published cells of its row gives back a hidden cell. Here the published
figures are seen as they are by an attacker: cells bound by linear relations (a total is the
sum of its rows, a region the sum of its authorities, a snapshot's users the previous users
plus joiners minus leavers ...). A relation that holds on the true figures is one an attacker
may use. Complementary suppression then hides more cells until, in every relation that holds
a hidden cell, at least two non-empty cells are hidden and the hidden cells together hold at
least ``threshold`` users: the relation alone then leaves every hidden cell of it an interval at
least ``threshold`` wide. The tests check the result with linear programming over all the
relations at once, independently of this code (tests/privacy/audit.py).

Empty cells (0) are hidden by ``--min-count`` but not protected: every report leaves out its
empty rows, so that a count is 0 shows by its absence elsewhere anyway.

Complements are chosen among published non-zero cells: cells that are not a total first, the
smallest that brings the hidden mass up to the threshold (else the largest), so that as
little as possible is hidden.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from evergreen_etl.privacy.disclosure import NHS_SUPPRESS_UP_TO, DisclosureRule

Cell = Hashable


@dataclass(frozen=True)
class Relation:
    """``sum(coefficient * value) == 0`` over its cells: e.g. total - row1 - row2 = 0.

    ``is_total``: the first cell is the sum of the others (made by :meth:`total`).
    """

    terms: tuple[tuple[Cell, int], ...]
    is_total: bool = False

    @classmethod
    def total(cls, total: Cell, parts: Iterable[Cell]) -> Relation:
        """``total`` is the sum of ``parts``."""
        return cls(((total, 1), *((part, -1) for part in parts)), is_total=True)

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
    A hidden cell counts in a relation only with its *freedom*: its value less what its
    published parts (and theirs, through hidden parts) show it holds at least.
    """
    return _Suppressor(values, relations, threshold, set(totals)).run(set(primary))


class _Suppressor:
    def __init__(
        self,
        values: Mapping[Cell, int],
        relations: Iterable[Relation],
        threshold: int,
        totals: set[Cell],
    ) -> None:
        self.values = values
        self.threshold = threshold
        self.totals = totals
        self.usable = [relation for relation in relations if relation.holds(values)]
        self.by_cell: dict[Cell, list[int]] = defaultdict(list)
        self.parts_of: dict[Cell, list[tuple[Cell, ...]]] = defaultdict(list)
        for index, relation in enumerate(self.usable):
            for cell in relation.cells:
                self.by_cell[cell].append(index)
            if relation.is_total:
                self.parts_of[relation.cells[0]].append(relation.cells[1:])
        self.hidden: set[Cell] = set()

    def run(self, primary: set[Cell]) -> frozenset[Cell]:
        self.hidden = set(primary)
        pending = deque(sorted({i for cell in primary for i in self.by_cell.get(cell, ())}))
        queued = set(pending)
        while pending:
            index = pending.popleft()
            queued.discard(index)
            complement = self._complement_for(self.usable[index])
            if complement is None:
                continue
            self.hidden.add(complement)
            for i in (*self.by_cell[complement], index):
                if i not in queued:
                    pending.append(i)
                    queued.add(i)
        return frozenset(self.hidden)

    def _at_least(self, cell: Cell, depth: int = 0) -> int:
        """What the published cells below ``cell`` show it holds at least."""
        if depth > 32:  # no relation nests this deep; a guard against a cycle
            return 0
        best = 0
        for parts in self.parts_of.get(cell, ()):
            shown = sum(
                self._at_least(p, depth + 1) if p in self.hidden else self.values[p] for p in parts
            )
            best = max(best, shown)
        return best

    def _complement_for(self, relation: Relation) -> Cell | None:
        # An empty cell needs no protection: reports leave out empty rows, so it shows anyway.
        unknown = [c for c in relation.cells if c in self.hidden and self.values[c] > 0]
        if not unknown:
            return None
        freedom = sum(self.values[cell] - self._at_least(cell) for cell in unknown)
        if len(unknown) >= 2 and freedom >= self.threshold:
            return None
        candidates = [c for c in relation.cells if c not in self.hidden and self.values[c] > 0]
        if not candidates:
            return None
        needed = self.threshold - freedom

        def rank(cell: Cell) -> tuple[bool, bool, int, str]:
            value = self.values[cell]
            enough = value >= needed
            # Not a total first; then one that is enough, the smallest such (else the largest).
            return (cell in self.totals, not enough, value if enough else -value, repr(cell))

        return min(candidates, key=rank)
