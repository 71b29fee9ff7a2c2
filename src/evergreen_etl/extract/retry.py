"""Retry a transient failure: exponential backoff with jitter, or the server's Retry-After.

``sleep`` and ``random`` are module attributes so tests can record the waits and pin the
jitter instead of sleeping through them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_CAP_SECONDS",
    "RETRY_AFTER_CAP_SECONDS",
    "TransientError",
    "backoff_delay",
    "with_retries",
]

logger = logging.getLogger("evergreen_etl.extract")

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
RETRY_AFTER_CAP_SECONDS = 60.0

# Module-level so tests can replace it with a recorder and run without waiting.
sleep: Callable[[float], None] = time.sleep

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped, jittered."""
    exponent = min(max(attempt - 1, 0), 16)
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**exponent)
    # Jitter spreads out clients that failed together, so they do not retry in lockstep.
    return delay * random.uniform(0.5, 1.0)


def with_retries(
    action: Callable[[], T],
    *,
    attempts: int,
    label: str,
    give_up: Callable[[TransientError], Exception],
) -> T:
    """Call ``action`` until it returns, at most ``attempts`` times.

    A ``TransientError`` is retried after a wait (the server's Retry-After, capped, else the
    backoff); any other exception ends at once. After the last attempt the exception
    ``give_up`` makes of the last failure is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except TransientError as exc:
            failure = exc
        if attempt == attempts:
            raise give_up(failure) from failure
        delay = (
            min(failure.retry_after, RETRY_AFTER_CAP_SECONDS)
            if failure.retry_after is not None
            else backoff_delay(attempt)
        )
        logger.warning(
            "%s: %s (attempt %d of %d); retrying in %.1fs",
            label,
            failure,
            attempt,
            attempts,
            delay,
        )
        sleep(delay)
    raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover
