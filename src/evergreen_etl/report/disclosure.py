"""Disclosure control in the reports: the one place where counts become published figures.

Every count of every report, chart and map goes through :func:`publish_row`,
:func:`publish_totals` or the map's cell test here, with a :class:`DisclosureRule`: any
object with ``publish(count)`` and ``publish_total(total)`` (``evergreen_etl.privacy``'s
rules fit as they are). A suppressed count is ``None`` in the typed results and is shown as
``suppressed``: never as a blank, a zero or a number.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evergreen_etl.privacy.disclosure import (
    DisclosureRule,
    MinCount,
    NoDisclosureControl,
    disclosure_rule,
)

__all__ = ["DisclosureRule", "MinCount", "NoDisclosureControl", "rule_for"]

SUPPRESSED = "suppressed"
# The map never draws a cell with fewer users than this, whatever the rule: with fewer, a
# coloured square over a village could stand for one household.
MAP_MIN_USERS = 5


def rule_for(min_count: int | None) -> DisclosureRule:
    """The rule ``--min-count`` asks for: MinCount(K), or none."""
    return disclosure_rule(None, min_count)


def describe(rule: DisclosureRule) -> str | None:
    """A footnote saying how small counts were treated, for people reading the figures."""
    if rule.name == "none":
        return None
    k = getattr(rule, "k", None)
    if isinstance(k, int):
        return f"Counts below {k} are suppressed."
    if rule.name == "nhs":
        return (
            "NHS England disclosure rule: counts of 1 to 7 are suppressed, other counts are "
            "rounded to the nearest 5; totals are rounded from the true values."
        )
    if rule.name == "ckm":
        return (
            "Cell key method: every count carries a small noise (at most 3) fixed by its own "
            "users, so the same users always give the same figure; no count is shown as 1 or 2, "
            "and figures need not add up exactly."
        )
    return f"Counts are published under the '{rule.name}' disclosure rule."


def min_count_of(rule: DisclosureRule) -> int | None:
    """K, when the rule is a minimum count."""
    k = getattr(rule, "k", None)
    return k if isinstance(k, int) else None


def map_min_users(rule: DisclosureRule, limit: int = 1_000_000) -> int:
    """The fewest users a map cell may hold and be drawn: MAP_MIN_USERS, or more if the
    rule suppresses counts above it (max(K, 5) for a minimum count, 8 for the NHS rule)."""
    return next((n for n in range(MAP_MIN_USERS, limit) if rule.publish(n) is not None), limit)


def publish_cell(rule: DisclosureRule, count: int, *, at_least: int = 0) -> int | None:
    """One count as published, or None; ``at_least`` suppresses smaller counts too (maps)."""
    return None if count < at_least else rule.publish(count)


def publish_difference(rule: DisclosureRule, value: int) -> int | None:
    """A difference of two published counts (a net flow), put through the total rule."""
    published = rule.publish_total(abs(value))
    return None if published is None else (published if value >= 0 else -published)


@dataclass(frozen=True)
class Difference:
    """A derived column ``name = plus - minus`` (a net flow), published only with its terms."""

    name: str
    plus: str
    minus: str


def publish_row(
    raw: Mapping[str, Any],
    counts: Sequence[str],
    rule: DisclosureRule,
    differences: Sequence[Difference] = (),
    also: Collection[str] = (),
) -> dict[str, Any]:
    """Apply ``rule`` to the ``counts`` of one true result row.

    Returns the row with published counts (None when suppressed) and ``suppressed``, the
    names of the suppressed columns. A difference is suppressed whenever one of its terms
    is, so that it cannot be used to recover a hidden count. ``also`` names counts hidden
    besides the rule's own (complementary suppression, see ``report.publication``).
    """
    row = dict(raw)
    hidden: list[str] = []
    for name in counts:
        value = raw[name]
        if value is None:  # not recorded (an old audit row), not suppressed
            continue
        row[name] = None if name in also else rule.publish(int(value))
        if row[name] is None:
            hidden.append(name)
    for diff in differences:
        blocked = diff.plus in hidden or diff.minus in hidden
        row[diff.name] = None if blocked else publish_difference(rule, int(raw[diff.name]))
        if row[diff.name] is None:
            hidden.append(diff.name)
    row["suppressed"] = tuple(hidden)
    return row


def publish_totals(
    raw_rows: Sequence[Mapping[str, Any]], columns: Sequence[str], rule: DisclosureRule
) -> dict[str, int | None]:
    """Totals of ``columns`` over the true (unsuppressed) rows, then published by ``rule``."""
    return {
        name: rule.publish_total(sum(int(row[name] or 0) for row in raw_rows)) for name in columns
    }
