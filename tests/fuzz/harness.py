"""Fuzz one reader in this process, under a memory limit and a time limit per input.

    python -m fuzz.harness users|lookup     (with tests/ on PYTHONPATH)

Every input must end in success or a clean error: an ``EvergreenError`` with exit status 3 or
4 and a one-line message, which the command prints as such. Anything else (exit 70 in the
command: any other exception, a ``MemoryError`` past ``MEMORY_LIMIT``, an input that takes
longer than ``EXAMPLE_SECONDS``) fails, and Hypothesis prints the smallest input it found.

The Hypothesis profile comes from ``HYPOTHESIS_PROFILE``: ``default`` (a few hundred examples
per reader, for every test run) or ``fuzz`` (thousands, for ``make fuzz``).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import tempfile
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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class ExampleTooSlow(Exception):
    """An input took longer than EXAMPLE_SECONDS."""


def _too_slow(_signum: int, _frame: FrameType | None) -> None:
    raise ExampleTooSlow(f"an input took longer than {EXAMPLE_SECONDS}s")


def exit_status(action: Callable[[], object]) -> int:
    """The status the command would exit with after ``action``; fails on an unclean end."""
    signal.setitimer(signal.ITIMER_REAL, EXAMPLE_SECONDS)
    refused: EvergreenError | None = None
    try:
        action()
    except EvergreenError as exc:
        refused = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if refused is None:
        return 0
    message, status = str(refused), refused.exit_code
    assert message, f"exit {status} without a message"
    assert "\n" not in message, repr(message)
    assert "\r" not in message, repr(message)
    assert status in CLEAN_EXITS, f"exit {status}"
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
    """Limit this process's memory, then fuzz ``reader``."""
    warnings.filterwarnings("ignore", "Duplicate name")  # zips the strategies build on purpose
    logging.getLogger("evergreen_etl").addHandler(logging.NullHandler())  # warnings expected
    logging.getLogger("evergreen_etl").propagate = False
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    signal.signal(signal.SIGALRM, _too_slow)
    {"users": fuzz_users, "lookup": fuzz_lookup}[reader]()


if __name__ == "__main__":
    main(sys.argv[1])
