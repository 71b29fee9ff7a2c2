"""Times in the warehouse are UTC without a zone; users may give dates or zoned times."""

from __future__ import annotations

from datetime import UTC, datetime


def to_utc_naive(moment: datetime) -> datetime:
    """Convert an aware time to naive UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_as_of(value: str) -> datetime:
    """Parse ``2024-01-01``, ``2024-01-01T12:00`` or ``2024-01-01T12:00:00+01:00`` as UTC."""
    try:
        return to_utc_naive(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ValueError(
            f"'{value}' is not a date or time (use YYYY-MM-DD or an ISO 8601 time)"
        ) from None


def utc_now() -> datetime:
    """Now, as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
