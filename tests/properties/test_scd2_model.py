"""SCD type 2 history equals a tiny reference model after loading snapshots in any order.

Hypothesis draws sequences of snapshots over six emails and a pool of postcodes from the
scenario lookup (full, re-spelled, terminated, pseudo-coded, unmatched, partial, invalid and
missing) and birth years: joins, moves, move-backs, leaves, returns, duplicates inside a
snapshot, the same snapshot loaded again (a no-op), snapshots older than the newest (merged
in their place), another snapshot at a loaded time (refused, or a correction with
``replace``), and undos. The model knows only the *set* of snapshots held: it derives the
history from them in time order. So after every step the warehouse must hold exactly what
loading the same set in time order gives, keep the SCD2 invariants (README, "The warehouse"),
count each case as the model does, and type 1 attributes must be the latest snapshot's. At the end
`report(as_of=...)` must give the model's totals at every held time (and one second before
it), and `report(as_known_at=run)` what the model gave right after each earlier run.

On SQLite (a fresh file per example, copied from a migrated template) and PostgreSQL (one
database, emptied per example). EVERGREEN_PROPERTY_EXAMPLES (default 100) and
EVERGREEN_PROPERTY_EXAMPLES_POSTGRES (default 25, to keep the default suite quick) set the
number of examples; `make test-properties` runs 500 on each backend.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import ConfigurationError, SnapshotOrderError
from evergreen_etl.history import undo
from evergreen_etl.load import load
from evergreen_etl.models import LoadResult
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.history import known_at
from evergreen_etl.warehouse.migrate import upgrade
from evergreen_etl.warehouse.schema import dim_user, user_address
from support.keys import TEST_KEY
from support.postgres import unique_database_name
from support.sources import SCENARIO_POSTCODES, user, write_lookup_zip, write_users

UNKNOWN = "UNKNOWN"
EMAILS = tuple(f"person{i}@example.com" for i in range(6))
# (as written in the export or None for no address, as stored in the warehouse)
POSTCODES: tuple[tuple[str | None, str | None], ...] = (
    ("AB1 1AA", "AB1 1AA"),
    ("ab11ab", "AB1 1AB"),  # another spelling of a full postcode
    ("AB2 1AB", "AB2 1AB"),
    ("AB3 1AA", "AB3 1AA"),  # terminated: keeps its authority
    ("CV4 9RE", "CV4 9RE"),
    ("GY1 1AA", "GY1 1AA"),  # pseudo-code: no authority
    ("ZZ9 9ZZ", "ZZ9 9ZZ"),  # well formed, not in the lookup
    ("AB1", "AB1"),  # partial, one authority
    ("AB2", "AB2"),  # partial, two authorities
    ("AB3", "AB3"),  # partial, one live authority
    ("NOT A POSTCODE", None),  # invalid
    (None, None),  # no address at all
)
BIRTH_YEARS = ("1984-03-02", "1990-07-01", None)
FIRST_SNAPSHOT = datetime(2024, 1, 1)
EXAMPLES = int(os.environ.get("EVERGREEN_PROPERTY_EXAMPLES", "100"))
EXAMPLES_POSTGRES = int(os.environ.get("EVERGREEN_PROPERTY_EXAMPLES_POSTGRES", "25"))
KEY = PseudonymKey.from_text(TEST_KEY)


def authority_of(stored: str | None) -> str:
    """Where the location rules (README) locate a stored postcode, from the scenario lookup."""
    by_postcode = {pcds: laua for pcds, laua, _ in SCENARIO_POSTCODES}
    if stored is None:
        return UNKNOWN
    if " " in stored:
        laua = by_postcode.get(stored, UNKNOWN)
        return UNKNOWN if laua[1:] == "99999999" else laua
    live = {
        laua
        for pcds, laua, terminated in SCENARIO_POSTCODES
        if pcds.split(" ")[0] == stored and not terminated
    }
    if len(live) == 1 and next(iter(live))[1:] != "99999999":
        return live.pop()
    return UNKNOWN


# ---- the reference model ----------------------------------------------------------------

Record = tuple[int, int, int]  # (email index, postcode index, birth date index)
Records = tuple[Record, ...]  # in file order
Row = tuple[str | None, str, datetime, datetime | None]


def latest(records: Records) -> dict[str, tuple[str | None, int | None]]:
    """Each email's stored postcode and birth year: the last record of an email wins."""
    found = {}
    for e, p, b in records:
        born = BIRTH_YEARS[b]
        found[EMAILS[e]] = (POSTCODES[p][1], int(born[:4]) if born else None)
    return found


@dataclass
class Model:
    """SCD2 by the book, in memory: the snapshots held, by time; the rest is derived."""

    held: dict[datetime, Records] = field(default_factory=dict)

    def outcome(
        self, moment: datetime, records: Records, *, replace: bool = False
    ) -> Literal["load", "skip", "refuse"]:
        """What loading ``records`` at ``moment`` must do."""
        if moment not in self.held or (replace and self.held[moment] != records):
            return "load"
        return "skip" if self.held[moment] == records else "refuse"

    def apply(self, moment: datetime, records: Records) -> Counter[str]:
        """Hold a snapshot; count its users against the snapshot just before it in time."""
        earlier = [t for t in self.held if t < moment]
        before = latest(self.held[max(earlier)]) if earlier else {}
        seen = {email for t in earlier for email in latest(self.held[t])}
        now = latest(records)
        counts: Counter[str] = Counter(
            duplicates=len(records) - len(now), users_in_snapshot=len(now)
        )
        for email, (postcode, _) in now.items():
            if email not in before:
                counts["returned" if email in seen else "new"] += 1
            else:
                counts["unchanged" if before[email][0] == postcode else "moved"] += 1
        counts["left"] = len(before.keys() - now.keys())
        self.held[moment] = records
        return counts

    def rows(self) -> dict[str, list[Row]]:
        """Each user's periods as (postcode, authority, valid_from, valid_to), in time order."""
        history: dict[str, list[list[Any]]] = {}
        for moment in sorted(self.held):
            now = latest(self.held[moment])
            for email, periods in history.items():
                if periods[-1][3] is None and email not in now:
                    periods[-1][3] = moment
            for email, (postcode, _) in now.items():
                periods = history.setdefault(email, [])
                if periods and periods[-1][3] is None:
                    if periods[-1][0] == postcode:
                        continue
                    periods[-1][3] = moment
                periods.append([postcode, authority_of(postcode), moment, None])
        pseudonym = KEY.pseudonymiser()
        return {
            pseudonym(email): [(p[0], p[1], p[2], p[3]) for p in periods]
            for email, periods in history.items()
        }

    def birth_years(self) -> dict[str, int | None]:
        """Type 1: each user's birth year in the latest snapshot holding them."""
        found: dict[str, int | None] = {}
        for moment in sorted(self.held):
            for email, (_, year) in latest(self.held[moment]).items():
                found[email] = year
        pseudonym = KEY.pseudonymiser()
        return {pseudonym(email): year for email, year in found.items()}

    def users_by_authority(self, moment: datetime) -> dict[str, int]:
        """Distinct users whose period holds ``moment`` (half-open), by authority."""
        counts: Counter[str] = Counter()
        for periods in self.rows().values():
            for _, authority, start, end in periods:
                if start <= moment and (end is None or moment < end):
                    counts[authority] += 1
        return dict(counts)


# ---- the warehouse side -----------------------------------------------------------------


def warehouse_rows(engine: Engine) -> dict[str, list[Row]]:
    """Each pseudonym's rows as (postcode, authority, valid_from, valid_to), oldest first."""
    a, u = user_address.c, dim_user.c
    query = (
        select(u.pseudonym, a.postcode, a.local_authority_code, a.valid_from, a.valid_to)
        .join_from(user_address, dim_user, a.user_id == u.user_id)
        .order_by(a.valid_from, a.address_id)
    )
    with engine.connect() as conn:
        found = conn.execute(query).all()
    rows: dict[str, list[Row]] = {}
    for pseudonym, postcode, authority, start, end in found:
        rows.setdefault(pseudonym, []).append((postcode, authority, start, end))
    return rows


def warehouse_birth_years(engine: Engine) -> dict[str, int | None]:
    """The birth year of every user with an address row."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT pseudonym, birth_year FROM dim_user u WHERE EXISTS "
                "(SELECT 1 FROM user_address a WHERE a.user_id = u.user_id)"
            )
        ).all()
    return {str(pseudonym): year for pseudonym, year in found}


def invariant_problems(engine: Engine) -> list[str]:
    """SCD2 rule: one current row per user, valid_to > valid_from, no overlaps."""
    a = user_address.c
    query = select(a.user_id, a.valid_from, a.valid_to, a.is_current).order_by(
        a.user_id, a.valid_from
    )
    with engine.connect() as conn:
        found = conn.execute(query).all()
    problems = []
    for user_id, group in itertools.groupby(found, key=lambda row: row.user_id):
        periods = list(group)
        if sum(bool(p.is_current) for p in periods) > 1:
            problems.append(f"user {user_id}: more than one current row")
        for p in periods:
            if bool(p.is_current) != (p.valid_to is None):
                problems.append(f"user {user_id}: is_current disagrees with valid_to")
            if p.valid_to is not None and not p.valid_to > p.valid_from:
                problems.append(f"user {user_id}: valid_to is not after valid_from")
        for earlier, later in itertools.pairwise(periods):
            if earlier.valid_to is None or earlier.valid_to > later.valid_from:
                problems.append(f"user {user_id}: overlapping periods")
    return problems


def result_counts(result: LoadResult) -> Counter[str]:
    """The counts a load reports, in the model's terms."""
    names = ("new", "returned", "moved", "left", "unchanged", "duplicates", "users_in_snapshot")
    return Counter({name: getattr(result, name) for name in names if getattr(result, name)})


# ---- the steps --------------------------------------------------------------------------

records_strategy = st.lists(
    st.tuples(
        st.integers(0, len(EMAILS) - 1),
        st.integers(0, len(POSTCODES) - 1),
        st.integers(0, len(BIRTH_YEARS) - 1),
    ),
    min_size=1,
    max_size=8,
).map(tuple)

Step = tuple[str, Records, int]
steps_strategy = st.lists(
    st.one_of(
        # A later snapshot (the usual case): joins, moves, leaves, returns, duplicates.
        st.tuples(st.just("later"), records_strategy, st.integers(1, 90)),
        # An older snapshot, or one between two loaded ones: merged in its place.
        st.tuples(st.just("older"), records_strategy, st.integers(1, 90)),
        st.tuples(st.just("between"), records_strategy, st.integers(0, 9)),
        # A snapshot already held, again: a no-op.
        st.tuples(st.just("again"), st.just(()), st.integers(0, 9)),
        # Another snapshot at a held time: refused, or a correction with replace.
        st.tuples(st.just("same-time"), records_strategy, st.integers(0, 9)),
        st.tuples(st.just("replace"), records_strategy, st.integers(0, 9)),
        # A load undone (the n-th run, counted from the first).
        st.tuples(st.just("undo"), st.just(()), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=7,
)


@dataclass
class Warehouse:
    """A fresh warehouse and the settings to load into it."""

    settings: Settings
    engine: Engine
    lookup: Path
    directory: Path
    files: Iterator[int] = field(default_factory=itertools.count)

    def load(self, moment: datetime, records: Records, *, replace: bool = False) -> LoadResult:
        """Write the records as an export, anonymise it and load it at ``moment``."""
        export = self.directory / f"users-{next(self.files)}.json"
        write_users(
            export,
            [user(EMAILS[e], POSTCODES[p][0], dateOfBirth=BIRTH_YEARS[b]) for e, p, b in records],
        )
        anonymise(self.settings, users_path=export, key=KEY, progress=False)
        return load(
            self.settings,
            as_of=moment,
            postcodes_path=self.lookup,
            engine=self.engine,
            progress=False,
            replace=replace,
        )


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario lookup zip."""
    return write_lookup_zip(tmp_path_factory.mktemp("lookup") / "postcodes.zip")


@pytest.fixture(scope="module")
def fresh_warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Path], str]]:
    """A function that gives an empty, migrated warehouse's URL for each example."""
    if request.param == "sqlite":
        database = tmp_path_factory.mktemp("template") / "warehouse.db"
        upgrade(f"sqlite:///{database}")

        def sqlite_copy(directory: Path) -> str:
            shutil.copyfile(database, directory / "warehouse.db")
            return f"sqlite:///{directory / 'warehouse.db'}"

        yield sqlite_copy
        return
    server = request.getfixturevalue("pg_server")
    name = unique_database_name("property_any_order")
    url = server.create_database(name)
    upgrade(url)
    engine = make_engine(url)

    def emptied(_: Path) -> str:
        with engine.begin() as conn:
            conn.execute(
                text(
                    # CASCADE: the tables that refer to these (lookup versions and their
                    # re-locations) go too; the lookup itself stays loaded.
                    "TRUNCATE snapshot_ledger, user_address_retired, user_address, dim_user, "
                    "etl_run, fact_snapshot_authority RESTART IDENTITY CASCADE"
                )
            )
        return url

    try:
        yield emptied
    finally:
        engine.dispose()
        server.drop_database(name)


def _property(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        # No explain phase: it replays the failing case hundreds of times (minutes) for a hint.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


@pytest.mark.parametrize("fresh_warehouse", ["sqlite"], indirect=True)
@_property(EXAMPLES)
@given(steps=steps_strategy)
def test_history_matches_the_reference_model_in_any_order(
    steps: list[Step],
    fresh_warehouse: Callable[[Path], str],
    lookup: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Whatever the order of loads, replacements and undos, the warehouse equals the SCD2
    model of the snapshots it holds, loaded in time order."""
    _run_steps(steps, fresh_warehouse, lookup, tmp_path_factory)


@pytest.mark.postgres
@pytest.mark.parametrize("fresh_warehouse", ["postgres"], indirect=True)
@_property(EXAMPLES_POSTGRES)
@given(steps=steps_strategy)
def test_history_matches_the_reference_model_in_any_order_on_postgres(
    steps: list[Step],
    fresh_warehouse: Callable[[Path], str],
    lookup: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same property on PostgreSQL (fewer examples by default: `make test-properties`)."""
    _run_steps(steps, fresh_warehouse, lookup, tmp_path_factory)


def _run_steps(
    steps: list[Step],
    fresh_warehouse: Callable[[Path], str],
    lookup: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("example")
    settings = Settings(
        data_dir=directory / "data",
        database_url=fresh_warehouse(directory),
        pseudonym_key=TEST_KEY,
        max_reject_rate=1.0,
        max_left_rate=1.0,  # random snapshots: any share may leave
    )
    engine = make_engine(settings.effective_database_url)
    warehouse = Warehouse(settings, engine, lookup, directory)
    model = Model()
    known: list[tuple[int, Model]] = []  # the model right after each run
    try:
        for kind, records, pick in steps:
            run = _step(warehouse, model, kind, records, pick)
            if run is not None:
                known.append((run, Model(dict(model.held))))
        _check_reports(warehouse, model)
        for run, then in known:
            for moment in sorted(then.held):
                found = report(settings, as_of=moment, engine=engine, as_known_at=run)
                assert {r.local_authority_code: r.users for r in found.rows} == (
                    then.users_by_authority(moment)
                ), f"report as of {moment} as known at run {run}"
            with known_at(engine, run) as past:  # type 1 attributes in recorded time too
                assert warehouse_birth_years(past) == then.birth_years(), f"as known at {run}"
    finally:
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def _step(warehouse: Warehouse, model: Model, kind: str, records: Records, pick: int) -> int | None:
    """Do one step and check the warehouse against the model; the run it recorded, if any."""
    times = sorted(model.held)
    if kind == "undo":
        return _undo(warehouse, model, pick)
    if not times:
        if not records:
            return None
        moment = FIRST_SNAPSHOT
    elif kind == "later":
        moment = times[-1] + timedelta(days=pick)
    elif kind == "older":
        moment = times[0] - timedelta(days=pick)
    elif kind == "between":
        index = pick % len(times)
        moment = times[index] + (
            (times[index + 1] - times[index]) / 2 if index + 1 < len(times) else timedelta(days=1)
        )
    else:
        moment = times[pick % len(times)]
        if kind == "again":
            records = model.held[moment]
    replace = kind == "replace"
    expected = model.outcome(moment, records, replace=replace)
    before = warehouse_rows(warehouse.engine)
    run: int | None = None
    if expected == "refuse":
        with pytest.raises(SnapshotOrderError):
            warehouse.load(moment, records)
        assert warehouse_rows(warehouse.engine) == before
    elif expected == "skip":
        result = warehouse.load(moment, records, replace=replace)
        assert result.skipped
        assert warehouse_rows(warehouse.engine) == before
    else:
        result = warehouse.load(moment, records, replace=replace)
        assert not result.skipped
        counts = model.apply(moment, records) if not replace else None
        if counts is not None:
            assert result_counts(result) == +counts
        else:
            model.held[moment] = records
        run = result.run_id
    _check(warehouse, model)
    return run


def _undo(warehouse: Warehouse, model: Model, pick: int) -> int | None:
    with warehouse.engine.connect() as conn:
        runs = conn.execute(
            text("SELECT run_id, as_of, status FROM etl_run WHERE status <> 'undo' ORDER BY run_id")
        ).all()
    if not runs:
        with pytest.raises(ConfigurationError):
            undo(warehouse.settings, 1, engine=warehouse.engine)
        return None
    run_id, as_of, status = runs[pick % len(runs)]
    result = undo(warehouse.settings, run_id, engine=warehouse.engine)
    if status == "undone":
        assert result.undo_run_id is None
    else:
        del model.held[as_of if isinstance(as_of, datetime) else datetime.fromisoformat(as_of)]
    _check(warehouse, model)
    return result.undo_run_id


def _check(warehouse: Warehouse, model: Model) -> None:
    assert warehouse_rows(warehouse.engine) == model.rows()
    assert invariant_problems(warehouse.engine) == []
    assert warehouse_birth_years(warehouse.engine) == model.birth_years()


def _check_reports(warehouse: Warehouse, model: Model) -> None:
    for moment in sorted(model.held):
        for at in (moment - timedelta(seconds=1), moment):
            found = report(warehouse.settings, as_of=at, engine=warehouse.engine)
            assert {r.local_authority_code: r.users for r in found.rows} == (
                model.users_by_authority(at)
            ), f"report as of {at}"
