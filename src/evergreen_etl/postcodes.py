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


def outward_code(canonical: str) -> str:
    """The outward code (district) of a canonical postcode: ``"AB1 3QF"`` -> ``"AB1"``."""
    return canonical.split(" ", 1)[0]
