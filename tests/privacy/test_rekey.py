"""Key rotation re-keys every pseudonym in one transaction; history and reports are unchanged."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from evergreen_etl.anonymise import anonymise
from evergreen_etl.cli import app
from evergreen_etl.errors import WarehouseError
from evergreen_etl.load import load
from evergreen_etl.privacy.ckm import record_key
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.privacy.rekey import rotate_key
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import LoadSnapshot, user, write_users

NEW_KEY = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
S1 = [user("ann@example.com", "AB1 1AA"), user("ben@example.com", "CV4 9RE")]
S2 = [user("ann@example.com", "AB2 1AB"), user("cat@example.com", "AB3 1AB")]


def _history(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT user_id, postcode, local_authority_code, valid_from, valid_to,"
                    " is_current FROM user_address ORDER BY address_id"
                )
            )
        ]


def _pseudonyms(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT pseudonym FROM dim_user")).scalars())


@pytest.fixture
def two_snapshots(load_snapshot: LoadSnapshot, tmp_path: Path) -> list[Path]:
    """Two loaded snapshots and their raw users files."""
    load_snapshot(S1, "2024-01-01")
    load_snapshot(S2, "2024-02-01")
    return [write_users(tmp_path / "r1.json", S1), write_users(tmp_path / "r2.json", S2)]


def test_rotation_keeps_history_and_reports(
    two_snapshots: list[Path], engine: Engine, settings: Settings
) -> None:
    """After rotation every pseudonym changed, and history and reports are identical."""
    history, pseudonyms = _history(engine), _pseudonyms(engine)
    reports = [report(settings, as_of=datetime(2024, m, 15), engine=engine) for m in (1, 2)]
    result = rotate_key(
        engine,
        old_key=PseudonymKey.from_text(TEST_KEY),
        new_key=PseudonymKey.from_text(NEW_KEY),
        users_paths=two_snapshots,
    )
    assert result.users_rekeyed == 3
    assert _history(engine) == history
    assert not _pseudonyms(engine) & pseudonyms
    assert [report(settings, as_of=datetime(2024, m, 15), engine=engine) for m in (1, 2)] == reports


def test_rotation_rederives_every_record_key(two_snapshots: list[Path], engine: Engine) -> None:
    """After a rotation every user's record key (cell key method) is that of the new
    pseudonym: it is derived through the pseudonym key."""
    rotate_key(
        engine,
        old_key=PseudonymKey.from_text(TEST_KEY),
        new_key=PseudonymKey.from_text(NEW_KEY),
        users_paths=two_snapshots,
    )
    with engine.connect() as conn:
        users = conn.execute(text("SELECT pseudonym, record_key FROM dim_user")).all()
    assert users
    assert all(key == record_key(pseudonym) for pseudonym, key in users)


def test_load_with_old_key_refused_after_rotation(
    two_snapshots: list[Path], engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """A snapshot pseudonymised with the old key is refused once the warehouse is re-keyed."""
    rotate_key(
        engine,
        old_key=PseudonymKey.from_text(TEST_KEY),
        new_key=PseudonymKey.from_text(NEW_KEY),
        users_paths=two_snapshots,
    )
    history = _history(engine)
    anonymise(settings, users_path=write_users(tmp_path / "r3.json", S2), progress=False)
    with pytest.raises(WarehouseError, match="pseudonymised with key"):
        load(
            settings,
            as_of=datetime(2024, 3, 1),
            engine=engine,
            progress=False,
            postcodes_path=tmp_path / "postcodes.zip",
        )
    assert _history(engine) == history


def test_rotation_refused_when_a_user_is_missing(two_snapshots: list[Path], engine: Engine) -> None:
    """Without every snapshot's source some users cannot be re-keyed: nothing changes."""
    pseudonyms = _pseudonyms(engine)
    with pytest.raises(WarehouseError, match="1 users in the warehouse are not in the sources"):
        rotate_key(
            engine,
            old_key=PseudonymKey.from_text(TEST_KEY),
            new_key=PseudonymKey.from_text(NEW_KEY),
            users_paths=two_snapshots[1:],
        )
    assert _pseudonyms(engine) == pseudonyms


def test_rotation_with_wrong_old_key_refused(two_snapshots: list[Path], engine: Engine) -> None:
    """The configured key must be the one the warehouse was loaded with."""
    with pytest.raises(WarehouseError, match="not with the configured key"):
        rotate_key(
            engine,
            old_key=PseudonymKey.from_text(NEW_KEY),
            new_key=PseudonymKey.from_text(TEST_KEY[::-1]),
            users_paths=two_snapshots,
        )


def test_cli_rotation_replaces_the_key_file(tmp_path: Path) -> None:
    """`keys rotate` with the default key file: the file holds a new 0600 key afterwards."""
    runner = CliRunner()
    data = tmp_path / "d"
    from support.sources import write_lookup_zip

    lookup = write_lookup_zip(tmp_path / "postcodes.zip")
    raw = write_users(tmp_path / "u.json", S1)
    args = ["--data-dir", str(data)]
    done = runner.invoke(
        app,
        [
            "run",
            *args,
            "--users-url",
            str(raw),
            "--postcodes-url",
            str(lookup),
            "--as-of",
            "2024-01-01",
            "-q",
        ],
    )
    assert done.exit_code == 0, done.stderr
    key_file = data / "pseudonym.key"
    old = key_file.read_bytes()
    before = runner.invoke(app, ["keys", "id", *args]).stdout
    rotated = runner.invoke(app, ["keys", "rotate", *args, "--users", str(raw)])
    assert rotated.exit_code == 0, rotated.stderr
    assert key_file.read_bytes() != old
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    after = runner.invoke(app, ["keys", "id", *args]).stdout
    configured, warehouse = (line.split(": ")[1] for line in after.splitlines())
    assert configured == warehouse
    assert after != before
    assert old.decode().strip() not in rotated.stdout + rotated.stderr


def test_load_after_rotation_sees_no_moves(
    two_snapshots: list[Path], engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Rotation re-keys the postcode tokens too: an unchanged snapshot then moves no one."""
    result = rotate_key(
        engine,
        old_key=PseudonymKey.from_text(TEST_KEY),
        new_key=PseudonymKey.from_text(NEW_KEY),
        users_paths=two_snapshots,
    )
    assert result.postcode_tokens_rekeyed == 4
    rotated = settings.model_copy(update={"pseudonym_key": SecretStr(NEW_KEY)})
    anonymise(rotated, users_path=write_users(tmp_path / "r3.json", S2), progress=False)
    loaded = load(
        rotated,
        as_of=datetime(2024, 3, 1),
        engine=engine,
        progress=False,
        postcodes_path=tmp_path / "postcodes.zip",
    )
    assert (loaded.moved, loaded.unchanged, loaded.new, loaded.left) == (0, 2, 0, 0)


def test_rotation_refused_when_a_postcode_is_missing(
    two_snapshots: list[Path], engine: Engine, tmp_path: Path
) -> None:
    """A token of a postcode in no source given cannot be re-keyed: nothing changes."""
    pseudonyms = _pseudonyms(engine)
    ben_elsewhere = write_users(tmp_path / "ben.json", [user("ben@example.com", "AB3 1AB")])
    with pytest.raises(WarehouseError, match="2 postcodes in the warehouse's address history"):
        rotate_key(
            engine,
            old_key=PseudonymKey.from_text(TEST_KEY),
            new_key=PseudonymKey.from_text(NEW_KEY),
            users_paths=[two_snapshots[1], ben_elsewhere],
        )
    assert _pseudonyms(engine) == pseudonyms
