"""The ``anonymise`` stage: staged pseudonymised users, PII-free rejects, summary and guards."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import DataQualityError
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import user, write_users

STAGED_FILES = {"users.csv", "rejects.csv", "summary.json"}

# Six records, written as NDJSON so that a record's line is its position.
RECORDS: list[dict[str, Any]] = [
    user("Jane.Doe@Example.com ", "ab1 3qf", sex="Female", dateOfBirth="02/03/1984"),
    user("john@example.com", "CA3 ", sex="m", dateOfBirth="1970-01-01"),
    user("alex@example.com", None, sex="Other"),
    user("not-an-email", "AB1 3QF"),
    user("sam@example.com", "NOT KNOWN", sex=""),
    user(None, "AB1 3QF"),
]


@pytest.fixture
def users_path(tmp_path: Path) -> Path:
    """The six sample records as NDJSON."""
    return write_users(tmp_path / "users.json", RECORDS, style="ndjson")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _staged_bytes(settings: Settings) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in settings.staged_dir.iterdir()}


def test_staged_users_have_the_documented_columns(settings: Settings, users_path: Path) -> None:
    """users.csv holds position, pseudonym, sex, birth year, postcode, its kind, its token and
    the record key (cell key method)."""
    result = anonymise(settings, users_path=users_path, progress=False)

    with result.staged_path.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [
        "position",
        "pseudonym",
        "sex",
        "birth_year",
        "postcode",
        "postcode_kind",
        "postcode_token",
        "record_key",
    ]


def test_staged_users_are_pseudonymised_and_coarsened(settings: Settings, users_path: Path) -> None:
    """Each keyable record becomes its keyed pseudonym, F/M/U, birth year and canonical postcode."""
    key = PseudonymKey.from_text(TEST_KEY)
    pseudonym, token = key.pseudonymiser(), key.postcode_tokeniser()

    result = anonymise(settings, users_path=users_path, progress=False)

    rows = _rows(result.staged_path)
    # The record key is checked with the cell key method (tests/datadir/test_staged.py).
    assert [tuple(row.values())[:-1] for row in rows] == [
        ("1", pseudonym("jane.doe@example.com"), "F", "1984", "AB1 3QF", "full", token("AB1 3QF")),
        ("2", pseudonym("john@example.com"), "M", "1970", "CA3", "partial", token("CA3")),
        ("3", pseudonym("alex@example.com"), "U", "1984", "", "missing", ""),
        ("5", pseudonym("sam@example.com"), "U", "1984", "", "invalid", ""),
    ]


@pytest.mark.parametrize(
    "address",
    [None, {}, {"street": "1 Testing Lane"}, {"postcode": None}],
    ids=["null", "empty-object", "no-postcode", "null-postcode"],
)
def test_user_without_a_postcode_is_kept_with_kind_missing(
    settings: Settings, tmp_path: Path, address: dict[str, Any] | None
) -> None:
    """A keyable user whose address or postcode is absent is staged with kind missing."""
    record = {**user("a@example.com"), "address": address}
    path = write_users(tmp_path / "u.json", [record])

    result = anonymise(settings, users_path=path, progress=False)

    rows = _rows(result.staged_path)
    assert [(row["postcode"], row["postcode_kind"]) for row in rows] == [("", "missing")]


def test_rejects_record_position_line_reason_and_field(
    settings: Settings, users_path: Path
) -> None:
    """rejects.csv says where and why a record was refused: position, line, reason, field."""
    result = anonymise(settings, users_path=users_path, progress=False)

    assert _rows(result.rejects_path) == [
        {"position": "4", "line": "4", "reason": "email_invalid", "field": "email"},
        {"position": "6", "line": "6", "reason": "email_missing", "field": "email"},
    ]


def test_reject_line_is_the_first_line_of_a_pretty_printed_record(
    settings: Settings, tmp_path: Path
) -> None:
    """In the concatenated form a reject's line is where its record starts."""
    path = write_users(tmp_path / "u.json", [user("a@example.com"), user("bad")])
    second_record_line = json.dumps(user("a@example.com"), indent=2).count("\n") + 2

    result = anonymise(settings, users_path=path, progress=False)

    assert _rows(result.rejects_path)[0]["line"] == str(second_record_line)


def test_rejected_email_text_appears_in_no_staged_file(settings: Settings, tmp_path: Path) -> None:
    """The raw value of a rejected field is never written, in any staged file."""
    bad_email = "Rejected.Person(at)Example.org"
    path = write_users(tmp_path / "u.json", [user("ok@example.com"), user(bad_email)])

    anonymise(settings, users_path=path, progress=False)

    for name, content in _staged_bytes(settings).items():
        assert bad_email.lower().encode() not in content.lower(), name


def test_summary_counts_rejects_by_reason(settings: Settings, users_path: Path) -> None:
    """summary.json counts records read, staged and rejected, and the rejects by reason."""
    result = anonymise(settings, users_path=users_path, progress=False)

    summary = json.loads(result.summary_path.read_text())
    assert summary["records_read"] == 6
    assert summary["users_staged"] == 4
    assert summary["rejected"] == 2
    assert summary["rejects_by_reason"] == {"email_invalid": 1, "email_missing": 1}


def test_summary_counts_postcodes_by_kind(settings: Settings, users_path: Path) -> None:
    """summary.json counts the staged users' postcodes by kind, listing every kind."""
    result = anonymise(settings, users_path=users_path, progress=False)

    summary = json.loads(result.summary_path.read_text())
    assert summary["postcodes_by_kind"] == {"full": 1, "invalid": 1, "missing": 1, "partial": 1}


def test_summary_counts_unrecognised_sex_and_invalid_birth_dates(
    settings: Settings, tmp_path: Path
) -> None:
    """summary.json counts sex values it could not read and birth dates it could not parse."""
    records = [
        user("a@example.com", sex="Other", dateOfBirth="31/02/1990"),
        user("b@example.com", sex="", dateOfBirth=""),
        user("c@example.com", sex="M", dateOfBirth="unknown"),
    ]
    path = write_users(tmp_path / "u.json", records)

    result = anonymise(settings, users_path=path, progress=False)

    summary = json.loads(result.summary_path.read_text())
    assert (summary["sex_unrecognised"], summary["birth_date_invalid"]) == (1, 2)


def test_summary_matches_the_returned_result(settings: Settings, users_path: Path) -> None:
    """The summary file and the returned result carry the same counts and key id."""
    result = anonymise(settings, users_path=users_path, progress=False)

    summary = json.loads(result.summary_path.read_text())
    assert summary["key_id"] == result.key_id == PseudonymKey.from_text(TEST_KEY).key_id
    assert summary["input_format"] == result.input_format == "ndjson"
    assert summary["rejects_by_reason"] == result.rejects_by_reason


def test_reject_rate_above_the_limit_raises(settings: Settings, tmp_path: Path) -> None:
    """More rejects than max_reject_rate allows is a data-quality error."""
    path = write_users(tmp_path / "u.json", [user("ok@example.com"), user("bad"), user("bad2")])

    with pytest.raises(DataQualityError, match="2 of 3 records rejected"):
        anonymise(settings, users_path=path, max_reject_rate=0.5, progress=False)


def test_reject_rate_guard_leaves_previous_staged_files_untouched(
    settings: Settings, users_path: Path, tmp_path: Path
) -> None:
    """A run refused by the guard leaves the last good staged files byte-identical."""
    anonymise(settings, users_path=users_path, progress=False)
    before = _staged_bytes(settings)
    bad = write_users(tmp_path / "bad.json", [user("bad"), user("worse"), user("ok@example.com")])

    with pytest.raises(DataQualityError):
        anonymise(settings, users_path=bad, max_reject_rate=0.1, progress=False)

    assert _staged_bytes(settings) == before


def test_reject_rate_guard_leaves_no_temporary_files(
    settings: Settings, users_path: Path, tmp_path: Path
) -> None:
    """A run refused by the guard leaves only the previous staged files, no temp files."""
    anonymise(settings, users_path=users_path, progress=False)
    bad = write_users(tmp_path / "bad.json", [user("bad"), user("worse")])

    with pytest.raises(DataQualityError):
        anonymise(settings, users_path=bad, max_reject_rate=0.1, progress=False)

    assert {path.name for path in settings.staged_dir.iterdir()} == STAGED_FILES


def test_reject_rate_limit_comes_from_settings(tmp_path: Path) -> None:
    """Without an explicit limit, settings.max_reject_rate is the guard."""
    strict = Settings(data_dir=tmp_path / "data", pseudonym_key=TEST_KEY, max_reject_rate=0.0)
    path = write_users(tmp_path / "u.json", [user("ok@example.com"), user("bad")])

    with pytest.raises(DataQualityError):
        anonymise(strict, users_path=path, progress=False)


def test_empty_users_file_raises(settings: Settings, tmp_path: Path) -> None:
    """A users file with no records is a data-quality error, and nothing is staged."""
    path = tmp_path / "empty.json"
    path.write_text("\n")

    with pytest.raises(DataQualityError, match="no user records"):
        anonymise(settings, users_path=path, progress=False)

    assert not any(settings.staged_dir.iterdir())


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("[1, 2, 3]", id="numbers-in-array"),
        pytest.param("[[1], [2], [3]]", id="arrays-in-array"),
    ],
)
def test_records_that_are_not_objects_are_rejected(
    settings: Settings, tmp_path: Path, content: str
) -> None:
    """A record that is valid JSON but not an object is rejected as not_an_object."""
    path = tmp_path / "u.json"
    path.write_text(content)

    result = anonymise(settings, users_path=path, progress=False)

    assert result.rejects_by_reason == {"not_an_object": 3}
    assert [row["reason"] for row in _rows(result.rejects_path)] == ["not_an_object"] * 3


def test_staged_files_hold_no_direct_identifiers(settings: Settings, tmp_path: Path) -> None:
    """No email, given name, family name or street reaches a staged file, in any letter case."""
    records = [
        user(
            "wilhelmina.fotheringay@example.org",
            givenName="Wilhelmina",
            familyName="Fotheringay",
            address={"street": "42 Acacia Avenue", "postcode": "GU342TZ"},
        ),
        user(
            "Quentin.Blackwood@Example.net",
            givenName="Quentin",
            familyName="Blackwood",
            address={"street": "7 Larkspur Close", "postcode": "E3"},
        ),
        user(
            "octavia@invalid",
            givenName="Octavia",
            familyName="Pemberton",
            address={"street": "9 Juniper Row", "postcode": "B1  1AA"},
        ),
    ]
    path = write_users(tmp_path / "u.json", records)
    identifiers = [
        "wilhelmina.fotheringay@example.org",
        "quentin.blackwood@example.net",
        "octavia@invalid",
        "wilhelmina",
        "fotheringay",
        "quentin",
        "blackwood",
        "octavia",
        "pemberton",
        "acacia avenue",
        "larkspur close",
        "juniper row",
    ]

    anonymise(settings, users_path=path, progress=False)

    staged = _staged_bytes(settings)
    assert set(staged) == STAGED_FILES
    for name, content in staged.items():
        lowered = content.lower()
        leaked = [text for text in identifiers if text.encode() in lowered]
        assert leaked == [], name


def test_staged_files_hold_no_key_text(settings: Settings, users_path: Path) -> None:
    """The secret key never reaches a staged file (only its public key id does)."""
    anonymise(settings, users_path=users_path, progress=False)

    for name, content in _staged_bytes(settings).items():
        assert TEST_KEY.encode() not in content, name
