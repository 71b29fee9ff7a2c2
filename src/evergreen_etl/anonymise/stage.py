"""Pseudonymise the raw users into the staged files: read, validate, key, clean and count."""

from __future__ import annotations

import ast
import csv
import hashlib
import importlib.util
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
from evergreen_etl.datadir.files import atomic_output, atomic_outputs
from evergreen_etl.datadir.layout import REJECTS_NAME, STAGED_USERS_NAME, SUMMARY_NAME
from evergreen_etl.datadir.manifest import recorded_entry, recorded_sha256, source_label
from evergreen_etl.datadir.modes import private_dir
from evergreen_etl.datadir.staged import REJECT_COLUMNS, STAGED_COLUMNS
from evergreen_etl.errors import DataQualityError, SourceError
from evergreen_etl.gc_pause import collector_paused
from evergreen_etl.models import AnonymiseResult, ManifestEntry
from evergreen_etl.postcodes import PostcodeKind, normalise_postcode
from evergreen_etl.privacy.pseudonym import PseudonymKey, load_key, normalise_email, record_key
from evergreen_etl.progress import Progress
from evergreen_etl.safe_text import csv_writer
from evergreen_etl.settings import Settings
from evergreen_etl.sources.users import UsersReader
from evergreen_etl.times import json_default
from evergreen_etl.workers import WorkerBatches

__all__ = ["PARALLEL_MIN_BYTES", "anonymise", "rule_files"]

log = logging.getLogger("evergreen_etl.anonymise")

STAGED_USERS, REJECTS, SUMMARY = STAGED_USERS_NAME, REJECTS_NAME, SUMMARY_NAME
_BATCH = 10_000


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
    data = settings.data
    source = users_path or data.raw_users
    if not source.exists():
        raise SourceError(f"{source}: users file not found (run `evergreen-etl extract` first)")
    key = key or load_key(settings)
    limit = settings.max_reject_rate if max_reject_rate is None else max_reject_rate
    private_dir(data.staged)
    paths = {STAGED_USERS: data.staged_users, REJECTS: data.rejects, SUMMARY: data.summary}
    entry = recorded_entry(data.raw, "users", source)
    label = source_label(entry, source)
    fingerprint = _fingerprint(source, entry, data.raw, key)
    reused = _reuse_staged(paths, fingerprint, label, limit)
    if reused is not None:
        # Rewrite the summary of the reused files (a new time, the source's Last-Modified).
        with atomic_output(paths[SUMMARY]) as handle:
            handle.write(_summary_text(entry, reused, fingerprint).encode())
        log.info(
            "staged users are up to date (same source, key and rules): %d records not "
            "anonymised again",
            reused.records_read,
        )
        return reused
    # The summary is moved into place last: it marks the staged files complete.
    with atomic_outputs(paths[STAGED_USERS], paths[REJECTS], paths[SUMMARY]) as temps:
        staged_temp, rejects_temp, summary_temp = temps
        counts = _write_staged(source, label, key, staged_temp, rejects_temp, progress)
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
            STAGED_USERS: staged_temp.stat().st_size,
            REJECTS: rejects_temp.stat().st_size,
        }
        summary_temp.write_text(_summary_text(entry, result, fingerprint))
    log.info(
        "anonymised %d records: %d staged, %d rejected",
        result.records_read,
        result.users_staged,
        result.rejected,
    )
    return result


def _summary_text(
    entry: ManifestEntry | None, result: AnonymiseResult, fingerprint: dict[str, Any]
) -> str:
    """``summary.json``: the counts, where the source came from and what the files depend on."""
    summary = {
        **result.model_dump(mode="json", exclude={"staged_path", "rejects_path", "summary_path"}),
        "source_sha256": fingerprint["source_sha256"],
        "source_last_modified": entry.last_modified if entry else None,
        "anonymised_at": datetime.now(UTC),
        "staged_from": fingerprint,
    }
    return json.dumps(summary, indent=2, default=json_default) + "\n"


def rule_files() -> list[Path]:
    """The source files of this stage and of every package module they import, by module name.

    Found by following the import statements from this module on (those inside functions
    too), so a rule moved or renamed into another module is still covered and nothing is
    listed by hand.
    """
    package = __name__.partition(".")[0]
    reached: dict[str, Path] = {}
    pending = [__name__]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:  # ``from a.b import c`` where c is not a module
            continue
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        reached[name] = Path(spec.origin)
        try:
            tree = ast.parse(reached[name].read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pending.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from a.b import c``: c may be a module of its own.
                pending.append(node.module)
                pending.extend(f"{node.module}.{alias.name}" for alias in node.names)
        pending = [item for item in pending if item.partition(".")[0] == package]
    return [reached[name] for name in sorted(reached)]


def _rules_sha256() -> str:
    """SHA-256 over the rule files: a change to any of them makes earlier staged files stale."""
    rules = hashlib.sha256()
    for path in rule_files():
        try:
            rules.update(path.read_bytes())
        except OSError:  # installed without sources: the version names the rules
            rules.update(f"{path.name} {_package_version()}".encode())
    return rules.hexdigest()


def _fingerprint(
    source: Path, entry: ManifestEntry | None, raw_dir: Path, key: PseudonymKey
) -> dict[str, Any]:
    """What the staged files are a function of: source bytes, key, rules and the year."""
    return {
        "source_sha256": recorded_sha256(source, entry, raw_dir),
        "key_id": key.key_id,
        "rules_sha256": _rules_sha256(),
        "latest_birth_year": datetime.now(UTC).year,
    }


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
        staged.open("w", newline="") as staged_handle,
        rejects.open("w", newline="") as rejects_handle,
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
                keyed = pseudonym(email)
                rows.append((position, keyed, sex, year, postcode, kind, token, record_key(keyed)))
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
