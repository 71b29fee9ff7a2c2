"""Stage events for whoever watches a run: the run record, metrics and lineage.

A stage (``logs.timed_stage``) announces its start and its end; observers registered with
:func:`observing` for the current context hear both. An observer's own failure is logged
and never fails the stage: watching a run must not break it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

log = logging.getLogger("evergreen_etl.observe")


@dataclass(frozen=True)
class StageStart:
    """A stage is about to run."""

    stage: str
    run_id: str
    started_at: datetime  # aware, UTC


@dataclass(frozen=True)
class StageEnd:
    """A stage ended: with its result, or with the error that stopped it."""

    stage: str
    run_id: str
    started_at: datetime  # aware, UTC
    duration_s: float
    result: BaseModel | None
    error: BaseException | None

    @property
    def succeeded(self) -> bool:
        """True when the stage returned a result."""
        return self.error is None


class StageObserver(Protocol):
    """Hears each stage start and end."""

    def stage_started(self, event: StageStart) -> None:
        """Called before the stage's work."""

    def stage_finished(self, event: StageEnd) -> None:
        """Called after the stage's work, whether it succeeded or not."""


_OBSERVERS: ContextVar[tuple[StageObserver, ...]] = ContextVar("observers", default=())


@contextmanager
def observing(*observers: StageObserver) -> Iterator[None]:
    """Register ``observers`` for the stages run inside the block."""
    token = _OBSERVERS.set(_OBSERVERS.get() + observers)
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def notify(event: StageStart | StageEnd) -> None:
    """Tell every registered observer about ``event``."""
    for observer in _OBSERVERS.get():
        try:
            if isinstance(event, StageStart):
                observer.stage_started(event)
            else:
                observer.stage_finished(event)
        except Exception as exc:  # an observer must not fail the run
            log.warning("%s failed: %s", type(observer).__name__, type(exc).__name__)
