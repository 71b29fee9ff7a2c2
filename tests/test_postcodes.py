"""Postcode normalisation: canonical ``pcds`` form, partial outward codes, invalid and missing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evergreen_etl.postcodes import PostcodeKind, normalise_postcode

FULL = PostcodeKind.FULL
PARTIAL = PostcodeKind.PARTIAL
INVALID = PostcodeKind.INVALID
MISSING = PostcodeKind.MISSING

RULES = [
    ("ab1 3qf", ("AB1 3QF", FULL), "lower-case-is-upper-cased"),
    ("GU342TZ", ("GU34 2TZ", FULL), "missing-space-is-inserted"),
    ("B1  1AA", ("B1 1AA", FULL), "double-space-is-collapsed"),
    (" cv4 9re ", ("CV4 9RE", FULL), "stray-spaces-are-trimmed"),
    ("SW1A1AA", ("SW1A 1AA", FULL), "letter-in-district-keeps-outward-code-whole"),
    ("GIR 0AA", ("GIR 0AA", FULL), "girobank-special-case"),
    ("gir0aa", ("GIR 0AA", FULL), "girobank-special-case-any-spelling"),
    ("CA3 ", ("CA3", PARTIAL), "outward-code-with-trailing-space-is-partial"),
    ("E3", ("E3", PARTIAL), "one-letter-area-outward-code-is-partial"),
    ("SK6", ("SK6", PARTIAL), "two-letter-area-outward-code-is-partial"),
    ("EC1A", ("EC1A", PARTIAL), "outward-code-ending-in-letter-is-partial"),
    ("NOT KNOWN", (None, INVALID), "words-are-invalid"),
    ("12345", (None, INVALID), "digits-only-are-invalid"),
    ("AB13QFX", (None, INVALID), "too-long-is-invalid"),
    ("", (None, MISSING), "empty-string-is-missing"),
    ("   ", (None, MISSING), "blank-string-is-missing"),
    (None, (None, MISSING), "none-is-missing"),
    (42, (None, INVALID), "number-is-invalid"),
    (["AB1 3QF"], (None, INVALID), "list-is-invalid"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, expected) for raw, expected, _ in RULES],
    ids=[rule_id for _, _, rule_id in RULES],
)
def test_normalise_postcode_follows_the_rule_table(
    raw: object, expected: tuple[str | None, PostcodeKind]
) -> None:
    """Each raw postcode spelling normalises to its canonical form and kind."""
    assert normalise_postcode(raw) == expected


# Postcode-ish text: the letters, digits and spaces real exports mix, plus any other text.
postcode_like = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ")
any_text = st.one_of(postcode_like, st.text())


@given(raw=any_text)
def test_normalisation_is_idempotent(raw: str) -> None:
    """Normalising a canonical result returns it unchanged, with the same kind."""
    canonical, kind = normalise_postcode(raw)
    if canonical is not None:
        assert normalise_postcode(canonical) == (canonical, kind)


@given(
    outward=st.from_regex(r"[A-Za-z]{1,2}[0-9][A-Za-z0-9]?", fullmatch=True),
    inward=st.from_regex(r"[0-9][A-Za-z]{2}", fullmatch=True),
    gap=st.text(alphabet=" ", max_size=3),
)
def test_full_postcode_is_upper_case_with_exactly_one_space(
    outward: str, inward: str, gap: str
) -> None:
    """A full postcode comes back upper-case with one space between outward and inward codes."""
    canonical, kind = normalise_postcode(f"{outward}{gap}{inward}")
    assert kind is FULL
    assert canonical is not None
    assert canonical == canonical.upper()
    assert canonical.count(" ") == 1
    assert canonical.split(" ")[1] == inward.upper()


@given(raw=any_text)
def test_any_full_result_is_upper_case_with_exactly_one_space(raw: str) -> None:
    """Whatever the input, a FULL result is upper-case and holds exactly one space."""
    canonical, kind = normalise_postcode(raw)
    if kind is FULL:
        assert canonical is not None
        assert canonical == canonical.upper()
        assert canonical.count(" ") == 1
        assert canonical.strip() == canonical
