"""Alembic migrations driven from code, with the scripts that ship inside the package."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from evergreen_etl.errors import SchemaOutOfDateError


def migrations_dir() -> Path:
    """The Alembic scripts: inside the installed package, else at the checkout's root."""
    packaged = Path(__file__).resolve().parent.parent / "migrations"
    if (packaged / "env.py").exists():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "migrations"
    if (checkout / "env.py").exists():
        return checkout
    raise FileNotFoundError("the evergreen-etl migration scripts are missing from this install")


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that needs no alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str | None:
    """The newest migration the package knows."""
    return _scripts().get_current_head()


def _known_revision(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops everything)."""
    command.downgrade(alembic_config(url), revision)


def require_current_schema(engine: Engine, *, auto_upgrade: bool = False) -> None:
    """Refuse to work on a database that is not at the newest migration (or upgrade it)."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
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
