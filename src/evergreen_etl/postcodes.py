"""UK postcode normalisation: canonical ``pcds`` form, outward-only (partial) codes, validation."""

from __future__ import annotations

import re
from enum import StrEnum

# Outward code: area (1-2 letters) + district (digit, then an optional digit or letter).
# Inward code: sector digit + two unit letters. The letter rules are kept loose on purpose:
# a well-formed code that is not in the lookup is "unmatched", which the load counts.
_OUTWARD = r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?)"
_INWARD = r"(?:[0-9][A-Z]{2})"
_FULL_RE = re.compile(rf"^({_OUTWARD})({_INWARD})$")
_OUTWARD_RE = re.compile(rf"^{_OUTWARD}$")
_SPECIAL_FULL = {"GIR0AA": "GIR 0AA"}
_WHITESPACE_RE = re.compile(r"\s+")


class PostcodeKind(StrEnum):
    """What a user's postcode field turned out to be."""

    FULL = "full"
    PARTIAL = "partial"
    INVALID = "invalid"
    MISSING = "missing"


def normalise_postcode(value: object) -> tuple[str | None, PostcodeKind]:
    """Return ``(canonical, kind)`` for a raw postcode value.

    A full postcode comes back in ``pcds`` form (``"AB1 3QF"``); an outward code alone
    (``"CA3"``) comes back as itself with kind ``PARTIAL``; anything else has no value.
    Normalisation is idempotent: normalising a canonical value returns it unchanged.
    """
    if value is None:
        return None, PostcodeKind.MISSING
    if not isinstance(value, str):
        return None, PostcodeKind.INVALID
    compact = _WHITESPACE_RE.sub("", value)
    if not compact:
        return None, PostcodeKind.MISSING
    if not compact.isascii():  # checked before upper(): a dotless i upper-cases to "I"
        return None, PostcodeKind.INVALID
    compact = compact.upper()
    if compact in _SPECIAL_FULL:
        return _SPECIAL_FULL[compact], PostcodeKind.FULL
    match = _FULL_RE.match(compact)
    if match:
        return f"{match.group(1)} {match.group(2)}", PostcodeKind.FULL
    if _OUTWARD_RE.match(compact):
        return compact, PostcodeKind.PARTIAL
    return None, PostcodeKind.INVALID


class LocationPrecision(StrEnum):
    """How much of a user's postcode the warehouse keeps (the authority is always kept)."""

    POSTCODE = "postcode"
    SECTOR = "sector"
    DISTRICT = "district"
    AUTHORITY = "authority"


def coarsen_postcode(
    value: str | None, kind: PostcodeKind | str, precision: LocationPrecision | str
) -> str | None:
    """The part of a normalised postcode kept at ``precision``.

    ``AB1 3QF`` is kept whole, as its sector ``AB1 3``, its district ``AB1`` or not at all;
    a partial postcode (a district already) is kept as it is down to district precision.
    """
    if value is None or precision == LocationPrecision.AUTHORITY:
        return None
    if kind != PostcodeKind.FULL or precision == LocationPrecision.POSTCODE:
        return value
    outward, inward = value.split(" ", 1)
    return f"{outward} {inward[0]}" if precision == LocationPrecision.SECTOR else outward


def district_of(value: str | None, kind: PostcodeKind | str) -> str | None:
    """The postcode district (outward code) of a normalised postcode, if it has one."""
    if value is None or kind not in (PostcodeKind.FULL, PostcodeKind.PARTIAL):
        return None
    return value.split(" ", 1)[0]


def outward_code(canonical: str) -> str:
    """The outward code (district) of a canonical postcode: ``"AB1 3QF"`` -> ``"AB1"``."""
    return canonical.split(" ", 1)[0]
