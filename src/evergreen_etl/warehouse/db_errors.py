"""Database errors a user can act on, turned into one-line WarehouseErrors (per backend)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from evergreen_etl.errors import ConcurrentLoadError, EvergreenError, WarehouseError

# PostgreSQL SQLSTATE codes (and classes) and what to tell the user.
_POSTGRES: dict[str, str] = {
    "25006": "the warehouse is read-only (read-only transaction); nothing was changed",
    "42501": "the database role lacks a privilege the load needs; nothing was changed",
    "53100": "the database server is out of disk space; nothing was changed",
    "57014": "the statement was cancelled; nothing was changed",
}
_POSTGRES_CLASSES: dict[str, str] = {
    "08": "lost the connection to the warehouse; nothing was committed",
    "53": "the database server ran out of resources; nothing was changed",
}
# SQLite primary result codes (by name) and what to tell the user.
_SQLITE: dict[str, str] = {
    "SQLITE_READONLY": "the warehouse file is read-only; nothing was changed",
    "SQLITE_FULL": "the disk holding the warehouse is full; nothing was changed",
    "SQLITE_CANTOPEN": "the warehouse file cannot be opened (check the path and permissions)",
    "SQLITE_PERM": "no permission to write the warehouse; nothing was changed",
}
_LOCKED = "another load is writing to this warehouse; try again when it ends"


def translate_database_error(exc: DBAPIError) -> EvergreenError | None:
    """A WarehouseError for a database failure the user can act on, else None."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate == "55P03":
            return ConcurrentLoadError(_LOCKED)
        message = _POSTGRES.get(sqlstate) or _POSTGRES_CLASSES.get(sqlstate[:2])
        return WarehouseError(message) if message else None
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
            return ConcurrentLoadError(_LOCKED)
        message = next((m for prefix, m in _SQLITE.items() if name.startswith(prefix)), None)
        return WarehouseError(message) if message else None
    return None
