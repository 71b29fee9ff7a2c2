"""WorkerBatches: a generator run in a worker process, its batches and its end passed back."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

import evergreen_etl
from evergreen_etl.errors import SourceError
from evergreen_etl.workers import WorkerBatches
from support.processes import is_running

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
        assert is_running(pid)

    assert time.monotonic() - started < 10
    assert multiprocessing.active_children() == []
    assert not is_running(pid)
    assert batches.result is None


def _fail_while_consuming(pids: list[int]) -> None:
    with WorkerBatches(_endless, (), label="endless", what="producer") as batches:
        batch_iter = iter(batches)
        pids.append(_worker_pid(batch_iter))
        next(batch_iter)
        assert is_running(pids[0])
        raise KeyError("consumer")


def test_an_error_in_the_consumer_stops_the_worker() -> None:
    """An exception raised while handling a batch leaves the block and stops the worker."""
    pids: list[int] = []

    with pytest.raises(KeyError, match="consumer"):
        _fail_while_consuming(pids)

    assert len(pids) == 1
    assert multiprocessing.active_children() == []
    assert not is_running(pids[0])


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


# Enters WorkerBatches (forked: one thread), reads a batch while the worker floods the pipe,
# prints the worker's pid and start time, then dies by SIGKILL: no __exit__, no atexit.
_ORPHANING_PROGRAM = """
import os, signal, threading
from evergreen_etl.workers import WorkerBatches

def flood():
    yield [os.getpid()]
    while True:
        yield [0] * 100_000  # some 200 kB pickled: the pipe fills and the worker waits in send

assert threading.active_count() == 1  # so the worker is forked
with WorkerBatches(flood, (), label="flood", what="flooder") as batches:
    pid = next(iter(batches))[0]
    assert pid == batches._worker.pid
    with open(f"/proc/{pid}/stat") as stat:  # our unreaped child: the pid is still its
        start_time = stat.read().rpartition(")")[2].split()[19]
    print(pid, start_time, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _lives(pid: int, start_time: str) -> bool:
    """True while that process (not a later one with its pid) runs; a zombie has ended."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    return fields[19] == start_time and fields[0] not in ("Z", "X")


@pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only; reads /proc")
def test_a_forked_worker_whose_parent_is_killed_ends(tmp_path: Path) -> None:
    """Orphaned by SIGKILL while it waits on a full pipe, the worker ends: it holds no reader.

    Had the worker kept its inherited copy of the read end, its send would wait forever for
    a reader that is itself.
    """
    src = Path(str(evergreen_etl.__file__)).parent.parent
    paths = [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:  # files, not pipes: an orphan
        program = subprocess.run(  # holding a pipe's write end would block its reader
            [sys.executable, "-c", _ORPHANING_PROGRAM],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    assert program.returncode == -signal.SIGKILL, err.read_text()
    pid_text, start_time = out.read_text().split()
    pid = int(pid_text)

    deadline = time.monotonic() + 20  # a hang check, not a timing one
    try:
        while _lives(pid, start_time) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _lives(pid, start_time), f"orphaned worker {pid} still running after 20 s"
    finally:
        if _lives(pid, start_time):
            os.kill(pid, signal.SIGKILL)
