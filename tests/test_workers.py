"""WorkerBatches: a generator run in a worker process, its batches and its end passed back."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator

import pytest

from evergreen_etl.errors import SourceError
from evergreen_etl.workers import WorkerBatches

SECRET = "secret@example.com"
# A value the test changes at run time: a forked worker sees the change, a spawned one
# (which imports this module afresh) sees the value written here.
_STATE = {"mark": "as imported"}


# The producers run in the worker, so they are module-level functions (a spawned worker
# finds them by importing this module).


def _counting(batches: int, size: int) -> Generator[list[int], None, str]:
    for start in range(0, batches * size, size):
        yield list(range(start, start + size))
    return f"counted {batches * size}"


def _source_error(message: str) -> Generator[list[int], None, None]:
    yield [1, 2]
    raise SourceError(message)


def _value_error() -> Generator[list[int], None, None]:
    yield [1]
    raise ValueError(f"{SECRET} is not a number")


def _exits(code: int) -> Generator[list[int], None, None]:
    yield [1]
    os._exit(code)


def _killed() -> Generator[list[int], None, None]:
    yield [1]
    os.kill(os.getpid(), signal.SIGKILL)
    yield [2]  # pragma: no cover - never reached


def _endless() -> Generator[list[int], None, None]:
    yield [os.getpid()]
    while True:
        yield [0] * 1000  # soon fills the pipe: the worker then waits in send


def _stalls() -> Generator[list[int], None, None]:
    yield [os.getpid()]
    yield [1]
    time.sleep(60)  # busy with something long: only terminate stops it soon
    yield [2]  # pragma: no cover - terminated before


def _mark() -> Generator[list[str], None, str]:
    yield [_STATE["mark"]]
    return _STATE["mark"]


def _worker_pid(batches: Iterator[list[int]]) -> int:
    return next(batches)[0]


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(autouse=True)
def _no_children_left() -> Iterator[None]:
    """Every test starts, and must end, without a live child process."""
    assert multiprocessing.active_children() == []
    yield
    assert multiprocessing.active_children() == []


def test_batches_arrive_in_order_and_result_is_the_return_value() -> None:
    """Every batch comes through, in order, and ``result`` is what the generator returned."""
    with WorkerBatches(_counting, (5, 3), label="counts", what="counter") as batches:
        assert batches.result is None
        received = list(batches)

    assert received == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]]
    assert batches.result == "counted 15"


def test_large_batches_cross_the_pipe_whole() -> None:
    """Batches much larger than a pipe's buffer arrive intact (the worker waits for us)."""
    with WorkerBatches(_counting, (4, 50_000), label="counts", what="counter") as batches:
        received = list(batches)

    assert [len(batch) for batch in received] == [50_000] * 4
    assert [n for batch in received for n in batch] == list(range(200_000))
    assert batches.result == "counted 200000"


def test_no_batches_still_gives_the_result() -> None:
    """A generator that yields nothing: no batch, and its return value as ``result``."""
    with WorkerBatches(_counting, (0, 10), label="counts", what="counter") as batches:
        received = list(batches)

    assert received == []
    assert batches.result == "counted 0"


def test_source_error_is_raised_with_its_message() -> None:
    """A SourceError in the worker is raised here, with the identical message."""
    message = "users.json: line 7: not valid JSON (Expecting value)"
    received: list[list[int]] = []

    with (
        pytest.raises(SourceError) as raised,
        WorkerBatches(_source_error, (message,), label="users.json", what="reader") as batches,
    ):
        received.extend(batches)

    assert str(raised.value) == message
    assert received == [[1, 2]]  # the batch before the error came through first


def test_other_error_is_named_by_type_without_its_text() -> None:
    """Any other error becomes a RuntimeError naming its type only: its text may quote data."""
    with (
        pytest.raises(RuntimeError) as raised,
        WorkerBatches(_value_error, (), label="users.json", what="users reader") as batches,
    ):
        list(batches)

    assert type(raised.value) is RuntimeError
    assert str(raised.value) == "the users reader process failed: ValueError"
    assert SECRET not in str(raised.value)
    assert "not a number" not in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("produce", "args", "exit_code"),
    [(_exits, (3,), 3), (_killed, (), -signal.SIGKILL)],
    ids=["os-exit", "sigkill"],
)
def test_a_worker_that_dies_is_a_source_error_with_its_exit_code(
    produce: Callable[..., Generator[list[int], None, None]],
    args: tuple[int, ...],
    exit_code: int,
) -> None:
    """A worker that stops without an answer: SourceError naming the label and exit code."""
    with (
        pytest.raises(SourceError) as raised,
        WorkerBatches(produce, args, label="postcodes.zip", what="postcode parser") as batches,
    ):
        list(batches)

    assert str(raised.value) == (
        f"postcodes.zip: the postcode parser process stopped (exit code {exit_code})"
    )


@pytest.mark.parametrize("produce", [_endless, _stalls], ids=["sending", "busy"])
def test_breaking_out_early_stops_the_worker(
    produce: Callable[..., Generator[list[int], None, None]],
) -> None:
    """Leaving the with block before the end terminates the worker, sending or busy."""
    started = time.monotonic()
    with WorkerBatches(produce, (), label="early", what="producer") as batches:
        batch_iter = iter(batches)
        pid = _worker_pid(batch_iter)
        for _ in batch_iter:
            break
        assert _is_running(pid)

    assert time.monotonic() - started < 10
    assert multiprocessing.active_children() == []
    assert not _is_running(pid)
    assert batches.result is None


def _fail_while_consuming(pids: list[int]) -> None:
    with WorkerBatches(_endless, (), label="endless", what="producer") as batches:
        batch_iter = iter(batches)
        pids.append(_worker_pid(batch_iter))
        next(batch_iter)
        assert _is_running(pids[0])
        raise KeyError("consumer")


def test_an_error_in_the_consumer_stops_the_worker() -> None:
    """An exception raised while handling a batch leaves the block and stops the worker."""
    pids: list[int] = []

    with pytest.raises(KeyError, match="consumer"):
        _fail_while_consuming(pids)

    assert len(pids) == 1
    assert multiprocessing.active_children() == []
    assert not _is_running(pids[0])


def test_iterating_without_entering_is_refused() -> None:
    """The worker starts on __enter__: iterating before is a RuntimeError, and starts nothing."""
    batches: WorkerBatches[int] = WorkerBatches(_counting, (2, 2), label="x", what="counter")

    with pytest.raises(RuntimeError, match="must be entered"):
        list(batches)

    assert multiprocessing.active_children() == []


@pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only")
def test_a_single_threaded_process_forks_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one thread the worker is forked: it sees this process's state as it is now."""
    if threading.active_count() != 1:
        pytest.skip("another thread is running in this test process")
    monkeypatch.setitem(_STATE, "mark", "changed by the test")

    with WorkerBatches(_mark, (), label="mark", what="marker") as batches:
        received = list(batches)

    assert received == [["changed by the test"]]
    assert batches.result == "changed by the test"


def test_with_another_thread_running_the_worker_is_spawned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second thread makes fork unsafe: the worker is spawned and imports the producer."""
    monkeypatch.setitem(_STATE, "mark", "changed by the test")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="test-thread")
    thread.start()
    try:
        with WorkerBatches(_mark, (), label="mark", what="marker") as batches:
            received = list(batches)
        with WorkerBatches(_counting, (3, 2), label="counts", what="counter") as counted:
            numbers = list(counted)
    finally:
        stop.set()
        thread.join()

    assert received == [["as imported"]]  # a fresh interpreter, not a copy of this one
    assert batches.result == "as imported"
    assert numbers == [[0, 1], [2, 3], [4, 5]]
    assert counted.result == "counted 6"


def test_a_source_error_from_a_spawned_worker_keeps_its_message() -> None:
    """Errors cross the pipe the same way from a spawned worker."""
    message = "postcodes.zip: nspl.csv: line 3: expected at least 4 columns, found 1"
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="test-thread")
    thread.start()
    try:
        with (
            pytest.raises(SourceError) as raised,
            WorkerBatches(_source_error, (message,), label="p", what="parser") as batches,
        ):
            list(batches)
    finally:
        stop.set()
        thread.join()

    assert str(raised.value) == message
