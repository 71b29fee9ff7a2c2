"""Re-location: a new lookup version locates every address period again, as a correction.

Lookup version 1 lacks the new-build postcode NB1 1AA, puts AB1 1AB in E06000001 and splits
the district AB2 between two authorities; version 2 has NB1 1AA (E06000002), puts AB1 1AB in
E06000003 and all of AB2 in E06000002. The people:

| person | January (v1)        | February (v1)   | March (v2)  |
|--------|---------------------|-----------------|-------------|
| ann    | NB1 1AA unmatched   | same            | same        |
| ben    | AB1 1AB E06000001   | AB1 1AA         | same        |
| cat    | AB2 (outward code)  | same            | same        |
| dan    | AB2 1AA E06000002   | same            | same        |
| eve    | TD1 1AA Taunton Deane (E07000190: today Somerset, exact) | same | same |
| fay    | S70 1AA Barnsley (E08000016: recoded in 2024, approximate) | same | same |
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from evergreen_etl.errors import WarehouseError
from evergreen_etl.history import undo as history_undo
from evergreen_etl.models import LoadResult
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.report import analysis
from evergreen_etl.report.catalog import run_sql
from evergreen_etl.report.lookups import lookup_versions
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.dialect import backend_for
from evergreen_etl.warehouse.lookup_versions import newest_version
from evergreen_etl.warehouse.migrate import downgrade, upgrade
from evergreen_etl.warehouse.relocate import relocate
from evergreen_etl.warehouse.sqlfiles import COUNTS
from support.sources import LoadSnapshot, nspl_row, user, write_lookup_zip

JAN, FEB, MAR = "2024-01-01", "2024-02-01", "2024-03-01"
IN_JAN, IN_MAR = datetime(2024, 1, 15), datetime(2024, 3, 15)
_COMMON = [
    ("AB1 1AA", "E06000001"),
    ("AB2 1AA", "E06000002"),
    ("TD1 1AA", "E07000190"),
    ("S70 1AA", "E08000016"),
]
VERSION_1 = [*_COMMON, ("AB1 1AB", "E06000001"), ("AB2 1AB", "E06000003")]
VERSION_2 = [*_COMMON, ("AB1 1AB", "E06000003"), ("AB2 1AB", "E06000002"), ("NB1 1AA", "E06000002")]
PEOPLE = {"ann": "NB1 1AA", "ben": "AB1 1AB", "cat": "AB2", "dan": "AB2 1AA", "eve": "TD1 1AA"}
PEOPLE["fay"] = "S70 1AA"


def snapshot(**moves: str) -> list[dict[str, Any]]:
    """Everyone at their January postcode, except as ``moves`` says."""
    return [user(f"{name}@example.com", moves.get(name, pc)) for name, pc in PEOPLE.items()]


def write_version(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write the lookup ``rows`` as the zip the loads read."""
    write_lookup_zip(path, [nspl_row(pcds, laua) for pcds, laua in rows])


def by_authority(settings: Settings, engine: Engine, as_of: datetime, **options: Any) -> dict:
    """{authority code: users} of the headline report."""
    result = analysis(settings, as_of=as_of, engine=engine, **options)
    return {row.local_authority_code: row.users for row in result.rows}


@pytest.fixture
def relocated(
    load_snapshot: LoadSnapshot, lookup_zip: Path
) -> tuple[LoadResult, LoadResult, LoadResult]:
    """January and February loaded with version 1, March with version 2."""
    write_version(lookup_zip, VERSION_1)
    january = load_snapshot(snapshot(), JAN)
    february = load_snapshot(snapshot(ben="AB1 1AA"), FEB)
    write_version(lookup_zip, VERSION_2)
    march = load_snapshot(snapshot(ben="AB1 1AA"), MAR)
    return january, february, march


def test_dry_run_counts_relocation_and_keeps_nothing(
    load_snapshot: LoadSnapshot, lookup_zip: Path, settings: Settings, engine: Engine
) -> None:
    """A dry run with a new lookup says whom it would re-locate; no version is recorded."""
    write_version(lookup_zip, VERSION_1)
    load_snapshot(snapshot(), JAN)
    write_version(lookup_zip, VERSION_2)
    dry = load_snapshot(snapshot(), FEB, dry_run=True)
    assert dry.dry_run
    assert dry.relocated == 3
    assert [v.version_id for v in lookup_versions(settings, engine=engine)] == [1]


def test_new_lookup_for_a_loaded_snapshot_is_a_version(
    load_snapshot: LoadSnapshot, lookup_zip: Path, settings: Settings, engine: Engine
) -> None:
    """The same snapshot again with a new lookup: the lookup becomes version 2 and re-locates."""
    write_version(lookup_zip, VERSION_1)
    load_snapshot(snapshot(), JAN)
    write_version(lookup_zip, VERSION_2)
    again = load_snapshot(snapshot(), JAN)
    assert again.skipped
    assert (again.lookup_version, again.relocated) == (2, 3)
    assert by_authority(settings, engine, IN_JAN) == LOOKUP_JAN


RECORDED_JAN = {"UNKNOWN": 2, "E06000001": 1, "E06000002": 1, "E07000190": 1, "E08000016": 1}
LOOKUP_JAN = {"E06000002": 3, "E06000003": 1, "E07000190": 1, "E08000016": 1}


def test_each_lookup_is_a_version(relocated: Any, settings: Settings, engine: Engine) -> None:
    """Two lookups loaded, two versions: the load that brought each, its rows, its month."""
    january, february, march = relocated
    versions = lookup_versions(settings, engine=engine)
    assert [(v.version_id, v.run_id, v.postcodes) for v in versions] == [
        (1, january.run_id, 6),
        (2, march.run_id, 7),
    ]
    assert (january.lookup_version, february.lookup_version, march.lookup_version) == (1, None, 2)
    # nspl_row's dointr is 198001: no month in the file name, so the newest introduction date.
    assert {(v.published, v.published_from) for v in versions} == {("1980-01", "data")}


def test_new_version_relocates_past_periods(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """On the lookup basis January is located with version 2: the new build is found, AB1 1AB
    follows its postcode, the outward code AB2 resolves."""
    assert by_authority(settings, engine, IN_JAN) == LOOKUP_JAN


def test_new_version_relocates_current_periods(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """Rows opened in January and still current count where version 2 puts them."""
    assert by_authority(settings, engine, IN_MAR) == {
        "E06000002": 3,
        "E06000001": 1,
        "E07000190": 1,
        "E08000016": 1,
    }


def test_supplied_is_the_lookup_basis(relocated: Any, settings: Settings, engine: Engine) -> None:
    """The old name 'supplied' gives the lookup basis."""
    assert by_authority(settings, engine, IN_JAN, boundaries="supplied") == LOOKUP_JAN


def test_recorded_basis_keeps_the_old_figures(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """--boundaries recorded gives each period as it was located when loaded."""
    assert by_authority(settings, engine, IN_JAN, boundaries="recorded") == RECORDED_JAN


def test_figures_as_known_before_the_new_version(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """The lookup version known before March's load reproduces the figures published then."""
    _, february, _ = relocated
    with engine.connect() as conn:
        assert newest_version(conn, known_at=datetime(2000, 1, 1)) is None
        versions = lookup_versions(settings, engine=engine)
        before = newest_version(conn, known_at=versions[1].loaded_at - timedelta(microseconds=1))
        assert newest_version(conn, by_run=february.run_id) == before
    assert before is not None
    assert before.version_id == 1
    parameters = {"as_of": IN_JAN, "boundaries": "lookup", "lookup_version": before.version_id}
    rows = run_sql(engine, "users_by_local_authority", parameters)
    assert {r["local_authority_code"]: r["users"] for r in rows} == RECORDED_JAN


def test_load_counts_relocated_users_by_reason(relocated: Any) -> None:
    """March's load re-located three users: one matched, one moved, one outward code."""
    january, february, march = relocated
    assert january.relocated == february.relocated == 0
    assert march.relocated == 3
    assert march.relocated_by_reason == {"matched": 1, "moved": 1, "partial": 1, "unmatched": 0}


def test_bases_reconcile_to_the_same_total(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """lookup, recorded and current count the same users, only in other authorities."""
    for as_of in (IN_JAN, IN_MAR):
        for name in ("local-authority", "region", "country", "sex-age"):
            totals = {
                basis: analysis(
                    settings, name, as_of=as_of, boundaries=basis, engine=engine
                ).totals["users"]
                for basis in ("lookup", "recorded", "current")
            }
            assert set(totals.values()) == {6}, (name, as_of, totals)


def test_current_basis_follows_the_successor_chain(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """Taunton Deane reaches Somerset through two mergers; Barnsley's recode is approximate."""
    result = analysis(settings, as_of=IN_JAN, boundaries="current", engine=engine)
    counts = {row.local_authority_code: row.users for row in result.rows}
    assert counts == {"E06000002": 3, "E06000003": 1, "E06000066": 1, "E08000038": 1}
    assert result.basis is not None
    assert (result.basis.basis, result.basis.lookup_version) == ("current", 2)
    assert result.basis.approximate == 1


def test_every_report_states_its_basis(relocated: Any, settings: Settings, engine: Engine) -> None:
    """The result and its title name the basis and the lookup version."""
    result = analysis(settings, "region", as_of=IN_JAN, boundaries="recorded", engine=engine)
    assert result.basis is not None
    assert (result.basis.basis, result.basis.lookup_version) == ("recorded", 2)
    assert result.title.endswith("(recorded boundaries, lookup version 2 (1980-01))")


def test_movers_on_the_lookup_basis(relocated: Any, settings: Settings, engine: Engine) -> None:
    """Ben moved from AB1 1AB to AB1 1AA: E06000001 -> E06000001 as recorded, a move from
    E06000003 once version 2 put AB1 1AB there."""
    period = {"from_time": IN_JAN, "to_time": datetime(2024, 2, 15)}
    recorded = analysis(settings, "movers", boundaries="recorded", engine=engine, **period)
    assert recorded.rows == []
    moves = analysis(settings, "movers", engine=engine, **period)
    assert {(r.local_authority_code, r.inflow, r.outflow) for r in moves.rows} == {
        ("E06000001", 1, 0),
        ("E06000003", 0, 1),
    }


def test_periods_without_a_full_postcode_keep_their_authority(
    load_snapshot: LoadSnapshot, lookup_zip: Path, settings: Settings, engine: Engine
) -> None:
    """At sector precision the new build cannot be located again; the report says so."""
    write_version(lookup_zip, VERSION_1)
    people = [user("ann@example.com", "NB1 1AA"), user("cat@example.com", "AB2")]
    load_snapshot(people, JAN, precision=LocationPrecision.SECTOR)
    write_version(lookup_zip, VERSION_2)
    march = load_snapshot(people, MAR, precision=LocationPrecision.SECTOR)
    assert march.relocated_by_reason["partial"] == 1
    assert march.relocated_by_reason["matched"] == 0
    result = analysis(settings, as_of=IN_JAN, engine=engine)
    assert {r.local_authority_code: r.users for r in result.rows} == {
        "UNKNOWN": 1,
        "E06000002": 1,
    }
    assert result.basis is not None
    assert result.basis.not_relocatable == 1


def test_coarser_precision_is_refused(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """A load at sector precision into a warehouse of full postcodes fails, nothing changed."""
    load_snapshot([user("ann@example.com", "AB1 1AA")], JAN)
    with pytest.raises(WarehouseError, match="would mix the two") as raised:
        load_snapshot([user("ann@example.com", "AB1 1AB")], FEB, precision="sector")
    assert raised.value.exit_code == 5
    assert _postcodes(engine) == ["AB1 1AA"]


def test_coarsen_rewrites_every_stored_postcode(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """--coarsen turns every stored postcode into its sector, then loads at sector precision."""
    load_snapshot([user("ann@example.com", "AB1 1AA"), user("ben@example.com", "AB2")], JAN)
    result = load_snapshot(
        [user("ann@example.com", "AB1 1AB"), user("ben@example.com", "AB2")],
        FEB,
        precision="sector",
        coarsen=True,
    )
    assert result.coarsened
    assert _postcodes(engine) == ["AB1 1", "AB1 1", "AB2"]
    load_snapshot([user("ann@example.com", "AB1 1AB")], MAR, precision="sector")


def test_coarsen_keeps_rows_older_than_tokens_unmoved(
    load_snapshot: LoadSnapshot, engine: Engine
) -> None:
    """A current row loaded before postcode tokens existed is given its token before its
    postcode is coarsened: the same postcode next time is no move."""
    people = [user("ann@example.com", "AB1 1AA"), user("ben@example.com", "AB2 1AA")]
    load_snapshot(people, JAN)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE user_address SET postcode_token = NULL")
    result = load_snapshot(people, FEB, precision="district", coarsen=True)
    assert (result.moved, result.unchanged) == (0, 2)
    assert _postcodes(engine) == ["AB1", "AB2"]


def test_finer_precision_is_always_refused(load_snapshot: LoadSnapshot, engine: Engine) -> None:
    """What was dropped cannot come back: postcode precision into a district warehouse fails."""
    load_snapshot([user("ann@example.com", "AB1 1AA")], JAN, precision="district")
    with pytest.raises(WarehouseError, match="finer"):
        load_snapshot([user("ann@example.com", "AB1 1AB")], FEB, precision="postcode", coarsen=True)
    assert _postcodes(engine) == ["AB1"]


def _postcodes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT postcode FROM user_address ORDER BY postcode")
        return [row[0] for row in rows]


def test_postcode_status_uses_the_newest_lookup(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """The new build is no longer 'unmatched' once version 2 knows it."""
    result = analysis(settings, "postcode-status", as_of=IN_JAN, engine=engine)
    statuses = {row.location_status: row.users for row in result.rows}
    assert statuses == {"full_matched": 5, "partial_resolved": 1}


def test_address_location_view(relocated: Any, engine: Engine) -> None:
    """v_address_location gives each period's recorded and newest-lookup authority."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT recorded_local_authority_code, local_authority_code, COUNT(*)"
            " FROM v_address_location"
            " WHERE recorded_local_authority_code <> local_authority_code"
            " GROUP BY recorded_local_authority_code, local_authority_code"
        ).all()
    assert sorted(tuple(row) for row in rows) == [
        ("E06000001", "E06000003", 1),
        ("UNKNOWN", "E06000002", 2),
    ]


@pytest.mark.parametrize("basis", ["lookup", "recorded", "current"])
def test_bases_under_disclosure_control(
    relocated: Any, settings: Settings, engine: Engine, basis: str
) -> None:
    """Each basis is published under a rule within its publication (complementary
    suppression included) and keeps the true total."""
    from evergreen_etl.report import MinCount

    result = analysis(
        settings, as_of=IN_JAN, boundaries=basis, disclosure=MinCount(2), engine=engine
    )
    assert result.basis is not None
    assert result.basis.basis == basis
    assert result.totals["users"] == 6


@pytest.mark.parametrize("name", ["local-authority", "region", "country"])
def test_reports_from_the_facts_equal_the_history_on_every_basis_and_knowledge(
    relocated: Any, settings: Settings, engine: Engine, name: str
) -> None:
    """The reports that read the periodic-snapshot facts (and what each lookup version's
    re-location changes in them) give the rows the address history gives, on every basis, at
    every time, as known after every run."""
    runs = [result.run_id for result in relocated]
    moments = [IN_JAN, datetime(2024, 2, 1), IN_MAR, datetime(2025, 1, 1)]
    for basis in ("lookup", "recorded", "current"):
        for run in [None, *runs]:
            for moment in moments:
                options: dict[str, Any] = {"boundaries": basis, "as_of": moment}
                facts = analysis(settings, name, engine=engine, as_known_at=run, **options)
                with _counts_from_the_history():
                    history = analysis(settings, name, engine=engine, as_known_at=run, **options)
                assert facts.rows == history.rows, (basis, run, moment)
                assert facts.basis == history.basis, (basis, run, moment)


@contextmanager
def _counts_from_the_history() -> Iterator[None]:
    """Every report reads its counts from the address history, not the facts."""
    with pytest.MonkeyPatch.context() as patch:
        # The package, not its report() function, which the name evergreen_etl.report is too.
        package = importlib.import_module("evergreen_etl.report")
        patch.setattr(package, "COUNTS", (COUNTS[0], COUNTS[0]))
        yield


@pytest.mark.parametrize("correction", ["late snapshot", "undo"])
def test_rows_a_correction_rederives_keep_their_relocation(
    relocated: Any,
    load_snapshot: LoadSnapshot,
    settings: Settings,
    engine: Engine,
    correction: str,
) -> None:
    """A late snapshot (and its undo) re-derives a user's rows as new rows: those that keep an
    address recorded under version 1 are still located with version 2, not as recorded.

    ann lives at the new build NB1 1AA (recorded UNKNOWN, version 2 locates it in E06000002);
    a late snapshot on 20 January puts her at AB1 1AA for a while, which splits her January row.
    """
    march = relocated[2]
    moments = (IN_JAN, datetime(2024, 1, 25), IN_MAR)
    with _counts_from_the_history():
        known = {moment: by_authority(settings, engine, moment) for moment in moments}
    late = load_snapshot(snapshot(ann="AB1 1AA"), "2024-01-20")
    expected_mar = by_authority(settings, engine, IN_MAR)
    assert expected_mar.get("UNKNOWN", 0) == 0
    assert by_authority(settings, engine, IN_JAN) == LOOKUP_JAN
    if correction == "undo":
        history_undo(settings, late.run_id, engine=engine)
        assert by_authority(settings, engine, IN_JAN) == LOOKUP_JAN
    assert by_authority(settings, engine, IN_MAR) == expected_mar
    assert by_authority(settings, engine, datetime(2024, 2, 15)) == by_authority(
        settings, engine, IN_MAR
    )
    for moment in moments:
        # The facts agree with the history ...
        facts = by_authority(settings, engine, moment)
        with _counts_from_the_history():
            assert by_authority(settings, engine, moment) == facts, moment
            # ... and the history as known after March still gives March's figures: the rows
            # the correction retired keep their re-location.
            then = by_authority(settings, engine, moment, as_known_at=march.run_id)
            assert then == known[moment], moment


def _relocation_rows(conn: Any, version: int) -> set[tuple[int, str, str]]:
    rows = conn.execute(
        text(
            "SELECT address_id, local_authority_code, location_status FROM address_relocation"
            " WHERE version_id = :v"
        ),
        {"v": version},
    )
    return {tuple(row) for row in rows}


def _every_period_located(engine: Engine) -> set[tuple[int, str, str]]:
    """The newest lookup's re-location computed from nothing (every period located), in a
    transaction rolled back."""
    with engine.connect() as conn, conn.begin() as transaction:
        version = conn.execute(
            text(
                "INSERT INTO lookup_version (sha256, source, published_from, postcodes, loaded_at)"
                " VALUES ('x', 'x', 'data', 0, CURRENT_TIMESTAMP) RETURNING version_id"
            )
        ).scalar_one()
        relocate(conn, version, None)
        rows = _relocation_rows(conn, version)
        transaction.rollback()
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relocation_from_the_previous_version_equals_locating_every_period(
    load_snapshot: LoadSnapshot,
    lookup_zip: Path,
    settings: Settings,
    engine: Engine,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new version starts from the previous one's rows and locates again only the periods of
    postcodes (and outward codes) the lookups locate differently: the rows are those locating
    every period gives, through moves, new builds, terminations, split and merged districts,
    outward codes alone, late snapshots and undos. (PostgreSQL locates every period instead,
    being quicker so; its SQL for the comparison is checked here all the same.)"""
    monkeypatch.setattr(type(backend_for(engine)), "compares_lookups", True)
    rng = random.Random(seed)
    authorities = ["E06000001", "E06000002", "E06000003", "E06000004"]
    postcodes = [f"AB{d} {s}A{c}" for d in range(1, 5) for s in range(1, 4) for c in "ABC"]
    lookup = {pc: rng.choice(authorities) for pc in postcodes if rng.random() < 0.8}
    people = {f"p{n}@example.com": rng.choice([*postcodes, "AB1", "AB2", "AB3"]) for n in range(30)}
    months = [f"2024-{m:02d}-01" for m in range(1, 13, 2)]
    loads = []
    for month in months:
        for pc in rng.sample(postcodes, 8):  # the next lookup: moved, new or terminated
            choice = rng.random()
            if choice < 0.2:
                lookup.pop(pc, None)
            else:
                lookup[pc] = rng.choice(authorities)
        write_version(lookup_zip, sorted(lookup.items()))
        for email in rng.sample(sorted(people), 6):
            people[email] = rng.choice([*postcodes, "AB4"])
        loads.append(load_snapshot([user(e, pc) for e, pc in people.items()], month))
        version = loads[-1].lookup_version
        assert version is not None
        with engine.connect() as conn:
            assert _relocation_rows(conn, version) == _every_period_located(engine), month
    # A late snapshot, then an undo: the rows they record are located with the newest version.
    late = load_snapshot([user(e, rng.choice(postcodes)) for e in people], "2024-02-15")
    history_undo(settings, loads[2].run_id, engine=engine)
    for month in ("2024-12-01", "2025-01-01"):
        moved = rng.choice(postcodes)
        lookup[moved] = rng.choice([a for a in authorities if a != lookup.get(moved)])
        write_version(lookup_zip, sorted(lookup.items()))
        newest = load_snapshot([user(e, pc) for e, pc in people.items()], month)
        assert newest.lookup_version is not None
        with engine.connect() as conn:
            assert _relocation_rows(conn, newest.lookup_version) == _every_period_located(engine)
    assert late.run_id is not None


def test_no_row_gets_the_id_of_a_retired_one(
    load_snapshot: LoadSnapshot, settings: Settings, engine: Engine
) -> None:
    """Undoing the newest load retires the rows at the end of user_address; the rows loads and
    corrections record afterwards get ids no retired row has (the re-location of a retired row
    is kept under its id)."""
    load_snapshot(snapshot(), JAN)
    february = load_snapshot(snapshot(ann="AB1 1AA", ben="AB1 1AA", eve="AB2 1AA"), FEB)
    history_undo(settings, february.run_id, engine=engine)
    load_snapshot(snapshot(ann="AB2 1AA", cat="AB1 1AA"), MAR)
    load_snapshot(snapshot(dan="AB1 1AA"), "2024-02-15")
    with engine.connect() as conn:
        current = set(conn.execute(text("SELECT address_id FROM user_address")).scalars())
        retired = set(conn.execute(text("SELECT address_id FROM user_address_retired")).scalars())
    assert retired
    assert not current & retired


def test_a_version_loaded_before_complete_relocation_is_not_started_from(
    relocated: Any, load_snapshot: LoadSnapshot, lookup_zip: Path, engine: Engine
) -> None:
    """A version whose rows may lack some (loaded before migration 0011, when a correction's
    rows got none) is not trusted: the next version locates every period again."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE lookup_version SET relocation_complete = false"))
        conn.execute(text("DELETE FROM address_relocation WHERE version_id = 2"))
    write_version(lookup_zip, [*VERSION_2, ("NB1 1AB", "E06000001")])
    april = load_snapshot(snapshot(ben="AB1 1AA"), "2024-04-01")
    assert april.lookup_version == 3
    with engine.connect() as conn:
        rows = _relocation_rows(conn, 3)
    assert len(rows) == 3  # ann's new build, cat's outward code, the first AB1 1AB period
    assert rows == _every_period_located(engine)


def test_revision_0011_keeps_the_relocation_rows_down_and_up(
    relocated: Any, settings: Settings, engine: Engine
) -> None:
    """Down to 0010 (foreign keys back) and up again (without them): the re-location rows are
    the same, the reports too, and the versions loaded before 0011 are not complete."""
    before = by_authority(settings, engine, IN_JAN)
    with engine.connect() as conn:
        rows = _relocation_rows(conn, 2)
    url = settings.effective_database_url
    engine.dispose()
    downgrade(url, "0010")
    assert inspect(engine).get_foreign_keys("address_relocation")
    upgrade(url)
    engine.dispose()
    assert inspect(engine).get_foreign_keys("address_relocation") == []
    with engine.connect() as conn:
        assert _relocation_rows(conn, 2) == rows
        complete = conn.execute(text("SELECT relocation_complete FROM lookup_version")).scalars()
        assert set(complete) == {False}
    assert by_authority(settings, engine, IN_JAN) == before
