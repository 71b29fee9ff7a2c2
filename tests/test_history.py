"""History you can trust and repair: undo, the run list, revisions and "as known at"."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.history import list_history, render_history, revisions, undo
from evergreen_etl.report import analysis, report
from evergreen_etl.report.render import render
from evergreen_etl.settings import Settings
from support.sources import LoadSnapshot, user

S1 = [
    user("alice@example.com", "AB1 1AA"),
    user("bob@example.com", "AB2 1AA"),
    user("carol@example.com", "CV4 9RE"),
]
S2 = [
    user("alice@example.com", "AB2 1AB"),  # moves
    user("bob@example.com", "AB2 1AA"),
    user("dave@example.com", "CV4 9RE"),  # new; carol leaves
]
S3 = [
    user("alice@example.com", "AB2 1AB"),
    user("bob@example.com", "CV4 9RE"),  # moves
    user("carol@example.com", "CV4 9RE"),  # returns
    user("dave@example.com", "CV4 9RE"),
]
DATES = ["2024-01-01", "2024-02-01", "2024-03-01"]


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT u.pseudonym, a.postcode, a.valid_from, a.valid_to, a.is_current "
                    "FROM user_address a JOIN dim_user u ON u.user_id = a.user_id "
                    "ORDER BY u.pseudonym, a.valid_from"
                )
            )
        ]


def _empty(engine: Engine) -> None:
    """Remove every load, to load snapshots afresh into the same warehouse."""
    with engine.begin() as conn:
        for table in (
            "snapshot_ledger",
            "user_address_retired",
            "user_address",
            "user_attributes_retired",
            "dim_user",
        ):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM etl_run"))


def _json(settings: Settings, engine: Engine, at: str, **options: Any) -> str:
    found = report(settings, as_of=datetime.fromisoformat(at), engine=engine, **options)
    return render(found, "json")


def test_undo_gives_the_history_as_if_never_loaded(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine, tmp_path: Any
) -> None:
    """After undoing run N, every row equals what loading the others alone gives."""
    load_snapshot(S1, DATES[0])
    middle = load_snapshot(S2, DATES[1])
    load_snapshot(S3, DATES[2])
    assert middle.run_id is not None
    result = undo(settings, middle.run_id, engine=engine)
    assert result.undo_run_id is not None
    assert result.users > 0
    undone = _rows(engine)
    _empty(engine)  # the same warehouse, S2 never loaded
    load_snapshot(S1, DATES[0])
    load_snapshot(S3, DATES[2])
    assert undone == _rows(engine)


def test_undo_twice_changes_nothing(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Undoing an undone run is a no-op: no new run, no row changed."""
    load_snapshot(S1, DATES[0])
    second = load_snapshot(S2, DATES[1])
    assert second.run_id is not None
    undo(settings, second.run_id, engine=engine)
    before = _rows(engine), len(list_history(settings, engine=engine))
    again = undo(settings, second.run_id, engine=engine)
    assert again.undo_run_id is None
    assert (_rows(engine), len(list_history(settings, engine=engine))) == before


def test_undo_of_an_unknown_run_is_a_configuration_error(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """An unknown run id is refused with exit 2 and changes nothing."""
    load_snapshot(S1, DATES[0])
    before = _rows(engine)
    with pytest.raises(ConfigurationError, match="no such run") as refused:
        undo(settings, 99, engine=engine)
    assert refused.value.exit_code == 2
    assert _rows(engine) == before


def test_undo_then_redo_gives_the_original_history(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Undoing a load and loading the same snapshot again restores the history exactly."""
    load_snapshot(S1, DATES[0])
    second = load_snapshot(S2, DATES[1])
    load_snapshot(S3, DATES[2])
    original = _rows(engine)
    assert second.run_id is not None
    undo(settings, second.run_id, engine=engine)
    assert _rows(engine) != original
    again = load_snapshot(S2, DATES[1])
    assert not again.skipped
    assert _rows(engine) == original


def test_replace_corrects_a_loaded_snapshot(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """--replace takes the loaded snapshot out and merges the new one at its time."""
    load_snapshot(S1, DATES[0])
    wrong = load_snapshot(S1[:1], DATES[1])  # a truncated export: bob and carol "left"
    load_snapshot(S3, DATES[2])
    fixed = load_snapshot(S2, DATES[1], replace=True)
    assert fixed.replaced_run_id == wrong.run_id
    corrected = _rows(engine)
    statuses = {e.run_id: e.status for e in list_history(settings, engine=engine)}
    assert statuses[wrong.run_id] == "undone"
    _empty(engine)
    for records, at in ((S1, DATES[0]), (S2, DATES[1]), (S3, DATES[2])):
        load_snapshot(records, at)
    assert corrected == _rows(engine)


def test_as_known_at_reproduces_a_report_printed_before_a_late_load(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """The report printed after run R is printed again, byte for byte, as known at R."""
    load_snapshot(S1, DATES[0])
    newest = load_snapshot(S3, DATES[2])
    printed = _json(settings, engine, "2024-02-15")
    load_snapshot(S2, DATES[1])  # late: changes the figures at 2024-02-15
    assert _json(settings, engine, "2024-02-15") != printed
    assert _json(settings, engine, "2024-02-15", as_known_at=newest.run_id) == printed


def test_as_known_at_reproduces_a_report_printed_before_an_undo(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """After an undo, the figures as known before it are still there."""
    load_snapshot(S1, DATES[0])
    second = load_snapshot(S2, DATES[1])
    assert second.run_id is not None
    printed = _json(settings, engine, DATES[1])
    undo(settings, second.run_id, engine=engine)
    assert _json(settings, engine, DATES[1]) != printed
    assert _json(settings, engine, DATES[1], as_known_at=second.run_id) == printed


# S1 with alice's sex and birth year corrected in a later export, and bob's birth year.
S1_CORRECTED = [
    user("alice@example.com", "AB1 1AA", sex="M", dateOfBirth="1950-06-01"),
    user("bob@example.com", "AB2 1AA", dateOfBirth="2010-01-01"),
    user("carol@example.com", "CV4 9RE"),
]


def _sex_age(settings: Settings, engine: Engine, at: str, **options: Any) -> str:
    found = analysis(
        settings, "sex-age", as_of=datetime.fromisoformat(at), engine=engine, **options
    )
    return render(found, "csv")


def test_as_known_at_reads_sex_and_birth_year_as_known_then(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Sex and birth year overwritten by a later load, a late load and an undo are read, as
    known at an earlier run, as they were then: the sex and age report byte for byte."""
    first = load_snapshot(S1, DATES[0])
    printed_first = _sex_age(settings, engine, DATES[2])
    newer = load_snapshot(S1_CORRECTED, DATES[2])  # overwrites alice's and bob's attributes
    printed_newer = _sex_age(settings, engine, DATES[2])
    assert printed_newer != printed_first
    late = load_snapshot(S1, DATES[1])  # late: no later snapshot lacks them, nothing changes
    assert late.run_id is not None
    assert newer.run_id is not None
    undo(settings, newer.run_id, engine=engine)  # back to S1's values
    assert _sex_age(settings, engine, DATES[2]) == printed_first

    assert _sex_age(settings, engine, DATES[2], as_known_at=first.run_id) == printed_first
    assert _sex_age(settings, engine, DATES[2], as_known_at=newer.run_id) == printed_newer
    assert _sex_age(settings, engine, DATES[2], as_known_at=late.run_id) == printed_newer


def test_a_run_keeps_the_attributes_it_overwrites(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """The values a load overwrites are kept once each, with that load, without PII."""
    load_snapshot(S1, DATES[0])
    newer = load_snapshot(S1_CORRECTED, DATES[1])
    with engine.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT retired_run_id, sex, birth_year FROM user_attributes_retired "
                "ORDER BY birth_year"
            )
        ).all()
    assert [tuple(row) for row in kept] == [(newer.run_id, "F", 1984), (newer.run_id, "F", 1984)]


def test_as_known_at_a_time_reads_the_last_run_finished_by_then(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """A timestamp names the last run finished at or before it."""
    first = load_snapshot(S1, DATES[0])
    printed = _json(settings, engine, DATES[1])
    with engine.connect() as conn:
        finished = conn.execute(
            text("SELECT finished_at FROM etl_run WHERE run_id = :r"), {"r": first.run_id}
        ).scalar_one()
    load_snapshot(S2, DATES[1])
    moment = finished if isinstance(finished, datetime) else datetime.fromisoformat(finished)
    assert _json(settings, engine, DATES[1], as_known_at=moment) == printed


def test_as_known_at_before_any_run_is_a_configuration_error(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """A run id that does not exist, or a time before the first load, is exit 2."""
    load_snapshot(S1, DATES[0])
    with pytest.raises(ConfigurationError, match="no finished run 7"):
        report(settings, engine=engine, as_known_at=7)
    with pytest.raises(ConfigurationError, match="no run had finished"):
        report(settings, engine=engine, as_known_at=datetime(2000, 1, 1))


def test_as_known_at_applies_to_every_analysis(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Analyses by run (joiners and leavers) read the runs as known then too."""
    first = load_snapshot(S1, DATES[0])
    load_snapshot(S2, DATES[1])
    then = analysis(settings, "joiners-leavers", engine=engine, as_known_at=first.run_id)
    assert [row.run_id for row in then.rows] == [first.run_id]


def test_revisions_compare_then_and_now(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Each authority's count at T as known after RUN_ID, now, and the difference."""
    load_snapshot(S1, DATES[0])
    newest = load_snapshot(S3, DATES[2])
    assert newest.run_id is not None
    load_snapshot(S2, DATES[1])
    at = datetime(2024, 2, 15)
    result = revisions(settings, as_of=at, since=newest.run_id, engine=engine)
    then = report(settings, as_of=at, engine=engine, as_known_at=newest.run_id)
    now = report(settings, as_of=at, engine=engine)
    for row in result.rows:
        assert row.difference == row.known_now - row.known_then
    assert sum(r.known_then for r in result.rows) == then.total
    assert sum(r.known_now for r in result.rows) == now.total
    assert any(r.difference for r in result.rows)


def test_history_lists_loads_and_undos(
    settings: Settings, load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """Every load and undo is listed with its as-of, status and the run it undid."""
    load_snapshot(S1, DATES[0])
    second = load_snapshot(S2, DATES[1])
    assert second.run_id is not None
    done = undo(settings, second.run_id, engine=engine)
    entries = list_history(settings, engine=engine)
    assert [(e.kind, e.status) for e in entries] == [
        ("load", "succeeded"),
        ("load", "undone"),
        ("undo", "undo"),
    ]
    assert entries[1].undone_by == done.undo_run_id
    assert entries[2].undoes == second.run_id
    assert entries[1].as_of - entries[0].as_of == timedelta(days=31)
    assert "undone" in render_history(entries, "table")
    assert render_history(entries, "csv").splitlines()[0].startswith("run_id,kind,as_of")
