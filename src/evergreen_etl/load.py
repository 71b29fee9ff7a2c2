"""The ``load`` stage: staged users and the postcode lookup into the warehouse, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from evergreen_etl.datadir.manifest import recorded_entry, recorded_sha256, source_label
from evergreen_etl.datadir.staged import read_staged_summary
from evergreen_etl.errors import (
    DataQualityError,
    SnapshotOrderError,
    SourceError,
    WarehouseError,
)
from evergreen_etl.failpoints import failpoint
from evergreen_etl.models import LoadResult, LocationCounts
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.privacy.pseudonym import load_key
from evergreen_etl.privacy.risk import KAnonymityGuard
from evergreen_etl.settings import Settings
from evergreen_etl.sources.nspl import PostcodeLookupReader
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.db_errors import translate_database_error
from evergreen_etl.warehouse.engine import open_warehouse, write_transaction
from evergreen_etl.warehouse.lookup import load_postcodes
from evergreen_etl.warehouse.lookup_versions import LookupVersion
from evergreen_etl.warehouse.precision import Tokeniser, check_precision
from evergreen_etl.warehouse.relocate import Relocation, add_lookup_version
from evergreen_etl.warehouse.scd2 import AbsentPolicy, merge_snapshot, stage_snapshot
from evergreen_etl.warehouse.schema import etl_run

log = logging.getLogger("evergreen_etl.load")

_TIME = bindparam("t", type_=DateTime())


def load(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    absent: AbsentPolicy = "close",
    postcodes_path: Path | None = None,
    auto_upgrade: bool = False,
    engine: Engine | None = None,
    k_guard: KAnonymityGuard | None = None,
    precision: LocationPrecision | None = None,
    coarsen: bool = False,
    progress: bool = True,
) -> LoadResult:
    """Merge the staged snapshot (and the lookup, when it changed) into the warehouse.

    Everything happens in one transaction under the load lock: a failure leaves the
    warehouse exactly as it was. The snapshot time is ``as_of``, else the users source's
    Last-Modified, else now (UTC). A snapshot older than the newest loaded one is refused;
    the same snapshot loaded again changes nothing. With ``k_guard``, the merged warehouse's
    k-anonymity is measured before the commit, to warn or to refuse the load. ``precision``
    (default: the settings') decides what the warehouse keeps of each postcode; a precision
    other than the warehouse's is refused, unless ``coarsen`` and coarser (every stored
    postcode is then rewritten). A new lookup is recorded as a version and re-locates the
    whole history (``relocated``).
    """
    data = settings.data
    summary = read_staged_summary(data.staged)
    staged_users = data.staged_users
    if int(summary.get("users_staged", 0)) == 0:
        raise DataQualityError(
            f"{staged_users}: the staged snapshot has no usable user; loading it would close "
            "every user's address (nothing was loaded)"
        )
    lookup_path = postcodes_path or data.raw_postcodes
    if not lookup_path.exists():
        raise SourceError(f"{lookup_path}: postcode lookup not found (run `evergreen-etl extract`)")
    entry = recorded_entry(data.raw, "postcodes", lookup_path)
    postcodes_sha = recorded_sha256(lookup_path, entry, data.raw)
    lookup = PostcodeLookupReader(lookup_path, label=source_label(entry, lookup_path))
    moment = as_of or _parse_time(summary.get("source_last_modified")) or datetime.now(UTC)
    moment = to_utc_naive(moment)

    if k_guard is None and settings.min_k is not None:
        k_guard = KAnonymityGuard(settings.min_k, settings.k_policy)
    try:
        # An empty database is created as part of the first load; an old schema is not
        # migrated unless asked.
        with open_warehouse(
            settings, engine, schema="upgrade" if auto_upgrade else "create"
        ) as warehouse:
            try:
                with write_transaction(warehouse) as conn:
                    return _load_in_transaction(
                        conn,
                        summary=summary,
                        staged_users=staged_users,
                        lookup=lookup,
                        postcodes_sha=postcodes_sha,
                        as_of=moment,
                        absent=absent,
                        k_guard=k_guard,
                        precision=LocationPrecision(precision or settings.location_precision),
                        coarsen=coarsen,
                        tokeniser=lambda: load_key(settings).postcode_tokeniser(),
                        progress=progress,
                    )
            except IntegrityError as exc:
                raise WarehouseError(
                    f"the merge broke a warehouse rule and was rolled back: {exc.orig}"
                ) from None
    except DBAPIError as exc:
        translated = translate_database_error(exc)
        if translated is None:
            raise
        raise translated from None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))


def _load_in_transaction(
    conn: Connection,
    *,
    summary: dict[str, Any],
    staged_users: Path,
    lookup: PostcodeLookupReader,
    postcodes_sha: str,
    as_of: datetime,
    absent: AbsentPolicy,
    k_guard: KAnonymityGuard | None,
    precision: LocationPrecision,
    coarsen: bool,
    tokeniser: Callable[[], Tokeniser],
    progress: bool,
) -> LoadResult:
    key_id = str(summary["key_id"])
    users_sha = summary.get("source_sha256")
    _check_key(conn, key_id)
    latest = conn.execute(
        select(etl_run.c.as_of, etl_run.c.users_sha256)
        .where(etl_run.c.status == "succeeded")
        .order_by(etl_run.c.as_of.desc(), etl_run.c.run_id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        latest_as_of = latest.as_of
        same_snapshot = users_sha is not None and users_sha == latest.users_sha256
        if as_of < latest_as_of or (as_of == latest_as_of and not same_snapshot):
            raise SnapshotOrderError(
                f"a snapshot as of {latest_as_of:%Y-%m-%d %H:%M:%S} is already loaded; "
                f"refusing a snapshot as of {as_of:%Y-%m-%d %H:%M:%S} (history only moves forward)"
            )
        if as_of == latest_as_of:
            log.info("this snapshot is already loaded: nothing to do")
            return _skipped(as_of, int(summary.get("rejected", 0)))

    coarsened = check_precision(conn, precision, coarsen=coarsen, tokeniser=tokeniser)
    started = utc_now()
    run_id = conn.execute(
        text(
            "INSERT INTO etl_run"
            " (started_at, as_of, status, key_id, users_sha256, postcodes_sha256)"
            " VALUES (:started, :t, 'running', :key_id, :users_sha, :postcodes_sha)"
            " RETURNING run_id"
        ).bindparams(_TIME, bindparam("started", type_=DateTime())),
        {
            "started": started,
            "t": as_of,
            "key_id": key_id,
            "users_sha": users_sha,
            "postcodes_sha": postcodes_sha,
        },
    ).scalar_one()

    last_lookup = conn.execute(
        text(
            "SELECT postcodes_sha256 FROM etl_run WHERE status = 'succeeded' "
            "AND postcodes_loaded IS NOT NULL ORDER BY run_id DESC LIMIT 1"
        )
    ).scalar()
    postcodes_loaded: int | None = None
    version: LookupVersion | None = None
    relocation = Relocation()
    if last_lookup != postcodes_sha:
        postcodes_loaded = load_postcodes(conn, lookup, progress=progress)
        failpoint("load.postcodes_loaded")
        version, relocation = add_lookup_version(
            conn, lookup, sha256=postcodes_sha, postcodes=postcodes_loaded, run_id=run_id
        )
    else:
        log.info("postcode lookup unchanged (sha256 %s…): not reloaded", postcodes_sha[:12])

    staged = stage_snapshot(conn, staged_users)
    merged = merge_snapshot(
        conn, staged=staged, as_of=as_of, run_id=run_id, absent=absent, precision=precision
    )
    failpoint("load.merged")
    risk = k_guard.check(conn, as_of) if k_guard is not None else None
    rejected = int(summary.get("rejected", 0))
    details: dict[str, Any] = {
        "location": merged.location.model_dump(),
        "location_precision": precision.value,
        "coarsened": coarsened,
        "lookup_version": version.version_id if version is not None else None,
        "relocated": relocation.model_dump(),
        "attributes_updated": merged.attributes_updated,
        "anonymise": {
            k: summary.get(k)
            for k in ("records_read", "rejects_by_reason", "postcodes_by_kind", "input_format")
        },
    }
    if risk is not None:
        details["risk"] = [row.model_dump() for row in risk.rows]
    conn.execute(
        text(
            """
            UPDATE etl_run SET status = 'succeeded', finished_at = :finished,
              users_in_snapshot = :users, duplicates = :duplicates, new_users = :new,
              returned_users = :returned, moved_users = :moved, left_users = :left,
              unchanged_users = :unchanged, rejected_records = :rejected,
              postcodes_loaded = :postcodes_loaded, details = :details
            WHERE run_id = :run_id
            """
        ).bindparams(bindparam("finished", type_=DateTime()), bindparam("details", type_=JSON())),
        {
            "finished": utc_now(),
            "users": merged.users_in_snapshot,
            "duplicates": merged.duplicates,
            "new": merged.new,
            "returned": merged.returned,
            "moved": merged.moved,
            "left": merged.left,
            "unchanged": merged.unchanged,
            "rejected": rejected,
            "postcodes_loaded": postcodes_loaded,
            "details": details,
            "run_id": run_id,
        },
    )
    log.info(
        "loaded snapshot as of %s: %d users (%d new, %d returned, %d moved, %d left, %d unchanged)",
        as_of.isoformat(),
        merged.users_in_snapshot,
        merged.new,
        merged.returned,
        merged.moved,
        merged.left,
        merged.unchanged,
    )
    return LoadResult(
        run_id=run_id,
        as_of=as_of,
        skipped=False,
        postcodes_loaded=postcodes_loaded,
        users_in_snapshot=merged.users_in_snapshot,
        duplicates=merged.duplicates,
        new=merged.new,
        returned=merged.returned,
        moved=merged.moved,
        left=merged.left,
        unchanged=merged.unchanged,
        attributes_updated=merged.attributes_updated,
        rejected=rejected,
        location=merged.location,
        smallest_k=risk.smallest_k if risk is not None else None,
        lookup_version=version.version_id if version is not None else None,
        relocated=relocation.users,
        relocated_by_reason=relocation.by_reason,
        coarsened=coarsened,
    )


def _check_key(conn: Connection, key_id: str) -> None:
    """Refuse staged data made with another key: its pseudonyms would split every history."""
    other = conn.execute(
        text("SELECT key_id FROM etl_run WHERE status = 'succeeded' AND key_id <> :key_id LIMIT 1"),
        {"key_id": key_id},
    ).scalar()
    if other is not None:
        raise WarehouseError(
            f"the staged users were pseudonymised with key {key_id}, but this warehouse holds "
            f"pseudonyms made with key {other}; use the warehouse's key"
        )


def _skipped(as_of: datetime, rejected: int) -> LoadResult:
    return LoadResult(
        run_id=None,
        as_of=as_of,
        skipped=True,
        postcodes_loaded=None,
        users_in_snapshot=0,
        duplicates=0,
        new=0,
        returned=0,
        moved=0,
        left=0,
        unchanged=0,
        rejected=rejected,
        location=LocationCounts(),
    )
