"""The ``anonymise`` stage: raw users in, pseudonymised staged records and PII-free rejects out."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evergreen_etl.anonymise.clean import birth_year, coarsen_sex
from evergreen_etl.anonymise.pseudonym import PseudonymKey, load_key, normalise_email
from evergreen_etl.errors import DataQualityError, SourceError
from evergreen_etl.extract.fetch import file_sha256
from evergreen_etl.extract.manifest import read_manifest, source_label
from evergreen_etl.models import AnonymiseResult
from evergreen_etl.postcodes import PostcodeKind, normalise_postcode
from evergreen_etl.progress import Progress
from evergreen_etl.settings import Settings
from evergreen_etl.sources.users import UsersReader

__all__ = ["STAGED_COLUMNS", "anonymise", "read_staged_summary"]

log = logging.getLogger("evergreen_etl.anonymise")

STAGED_COLUMNS = ("position", "pseudonym", "sex", "birth_year", "postcode", "postcode_kind")
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
    staged_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: staged_dir / name for name in (STAGED_USERS, REJECTS, SUMMARY)}
    temps = {name: _temp(path) for name, path in paths.items()}
    try:
        label = source_label(settings.raw_dir, "users", source)
        counts = _write_staged(source, label, key, temps[STAGED_USERS], temps[REJECTS], progress)
        read, rejected = counts["records"], counts["rejected"]
        if read == 0:
            raise DataQualityError(f"{label}: holds no user records; nothing was staged")
        if rejected / read > limit:
            raise DataQualityError(
                f"{label}: {rejected} of {read} records rejected "
                f"({rejected / read:.1%}, above the limit of {limit:.1%}); see the reasons with "
                "--max-reject-rate 1 and staged/rejects.csv"
            )
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
        summary = _summary(settings, source, result)
        temps[SUMMARY].write_text(json.dumps(summary, indent=2, default=str) + "\n")
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


def _summary(settings: Settings, source: Path, result: AnonymiseResult) -> dict[str, Any]:
    entry = read_manifest(settings.raw_dir).get("users")
    same_file = entry is not None and source.resolve() == (settings.raw_dir / entry.path).resolve()
    return {
        **result.model_dump(mode="json", exclude={"staged_path", "rejects_path", "summary_path"}),
        "source_sha256": entry.sha256 if entry and same_file else file_sha256(source),
        "source_last_modified": entry.last_modified if entry and same_file else None,
        "anonymised_at": datetime.now(UTC),
    }


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


def _write_staged(
    source: Path, label: str, key: PseudonymKey, staged: Path, rejects: Path, progress: bool
) -> dict[str, Any]:
    pseudonym = key.pseudonymiser()
    latest_year = datetime.now(UTC).year
    reasons: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    sex_unrecognised = birth_invalid = records = 0
    reader = UsersReader(source, label=label)
    with (
        staged.open("w", newline="") as staged_handle,
        rejects.open("w", newline="") as rejects_handle,
        Progress("anonymise", unit="records", enabled=progress) as bar,
    ):
        out = csv.writer(staged_handle)
        out.writerow(STAGED_COLUMNS)
        rej = csv.writer(rejects_handle)
        rej.writerow(REJECT_COLUMNS)
        batch: list[tuple[Any, ...]] = []
        for record in reader:
            records += 1
            value = record.value
            if not isinstance(value, dict):
                reasons["not_an_object"] += 1
                rej.writerow((record.position, record.line, "not_an_object", ""))
                continue
            email_value = value.get("email")
            if email_value is None or email_value == "":
                reasons["email_missing"] += 1
                rej.writerow((record.position, record.line, "email_missing", "email"))
                continue
            email = normalise_email(email_value) if isinstance(email_value, str) else None
            if email is None:
                reasons["email_invalid"] += 1
                rej.writerow((record.position, record.line, "email_invalid", "email"))
                continue
            sex, sex_ok = coarsen_sex(value.get("sex"))
            year, year_ok = birth_year(value.get("dateOfBirth"), latest_year=latest_year)
            address = value.get("address")
            raw_postcode = address.get("postcode") if isinstance(address, dict) else None
            postcode, kind = normalise_postcode(raw_postcode)
            sex_unrecognised += not sex_ok
            birth_invalid += not year_ok
            kinds[kind] += 1
            batch.append((record.position, pseudonym(email), sex, year, postcode, kind.value))
            if len(batch) >= _BATCH:
                out.writerows(batch)
                bar.advance(len(batch))
                batch.clear()
        out.writerows(batch)
        bar.advance(len(batch))
    for kind in PostcodeKind:
        kinds.setdefault(kind.value, 0)
    return {
        "records": records,
        "rejected": sum(reasons.values()),
        "reasons": reasons,
        "kinds": {str(k): v for k, v in kinds.items()},
        "sex_unrecognised": sex_unrecognised,
        "birth_date_invalid": birth_invalid,
        "format": reader.input_format,
    }
