"""The ``load`` stage: staged users and the postcode lookup into the warehouse, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import JSON, Connection, DateTime, Engine, bindparam, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from evergreen_etl.datadir.manifest import recorded_entry, recorded_sha256, source_label
from evergreen_etl.datadir.staged import check_staged_columns, read_staged_summary
from evergreen_etl.errors import (
    DataQualityError,
    SourceError,
    WarehouseError,
)
from evergreen_etl.failpoints import failpoint
from evergreen_etl.models import LoadResult, LocationCounts
from evergreen_etl.postcodes import LocationPrecision
from evergreen_etl.privacy.ckm import fill_record_keys
from evergreen_etl.privacy.pseudonym import load_key
from evergreen_etl.privacy.risk import KAnonymityGuard
from evergreen_etl.progress import Spinner
from evergreen_etl.settings import Settings
from evergreen_etl.sources.nspl import PostcodeLookupReader
from evergreen_etl.times import to_utc_naive, utc_now
from evergreen_etl.warehouse.db_errors import translate_database_error
from evergreen_etl.warehouse.dry_run import (
    leave_no_new_file,
    migrate_in_transaction,
    needs_schema,
)
from evergreen_etl.warehouse.engine import SchemaPolicy, open_warehouse, write_transaction
from evergreen_etl.warehouse.guards import check_left_rate, check_not_future
from evergreen_etl.warehouse.lookup import load_postcodes
from evergreen_etl.warehouse.lookup_versions import LookupVersion
from evergreen_etl.warehouse.precision import Tokeniser, check_precision
from evergreen_etl.warehouse.relocate import (
    PreviousLookup,
    Relocation,
    add_lookup_version,
    remember_locations,
)
from evergreen_etl.warehouse.replay import merge_into_history, plan_snapshot
from evergreen_etl.warehouse.scd2 import AbsentPolicy, stage_snapshot
from evergreen_etl.warehouse.snapshot_facts import refresh_snapshot_facts

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
    dry_run: bool = False,
    max_left_rate: float | None = None,
    allow_future: bool = False,
    replace: bool = False,
) -> LoadResult:
    """Merge the staged snapshot (and the lookup, when it changed) into the warehouse.

    Everything happens in one transaction under the load lock: a failure leaves the
    warehouse exactly as it was. The snapshot time is ``as_of``, else the users source's
    Last-Modified, else now (UTC). A snapshot older than the newest loaded one is merged in
    its place in time (the later history of the users it changes is re-derived); the same
    snapshot loaded again changes nothing; a different snapshot at a time already loaded is
    refused unless ``replace``, which records it as a correction of that snapshot. With
    ``k_guard``, the merged warehouse's k-anonymity is measured before the commit, to warn
    or to refuse the load. ``precision`` (default: the settings') decides what the warehouse
    keeps of each postcode; another precision than the warehouse's is refused, unless
    ``coarsen`` and coarser (every stored postcode is then rewritten). A new lookup is
    recorded as a version and re-locates the whole history (``relocated``).

    A snapshot time more than a day ahead is refused unless ``allow_future``; a snapshot that
    would close the address of more than ``max_left_rate`` (default: the settings') of the
    current users is refused. With ``dry_run`` the whole load is computed and rolled back:
    the result (``dry_run`` set, no ``run_id``) says what it would do; nothing changes.
    """
    data = settings.data
    summary = read_staged_summary(data.staged)
    staged_users = data.staged_users
    check_staged_columns(staged_users)
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
    what = "--as-of" if as_of is not None else "the users source's Last-Modified"
    check_not_future(moment, what=what, allow_future=allow_future)
    left_rate = settings.max_left_rate if max_left_rate is None else max_left_rate

    if k_guard is None and settings.min_k is not None:
        k_guard = KAnonymityGuard(settings.min_k, settings.k_policy)
    try:
        # An empty database is created as part of the first load (for a dry run, inside its
        # transaction, which takes it away again); an old schema is not migrated unless asked.
        schema: SchemaPolicy = "any" if dry_run else "upgrade" if auto_upgrade else "create"
        with (
            open_warehouse(settings, engine, schema=schema) as warehouse,
            leave_no_new_file(warehouse) if dry_run and engine is None else nullcontext(),
        ):
            migrate = dry_run and needs_schema(warehouse)
            try:
                with write_transaction(warehouse) as conn:
                    if migrate:
                        migrate_in_transaction(conn)
                    result = _load_in_transaction(
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
                        max_left_rate=left_rate,
                        dry_run=dry_run,
                        replace=replace,
                    )
                    if dry_run:
                        conn.rollback()
                        log.info("dry run: the load was rolled back, nothing changed")
                        return result.model_copy(update={"dry_run": True, "run_id": None})
                    return result
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
    max_left_rate: float,
    dry_run: bool,
    replace: bool,
) -> LoadResult:
    key_id = str(summary["key_id"])
    users_sha = summary.get("source_sha256")
    _check_key(conn, key_id)
    plan = plan_snapshot(conn, as_of=as_of, users_sha=users_sha, replace=replace)
    if plan.skip:
        # Already loaded; but a changed lookup is still loaded.
        skipped = _skipped(as_of, int(summary.get("rejected", 0)))
        reloaded = _load_lookup_if_changed(conn, lookup, postcodes_sha, progress=progress)
        if reloaded is None:
            log.info("this snapshot is already loaded: nothing to do")
            return skipped
        run_id = _record_lookup_run(conn, as_of, key_id, users_sha, postcodes_sha, reloaded.rows)
        version, relocation = _new_version(conn, lookup, postcodes_sha, reloaded, run_id)
        return skipped.model_copy(
            update={
                "run_id": run_id,
                "postcodes_loaded": reloaded.rows,
                "lookup_version": version.version_id if version is not None else None,
                "relocated": relocation.users,
                "relocated_by_reason": relocation.by_reason,
            }
        )

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

    reloaded = _load_lookup_if_changed(conn, lookup, postcodes_sha, progress=progress)
    postcodes_loaded = reloaded.rows if reloaded is not None else None
    version, relocation = _new_version(conn, lookup, postcodes_sha, reloaded, run_id)

    staged = stage_snapshot(conn, staged_users)
    with Spinner(f"merging {staged:,} users into the history", enabled=progress):
        merged, replayed = merge_into_history(
            conn,
            plan=plan,
            staged=staged,
            as_of=as_of,
            run_id=run_id,
            absent=absent,
            precision=precision,
        )
    fill_record_keys(conn)
    refresh_snapshot_facts(conn, as_of, run_id)
    failpoint("load.merged")
    check_left_rate(
        left=merged.left,
        moved=merged.moved,
        unchanged=merged.unchanged,
        max_left_rate=max_left_rate,
        warn_only=dry_run,
    )
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
    if replayed is not None:
        details["replayed"] = asdict(replayed)
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
        replayed=replayed.users if replayed is not None else 0,
        replaced_run_id=plan.replaces.run_id if plan.replaces is not None else None,
        lookup_version=version.version_id if version is not None else None,
        relocated=relocation.users,
        relocated_by_reason=relocation.by_reason,
        coarsened=coarsened,
    )


class _Reloaded(NamedTuple):
    """A lookup just loaded: its rows, and the version it replaced (with what that one said
    of each postcode, for re-location; None: the first lookup)."""

    rows: int
    previous: PreviousLookup | None


def _load_lookup_if_changed(
    conn: Connection, lookup: PostcodeLookupReader, postcodes_sha: str, *, progress: bool
) -> _Reloaded | None:
    """Load the lookup unless the last one loaded has the same checksum."""
    last_lookup = conn.execute(
        text(
            # An undone or replaced load's lookup stays loaded (undo keeps dim_postcode).
            "SELECT postcodes_sha256 FROM etl_run WHERE status IN ('succeeded', 'lookup', "
            "'undone') AND postcodes_loaded IS NOT NULL ORDER BY run_id DESC LIMIT 1"
        )
    ).scalar()
    if last_lookup == postcodes_sha:
        log.info("postcode lookup unchanged (sha256 %s…): not reloaded", postcodes_sha[:12])
        return None
    previous = remember_locations(conn)
    loaded = load_postcodes(conn, lookup, progress=progress)
    failpoint("load.postcodes_loaded")
    return _Reloaded(loaded, previous)


def _new_version(
    conn: Connection,
    lookup: PostcodeLookupReader,
    postcodes_sha: str,
    reloaded: _Reloaded | None,
    run_id: int,
) -> tuple[LookupVersion | None, Relocation]:
    """A lookup just loaded becomes the newest version and re-locates the history."""
    if reloaded is None:
        return None, Relocation()
    return add_lookup_version(
        conn,
        lookup,
        sha256=postcodes_sha,
        postcodes=reloaded.rows,
        run_id=run_id,
        previous=reloaded.previous,
    )


def _record_lookup_run(
    conn: Connection,
    as_of: datetime,
    key_id: str,
    users_sha: str | None,
    postcodes_sha: str,
    postcodes_loaded: int,
) -> int:
    """The audit row of a load that found its snapshot loaded already but a new lookup."""
    now = utc_now()
    run_id: int = conn.execute(
        text(
            "INSERT INTO etl_run (started_at, finished_at, as_of, status, key_id, users_sha256,"
            " postcodes_sha256, postcodes_loaded)"
            " VALUES (:now, :now, :t, 'lookup', :key_id, :users_sha, :postcodes_sha, :loaded)"
            " RETURNING run_id"
        ).bindparams(_TIME, bindparam("now", type_=DateTime())),
        {
            "now": now,
            "t": as_of,
            "key_id": key_id,
            "users_sha": users_sha,
            "postcodes_sha": postcodes_sha,
            "loaded": postcodes_loaded,
        },
    ).scalar_one()
    log.info("this snapshot is already loaded; the changed postcode lookup was loaded")
    return run_id


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
