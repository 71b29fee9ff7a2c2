"""Least privilege on PostgreSQL, with real roles that log in: the reader sees only the
published views, the loader can run a load but not change the schema, revoke undoes both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import ConfigurationError
from evergreen_etl.load import load
from evergreen_etl.privacy.disclosure import NhsRule
from evergreen_etl.privacy.roles import PUBLISHED_VIEWS, grant_loader, grant_reader, revoke
from evergreen_etl.settings import Settings
from report.scenario import DATES, SNAPSHOTS, Warehouse, load_snapshots
from support.keys import TEST_KEY
from support.postgres import PostgresServer
from support.sources import write_users

pytestmark = pytest.mark.postgres


@pytest.fixture
def owned(pg_url: str, tmp_path: Path) -> Iterator[Warehouse]:
    """The scenario's first three snapshots, loaded by the owner (the superuser here)."""
    warehouse = load_snapshots(pg_url, tmp_path, SNAPSHOTS[:3], DATES[:3])
    try:
        yield warehouse
    finally:
        warehouse.engine.dispose()


@pytest.fixture
def login_role(pg_server: PostgresServer, owned: Warehouse) -> Iterator[str]:
    """A new role that can log in, dropped (with its rights) afterwards."""
    name = f"role_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {name} LOGIN"))
    try:
        yield name
    finally:
        with owned.engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {name}"))
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        admin.dispose()


def as_role(warehouse: Warehouse, role: str) -> Engine:
    """An engine on the warehouse that logs in as ``role``."""
    return create_engine(make_url(str(warehouse.engine.url)).set(username=role, password=None))


def select(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """Every row of ``sql``."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


@pytest.mark.parametrize("table", ["dim_user", "user_address", "etl_run", "v_user_moves"])
def test_the_reader_cannot_read_pseudonymised_data(
    owned: Warehouse, login_role: str, table: str
) -> None:
    """A reader gets "permission denied" on the tables and the unpublished views."""
    grant_reader(owned.engine, login_role)
    reader = as_role(owned, login_role)
    try:
        with pytest.raises(ProgrammingError, match="permission denied"):
            select(reader, f"SELECT * FROM {table}")
    finally:
        reader.dispose()


def test_the_reader_gets_the_published_figures(owned: Warehouse, login_role: str) -> None:
    """A reader reads each pub_* view: the current counts under the NHS rule."""
    grant_reader(owned.engine, login_role)
    reader = as_role(owned, login_role)
    try:
        published = dict(
            select(reader, "SELECT local_authority_code, users FROM pub_users_by_local_authority")
        )
        for view in PUBLISHED_VIEWS:
            select(reader, f"SELECT * FROM {view}")
    finally:
        reader.dispose()
    true = dict(
        select(owned.engine, "SELECT local_authority_code, users FROM v_users_by_local_authority")
    )
    rule = NhsRule()
    assert published == {code: rule.publish(int(users)) for code, users in true.items()}


def test_the_loader_loads_but_cannot_change_the_schema(
    owned: Warehouse, login_role: str, tmp_path: Path
) -> None:
    """The loader runs a load of the next snapshot; CREATE TABLE is refused."""
    grant_loader(owned.engine, login_role)
    loader = as_role(owned, login_role)
    url = loader.url.render_as_string(hide_password=False)
    settings = Settings(
        data_dir=tmp_path / "loader", database_url=url, pseudonym_key=TEST_KEY, max_reject_rate=1.0
    )
    try:
        users = write_users(tmp_path / "users-3.json", SNAPSHOTS[3])
        anonymise(settings, users_path=users, progress=False)
        result = load(
            settings,
            as_of=datetime.fromisoformat(DATES[3]),
            postcodes_path=tmp_path / "postcodes.zip",
            engine=loader,
            progress=False,
        )
        assert result.users_in_snapshot > 0
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            loader.begin() as conn,
        ):
            conn.execute(text("CREATE TABLE intruder (i integer)"))
        with (
            pytest.raises(ProgrammingError, match=r"must be owner|permission denied"),
            loader.begin() as conn,
        ):
            conn.execute(text("DROP TABLE dim_user"))
    finally:
        loader.dispose()


def test_revoke_takes_the_rights_back(owned: Warehouse, login_role: str) -> None:
    """After `db revoke`, the former reader cannot read the published views either."""
    grant_reader(owned.engine, login_role)
    revoke(owned.engine, login_role)
    reader = as_role(owned, login_role)
    try:
        with pytest.raises(ProgrammingError, match="permission denied"):
            select(reader, "SELECT * FROM pub_users_by_local_authority")
    finally:
        reader.dispose()


def test_an_unknown_role_is_refused(owned: Warehouse) -> None:
    """Granting to a role that does not exist says so, with the CREATE ROLE to run."""
    with pytest.raises(ConfigurationError, match="no role called"):
        grant_reader(owned.engine, "nobody_here")
