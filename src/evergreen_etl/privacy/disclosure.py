"""Statistical disclosure control for published counts.

Two rules: ``min-count K`` (counts below K are suppressed) and ``nhs``, the rule NHS England
applies to sub-national published statistics: 0 stays 0, 1 to 7 are suppressed, every other
count is rounded to the nearest 5; totals are computed from unrounded values, then rounded.
A suppressed cell is ``None`` here and is shown as "suppressed", never as a blank or a zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

DisclosureName = Literal["none", "min-count", "nhs", "ckm"]
NHS_SUPPRESS_UP_TO = 7
NHS_ROUND_TO = 5


class DisclosureRule(Protocol):
    """Maps a true count to what may be published (None: suppressed)."""

    @property
    def name(self) -> str:
        """The rule's name, as shown beside published figures."""
        ...

    def publish(self, count: int) -> int | None:
        """The published form of one cell."""
        ...

    def publish_total(self, total: int) -> int | None:
        """The published form of a total, given the unrounded total."""
        ...


@dataclass(frozen=True)
class NoDisclosureControl:
    """Publish counts as they are (for internal use only)."""

    name: str = "none"

    def publish(self, count: int) -> int | None:
        """The count itself."""
        return count

    def publish_total(self, total: int) -> int | None:
        """The total itself."""
        return total


@dataclass(frozen=True)
class MinCount:
    """``--min-count K``: every count below K (zero included), totals too, is suppressed."""

    k: int
    name: str = "min-count"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("min-count must be at least 1")

    def publish(self, count: int) -> int | None:
        """None below k, else the count."""
        return None if count < self.k else count

    def publish_total(self, total: int) -> int | None:
        """A total below k is suppressed too: it would show how few users the rows hold."""
        return self.publish(total)


NO_DISCLOSURE_CONTROL = NoDisclosureControl()


def round_to_nearest(count: int, base: int = NHS_ROUND_TO) -> int:
    """Round half up to the nearest multiple of ``base``."""
    return base * ((count + base // 2) // base)


@dataclass(frozen=True)
class NhsRule:
    """NHS England's rule: 0 stays 0, 1-7 suppressed, the rest rounded to the nearest 5."""

    name: str = "nhs"

    def publish(self, count: int) -> int | None:
        """0, None (suppressed) or a multiple of 5."""
        if count == 0:
            return 0
        if count <= NHS_SUPPRESS_UP_TO:
            return None
        return round_to_nearest(count)

    def publish_total(self, total: int) -> int | None:
        """The unrounded total, put through the same rule."""
        return self.publish(total)


@dataclass(frozen=True)
class CellKeyMethod:
    """``--disclosure ckm``: counts perturbed by the cell key method (``privacy.ckm``).

    ``publish`` and ``publish_total`` take counts already perturbed by their cell key (see
    ``report.cellkey``), and publish them as they are.
    """

    name: str = "ckm"

    def publish(self, count: int) -> int | None:
        """A perturbed count, as it is."""
        return count

    def publish_total(self, total: int) -> int | None:
        """A perturbed total, as it is."""
        return total


def disclosure_rule(name: DisclosureName | None, min_count: int | None = None) -> DisclosureRule:
    """The one rule for ``--disclosure`` / ``--min-count``, built once where the options are
    read and passed on alone; ``nhs`` wins when both are given."""
    if name == "nhs":
        return NhsRule()
    if name == "ckm":
        return CellKeyMethod()
    if min_count is not None or name == "min-count":
        return MinCount(k=min_count or NHS_SUPPRESS_UP_TO + 1)
    return NO_DISCLOSURE_CONTROL
