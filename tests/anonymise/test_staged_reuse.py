"""Reusing the staged files: same source bytes, key, rules and year -> no second anonymise.

Re-anonymising unchanged input writes the same bytes, so "reused" is told apart from
"anonymised again" by the files themselves: a reused file keeps its inode and mtime, a
rewritten one is a new file (the temporary file is created while the old one still exists,
so its inode differs). A spy on ``_write_staged`` (the real function, counted) says the same.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from evergreen_etl.anonymise import anonymise
from evergreen_etl.errors import DataQualityError
from evergreen_etl.extract import write_manifest
from evergreen_etl.models import ManifestEntry
from evergreen_etl.privacy.pseudonym import PseudonymKey
from evergreen_etl.settings import Settings
from support.keys import TEST_KEY
from support.sources import user, write_users

# Another valid key (random hex, used nowhere else).
OTHER_KEY = "7d2e9b41c6a0f3e85b17d4c9a2f60e3b8c5d1a7f4e90b2c6d8a3f5e1b7c4d092"
STAGED_FILES = {"users.csv", "rejects.csv", "summary.json"}
OUTPUTS = ("users.csv", "rejects.csv")

# Four records, one rejected.
RECORDS: list[dict[str, Any]] = [
    user("jane@example.com", "AB1 3QF", sex="Female", dateOfBirth="1984-03-02"),
    user("john@example.com", "CA3", sex="m", dateOfBirth="1970-01-01"),
    user("not-an-email", "AB1 3QF"),
    user("sam@example.com", None, sex="Other"),
]
EMAILS = ["jane@example.com", "john@example.com", "sam@example.com"]  # the staged ones

Stamp = tuple[int, int, int]  # inode, mtime_ns, size


def _module() -> ModuleType:
    # The stage module itself: the package only re-exports its function.
    return importlib.import_module("evergreen_etl.anonymise.stage")


@pytest.fixture
def users_path(tmp_path: Path) -> Path:
    """The four sample records as NDJSON."""
    return write_users(tmp_path / "users.json", RECORDS, style="ndjson")


@pytest.fixture
def anonymised(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The source of every real anonymise pass (the real ``_write_staged``, counted)."""
    module = _module()
    real: Callable[..., dict[str, Any]] = module._write_staged
    calls: list[Path] = []

    def counted(source: Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(module, "_write_staged", counted)
    return calls


def _stamp(path: Path) -> Stamp:
    info = path.stat()
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _stamps(settings: Settings) -> dict[str, Stamp]:
    return {name: _stamp(settings.staged_dir / name) for name in STAGED_FILES}


def _bytes(settings: Settings) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in settings.staged_dir.iterdir()}


def _summary(settings: Settings) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((settings.staged_dir / "summary.json").read_text())
    return summary


def _pseudonyms(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["pseudonym"] for row in csv.DictReader(handle)]


def _run(settings: Settings, path: Path, **options: Any) -> Any:
    return anonymise(settings, users_path=path, progress=False, **options)


def test_second_run_on_the_same_input_reuses_the_staged_files(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """Same file, same key: users.csv and rejects.csv are left as they are, same result."""
    first = _run(settings, users_path)
    before, stamps = _bytes(settings), _stamps(settings)

    second = _run(settings, users_path)

    assert anonymised == [users_path]  # one real pass, the first
    assert second == first
    for name in OUTPUTS:
        assert (settings.staged_dir / name).read_bytes() == before[name], name
        assert _stamp(settings.staged_dir / name) == stamps[name], name  # not rewritten
    assert {path.name for path in settings.staged_dir.iterdir()} == STAGED_FILES


def test_reuse_rewrites_the_summary_with_a_new_time_only(
    settings: Settings, users_path: Path
) -> None:
    """On reuse summary.json is rewritten: a new anonymised_at, everything else as it was."""
    _run(settings, users_path)
    first, stamp = _summary(settings), _stamp(settings.staged_dir / "summary.json")

    _run(settings, users_path)

    second = _summary(settings)
    assert _stamp(settings.staged_dir / "summary.json")[0] != stamp[0]  # a new file
    assert datetime.fromisoformat(second["anonymised_at"]) > datetime.fromisoformat(
        first["anonymised_at"]
    )
    del first["anonymised_at"], second["anonymised_at"]
    assert second == first  # counts, fingerprint and recorded sizes unchanged


def test_reuse_keeps_being_reused_run_after_run(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """The summary a reuse rewrites still identifies the staged files: a third run reuses too."""
    first = _run(settings, users_path)
    stamps = {name: _stamp(settings.staged_dir / name) for name in OUTPUTS}

    results = [_run(settings, users_path) for _ in range(2)]

    assert anonymised == [users_path]
    assert results == [first, first]
    assert {name: _stamp(settings.staged_dir / name) for name in OUTPUTS} == stamps


def test_same_bytes_rewritten_are_still_reused(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """The source's bytes decide, not its file: the same bytes written anew are reused."""
    _run(settings, users_path)
    stamp = _stamp(settings.staged_dir / "users.csv")
    content = users_path.read_bytes()
    users_path.unlink()
    users_path.write_bytes(content)

    _run(settings, users_path)

    assert anonymised == [users_path]
    assert _stamp(settings.staged_dir / "users.csv") == stamp


def test_a_changed_record_is_anonymised_again(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """One record different: the staged users are written again and show the change."""
    pseudonym = PseudonymKey.from_text(TEST_KEY).pseudonymiser()
    first = _run(settings, users_path)
    assert _pseudonyms(first.staged_path) == [pseudonym(email) for email in EMAILS]
    changed = [user("june@example.com", "AB1 3QF", sex="Female"), *RECORDS[1:]]
    write_users(users_path, changed, style="ndjson")

    second = _run(settings, users_path)

    assert anonymised == [users_path, users_path]
    assert _pseudonyms(second.staged_path) == [
        pseudonym(email) for email in ["june@example.com", *EMAILS[1:]]
    ]
    assert (
        _summary(settings)["source_sha256"] == hashlib.sha256(users_path.read_bytes()).hexdigest()
    )


def test_a_changed_reject_is_anonymised_again(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """A record that becomes a reject: rejects.csv and the counts follow the new source."""
    first = _run(settings, users_path)
    write_users(users_path, [*RECORDS[:3], user(None)], style="ndjson")

    second = _run(settings, users_path)

    assert len(anonymised) == 2
    assert (first.rejected, second.rejected) == (1, 2)
    assert second.rejects_by_reason == {"email_invalid": 1, "email_missing": 1}
    with second.rejects_path.open(newline="") as handle:
        assert [row["position"] for row in csv.DictReader(handle)] == ["3", "4"]


def test_another_key_is_anonymised_again(
    settings: Settings, users_path: Path, anonymised: list[Path]
) -> None:
    """Another key: new pseudonyms and key id; back to the first key gives the first bytes."""
    first = _run(settings, users_path)
    first_bytes, first_pseudonyms = first.staged_path.read_bytes(), _pseudonyms(first.staged_path)
    other_settings = Settings(
        data_dir=settings.data_dir, pseudonym_key=OTHER_KEY, max_reject_rate=1.0
    )
    other = PseudonymKey.from_text(OTHER_KEY)

    second = _run(other_settings, users_path)

    assert len(anonymised) == 2
    assert second.key_id == other.key_id != first.key_id
    staged = _pseudonyms(second.staged_path)
    assert staged == [other.pseudonymiser()(email) for email in EMAILS]
    assert set(staged).isdisjoint(first_pseudonyms)

    third = _run(settings, users_path)

    assert len(anonymised) == 3
    assert third == first
    assert third.staged_path.read_bytes() == first_bytes


def _truncate(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _append_row(path: Path) -> None:
    with path.open("a", newline="") as handle:
        handle.write("99,forged,F,1900,,missing,\r\n")


def _keep_header_only(path: Path) -> None:
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])


@pytest.mark.parametrize(
    ("name", "tamper"),
    [
        ("users.csv", _truncate),
        ("users.csv", _append_row),
        ("users.csv", Path.unlink),
        ("rejects.csv", _keep_header_only),
        ("rejects.csv", Path.unlink),
    ],
    ids=[
        "users-truncated",
        "users-row-added",
        "users-deleted",
        "rejects-emptied",
        "rejects-deleted",
    ],
)
def test_a_staged_file_of_another_size_is_anonymised_again(
    settings: Settings,
    users_path: Path,
    anonymised: list[Path],
    name: str,
    tamper: Callable[[Path], None],
) -> None:
    """A staged file truncated, grown or deleted since the last run is not trusted."""
    first = _run(settings, users_path)
    before = _bytes(settings)
    tamper(settings.staged_dir / name)

    second = _run(settings, users_path)

    assert len(anonymised) == 2
    assert second == first
    after = _bytes(settings)
    for output in OUTPUTS:
        assert after[output] == before[output], output  # the correct file, not the tampered one
    assert _summary(settings)["staged_from"]["staged_bytes"] == {
        output: len(before[output]) for output in OUTPUTS
    }


def _no_staged_bytes(summary: dict[str, Any]) -> None:
    del summary["staged_from"]["staged_bytes"]


def _sizes_in_a_list(summary: dict[str, Any]) -> None:
    sizes = summary["staged_from"]["staged_bytes"]
    summary["staged_from"]["staged_bytes"] = [sizes["users.csv"], sizes["rejects.csv"]]


def _no_records_read(summary: dict[str, Any]) -> None:
    del summary["records_read"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(None, id="deleted"),
        pytest.param(b"", id="empty"),
        pytest.param(b"not json {", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b"[]", id="a-list"),
        pytest.param(b'{"staged_from": "x"}', id="fingerprint-not-an-object"),
        pytest.param(_sizes_in_a_list, id="sizes-not-an-object"),
        pytest.param(_no_staged_bytes, id="sizes-missing"),
        pytest.param(_no_records_read, id="counts-missing"),
    ],
)
def test_an_unusable_summary_means_a_fresh_anonymise(
    settings: Settings,
    users_path: Path,
    anonymised: list[Path],
    damage: bytes | Callable[[dict[str, Any]], None] | None,
) -> None:
    """A missing, unreadable or incomplete summary.json is no error: anonymise runs again."""
    first = _run(settings, users_path)
    before = _bytes(settings)
    summary_path = settings.staged_dir / "summary.json"
    if damage is None:
        summary_path.unlink()
    elif isinstance(damage, bytes):
        summary_path.write_bytes(damage)
    else:
        summary = _summary(settings)
        damage(summary)
        summary_path.write_text(json.dumps(summary))

    second = _run(settings, users_path)

    assert len(anonymised) == 2
    assert second == first
    for output in OUTPUTS:
        assert (settings.staged_dir / output).read_bytes() == before[output], output
    summary = _summary(settings)
    assert summary["records_read"] == 4
    assert set(summary["staged_from"]["staged_bytes"]) == set(OUTPUTS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source_sha256", "0" * 64),
        ("key_id", "0" * 16),
        ("rules_sha256", "0" * 64),
        ("latest_birth_year", datetime.now(UTC).year - 1),
    ],
    ids=["source", "key", "rules", "year"],
)
def test_a_recorded_fingerprint_that_differs_means_a_fresh_anonymise(
    settings: Settings, users_path: Path, anonymised: list[Path], field: str, value: object
) -> None:
    """Staged from other bytes, another key, other rules or last year: anonymised again."""
    _run(settings, users_path)
    summary = _summary(settings)
    summary["staged_from"][field] = value
    (settings.staged_dir / "summary.json").write_text(json.dumps(summary))
    stamp = _stamp(settings.staged_dir / "users.csv")

    _run(settings, users_path)

    assert len(anonymised) == 2
    assert _stamp(settings.staged_dir / "users.csv")[0] != stamp[0]
    assert _summary(settings)["staged_from"][field] != value


@pytest.mark.parametrize("limit_from", ["argument", "settings"])
def test_the_reject_rate_guard_applies_to_reused_files(
    settings: Settings, tmp_path: Path, anonymised: list[Path], limit_from: str
) -> None:
    """Half rejected, staged with no limit: a stricter run refuses and leaves the files be."""
    path = write_users(tmp_path / "half.json", [user("ok@example.com"), user("bad")])
    first = _run(settings, path)
    before, stamps = _bytes(settings), _stamps(settings)
    if limit_from == "argument":
        strict, options = settings, {"max_reject_rate": 0.1}
    else:
        strict = Settings(data_dir=settings.data_dir, pseudonym_key=TEST_KEY, max_reject_rate=0.1)
        options = {}

    with pytest.raises(DataQualityError, match=r"1 of 2 records rejected \(50\.0%"):
        _run(strict, path, **options)

    assert anonymised == [path]  # refused from the recorded counts, not by anonymising again
    assert _bytes(settings) == before
    assert _stamps(settings) == stamps  # summary.json included: not rewritten either
    # At the limit exactly the guard lets it through, as it does for a fresh run.
    assert _run(settings, path, max_reject_rate=0.5) == first
    assert anonymised == [path]


def test_a_changed_rule_module_is_anonymised_again(
    settings: Settings,
    users_path: Path,
    tmp_path: Path,
    anonymised: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An edit to a module that decides what anonymise writes makes the staged files stale."""
    module = _module()
    rule = tmp_path / "extra_rule.py"
    rule.write_text("RULE = 1\n")
    rule_files = module.rule_files
    monkeypatch.setattr(module, "rule_files", lambda: [*rule_files(), rule])
    _run(settings, users_path)
    recorded = _summary(settings)["staged_from"]["rules_sha256"]
    _run(settings, users_path)
    assert len(anonymised) == 1  # unchanged rules: reused
    stamp = _stamp(settings.staged_dir / "users.csv")

    rule.write_text("RULE = 2\n")
    _run(settings, users_path)

    assert len(anonymised) == 2
    assert _stamp(settings.staged_dir / "users.csv")[0] != stamp[0]
    assert _summary(settings)["staged_from"]["rules_sha256"] != recorded


def test_the_rule_files_are_the_modules_the_stage_reaches() -> None:
    """The rule files are found from the code, not listed: every rule module, each a real file."""
    module = _module()
    package = Path(str(module.__file__)).resolve().parent.parent

    files = module.rule_files()

    assert all(path.is_file() for path in files)
    found = {path.resolve().relative_to(package).as_posix() for path in files}
    rules = {
        "anonymise/stage.py",
        "anonymise/clean.py",
        "privacy/pseudonym.py",
        "postcodes.py",
        "sources/users.py",
    }
    assert rules <= found


def _extracted_users(settings: Settings, records: list[dict[str, Any]]) -> Path:
    """Write raw/users.json and its manifest entry, as extract would."""
    settings.raw_dir.mkdir(parents=True, exist_ok=True)
    path = write_users(settings.raw_dir / "users.json", records, style="ndjson")
    content = path.read_bytes()
    entry = ManifestEntry(
        source="users",
        url="https://example.test/users.json",
        path="users.json",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        fetched_at=datetime.now(UTC),
        downloaded=True,
    )
    write_manifest(settings.raw_dir, [entry])
    return path


def test_the_extracted_file_is_known_by_its_manifest_checksum(
    settings: Settings, anonymised: list[Path]
) -> None:
    """For raw/users.json the manifest's SHA-256 is the source's: a new extract re-anonymises."""
    _extracted_users(settings, RECORDS)
    first = anonymise(settings, progress=False)
    assert anonymise(settings, progress=False) == first
    assert len(anonymised) == 1

    path = _extracted_users(settings, [*RECORDS, user("new@example.com")])
    second = anonymise(settings, progress=False)

    assert len(anonymised) == 2
    assert second.records_read == first.records_read + 1
    assert _summary(settings)["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("same_size", [False, True], ids=["other-size", "same-size"])
def test_a_raw_file_changed_after_its_manifest_is_hashed_not_trusted(
    settings: Settings, anonymised: list[Path], same_size: bool
) -> None:
    """raw/users.json rewritten without a new manifest (a hand edit, an extract killed between
    the file and the manifest) is hashed: its staged files are made again, from the new bytes.
    """
    path = _extracted_users(settings, [user("a@example.com"), user("b@example.com")])
    first = anonymise(settings, progress=False)
    manifest_time = (settings.raw_dir / "manifest.json").stat().st_mtime_ns

    if same_size:  # another record of exactly the same length
        path.write_bytes(path.read_bytes().replace(b"b@example.com", b"c@example.com"))
    else:
        write_users(path, [user("a@example.com"), user("b@example.com"), user("c@x.uk")])
    os.utime(path, ns=(manifest_time + 1_000_000, manifest_time + 1_000_000))
    second = anonymise(settings, progress=False)

    assert len(anonymised) == 2
    assert second.records_read == (2 if same_size else 3)
    assert _summary(settings)["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.records_read == 2
