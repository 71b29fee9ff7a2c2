"""The re-identification risk report: k-anonymity on crafted data with known classes."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from sqlalchemy import Engine

from evergreen_etl.privacy.risk import PRECISIONS, SEQUENCE, measure_risk, risk_report
from evergreen_etl.settings import Settings
from support.sources import LoadSnapshot, user

# AB1 1AA and AB1 1AB are both in E06000001 (district AB1).
RECORDS = [
    # Three women born 1984 in AB1: one class of 3 on both quasi-identifier sets.
    user("w1@example.com", "AB1 1AA", sex="F", dateOfBirth="1984-03-02"),
    user("w2@example.com", "AB1 1AB", sex="F", dateOfBirth="1984-11-30"),
    user("w3@example.com", "AB1 1AA", sex="female", dateOfBirth="02/07/1984"),
    # One man born 1950 in AB1: alone in his class on both sets.
    user("m1@example.com", "AB1 1AA", sex="M", dateOfBirth="1950-01-01"),
    # Two men born 1990 and 1991 in CV4: one class of 2 by age band, two of 1 by birth year.
    user("m2@example.com", "CV4 9RE", sex="M", dateOfBirth="1990-05-05"),
    user("m3@example.com", "CV4 9RE", sex="M", dateOfBirth="1991-05-05"),
]


def test_k_anonymity_on_known_classes(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """Smallest k, users below the threshold and unique users match the crafted classes."""
    load_snapshot(RECORDS, "2024-01-01")
    with engine.connect() as conn:
        risk = measure_risk(conn, as_of=datetime(2024, 6, 1), threshold=3)
    by_set = {row.quasi_identifiers: row for row in risk.rows}
    authority = by_set["local authority x age band x sex"]
    assert (authority.users, authority.classes, authority.smallest_k) == (6, 3, 1)
    assert (authority.users_below_threshold, authority.unique_users) == (3, 1)
    district = by_set["postcode district x birth year x sex"]
    assert (district.users, district.classes, district.smallest_k) == (6, 4, 1)
    assert (district.users_below_threshold, district.unique_users) == (3, 3)
    assert district.unique_share == 0.5
    assert risk.smallest_k == 1


def test_risk_before_any_load_is_empty(engine: Engine) -> None:
    """With no users, there are no classes and no smallest k."""
    with engine.connect() as conn:
        risk = measure_risk(conn, as_of=datetime(2024, 6, 1))
    assert all(row.users == 0 and row.smallest_k is None for row in risk.rows)
    assert risk.smallest_k is None


def test_load_fails_below_configured_k_and_rolls_back(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """With k-policy fail, a load that leaves a class smaller than min-k is refused whole."""
    from sqlalchemy import text

    from evergreen_etl.errors import DataQualityError
    from evergreen_etl.privacy.risk import KAnonymityGuard

    with pytest.raises(DataQualityError, match="below the configured 2"):
        load_snapshot(RECORDS, "2024-01-01", k_guard=KAnonymityGuard(2, "fail"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM user_address")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM etl_run")).scalar_one() == 0


def test_load_warns_below_configured_k_and_records_risk(
    load_snapshot: LoadSnapshot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With k-policy warn, the load goes ahead, logs a warning and reports the smallest k."""
    from evergreen_etl.privacy.risk import KAnonymityGuard

    caplog.set_level(logging.WARNING, logger="evergreen_etl")
    monkeypatch.setattr(logging.getLogger("evergreen_etl"), "propagate", True)
    result = load_snapshot(RECORDS, "2024-01-01", k_guard=KAnonymityGuard(2, "warn"))
    assert result.smallest_k == 1
    assert result.new == 6
    assert any("k-anonymity" in r.getMessage() for r in caplog.records)


def test_load_passes_when_k_is_met(load_snapshot: LoadSnapshot) -> None:
    """A threshold the data meets changes nothing in the load."""
    from evergreen_etl.privacy.risk import KAnonymityGuard

    records = [
        user(f"f{i}@example.com", "AB1 1AA", sex="F", dateOfBirth="1984-01-01") for i in range(3)
    ]
    result = load_snapshot(records, "2024-01-01", k_guard=KAnonymityGuard(3, "fail"))
    assert (result.new, result.smallest_k) == (3, 3)


# Three women born 1984 in sector AB1 1: two at AB1 1AA, one at AB1 1AB, who then moves.
AT_PRECISION = [
    user("p1@example.com", "AB1 1AA", sex="F", dateOfBirth="1984-03-02"),
    user("p2@example.com", "AB1 1AB", sex="F", dateOfBirth="1984-04-02"),
    user("p3@example.com", "AB1 1AA", sex="F", dateOfBirth="1984-05-02"),
]
MOVED = [AT_PRECISION[0], user("p2@example.com", "AB2 1AA", sex="F"), AT_PRECISION[2]]


def test_risk_at_the_warehouse_precision(
    load_snapshot: LoadSnapshot, engine: Engine, settings: Settings
) -> None:
    """The report measures postcode x birth year x sex at each precision and each user's
    sequence of postcodes, and recommends the finest precision with few enough unique users."""
    load_snapshot(AT_PRECISION, "2024-01-01")
    load_snapshot([*MOVED[:1], {**MOVED[1], "dateOfBirth": "1984-04-02"}, *MOVED[2:]], "2024-02-01")
    risk = risk_report(settings, as_of=datetime(2024, 1, 15), threshold=2, max_unique_share=0.1)
    by_set = {row.quasi_identifiers: row for row in risk.rows}
    assert by_set[PRECISIONS["postcode"]].unique_users == 1  # p2 alone at AB1 1AB
    assert by_set[PRECISIONS["sector"]].unique_users == 0  # all three in AB1 1
    assert risk.recommended_precision == "sector"
    assert "--location-precision sector" in (risk.note or "")
    later = risk_report(settings, as_of=datetime(2024, 3, 1), threshold=2)
    sequence = {row.quasi_identifiers: row for row in later.rows}[SEQUENCE]
    # p1 and p3: [AB1 1AA]; p2: [AB1 1AB, AB2 1AA], alone.
    assert (sequence.users, sequence.classes, sequence.unique_users) == (3, 2, 1)


def test_no_precision_is_recommended_when_none_is_safe(
    load_snapshot: LoadSnapshot, engine: Engine, settings: Settings
) -> None:
    """When even authorities leave too many unique users, the report says so."""
    load_snapshot(RECORDS, "2024-01-01")
    risk = risk_report(settings, as_of=datetime(2024, 6, 1), max_unique_share=0.01)
    assert risk.recommended_precision is None
    assert "No precision" in (risk.note or "")
