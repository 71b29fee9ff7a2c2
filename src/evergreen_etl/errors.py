"""Exception classes: each carries a one-line, PII-free message and an exit status."""

from __future__ import annotations

from evergreen_etl.safe_text import escaped


class EvergreenError(Exception):
    """Base class for every error the pipeline reports to a user.

    The message is one line, names the file (and line) where that helps, and never holds
    personal data: no email, name, street or raw record.
    """

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # One line whatever the message quotes (a zip member's name may hold a line break).
        super().__init__(escaped(message))
        if hint is not None:
            self.hint = escaped(hint)


class ConfigurationError(EvergreenError):
    """A setting is missing, malformed or unsafe (for example a placeholder key)."""

    exit_code = 2


class SourceError(EvergreenError):
    """A source could not be fetched or read: network, HTTP status, corrupt or malformed file."""

    exit_code = 3


class DataQualityError(EvergreenError):
    """The input parsed, but too much of it is unusable (for example the reject rate guard)."""

    exit_code = 4


class WarehouseError(EvergreenError):
    """The warehouse refused the operation: schema out of date, lock held, snapshot out of order."""

    exit_code = 5


class SchemaOutOfDateError(WarehouseError):
    """The database is not at the newest migration."""


class SnapshotOrderError(WarehouseError):
    """A snapshot older than (or as old as, but different from) the newest loaded one."""


class ConcurrentLoadError(WarehouseError):
    """Another load holds the warehouse lock."""
