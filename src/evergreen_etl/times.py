"""Times in the warehouse are UTC without a zone; users may give dates or zoned times.

Every time the project prints or writes as JSON is UTC with a ``Z`` (:func:`iso_z`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


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


def iso_z(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with a ``Z``: a naive time is taken to be UTC already."""
    text = to_utc_naive(moment).isoformat()
    return f"{text}Z"


def json_default(value: object) -> str:
    """``json.dumps`` ``default=``: times as UTC with ``Z``, anything else as ``str``."""
    if isinstance(value, datetime):
        return iso_z(value)
    return str(value)


# A datetime field that a model writes to JSON as UTC with ``Z`` (the Python value is unchanged).
UtcDateTime = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]
