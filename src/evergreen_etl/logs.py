"""Logging to stderr, as text for people or JSON lines for machines. Never personal data."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from evergreen_etl.observe import StageEnd, StageStart, notify

LogFormat = Literal["text", "json"]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_RUN_ID: ContextVar[str | None] = ContextVar("run_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).replace(tzinfo=None)
        payload: dict[str, object] = {
            "ts": stamp.isoformat(timespec="milliseconds") + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": current_run_id(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return json.dumps(payload, default=str)


def configure_logging(*, level: int = logging.INFO, fmt: LogFormat = "text") -> None:
    """Send the package's logs to stderr in ``fmt``; safe to call more than once."""
    logger = logging.getLogger("evergreen_etl")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # httpx logs every request URL at INFO; a presigned URL's query string is a credential.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def new_run_id() -> str:
    """An identifier that ties together the log lines of one invocation."""
    return uuid.uuid4().hex[:12]


def current_run_id() -> str | None:
    """The run id bound by :func:`bound_run_id` for this context, if any."""
    return _RUN_ID.get()


@contextmanager
def bound_run_id(run_id: str | None = None) -> Iterator[str]:
    """Bind a run id (new unless given) to the log lines written inside the block."""
    run_id = run_id or new_run_id()
    token = _RUN_ID.set(run_id)
    try:
        yield run_id
    finally:
        _RUN_ID.reset(token)


def _numbers(data: dict[str, object]) -> dict[str, object]:
    """The numeric leaves of a result (counts, sizes, flags): never paths, never text."""
    kept: dict[str, object] = {}
    for name, value in data.items():
        if isinstance(value, bool | int | float):
            kept[name] = value
        elif isinstance(value, dict) and (nested := _numbers(value)):
            kept[name] = nested
    return kept


def result_counts(result: BaseModel) -> dict[str, object]:
    """A stage result's numeric leaves (counts, sizes, flags): never paths, never text."""
    return _numbers(result.model_dump(mode="json"))


@contextmanager
def timed_stage(stage: str, run_id: str) -> Iterator[list[BaseModel]]:
    """Log one line when a stage ends: run id, stage, duration and the result's counts.

    Put the stage's result in the yielded list; with ``--log-format json`` the fields are
    machine-readable.
    """
    results: list[BaseModel] = []
    started_at = datetime.now(UTC)
    notify(StageStart(stage, run_id, started_at))
    started = time.perf_counter()
    try:
        yield results
    except BaseException as exc:
        duration = round(time.perf_counter() - started, 3)
        notify(StageEnd(stage, run_id, started_at, duration, None, exc))
        raise
    duration = round(time.perf_counter() - started, 3)
    notify(StageEnd(stage, run_id, started_at, duration, results[0] if results else None, None))
    counts = result_counts(results[0]) if results else {}
    logging.getLogger("evergreen_etl.pipeline").info(
        "%s finished in %.2fs",
        stage,
        duration,
        extra={"run_id": run_id, "stage": stage, "duration_s": duration, "counts": counts},
    )
