"""Fuzz one reader: each input in a forked process under a memory limit and a time limit.

    python -m fuzz.harness users|lookup     (with tests/ on PYTHONPATH)

Every input must end in success or a clean error: an ``EvergreenError`` with exit status 3 or
4 and a one-line message, which the command prints as such. Anything else fails, and
Hypothesis prints the smallest input it found: any other exception (exit 70 in the command),
a ``MemoryError`` because the reader needed more than ``MEMORY_LIMIT`` of address space, or
an input that took longer than ``EXAMPLE_SECONDS``. Each input runs in a child forked for it,
so the limit measures the reader alone (Hypothesis's own memory grows over a long run).

The Hypothesis profile comes from ``HYPOTHESIS_PROFILE``: ``default`` (a few hundred examples
per reader, for every test run) or ``fuzz`` (thousands, for ``make fuzz``).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, given, settings

from evergreen_etl.errors import EvergreenError
from fuzz.strategies import LOOKUP_ZIP, USERS_EXPORT

MEMORY_LIMIT = 512 * 1024 * 1024
EXAMPLE_SECONDS = 20
CLEAN_EXITS = {0, 3, 4}
PROFILES = {"default": 200, "fuzz": 5000}

for _name, _examples in PROFILES.items():
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class ExampleTooSlow(Exception):
    """An input took longer than EXAMPLE_SECONDS."""


def _too_slow(_signum: int, _frame: FrameType | None) -> None:
    raise ExampleTooSlow(f"an input took longer than {EXAMPLE_SECONDS}s")


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _in_child(action: Callable[[], object]) -> dict[str, object]:
    """Run ``action`` under the limits; what the command would report."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + MEMORY_LIMIT, hard))
    resource.setrlimit(resource.RLIMIT_CPU, (EXAMPLE_SECONDS + 5, EXAMPLE_SECONDS + 10))
    signal.signal(signal.SIGALRM, _too_slow)
    signal.setitimer(signal.ITIMER_REAL, EXAMPLE_SECONDS)
    try:
        action()
    except EvergreenError as exc:
        return {"status": exc.exit_code, "message": str(exc)}
    except BaseException:  # exit 70 in the command: the very thing this looks for
        return {"status": 70, "message": traceback.format_exc()}
    return {"status": 0, "message": ""}


def exit_status(action: Callable[[], object]) -> int:
    """The status the command would exit with after ``action``; fails on an unclean end."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any of the parent's cleanup
        os.close(read_end)
        try:
            outcome = json.dumps(_in_child(action)).encode()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(outcome)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read()
    _pid, wait_status = os.waitpid(pid, 0)
    assert report, f"the reader's process died (wait status {wait_status})"
    outcome = json.loads(report)
    status, message = int(outcome["status"]), str(outcome["message"])
    assert status in CLEAN_EXITS, f"exit {status}: {message}"
    if status:
        assert message, f"exit {status} without a message"
        assert "\n" not in message, repr(message)
        assert "\r" not in message, repr(message)
    return status


@given(USERS_EXPORT)
def fuzz_users(data: bytes) -> None:
    """Any users export is anonymised or refused cleanly (exit 3 or 4)."""
    from evergreen_etl.anonymise import anonymise
    from evergreen_etl.settings import Settings
    from support.keys import TEST_KEY

    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users.json"
        users.write_bytes(data)
        settings = Settings(data_dir=Path(tmp) / "data", pseudonym_key=TEST_KEY, max_reject_rate=1)
        exit_status(lambda: anonymise(settings, users_path=users, progress=False))


@given(LOOKUP_ZIP)
def fuzz_lookup(data: bytes) -> None:
    """Any postcode zip passes extract's check and is read whole, or is refused cleanly."""
    from evergreen_etl.extract.validate import check_postcode_lookup
    from evergreen_etl.sources.nspl import PostcodeLookupReader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "postcodes.zip"
        path.write_bytes(data)

        def read_all() -> None:
            check_postcode_lookup(path, "postcodes.zip")
            reader = PostcodeLookupReader(path)
            for batch in reader.batches(parallel=False):
                assert batch
            reader.authority_names()

        exit_status(read_all)


def main(reader: str) -> None:
    """Fuzz ``reader`` with the profile ``HYPOTHESIS_PROFILE`` names."""
    profile = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
    warnings.filterwarnings("ignore", "Duplicate name")  # zips the strategies build on purpose
    logging.getLogger("evergreen_etl").addHandler(logging.NullHandler())  # warnings expected
    logging.getLogger("evergreen_etl").propagate = False
    test = {"users": fuzz_users, "lookup": fuzz_lookup}[reader]
    settings(profile)(test)()


if __name__ == "__main__":
    main(sys.argv[1])
