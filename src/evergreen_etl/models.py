"""Typed records and stage results shared by the stages.

Results are frozen pydantic models that carry counts and checksums, never personal data,
so they can be logged, printed as JSON or returned from an Airflow task as they are.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.postcodes import PostcodeKind

SourceName = Literal["users", "postcodes"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ManifestEntry(_Frozen):
    """What was fetched for one source: where from, validators, size and checksum."""

    source: SourceName
    url: str
    path: str = Field(description="File name under DATA_DIR/raw")
    etag: str | None = None
    last_modified: datetime | None = None
    size: int
    sha256: str
    fetched_at: datetime
    downloaded: bool = Field(description="False when the source was unchanged and reused")


class ExtractResult(_Frozen):
    """Result of ``extract``: one manifest entry per source."""

    users: ManifestEntry
    postcodes: ManifestEntry
    manifest_path: Path


class StagedUser(_Frozen):
    """A pseudonymised user as the ``anonymise`` stage writes it: no direct identifier."""

    position: int = Field(description="1-based position of the record in the source")
    pseudonym: str = Field(description="HMAC-SHA256 of the normalised email, hex")
    sex: Literal["F", "M", "U"]
    birth_year: int | None
    postcode: str | None = Field(description="Canonical full postcode, or outward code if partial")
    postcode_kind: PostcodeKind


class Reject(_Frozen):
    """Why a source record was not staged. Holds position and reason, never the raw value."""

    position: int
    line: int
    reason: str
    field: str | None


class AnonymiseResult(_Frozen):
    """Result of ``anonymise``: counts by outcome and the staged files written."""

    records_read: int
    users_staged: int
    rejected: int
    rejects_by_reason: dict[str, int]
    postcodes_by_kind: dict[str, int]
    sex_unrecognised: int
    birth_date_invalid: int
    input_format: str
    key_id: str
    staged_path: Path
    rejects_path: Path
    summary_path: Path


class PostcodeRecord(_Frozen):
    """One row of the postcode lookup, as the warehouse keeps it."""

    postcode: str
    outward: str
    local_authority_code: str | None
    country_code: str | None
    region_code: str | None
    latitude: float | None
    longitude: float | None
    introduced: str | None
    terminated: str | None


class LocationCounts(_Frozen):
    """How the users of one snapshot were located (SPEC §4)."""

    full_matched: int = 0
    partial_resolved: int = 0
    partial_unresolved: int = Field(0, description="Outward code not within one authority")
    unmatched: int = 0
    no_authority: int = Field(0, description="Matched a postcode whose authority is a pseudo-code")
    invalid: int = 0
    missing: int = 0


class LoadResult(_Frozen):
    """Result of ``load``: what the SCD2 merge did, per the audit row it wrote."""

    run_id: int | None
    as_of: datetime
    skipped: bool = Field(description="True when this exact snapshot was already loaded")
    postcodes_loaded: int | None = Field(description="None when the lookup was unchanged")
    users_in_snapshot: int
    duplicates: int
    new: int
    returned: int
    moved: int
    left: int
    unchanged: int
    attributes_updated: int = Field(
        0, description="known users whose sex or birth year changed (type 1: overwritten)"
    )
    rejected: int
    location: LocationCounts
    smallest_k: int | None = Field(None, description="k-anonymity after the load, if measured")
    replayed: int = Field(
        0, description="users whose history a late or replacing snapshot re-derived"
    )
    replaced_run_id: int | None = Field(None, description="the load this one corrected")


class ReportRow(_Frozen):
    """One row of the headline report. ``users`` is None when suppressed."""

    local_authority_code: str
    local_authority_name: str
    users: int | None
    suppressed: bool = False


class Report(_Frozen):
    """Distinct users by local authority at ``as_of``."""

    as_of: datetime
    rows: list[ReportRow]
    total: int
    min_count: int | None = None


class RunResult(_Frozen):
    """Result of ``run``: every stage's result, in order."""

    extract: ExtractResult
    anonymise: AnonymiseResult
    load: LoadResult
    report: Report
