"""SCD type 2 history equals a tiny reference model after any sequence of snapshot loads.

Hypothesis draws sequences of snapshots over six emails and a pool of postcodes from the
scenario lookup (full, re-spelled, terminated, pseudo-coded, unmatched, partial, invalid and
missing): joins, moves, move-backs, leaves, returns, duplicates inside a snapshot, the same
snapshot loaded again, and older or conflicting snapshots that must be refused. After every
step the warehouse must hold exactly the model's rows, keep the SCD2 invariants (README,
"The warehouse"), count each case as the model does, and `report(as_of=...)` must give the
model's totals per authority at every loaded time (and one second before it: the intervals
are half-open).

SQLite only, through the library API, one fresh warehouse file per example (copied from a
migrated template, so an example costs milliseconds, not a migration).
"""

from __future__ import annotations

import itertools
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import SnapshotOrderError
from evergreen_etl.load import load
from evergreen_etl.models import LoadResult
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.migrate import upgrade
from evergreen_etl.warehouse.schema import dim_user, user_address
from support.keys import TEST_KEY
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
FIRST_SNAPSHOT = datetime(2024, 1, 1)
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

Records = tuple[tuple[int, int], ...]  # (email index, postcode index), in file order


@dataclass
class Period:
    """One row of a user's history in the model."""

    postcode: str | None
    valid_from: datetime
    valid_to: datetime | None = None


@dataclass
class Model:
    """SCD2 by the book, in memory: each user's periods, and the snapshots loaded."""

    history: dict[str, list[Period]] = field(default_factory=dict)
    loaded: list[tuple[datetime, Records]] = field(default_factory=list)

    def outcome(self, moment: datetime, records: Records) -> Literal["load", "skip", "refuse"]:
        """What loading ``records`` at ``moment`` must do."""
        if not self.loaded:
            return "load"
        last_moment, last_records = self.loaded[-1]
        if moment < last_moment or (moment == last_moment and records != last_records):
            return "refuse"
        return "skip" if moment == last_moment else "load"

    def apply(self, moment: datetime, records: Records) -> Counter[str]:
        """Merge a snapshot: the last record of an email wins; absent users leave."""
        latest = {EMAILS[e]: POSTCODES[p][1] for e, p in records}
        counts: Counter[str] = Counter(
            duplicates=len(records) - len(latest), users_in_snapshot=len(latest)
        )
        for email, postcode in latest.items():
            periods = self.history.setdefault(email, [])
            current = periods[-1] if periods and periods[-1].valid_to is None else None
            if current is None:
                counts["returned" if periods else "new"] += 1
            elif current.postcode == postcode:
                counts["unchanged"] += 1
                continue
            else:
                counts["moved"] += 1
                current.valid_to = moment
            periods.append(Period(postcode, moment))
        for email, periods in self.history.items():
            if email not in latest and periods and periods[-1].valid_to is None:
                periods[-1].valid_to = moment
                counts["left"] += 1
        self.loaded.append((moment, records))
        return counts

    def rows(self) -> dict[str, list[tuple[str | None, str, datetime, datetime | None]]]:
        """Each user's periods as (postcode, authority, valid_from, valid_to)."""
        return {
            KEY.pseudonymiser()(email): [
                (p.postcode, authority_of(p.postcode), p.valid_from, p.valid_to) for p in periods
            ]
            for email, periods in self.history.items()
        }

    def users_by_authority(self, moment: datetime) -> dict[str, int]:
        """Distinct users whose period holds ``moment`` (half-open), by authority."""
        counts: Counter[str] = Counter()
        for periods in self.history.values():
            for p in periods:
                if p.valid_from <= moment and (p.valid_to is None or moment < p.valid_to):
                    counts[authority_of(p.postcode)] += 1
        return dict(counts)


# ---- the warehouse side -----------------------------------------------------------------


def warehouse_rows(
    engine: Engine,
) -> dict[str, list[tuple[str | None, str, datetime, datetime | None]]]:
    """Each pseudonym's rows as (postcode, authority, valid_from, valid_to), oldest first."""
    a, u = user_address.c, dim_user.c
    query = (
        select(u.pseudonym, a.postcode, a.local_authority_code, a.valid_from, a.valid_to)
        .join_from(user_address, dim_user, a.user_id == u.user_id)
        .order_by(a.valid_from, a.address_id)
    )
    with engine.connect() as conn:
        found = conn.execute(query).all()
    rows: dict[str, list[tuple[str | None, str, datetime, datetime | None]]] = {}
    for pseudonym, postcode, authority, start, end in found:
        rows.setdefault(pseudonym, []).append((postcode, authority, start, end))
    return rows


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
    st.tuples(st.integers(0, len(EMAILS) - 1), st.integers(0, len(POSTCODES) - 1)),
    min_size=1,
    max_size=8,
).map(tuple)

Step = tuple[str, Records, int]
steps_strategy = st.lists(
    st.one_of(
        # A later snapshot (the usual case): joins, moves, leaves, returns, duplicates.
        st.tuples(st.just("later"), records_strategy, st.integers(1, 90)),
        st.tuples(st.just("later"), records_strategy, st.integers(1, 90)),
        # The last snapshot again, at the same time: a no-op.
        st.tuples(st.just("again"), st.just(()), st.just(0)),
        # An older snapshot: refused.
        st.tuples(st.just("older"), records_strategy, st.integers(1, 90)),
        # Another snapshot at the time of the last one: refused (or a no-op if identical).
        st.tuples(st.just("same-time"), records_strategy, st.just(0)),
    ),
    min_size=1,
    max_size=7,
)


@dataclass
class Warehouse:
    """A fresh SQLite warehouse and the settings to load into it."""

    settings: Settings
    engine: Engine
    lookup: Path
    directory: Path
    files: Iterator[int] = field(default_factory=itertools.count)

    def load(self, moment: datetime, records: Records) -> LoadResult:
        """Write the records as an export, anonymise it and load it at ``moment``."""
        export = self.directory / f"users-{next(self.files)}.json"
        write_users(export, [user(EMAILS[e], POSTCODES[p][0]) for e, p in records])
        anonymise(self.settings, users_path=export, key=KEY, progress=False)
        return load(
            self.settings,
            as_of=moment,
            postcodes_path=self.lookup,
            engine=self.engine,
            progress=False,
        )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A migrated, empty SQLite warehouse to copy, and the scenario lookup zip."""
    directory = tmp_path_factory.mktemp("template")
    database = directory / "warehouse.db"
    upgrade(f"sqlite:///{database}")
    return database, write_lookup_zip(directory / "postcodes.zip")


@hypothesis_settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    # No explain phase: it replays the failing case hundreds of times (minutes) for a hint.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(steps=steps_strategy)
def test_history_matches_the_reference_model(
    steps: list[Step],
    template: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """After every load, refusal or no-op, the warehouse equals the SCD2 reference model."""
    database, lookup = template
    directory = tmp_path_factory.mktemp("example")
    shutil.copyfile(database, directory / "warehouse.db")
    settings = Settings(
        data_dir=directory / "data",
        database_url=f"sqlite:///{directory / 'warehouse.db'}",
        pseudonym_key=TEST_KEY,
        max_reject_rate=1.0,
        max_left_rate=1.0,  # random snapshots: any share may leave
    )
    engine = make_engine(settings.effective_database_url)
    warehouse = Warehouse(settings, engine, lookup, directory)
    model = Model()
    try:
        for kind, records, days in steps:
            last = model.loaded[-1] if model.loaded else None
            if last is None:
                if not records:
                    continue  # nothing to load again yet
                moment = FIRST_SNAPSHOT
            elif kind == "later":
                moment = last[0] + timedelta(days=days)
            elif kind == "again":
                moment, records = last
            elif kind == "older":
                moment = last[0] - timedelta(days=days)
            else:
                moment = last[0]
            _check_step(warehouse, model, moment, records)
    finally:
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def _check_step(warehouse: Warehouse, model: Model, moment: datetime, records: Records) -> None:
    expected = model.outcome(moment, records)
    before = warehouse_rows(warehouse.engine)
    if expected == "refuse":
        with pytest.raises(SnapshotOrderError):
            warehouse.load(moment, records)
        assert warehouse_rows(warehouse.engine) == before
    elif expected == "skip":
        result = warehouse.load(moment, records)
        assert result.skipped
        assert warehouse_rows(warehouse.engine) == before
    else:
        result = warehouse.load(moment, records)
        assert not result.skipped
        assert result_counts(result) == +model.apply(moment, records)
    assert warehouse_rows(warehouse.engine) == model.rows()
    assert invariant_problems(warehouse.engine) == []
    with warehouse.engine.connect() as conn:
        runs = conn.execute(text("SELECT COUNT(*) FROM etl_run")).scalar_one()
    assert runs == len(model.loaded)
    if expected != "load":
        return  # the rows are as before (asserted above), so every report is too
    for loaded_at, _ in model.loaded:
        for at in (loaded_at - timedelta(seconds=1), loaded_at):
            found = report(warehouse.settings, as_of=at, engine=warehouse.engine)
            assert {r.local_authority_code: r.users for r in found.rows} == (
                model.users_by_authority(at)
            ), f"report as of {at}"
