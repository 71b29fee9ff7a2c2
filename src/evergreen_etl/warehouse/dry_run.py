"""Dry runs: the whole load computed inside a transaction that is then rolled back.

A dry run on an empty warehouse migrates the schema inside that same transaction, so the
rollback takes the schema away again; a database file that the dry run itself created
(SQLite) is removed afterwards. The warehouse is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError

from evergreen_etl.warehouse.dialect import backend_for
from evergreen_etl.warehouse.migrate import alembic_config, require_current_schema
from evergreen_etl.warehouse.schema import metadata


def needs_schema(engine: Engine) -> bool:
    """True for an empty warehouse: the dry run creates the schema inside its transaction.

    A warehouse at an older migration is refused, as a load without ``--auto-upgrade`` is:
    a dry run keeps no migration.
    """
    if not inspect(engine).get_table_names():
        return True
    require_current_schema(engine)
    return False


def migrate_in_transaction(conn: Connection) -> None:
    """Run every migration on ``conn`` inside its open transaction (which then owns them)."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    config = alembic_config(conn.engine.url.render_as_string(hide_password=False))
    scripts = ScriptDirectory.from_config(config)
    # The steps to head, as Alembic's own ``command.upgrade`` asks for them.
    with EnvironmentContext(
        config, scripts, fn=lambda revision, _: scripts._upgrade_revs("head", revision)
    ) as environment:
        environment.configure(
            connection=conn,
            target_metadata=metadata,
            render_as_batch=backend_for(conn).batch_migrations,  # as migrations/env.py does
            transactional_ddl=True,
        )
        with environment.begin_transaction():  # the outer transaction is already open
            environment.run_migrations()


@contextmanager
def leave_no_new_file(engine: Engine) -> Iterator[None]:
    """Remove a database file that did not exist before the block, if it is still empty."""
    files = backend_for(engine).database_files(engine)
    existed = not files or files[0].exists()
    try:
        yield
    finally:
        if not existed and files[0].exists() and _no_tables(engine):
            for path in files:
                path.unlink(missing_ok=True)


def _no_tables(engine: Engine) -> bool:
    """True when the database holds no table; then the engine's connections are closed."""
    try:
        empty = not inspect(engine).get_table_names()
    except DBAPIError:  # whatever went wrong, the caller's error is the one to report
        return False
    engine.dispose()
    return empty
