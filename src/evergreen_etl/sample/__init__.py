"""Realistic fake sources in the real layouts, for demos, tests and benchmarks.

``generate_sample`` writes a ``postcodes.zip`` shaped like the ONS National Statistics Postcode
Lookup (44-column centroid CSV plus a names lookup) and one or more ``users.json`` snapshots shaped
like the Evergreen customer export, with the mess the real sources have (README, "How the
sources are read"). Everything is deterministic for a seed and nothing touches the network.

The people are invented: names, streets and emails are distinctive strings that cannot occur by
accident in a database file or a local-authority name, so a test can search any output for them
to prove that no personal data leaked.

The postcode lookup is written by ``geography.py``, the users snapshots by ``users.py``; the
word lists both draw on are in ``words.py``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from evergreen_etl.sample.geography import (
    NAMES_MEMBER,
    NSPL_HEADER,
    NSPL_MEMBER,
    PostcodeSample,
    SampleDistrict,
    write_postcode_lookup,
)
from evergreen_etl.sample.users import write_users_snapshots

__all__ = [
    "NAMES_MEMBER",
    "NSPL_HEADER",
    "NSPL_MEMBER",
    "PostcodeSample",
    "SampleDistrict",
    "SampleResult",
    "generate_sample",
    "write_postcode_lookup",
    "write_users_snapshots",
]


class SampleResult(BaseModel):
    """What ``generate_sample`` wrote."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    postcodes_path: Path
    users_paths: list[Path]
    postcodes: int
    """Data rows written to the lookup CSV."""
    users: int
    """Distinct people in the first snapshot."""


def generate_sample(
    directory: Path,
    *,
    users: int = 2000,
    postcodes: int = 20000,
    snapshots: int = 1,
    seed: int = 42,
    macos_junk: bool = False,
) -> SampleResult:
    """Write ``postcodes.zip`` and ``users.json`` (+ ``users-2.json``...) into ``directory``.

    The same arguments always give the same bytes. Nothing is fetched from the network.
    """
    directory.mkdir(parents=True, exist_ok=True)
    postcodes_path = directory / "postcodes.zip"
    lookup = write_postcode_lookup(
        postcodes_path, postcodes=postcodes, seed=seed, macos_junk=macos_junk
    )
    users_paths = write_users_snapshots(
        directory, lookup, users=users, snapshots=snapshots, seed=seed
    )
    return SampleResult(
        postcodes_path=postcodes_path,
        users_paths=users_paths,
        postcodes=lookup.rows,
        users=users,
    )
