"""Guards a load passes before it commits: a plausible snapshot time and a plausible volume.

Both catch the mistakes that otherwise poison every later load: a typo that puts a snapshot
years ahead (every real snapshot after it is then "older" and refused), and a cut-short
export that closes the address of most users at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from evergreen_etl.errors import ConfigurationError, DataQualityError
from evergreen_etl.times import utc_now

log = logging.getLogger("evergreen_etl.load")
# How far ahead of this machine's clock a snapshot time may be (clock skew, time zones).
FUTURE_TOLERANCE = timedelta(days=1)


def check_not_future(moment: datetime, *, what: str, allow_future: bool = False) -> None:
    """Refuse a snapshot time more than a day ahead of now (naive UTC), unless allowed."""
    if allow_future or moment <= utc_now() + FUTURE_TOLERANCE:
        return
    raise ConfigurationError(
        f"{what} {moment:%Y-%m-%d %H:%M:%S} UTC is more than a day in the future; "
        "pass --allow-future if it is meant (nothing was loaded)"
    )


def check_left_rate(
    *, left: int, moved: int, unchanged: int, max_left_rate: float, warn_only: bool = False
) -> None:
    """Refuse a merge that closes more than ``max_left_rate`` of the current users.

    Every user current before the merge is now unchanged, moved or left (absent from the
    snapshot), so the share needs no other query. Raised inside the load's transaction, the
    error rolls the merge back. With ``warn_only`` (a dry run) the refusal is logged instead.
    """
    current = left + moved + unchanged
    if current == 0 or left <= max_left_rate * current:
        return
    error = DataQualityError(
        f"the snapshot would close the address of {left / current:.1%} of the current users "
        f"({left:,} of {current:,}), more than the --max-left-rate of {max_left_rate:.1%}; "
        "nothing was loaded (a cut-short export? pass --max-left-rate 1 to load it anyway)"
    )
    if not warn_only:
        raise error
    log.warning("a load would be refused: %s", error)
