"""Typed records and stage results shared by the stages.

Results are frozen pydantic models that carry counts and checksums, never personal data,
so they can be logged, printed as JSON or returned from an Airflow task as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.times import UtcDateTime

SourceName = Literal["users", "postcodes"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ManifestEntry(_Frozen):
    """What was fetched for one source: where from, validators, size and checksum."""

    source: SourceName
    url: str
    path: str = Field(description="File name under DATA_DIR/raw")
    etag: str | None = None
    last_modified: UtcDateTime | None = None
    size: int
    sha256: str
    fetched_at: UtcDateTime
    downloaded: bool = Field(description="False when the source was unchanged and reused")


class ExtractResult(_Frozen):
    """Result of ``extract``: one manifest entry per source."""

    users: ManifestEntry
    postcodes: ManifestEntry
    manifest_path: Path


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
    """How the users of one snapshot were located (README, "The warehouse")."""

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
    as_of: UtcDateTime
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
    lookup_version: int | None = Field(
        None, description="The lookup version this load recorded (None: lookup unchanged)"
    )
    relocated: int = Field(
        0, description="Users the new lookup version located in another authority, any period"
    )
    relocated_by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="relocated per reason: matched, moved, partial, unmatched",
    )
    coarsened: bool = Field(False, description="Every stored postcode was coarsened first")
    dry_run: bool = Field(False, description="True when the merge was computed and rolled back")


Boundaries = Literal["lookup", "recorded", "current", "supplied"]
"""The boundary basis of a report by authority: ``lookup`` (every period located with the
newest lookup, the default), ``recorded`` (as located when loaded), ``current`` (the newest
lookup, then today's codes). ``supplied`` is the old name of ``lookup``."""


class BoundaryBasis(_Frozen):
    """Which boundaries and which lookup version a report by authority is on."""

    basis: Literal["lookup", "recorded", "current"]
    lookup_version: int | None = Field(description="The lookup version (None: none loaded)")
    lookup_published: str | None = Field(None, description="YYYY-MM it was published")
    not_relocatable: int | None = Field(
        0,
        description="Users kept at their recorded authority: stored without a full postcode "
        "(published under the report's disclosure rule)",
    )
    approximate: int | None = Field(
        None,
        description="current basis: users mapped to today's code through an approximate "
        "mapping (published under the report's disclosure rule)",
    )


class AnalysisRow(_Frozen):
    """Base of every report's row: counts are ``int | None``, None when suppressed."""

    suppressed: tuple[str, ...] = Field(
        default=(), description="Names of the counts hidden by disclosure control"
    )


class LocalAuthorityUsers(AnalysisRow):
    """Distinct users in one local authority (the headline report)."""

    local_authority_code: str
    local_authority_name: str
    users: int | None


RowT = TypeVar("RowT", bound=AnalysisRow)


class Analysis(_Frozen, Generic[RowT]):
    """The result of one report: its rows, published totals and how it was asked for.

    Every report is one (the headline, the other analyses, the risk report), and one
    renderer (``evergreen_etl.report.render``) draws them all.
    """

    name: str
    title: str
    as_of: UtcDateTime
    from_time: UtcDateTime | None = Field(None, description="Start of the period (movers)")
    boundaries: Boundaries | None = Field(None, description="None when not by authority")
    columns: tuple[str, ...]
    counts: tuple[str, ...] = Field(
        description="The count columns (under disclosure control when a rule applies)"
    )
    rows: list[RowT]
    totals: dict[str, int | None]
    disclosure: str = Field("none", description="The disclosure rule applied to the counts")
    min_count: int | None = None
    note: str | None = Field(None, description="How small counts were treated")
    basis: BoundaryBasis | None = Field(
        None, description="Boundary basis and lookup version (reports by authority)"
    )

    @property
    def total(self) -> int | None:
        """The published total of the first count (the headline's distinct users); None
        when the report has no total or its disclosure rule hides it."""
        return self.totals.get(self.counts[0]) if self.counts else None


# The headline report, distinct users by local authority, is an Analysis like every other.
ReportRow = LocalAuthorityUsers
Report = Analysis[LocalAuthorityUsers]


class RunResult(_Frozen):
    """Result of ``run``: every stage's result, in order."""

    extract: ExtractResult
    anonymise: AnonymiseResult
    load: LoadResult
    report: Report | None = Field(description="None after a dry run (nothing was loaded)")
