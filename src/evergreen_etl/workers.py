"""Parse in a worker process while this one works on what it already has: two cores, one stream.

The national postcode lookup and a large users export are each read by a worker process that
sends batches through a pipe. A pipe holds little, so the worker waits when this process falls
behind: memory stays bounded by a few batches whatever the size of the input. Errors cross
the pipe as they would be raised by reading in-process: a ``SourceError`` with its message
(which never quotes the data), anything else by its type name only (its text might).
"""

from __future__ import annotations

import gc
import multiprocessing
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Generic, TypeVar

from evergreen_etl.errors import SourceError

__all__ = ["WorkerBatches"]

T = TypeVar("T")

_BATCH, _DONE, _SOURCE_ERROR, _ERROR = "batch", "done", "source-error", "error"


class WorkerBatches(Generic[T]):
    """The batches that ``produce(*args)`` yields, produced in a worker process.

    ``produce`` must be a module-level function (the worker may be spawned) returning a
    generator of batches; its return value becomes ``result`` once every batch is read::

        with WorkerBatches(parse, (path, label), label=label, what="users parser") as batches:
            for batch in batches: ...
        print(batches.result)

    The worker starts on ``__enter__``: by ``fork`` while this process has a single thread
    (immediate, no imports), else by ``spawn`` (a progress bar's thread makes fork unsafe).
    Leaving the block early stops the worker.
    """

    def __init__(
        self,
        produce: Callable[..., Generator[list[T], None, Any]],
        args: tuple[Any, ...],
        *,
        label: str,
        what: str,
    ) -> None:
        self._produce = produce
        self._args = args
        self._label = label
        self._what = what
        self._receiver: Connection | None = None
        self._worker: Any = None
        self.result: Any = None

    def __enter__(self) -> WorkerBatches[T]:
        fork = sys.platform == "linux" and threading.active_count() == 1
        context: Any = multiprocessing.get_context("fork" if fork else "spawn")
        receiver, sender = context.Pipe(duplex=False)
        self._worker = context.Process(
            target=_run,
            # A forked worker inherits this end of the pipe and closes it: were this process
            # killed, its writes must fail rather than wait for a reader that is itself.
            args=(self._produce, self._args, sender, receiver if fork else None),
            name=f"evergreen-etl {self._what}",
            daemon=True,
        )
        self._worker.start()
        sender.close()
        self._receiver = receiver
        return self

    def __iter__(self) -> Iterator[list[T]]:
        receiver, worker = self._receiver, self._worker
        if receiver is None or worker is None:
            raise RuntimeError("WorkerBatches must be entered (with ...) before iterating")
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                worker.join()
                raise SourceError(
                    f"{self._label}: the {self._what} process stopped (exit code {worker.exitcode})"
                ) from None
            if kind == _BATCH:
                yield payload
            elif kind == _DONE:
                self.result = payload
                return
            elif kind == _SOURCE_ERROR:
                raise SourceError(payload)
            else:
                raise RuntimeError(f"the {self._what} process failed: {payload}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._receiver is not None:
            self._receiver.close()
        if self._worker is not None:
            if self._worker.is_alive():
                self._worker.terminate()
            self._worker.join()


def _run(
    produce: Callable[..., Generator[list[Any], None, Any]],
    args: tuple[Any, ...],
    sender: Connection,
    inherited: Connection | None,
) -> None:
    """In the worker: send each batch, then the generator's return value, or the error."""
    if inherited is not None:
        inherited.close()
    gc.disable()  # a short-lived process that only streams records: see gc_pause.py
    try:
        batches = produce(*args)
        while True:
            try:
                batch = next(batches)
            except StopIteration as stop:
                sender.send((_DONE, stop.value))
                break
            sender.send((_BATCH, batch))
    except SourceError as exc:
        sender.send((_SOURCE_ERROR, str(exc)))
    except Exception as exc:  # the type only: the text of an unexpected error may quote data
        sender.send((_ERROR, type(exc).__name__))
    finally:
        sender.close()
