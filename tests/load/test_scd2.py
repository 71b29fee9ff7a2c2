"""SCD type 2 history over successive snapshots: exact rows and as-of counts, on both backends."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from evergreen_etl.errors import SnapshotOrderError
from evergreen_etl.privacy.pseudonym import PseudonymKey, normalise_email
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import LoadSnapshot, user

S1 = [
    user("alice@example.com", "AB1 1AA"),
    user("bob@example.com", "ab21aa"),
    user("carol@example.com", "CV4 9RE"),
    user("dave@example.com", "NOT A POSTCODE"),
    user("erin@example.com", "AB1 1AB"),
    user(" ERIN@example.com", "AB3 1AB"),  # duplicate: the last record wins
]
S2 = [
    user("alice@example.com", "AB2 1AB"),  # moves
    user("bob@example.com", "AB2 1AA"),  # unchanged (other spelling)
    # carol leaves
    user("dave@example.com", "NOT A POSTCODE"),  # unchanged, still unknown
    user("erin@example.com", "AB3 1AB"),
    user("frank@example.com", "CV4 9RE"),  # new
]
S3 = [
    user("alice@example.com", "ab1 1aa"),  # moves back
    user("bob@example.com", "AB2 1AA"),
    user("carol@example.com", "CV4 9RE"),  # returns
    user("dave@example.com", "AB1 1AB"),  # now located
    user("erin@example.com", "AB3 1AB"),
    # frank leaves
]
S4 = S3  # the same content, a later snapshot: nothing changes
DATES = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]


def _id(email: str) -> str:
    normalised = normalise_email(email)
    assert normalised is not None
    return PseudonymKey.from_text(TEST_KEY).pseudonymiser()(normalised)


def history(engine: Engine) -> dict[str, list[tuple[str | None, str, str | None, bool]]]:
    """Every user's rows as (postcode, valid_from, valid_to, is_current), keyed by email."""
    names = {_id(f"{n}@example.com"): n for n in ("alice", "bob", "carol", "dave", "erin", "frank")}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT u.pseudonym, a.postcode, a.valid_from, a.valid_to, a.is_current "
                "FROM user_address a JOIN dim_user u ON u.user_id = a.user_id "
                "ORDER BY a.valid_from, a.address_id"
            )
        ).all()
    out: dict[str, list[tuple[str | None, str, str | None, bool]]] = {}
    for pseudonym, postcode, start, end, current in rows:
        start_s = str(start)[:10]
        end_s = None if end is None else str(end)[:10]
        out.setdefault(names[pseudonym], []).append((postcode, start_s, end_s, bool(current)))
    return out


@pytest.fixture
def four_snapshots(load_snapshot: LoadSnapshot) -> list[object]:
    """The four scenario snapshots, loaded in order."""
    return [load_snapshot(s, d) for s, d in zip([S1, S2, S3, S4], DATES, strict=True)]


def test_history_rows_are_exact(four_snapshots: list[object], engine: Engine) -> None:
    """New, move, move back, leave, return, unchanged, duplicate and invalid give exact rows."""
    assert history(engine) == {
        "alice": [
            ("AB1 1AA", "2024-01-01", "2024-02-01", False),
            ("AB2 1AB", "2024-02-01", "2024-03-01", False),
            ("AB1 1AA", "2024-03-01", None, True),
        ],
        "bob": [("AB2 1AA", "2024-01-01", None, True)],
        "carol": [
            ("CV4 9RE", "2024-01-01", "2024-02-01", False),
            ("CV4 9RE", "2024-03-01", None, True),
        ],
        "dave": [
            (None, "2024-01-01", "2024-03-01", False),
            ("AB1 1AB", "2024-03-01", None, True),
        ],
        "erin": [("AB3 1AB", "2024-01-01", None, True)],
        "frank": [("CV4 9RE", "2024-02-01", "2024-03-01", False)],
    }


def test_load_counts_each_case(load_snapshot: LoadSnapshot) -> None:
    """Each load reports new, returned, moved, left, unchanged and duplicate users."""
    first = load_snapshot(S1, DATES[0])
    assert (first.new, first.duplicates, first.users_in_snapshot) == (5, 1, 5)
    second = load_snapshot(S2, DATES[1])
    assert (second.new, second.moved, second.left, second.unchanged) == (1, 1, 1, 3)
    third = load_snapshot(S3, DATES[2])
    assert (third.returned, third.moved, third.left, third.unchanged) == (1, 2, 1, 2)
    fourth = load_snapshot(S4, DATES[3])
    assert (fourth.new, fourth.moved, fourth.left, fourth.unchanged) == (0, 0, 0, 5)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2023-12-31", {}),
        (
            "2024-01-01",
            {"E06000001": 1, "E06000002": 1, "E08000026": 1, "E06000005": 1, "UNKNOWN": 1},
        ),
        (
            "2024-02-15",
            {"E06000003": 1, "E06000002": 1, "E06000005": 1, "E08000026": 1, "UNKNOWN": 1},
        ),
        ("2024-03-01", {"E06000001": 2, "E06000002": 1, "E06000005": 1, "E08000026": 1}),
        ("2024-05-01", {"E06000001": 2, "E06000002": 1, "E06000005": 1, "E08000026": 1}),
    ],
    ids=["before-first", "first-day", "mid-february", "march", "after-last"],
)
def test_report_as_of_each_date(
    four_snapshots: list[object],
    settings: Settings,
    engine: Engine,
    as_of: str,
    expected: dict[str, int],
) -> None:
    """`report --as-of` counts the users whose row was valid at that time, half-open intervals."""
    result = report(settings, as_of=datetime.fromisoformat(as_of), engine=engine)
    assert {row.local_authority_code: row.users for row in result.rows} == expected
    assert result.total == sum(expected.values())


def test_same_snapshot_twice_changes_nothing(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """Loading the same snapshot at the same time again is a no-op."""
    load_snapshot(S1, DATES[0])
    before = history(engine)
    again = load_snapshot(S1, DATES[0])
    assert again.skipped
    assert history(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM etl_run")).scalar_one() == 1


def test_older_snapshot_is_merged_in_its_place(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """A snapshot older than the newest loaded one is merged in its place in time: the history
    is the one loading the snapshots in time order gives (see tests/properties)."""
    load_snapshot(S1, DATES[0])
    load_snapshot(S3, DATES[2])
    late = load_snapshot(S2, DATES[1])
    assert not late.skipped
    # Counted against the snapshot before it: alice moved, carol left, frank is new.
    assert (late.new, late.moved, late.left, late.unchanged) == (1, 1, 1, 3)
    assert late.replayed > 0
    assert history(engine)["alice"] == [
        ("AB1 1AA", DATES[0], DATES[1], False),
        ("AB2 1AB", DATES[1], DATES[2], False),
        ("AB1 1AA", DATES[2], None, True),
    ]
    assert history(engine)["frank"] == [("CV4 9RE", DATES[1], DATES[2], False)]


def test_different_snapshot_at_same_time_is_refused(load_snapshot: LoadSnapshot) -> None:
    """Another snapshot at a time already loaded is refused (exit 5) unless replace is asked."""
    load_snapshot(S1, DATES[0])
    with pytest.raises(SnapshotOrderError, match="already loaded") as refused:
        load_snapshot(S2, DATES[0])
    assert refused.value.exit_code == 5
    assert refused.value.hint is not None
    assert "--replace" in refused.value.hint


def test_database_rejects_two_current_rows(four_snapshots: list[object], engine: Engine) -> None:
    """The partial unique index allows one current row per user."""
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_address (user_id, postcode, postcode_kind, local_authority_code,"
                " location_status, valid_from, valid_to, is_current, opened_run_id)"
                " SELECT user_id, postcode, postcode_kind, local_authority_code, location_status,"
                " valid_from, valid_to, is_current, opened_run_id FROM user_address"
                " WHERE is_current AND user_id = (SELECT MIN(user_id) FROM user_address)"
            )
        )


def test_absent_users_kept_when_asked(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """With absent='keep', a user missing from a snapshot keeps the current row."""
    load_snapshot(S1, DATES[0])
    result = load_snapshot(S2, DATES[1], absent="keep")
    assert result.left == 0
    assert history(engine)["carol"] == [("CV4 9RE", "2024-01-01", None, True)]


def test_intervals_never_overlap(four_snapshots: list[object], engine: Engine) -> None:
    """Each user's rows are ordered, contiguous or gapped, never overlapping; one at most open."""
    for rows in history(engine).values():
        for (_, _, end, _), (_, start, _, _) in itertools.pairwise(rows):
            assert end is not None
            assert end <= start
        assert sum(current for *_, current in rows) <= 1


def test_user_ids_are_dense_and_numbered_in_pseudonym_order_per_load(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """New users get the next ids after every known one; none are skipped.

    On SQLite they come from the staging table's key sequence, in pseudonym order (the order
    the merge reads them in); on PostgreSQL from dim_user's own sequence, in no set order.
    After a load, a plain INSERT still gets a fresh id on both.
    """
    first = [user(f"first{i}@example.com", "AB1 1AA") for i in range(7)]
    second = [*first[:3], *(user(f"second{i}@example.com", "CV4 9RE") for i in range(5))]
    load_snapshot(first, "2024-01-01")
    load_snapshot(second, "2024-02-01")

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, pseudonym, first_run_id FROM dim_user ORDER BY user_id")
        ).all()
    assert [row.user_id for row in rows] == list(range(1, 13))
    if engine.dialect.name == "sqlite":
        for run_id in (1, 2):
            pseudonyms = [row.pseudonym for row in rows if row.first_run_id == run_id]
            assert pseudonyms == sorted(pseudonyms)
    assert {row.pseudonym for row in rows if row.first_run_id == 2} == {
        _id(f"second{i}@example.com") for i in range(5)
    }
    with engine.begin() as conn:
        fresh = conn.execute(
            text(
                "INSERT INTO dim_user (pseudonym, sex, first_run_id) "
                "VALUES ('x', 'U', 1) RETURNING user_id"
            )
        ).scalar_one()
    assert fresh == 13


def test_sex_and_birth_year_are_overwritten_and_counted_only_when_they_change(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Type 1 attributes: a changed sex or birth year overwrites dim_user and is counted once.

    New users are not counted (they have no earlier values), nor are users whose values stay.
    """
    first = load_snapshot(
        [
            user("alice@example.com", "AB1 1AA", sex="F", dateOfBirth="1980-01-01"),
            user("bob@example.com", "AB1 1AA", sex="M", dateOfBirth="1970-01-01"),
            user("carol@example.com", "AB1 1AA", sex="F", dateOfBirth="1990-01-01"),
        ],
        "2024-01-01",
    )
    second = load_snapshot(
        [
            user("alice@example.com", "AB1 1AA", sex="F", dateOfBirth="1981-01-01"),  # year
            user("bob@example.com", "AB1 1AA", sex="female", dateOfBirth="1970-06-30"),  # sex
            user("carol@example.com", "AB1 1AA", sex="F", dateOfBirth="1990-12-31"),  # same
            user("dave@example.com", "AB1 1AA", sex="M", dateOfBirth="2000-01-01"),  # new
        ],
        "2024-02-01",
    )

    assert first.attributes_updated == 0
    assert second.attributes_updated == 2
    assert (second.new, second.unchanged) == (1, 3)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT pseudonym, sex, birth_year FROM dim_user")).all()
    stored = {pseudonym: (sex, year) for pseudonym, sex, year in rows}
    assert stored == {
        _id("alice@example.com"): ("F", 1981),
        _id("bob@example.com"): ("F", 1970),
        _id("carol@example.com"): ("F", 1990),
        _id("dave@example.com"): ("M", 2000),
    }
