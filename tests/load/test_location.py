"""Locating users (README, "The warehouse"): full, partial, terminated, pseudo-code, unmatched."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from support.sources import LoadSnapshot, user

CASES = [
    ("full-any-spacing", "ab11aa", "E06000001", "full_matched"),
    ("full-extra-spaces", " AB1  1AB ", "E06000001", "full_matched"),
    ("terminated-keeps-its-authority", "ab3 1aa", "E06000004", "full_matched"),
    ("partial-one-authority", "AB1", "E06000001", "partial_resolved"),
    ("partial-only-live-postcodes-count", "ab3 ", "E06000005", "partial_resolved"),
    ("partial-two-authorities", "AB2", "UNKNOWN", "partial_unresolved"),
    ("partial-not-in-lookup", "ZZ9", "UNKNOWN", "partial_unresolved"),
    ("channel-islands-pseudo-code", "GY1 1AA", "UNKNOWN", "no_authority"),
    ("england-pseudo-code", "AB4 1AA", "UNKNOWN", "no_authority"),
    ("unmatched", "ZZ9 9ZZ", "UNKNOWN", "unmatched"),
    ("invalid", "NOT KNOWN", "UNKNOWN", "invalid"),
    ("missing", None, "UNKNOWN", "missing"),
]


@pytest.mark.parametrize(
    ("postcode", "authority", "status"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_user_is_located(
    load_snapshot: LoadSnapshot, engine: Engine, postcode: str | None, authority: str, status: str
) -> None:
    """Each kind of postcode resolves to its authority, or to UNKNOWN, with its status."""
    load_snapshot([user("someone@example.com", postcode)], "2024-01-01")
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT local_authority_code, location_status FROM user_address")
        ).one()
    assert tuple(row) == (authority, status)


def test_load_counts_every_case(load_snapshot: LoadSnapshot) -> None:
    """The load's summary gives the number of users located each way."""
    records = [user(f"user{i}@example.com", case[1]) for i, case in enumerate(CASES)]
    result = load_snapshot(records, "2024-01-01")
    expected: dict[str, int] = {}
    for case in CASES:
        expected[case[3]] = expected.get(case[3], 0) + 1
    assert {k: v for k, v in result.location.model_dump().items() if v} == expected
