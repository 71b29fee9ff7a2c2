"""Hostile records: one bad value is one rejected or cleaned record, never a failed run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.settings import Settings

# Legal JSON text whose strings decode to lone surrogates, which no UTF-8 encoder accepts.
LONE = "\\ud800"
GOOD = '"email": "ok@example.com"'
FIELDS = {
    "email": f'{{"email": "a{LONE}@example.com"}}',
    "email key": f'{{"email{LONE}": "x@example.com", {GOOD}}}',
    "sex": f'{{{GOOD}, "sex": "f{LONE}"}}',
    "dateOfBirth": f'{{{GOOD}, "dateOfBirth": "1980-01-0{LONE}"}}',
    "postcode": f'{{{GOOD}, "address": {{"postcode": "AB1 {LONE}QF"}}}}',
    "name": f'{{{GOOD}, "firstName": "{LONE}", "address": {{"street": "{LONE}"}}}}',
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_lone_surrogate_in_any_field_is_handled_per_record(
    settings: Settings, tmp_path: Path, field: str
) -> None:
    """A lone surrogate in any string field rejects or cleans that record; the run goes on."""
    users = tmp_path / "users.json"
    users.write_text(FIELDS[field] + '\n{"email": "fine@example.com"}\n', encoding="ascii")

    result = anonymise(settings, users_path=users, progress=False)

    assert result.records_read == 2
    assert result.users_staged + result.rejected == 2
    with result.staged_path.open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == result.users_staged


def test_lone_surrogate_email_is_rejected_as_invalid(settings: Settings, tmp_path: Path) -> None:
    """An email holding a lone surrogate cannot be keyed: it is rejected as email_invalid."""
    users = tmp_path / "users.json"
    users.write_text(FIELDS["email"] + "\n", encoding="ascii")

    result = anonymise(settings, users_path=users, progress=False)

    assert result.rejects_by_reason == {"email_invalid": 1}
