"""Coarsening of quasi-identifiers: sex to F/M/U, date of birth to birth year."""

from __future__ import annotations

import pytest

from evergreen_etl.anonymise.clean import birth_year, coarsen_sex

LATEST_YEAR = 2024

SEX_RULES = [
    ("Male", ("M", True), "male-word"),
    ("M", ("M", True), "upper-m"),
    ("m", ("M", True), "lower-m"),
    ("MALE", ("M", True), "male-shouting"),
    ("Female", ("F", True), "female-word"),
    ("female", ("F", True), "female-lower"),
    ("F", ("F", True), "upper-f"),
    ("f", ("F", True), "lower-f"),
    (" f ", ("F", True), "padded-f"),
    ("Other", ("U", False), "other-word-is-unrecognised"),
    ("Prefer not to say", ("U", False), "prefer-not-to-say-is-unrecognised"),
    ("", ("U", True), "empty-is-missing"),
    ("   ", ("U", True), "blank-is-missing"),
    (None, ("U", True), "none-is-missing"),
    (1, ("U", False), "number-is-unrecognised"),
    (True, ("U", False), "bool-is-unrecognised"),
    ({"value": "F"}, ("U", False), "object-is-unrecognised"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, expected) for raw, expected, _ in SEX_RULES],
    ids=[rule_id for _, _, rule_id in SEX_RULES],
)
def test_coarsen_sex_follows_the_rule_table(raw: object, expected: tuple[str, bool]) -> None:
    """Any spelling of female/male becomes F/M; anything else is U, recognised only if missing."""
    assert coarsen_sex(raw) == expected


BIRTH_RULES = [
    ("1984-03-02", (1984, True), "iso"),
    ("1984-03-02T10:15:00Z", (1984, True), "iso-datetime"),
    ("02/03/1984", (1984, True), "dd-mm-yyyy"),
    ("2/3/1984", (1984, True), "d-m-yyyy"),
    (" 02/03/1984 ", (1984, True), "padded"),
    ("29/02/2000", (2000, True), "leap-day"),
    ("1900-01-01", (1900, True), "earliest-year"),
    (f"{LATEST_YEAR}-12-31", (LATEST_YEAR, True), "latest-year"),
    ("31/02/1990", (None, False), "february-31st-is-invalid"),
    ("1990-02-30", (None, False), "iso-february-30th-is-invalid"),
    ("29/02/1990", (None, False), "non-leap-february-29th-is-invalid"),
    ("12/31/1990", (None, False), "month-day-order-is-invalid"),
    ("unknown", (None, False), "word-is-invalid"),
    ("1984", (None, False), "year-alone-is-invalid"),
    ("1899-12-31", (None, False), "before-1900-is-invalid"),
    (f"{LATEST_YEAR + 1}-01-01", (None, False), "after-latest-year-is-invalid"),
    (19840302, (None, False), "number-is-invalid"),
    ("", (None, True), "empty-is-missing"),
    ("  ", (None, True), "blank-is-missing"),
    (None, (None, True), "none-is-missing"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(raw, expected) for raw, expected, _ in BIRTH_RULES],
    ids=[rule_id for _, _, rule_id in BIRTH_RULES],
)
def test_birth_year_follows_the_rule_table(raw: object, expected: tuple[int | None, bool]) -> None:
    """An ISO or dd/mm/yyyy date in 1900..latest_year gives its year; missing is valid, no year."""
    assert birth_year(raw, latest_year=LATEST_YEAR) == expected
