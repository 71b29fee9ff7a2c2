"""Least privilege on PostgreSQL: a reader that sees only published figures, a loader that
can run the job and nothing more, and the owner (who migrates) above both.

- reader (``db grant-reader ROLE``): SELECT on the ``pub_*`` views (the NHS rule applied
  in SQL, migration 0007) and nothing else: not ``dim_user``, ``user_address``,
  ``etl_run`` or any other table or view.
- loader (``db grant-loader ROLE``): what ``run`` needs: read and write the warehouse's
  tables and sequences, temporary tables; no CREATE, ALTER or DROP (migrations stay the
  owner's), no ownership.
- ``db revoke ROLE`` takes every one of those rights back.

The roles themselves are created (with their login and password) by the database
administrator; these commands only grant and revoke.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

from evergreen_etl.errors import ConfigurationError
from evergreen_etl.warehouse.dialect import backend_for

PUBLISHED_VIEWS = (
    "pub_users_by_local_authority",
    "pub_users_by_region",
    "pub_users_by_country",
    "pub_users_by_sex_age_band",
    "pub_users_by_postcode_status",
)
_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _checked(engine: Engine, role: str) -> str:
    if backend_for(engine).name != "postgresql":
        raise ConfigurationError("roles and grants are PostgreSQL's; SQLite has none")
    if not _ROLE.match(role):
        raise ConfigurationError(f"not a plain role name: {role!r} (letters, digits, _)")
    with engine.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if found.scalar() is None:
            raise ConfigurationError(
                f"no role called {role}", hint=f"CREATE ROLE {role} LOGIN PASSWORD '...'"
            )
    return f'"{role}"'


def _run(engine: Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        for statement in statements:
            conn.execute(text(statement.format(database=f'"{database}"', schema=f'"{schema}"')))


def grant_reader(engine: Engine, role: str) -> str:
    """Let ``role`` read the published views and nothing else."""
    name = _checked(engine, role)
    _run(
        engine,
        [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {{schema}} FROM {name}",
            f"GRANT CONNECT ON DATABASE {{database}} TO {name}",
            f"GRANT USAGE ON SCHEMA {{schema}} TO {name}",
            *(f"GRANT SELECT ON {view} TO {name}" for view in PUBLISHED_VIEWS),
        ],
    )
    return f"{role} may read {', '.join(PUBLISHED_VIEWS)}"


def grant_loader(engine: Engine, role: str) -> str:
    """Let ``role`` run the job: read and write the tables, no schema changes."""
    name = _checked(engine, role)
    _run(
        engine,
        [
            f"GRANT CONNECT, TEMPORARY ON DATABASE {{database}} TO {name}",
            f"GRANT USAGE ON SCHEMA {{schema}} TO {name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "
            f"{{schema}} TO {name}",
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {{schema}} TO {name}",
        ],
    )
    return f"{role} may load the warehouse (no schema changes)"


def revoke(engine: Engine, role: str) -> str:
    """Take back every right the two grants give ``role``."""
    name = _checked(engine, role)
    _run(
        engine,
        [
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {{schema}} FROM {name}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {{schema}} FROM {name}",
            f"REVOKE ALL ON SCHEMA {{schema}} FROM {name}",
            f"REVOKE ALL ON DATABASE {{database}} FROM {name}",
        ],
    )
    return f"{role} has no rights on the warehouse any more"
