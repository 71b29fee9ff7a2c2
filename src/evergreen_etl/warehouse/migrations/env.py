"""Alembic environment: the URL comes from the caller, ``-x url=...`` or evergreen settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from evergreen_etl.settings import load_settings
from evergreen_etl.warehouse.dialect import backend_for
from evergreen_etl.warehouse.engine import make_engine
from evergreen_etl.warehouse.schema import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    return url or load_settings().effective_database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in one transaction (SQLite included: see warehouse/engine.py)."""
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
            render_as_batch=backend_for(connection).batch_migrations,
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
