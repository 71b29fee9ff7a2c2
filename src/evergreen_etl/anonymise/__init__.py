"""The ``anonymise`` stage: raw users in, pseudonymised staged records and PII-free rejects out."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from evergreen_etl.anonymise.clean import birth_year, coarsen_sex
from evergreen_etl.anonymise.pseudonym import PseudonymKey, load_key, normalise_email
from evergreen_etl.collector import collector_paused
from evergreen_etl.errors import DataQualityError, SourceError
from evergreen_etl.extract.fetch import file_sha256
from evergreen_etl.extract.manifest import manifest_path, read_manifest, source_label
from evergreen_etl.file_modes import open_private, private_dir
from evergreen_etl.models import AnonymiseResult, ManifestEntry
from evergreen_etl.postcodes import PostcodeKind, normalise_postcode
from evergreen_etl.progress import Progress
from evergreen_etl.safe_text import csv_writer
from evergreen_etl.settings import Settings
from evergreen_etl.sources.users import UsersReader
from evergreen_etl.workers import WorkerBatches

__all__ = ["STAGED_COLUMNS", "anonymise", "read_staged_summary"]

log = logging.getLogger("evergreen_etl.anonymise")

STAGED_COLUMNS = (
    "position",
    "pseudonym",
    "sex",
    "birth_year",
    "postcode",
    "postcode_kind",
    "postcode_token",
)
REJECT_COLUMNS = ("position", "line", "reason", "field")
STAGED_USERS = "users.csv"
REJECTS = "rejects.csv"
SUMMARY = "summary.json"
_BATCH = 10_000


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def anonymise(
    settings: Settings,
    *,
    users_path: Path | None = None,
    key: PseudonymKey | None = None,
    max_reject_rate: float | None = None,
    progress: bool = True,
) -> AnonymiseResult:
    """Pseudonymise the raw users into ``DATA_DIR/staged``.

    Writes ``users.csv`` (pseudonym, sex, birth year, normalised postcode), ``rejects.csv``
    (position, line, reason, field: never the values) and ``summary.json``. The previous
    staged files are replaced only when the whole input was read and passed the reject-rate
    guard, so a failure leaves them as they were.
    """
    source = users_path or settings.raw_dir / "users.json"
    if not source.exists():
        raise SourceError(f"{source}: users file not found (run `evergreen-etl extract` first)")
    key = key or load_key(settings)
    limit = settings.max_reject_rate if max_reject_rate is None else max_reject_rate
    staged_dir = settings.staged_dir
    private_dir(staged_dir)
    paths = {name: staged_dir / name for name in (STAGED_USERS, REJECTS, SUMMARY)}
    temps = {name: _temp(path) for name, path in paths.items()}
    label = source_label(settings.raw_dir, "users", source)
    fingerprint = _fingerprint(settings, source, key)
    reused = _reuse_staged(paths, fingerprint, label, limit)
    if reused is not None:
        _write_summary(settings, source, reused, fingerprint, paths, temps)
        log.info(
            "staged users are up to date (same source, key and rules): %d records not "
            "anonymised again",
            reused.records_read,
        )
        return reused
    try:
        counts = _write_staged(source, label, key, temps[STAGED_USERS], temps[REJECTS], progress)
        read, rejected = counts["records"], counts["rejected"]
        if read == 0:
            raise DataQualityError(f"{label}: holds no user records; nothing was staged")
        _check_reject_rate(label, read, rejected, limit)
        result = AnonymiseResult(
            records_read=read,
            users_staged=read - rejected,
            rejected=rejected,
            rejects_by_reason=dict(sorted(counts["reasons"].items())),
            postcodes_by_kind=dict(sorted(counts["kinds"].items())),
            sex_unrecognised=counts["sex_unrecognised"],
            birth_date_invalid=counts["birth_date_invalid"],
            input_format=counts["format"],
            key_id=key.key_id,
            staged_path=paths[STAGED_USERS],
            rejects_path=paths[REJECTS],
            summary_path=paths[SUMMARY],
        )
        fingerprint["staged_bytes"] = {
            name: temps[name].stat().st_size for name in (STAGED_USERS, REJECTS)
        }
        summary = _summary(settings, source, result, fingerprint)
        _write_private(temps[SUMMARY], json.dumps(summary, indent=2, default=str) + "\n")
        for name in (STAGED_USERS, REJECTS, SUMMARY):  # the summary last: it marks completion
            os.replace(temps[name], paths[name])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    log.info(
        "anonymised %d records: %d staged, %d rejected",
        result.records_read,
        result.users_staged,
        result.rejected,
    )
    return result


def _summary(
    settings: Settings, source: Path, result: AnonymiseResult, fingerprint: dict[str, Any]
) -> dict[str, Any]:
    entry = _manifest_entry(settings, source)
    return {
        **result.model_dump(mode="json", exclude={"staged_path", "rejects_path", "summary_path"}),
        "source_sha256": fingerprint["source_sha256"],
        "source_last_modified": entry.last_modified if entry else None,
        "anonymised_at": datetime.now(UTC),
        "staged_from": fingerprint,
    }


def _manifest_entry(settings: Settings, source: Path) -> ManifestEntry | None:
    """The manifest's entry for ``source`` when it is the extracted users file."""
    entry = read_manifest(settings.raw_dir).get("users")
    if entry is None or source.resolve() != (settings.raw_dir / entry.path).resolve():
        return None
    return entry


# The modules whose rules decide what anonymise writes: a change to any of them (a new
# version, or a developer's edit) makes earlier staged files stale.
_RULE_MODULES = (
    "anonymise/__init__.py",
    "anonymise/clean.py",
    "anonymise/pseudonym.py",
    "postcodes.py",
    "sources/users.py",
)


def _fingerprint(settings: Settings, source: Path, key: PseudonymKey) -> dict[str, Any]:
    """What the staged files are a function of: source bytes, key, rules and the year."""
    entry = _manifest_entry(settings, source)
    rules = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for module in _RULE_MODULES:
        try:
            rules.update((package / module).read_bytes())
        except OSError:  # installed without sources: the version names the rules
            rules.update(f"{module} {_package_version()}".encode())
    return {
        "source_sha256": _source_sha256(settings, source, entry),
        "key_id": key.key_id,
        "rules_sha256": rules.hexdigest(),
        "latest_birth_year": datetime.now(UTC).year,
    }


def _source_sha256(settings: Settings, source: Path, entry: ManifestEntry | None) -> str:
    """The manifest's checksum while the file is still the one extract recorded, else hashed.

    Extract writes the manifest after the file: a file of another size, or changed after the
    manifest was written (edited by hand, or an extract killed between the two), is hashed.
    """
    if entry is not None:
        try:
            stat = source.stat()
            manifest = manifest_path(settings.raw_dir).stat()
        except OSError:
            pass
        else:
            if stat.st_size == entry.size and stat.st_mtime_ns <= manifest.st_mtime_ns:
                return entry.sha256
    return file_sha256(source)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evergreen-etl")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"


def _reuse_staged(
    paths: dict[str, Path], fingerprint: dict[str, Any], label: str, limit: float
) -> AnonymiseResult | None:
    """The last result again when the staged files came from the same source, key and rules.

    Anonymising is a pure function of those: running it again would write the same bytes.
    The reject-rate guard is applied to the recorded counts as it would be to fresh ones.
    """
    try:
        summary: dict[str, Any] = json.loads(paths[SUMMARY].read_text())
        recorded = summary.get("staged_from") or {}
        sizes = recorded.get("staged_bytes") or {}
        if {k: v for k, v in recorded.items() if k != "staged_bytes"} != fingerprint or any(
            paths[name].stat().st_size != sizes.get(name) for name in (STAGED_USERS, REJECTS)
        ):
            return None
        result = AnonymiseResult.model_validate(
            {
                **{k: summary[k] for k in AnonymiseResult.model_fields if k in summary},
                "staged_path": paths[STAGED_USERS],
                "rejects_path": paths[REJECTS],
                "summary_path": paths[SUMMARY],
            }
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # no usable earlier run: anonymise
    fingerprint["staged_bytes"] = sizes
    if result.records_read:
        _check_reject_rate(label, result.records_read, result.rejected, limit)
    return result


def _check_reject_rate(label: str, read: int, rejected: int, limit: float) -> None:
    """Refuse a snapshot with too many records that could not be keyed (counts only, no data)."""
    if rejected / read > limit:
        raise DataQualityError(
            f"{label}: {rejected} of {read} records rejected "
            f"({rejected / read:.1%}, above the limit of {limit:.1%}); see the reasons with "
            "--max-reject-rate 1 and staged/rejects.csv"
        )


def _write_summary(
    settings: Settings,
    source: Path,
    result: AnonymiseResult,
    fingerprint: dict[str, Any],
    paths: dict[str, Path],
    temps: dict[str, Path],
) -> None:
    """Rewrite the summary of reused staged files (new time, the source's Last-Modified)."""
    try:
        summary = _summary(settings, source, result, fingerprint)
        _write_private(temps[SUMMARY], json.dumps(summary, indent=2, default=str) + "\n")
        os.replace(temps[SUMMARY], paths[SUMMARY])
    finally:
        temps[SUMMARY].unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    with open_private(path, encoding="utf-8") as handle:
        handle.write(text)


def read_staged_summary(staged_dir: Path) -> dict[str, Any]:
    """The summary the last successful ``anonymise`` wrote."""
    path = staged_dir / SUMMARY
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SourceError(
            f"{path}: no staged users (run `evergreen-etl anonymise` first)"
        ) from None
    return data


_MEMO_LIMIT = 100_000


class _Memo(dict[str, Any]):
    """A pure function of a text field, memoised; it stops growing at ``_MEMO_LIMIT`` entries."""

    def __init__(self, function: Callable[[str], Any]) -> None:
        super().__init__()
        self._function = function

    def __missing__(self, text: str) -> Any:
        value = self._function(text)
        if len(self) < _MEMO_LIMIT:
            self[text] = value
        return value


# From this size of users file on (a million records is ~230 MB), a worker process reads,
# decodes and validates the records while this one pseudonymises and writes them.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
_NOT_AN_OBJECT, _EMAIL_MISSING, _EMAIL_INVALID = "not_an_object", "email_missing", "email_invalid"
_REJECT_FIELD = {_NOT_AN_OBJECT: "", _EMAIL_MISSING: "email", _EMAIL_INVALID: "email"}
_KIND_TEXT = {kind: kind.value for kind in PostcodeKind}  # plain text: cheap to pickle

# One record, prepared: (position, line, reject reason or None, normalised email ("" when
# rejected), raw sex, raw date of birth, normalised postcode, postcode kind).
_Prepared = tuple[int, int, str | None, str, Any, Any, str | None, str]


class _Batches(Protocol):
    """Prepared batches, and once they are all read, the input format."""

    result: str | None

    def __iter__(self) -> Iterator[list[_Prepared]]: ...


def _prepare(source: str, label: str) -> Generator[list[_Prepared], None, str]:
    """Read, validate and normalise the records in batches; return the input format.

    Everything here is unkeyed and a function of one record, so that it can run in a worker
    process; the caller pseudonymises, cleans, counts and writes.
    """
    reader = UsersReader(Path(source), label=label)
    batch: list[_Prepared] = []
    for record in reader:
        value = record.value
        if not isinstance(value, dict):
            batch.append((record.position, record.line, _NOT_AN_OBJECT, "", None, None, None, ""))
        else:
            email_value = value.get("email")
            email = normalise_email(email_value) if type(email_value) is str else None
            reason = (
                None
                if email is not None
                else _EMAIL_MISSING
                if email_value is None or email_value == ""
                else _EMAIL_INVALID
            )
            address = value.get("address")
            postcode, kind = normalise_postcode(
                address.get("postcode") if isinstance(address, dict) else None
            )
            batch.append(
                (
                    record.position,
                    record.line,
                    reason,
                    email or "",
                    _scalar(value.get("sex")),
                    _scalar(value.get("dateOfBirth")),
                    postcode,
                    _KIND_TEXT[kind],
                )
            )
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
    return reader.input_format


def _scalar(value: Any) -> Any:
    """A field as cleaning needs it: text and None as they are, any other JSON value as 0.

    Cleaning treats every value that is not text alike (unrecognised sex, invalid date), and
    an array nested a thousand deep cannot cross a pipe (pickling it recurses too deeply).
    """
    return value if value is None or type(value) is str else 0


def _prepared_batches(
    source: Path, label: str, parallel: bool | None
) -> AbstractContextManager[_Batches]:
    """The prepared batches: from a worker process for a large file, else read here."""
    if parallel is None:
        parallel = source.stat().st_size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
    if parallel:
        return WorkerBatches(_prepare, (str(source), label), label=label, what="users reader")
    return _InProcess(_prepare(str(source), label))


class _InProcess:
    """``WorkerBatches``' interface over a generator run in this process."""

    def __init__(self, batches: Generator[list[_Prepared], None, str]) -> None:
        self._batches = batches
        self.result: str | None = None

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self._batches.close()

    def __iter__(self) -> Iterator[list[_Prepared]]:
        self.result = yield from self._batches


def _write_staged(
    source: Path,
    label: str,
    key: PseudonymKey,
    staged: Path,
    rejects: Path,
    progress: bool,
    parallel: bool | None = None,
) -> dict[str, Any]:
    pseudonym = key.pseudonymiser()
    tokens = _Memo(key.postcode_tokeniser())
    latest_year = datetime.now(UTC).year

    def birth_year_of(value: object) -> tuple[int | None, bool]:
        return birth_year(value, latest_year=latest_year)

    sexes = _Memo(coarsen_sex)
    years = _Memo(birth_year_of)
    reasons: Counter[str] = Counter()
    kinds = dict.fromkeys(_KIND_TEXT.values(), 0)
    sex_unrecognised = birth_invalid = records = 0
    # The worker starts before the progress bar's thread, so that it can be forked.
    with (
        _prepared_batches(source, label, parallel) as prepared,
        open_private(staged, newline="") as staged_handle,
        open_private(rejects, newline="") as rejects_handle,
        Progress("anonymise", unit="records", enabled=progress) as bar,
        collector_paused(),
    ):
        # Unix line ends: the loader splits lines without rewriting "\r\n" first.
        out = csv.writer(staged_handle, lineterminator="\n")
        out.writerow(STAGED_COLUMNS)
        rej = csv_writer(rejects_handle)
        rej.writerow(REJECT_COLUMNS)
        for batch in prepared:
            records += len(batch)
            rows: list[tuple[Any, ...]] = []
            for position, line, reason, email, sex_value, born, postcode, kind in batch:
                if reason is not None:
                    reasons[reason] += 1
                    rej.writerow((position, line, reason, _REJECT_FIELD[reason]))
                    continue
                # Sex and date cleaning are pure functions of one field: each distinct text
                # is cleaned once (a million records hold some 50,000 dates and a dozen sexes).
                sex, sex_ok = sexes[sex_value] if type(sex_value) is str else coarsen_sex(sex_value)
                year, year_ok = years[born] if type(born) is str else birth_year_of(born)
                sex_unrecognised += not sex_ok
                birth_invalid += not year_ok
                kinds[kind] += 1
                token = tokens[postcode] if postcode is not None else None
                rows.append((position, pseudonym(email), sex, year, postcode, kind, token))
            out.writerows(rows)
            bar.advance(len(batch))
        input_format = prepared.result
    return {
        "records": records,
        "rejected": sum(reasons.values()),
        "reasons": reasons,
        "kinds": kinds,
        "sex_unrecognised": sex_unrecognised,
        "birth_date_invalid": birth_invalid,
        "format": input_format,
    }
