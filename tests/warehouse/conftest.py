"""Fixtures for warehouse fault tests: staged snapshots and load processes.

A load process is ``python -m evergreen_etl load`` in a subprocess, optionally held at a
failpoint (``evergreen_etl.failpoints``): the test waits for the ready file, then kills the
process there (SIGKILL), reads the database while it waits, or releases it by deleting the
ready file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.failpoints import FAILPOINT_ENV, READY_ENV
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import write_lookup_zip, write_users
from warehouse.faults import LoadProcess


@pytest.fixture
def stage_snapshot(settings: Settings, tmp_path: Path) -> Callable[..., Path]:
    """Anonymise ``records`` into ``data_dir/staged`` (default: the settings' data dir).

    The scenario lookup (or ``lookup_rows``) is put at ``data_dir/raw/postcodes.zip``, where
    the ``load`` command looks for it. Returns the data dir.
    """
    counter = iter(range(1, 1000))
    # One zip per distinct lookup, copied: equal lookups keep equal bytes (and sha256).
    lookups: dict[str, Path] = {}

    def _stage(
        records: Sequence[Any],
        *,
        data_dir: Path | None = None,
        lookup_rows: Sequence[dict[str, str]] = (),
        key: str = TEST_KEY,
    ) -> Path:
        target = Settings(
            data_dir=data_dir or settings.data_dir,
            database_url=settings.database_url,
            pseudonym_key=key,
            max_reject_rate=1.0,
        )
        target.raw_dir.mkdir(parents=True, exist_ok=True)
        lookup = lookups.get(repr(lookup_rows))
        if lookup is None:
            lookup = write_lookup_zip(tmp_path / f"lookup-{len(lookups) + 1}.zip", lookup_rows)
            lookups[repr(lookup_rows)] = lookup
        shutil.copyfile(lookup, target.raw_dir / "postcodes.zip")
        users = write_users(tmp_path / f"users-{next(counter)}.json", records)
        anonymise(target, users_path=users, progress=False)
        return target.data_dir

    return _stage


@pytest.fixture
def start_load(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., LoadProcess]]:
    """Start ``python -m evergreen_etl load`` for a staged data dir; killed at teardown if alive."""
    started: list[LoadProcess] = []

    def _start(
        as_of: str, *, data_dir: Path | None = None, failpoint: str | None = None
    ) -> LoadProcess:
        n = len(started) + 1
        ready = tmp_path / f"load-{n}.ready"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVERGREEN_")}
        if failpoint:
            env[FAILPOINT_ENV] = failpoint
            env[READY_ENV] = str(ready)
        command = [
            sys.executable,
            "-m",
            "evergreen_etl",
            "load",
            "--data-dir",
            str(data_dir or settings.data_dir),
            "--database-url",
            settings.effective_database_url,
            "--as-of",
            as_of,
            "--max-left-rate",  # the scenarios' small snapshots close many users
            "1",
            "--quiet",
        ]
        stdout, stderr = tmp_path / f"load-{n}.out", tmp_path / f"load-{n}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        load = LoadProcess(process, ready, stdout, stderr)
        started.append(load)
        return load

    yield _start
    for load in started:
        if load.process.poll() is None:
            load.kill()
