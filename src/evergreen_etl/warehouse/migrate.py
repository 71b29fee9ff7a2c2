"""Alembic migrations driven from code, with the scripts that live inside the package.

Alembic is imported only to migrate or to explain a mismatch: every command checks that the
warehouse is at ``HEAD_REVISION`` first, and that check is one query.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from evergreen_etl.errors import SchemaOutOfDateError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# The newest migration under warehouse/migrations/versions (a test keeps the two in step).
HEAD_REVISION = "0011"
# The Alembic scripts, as a package resource (warehouse/migrations/): the same location in a
# checkout and in an installed wheel. alembic.ini names it too (a test keeps the two in step).
SCRIPT_LOCATION = "evergreen_etl.warehouse:migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that needs no alembic.ini."""
    from alembic.config import Config

    # Alembic's default stdout is whatever sys.stdout was when alembic.config was imported
    # (a test runner's capture may have closed it since): give it today's.
    cfg = Config(stdout=sys.stdout)
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str | None:
    """The newest migration the package knows."""
    return _scripts().get_current_head()


def _known_revision(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as connection:
        if inspect(connection).has_table("alembic_version"):
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            if len(versions) == 1:
                return str(versions[0][0])
        from alembic.runtime.migration import MigrationContext

        # No table, an empty one, or several heads: as Alembic itself reads it.
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops everything)."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def require_current_schema(engine: Engine, *, auto_upgrade: bool = False) -> None:
    """Refuse to work on a database that is not at the newest migration (or upgrade it)."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    head = head_revision()
    if current is not None and not _known_revision(current):
        raise SchemaOutOfDateError(
            f"the warehouse is at migration {current}, which this version of evergreen-etl "
            "does not know (was it migrated by a newer version?); nothing was changed",
            hint="upgrade evergreen-etl, or restore the warehouse",
        )
    if auto_upgrade:
        upgrade(engine.url.render_as_string(hide_password=False))
        return
    state = "has no evergreen schema" if current is None else f"is at migration {current}"
    raise SchemaOutOfDateError(
        f"the warehouse {state}, this version needs {head}",
        hint="run `evergreen-etl db upgrade` (or pass --auto-upgrade)",
    )
