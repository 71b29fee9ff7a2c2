"""Typed results of the analyses: one frozen row model per report, and the result around it.

Counts are ``int | None``: None means suppressed by disclosure control, and the row's
``suppressed`` names the columns that were. Rows never carry a pseudonym or a postcode.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.models import (
    Analysis,
    AnalysisRow,
    Boundaries,
    BoundaryBasis,
    LocalAuthorityUsers,
    RowT,
)
from evergreen_etl.times import UtcDateTime

__all__ = [
    "AGE_BANDS",
    "Analysis",
    "AnalysisRow",
    "AuthorityMoves",
    "Boundaries",
    "BoundaryBasis",
    "CountryUsers",
    "LocalAuthorityUsers",
    "MapCell",
    "PostcodeStatusUsers",
    "RegionUsers",
    "RowT",
    "RunQuality",
    "SexAgeBandUsers",
    "SnapshotChanges",
    "UserMap",
]

AGE_BANDS = ("0-17", "18-29", "30-44", "45-64", "65+", "unknown")


class RegionUsers(AnalysisRow):
    """Distinct users in one region (Wales, Scotland and Northern Ireland are their own)."""

    region_code: str
    region_name: str
    users: int | None


class CountryUsers(AnalysisRow):
    """Distinct users in one country of the UK."""

    country_code: str
    country_name: str
    users: int | None


class SexAgeBandUsers(AnalysisRow):
    """Distinct users of one sex and age band within one local authority."""

    local_authority_code: str
    local_authority_name: str
    sex: Literal["F", "M", "U"]
    age_band: str = Field(description="Age reached in the as-of year: " + ", ".join(AGE_BANDS))
    users: int | None


class AuthorityMoves(AnalysisRow):
    """Users who lived elsewhere at the start of the period and here at its end, and back."""

    local_authority_code: str
    local_authority_name: str
    inflow: int | None = Field(description="Users here at --to who were in another authority")
    outflow: int | None = Field(description="Users here at --from who were elsewhere at --to")
    net: int | None = Field(description="inflow - outflow")


class SnapshotChanges(AnalysisRow):
    """What one loaded snapshot changed, from the address history."""

    run_id: int
    as_of: UtcDateTime
    new_users: int | None = Field(description="Users seen for the first time")
    returned_users: int | None = Field(description="Users back after an absence")
    moved_users: int | None = Field(description="Users whose postcode changed")
    left_users: int | None = Field(description="Users missing from the snapshot")
    users: int | None = Field(description="Distinct users after the snapshot")


class PostcodeStatusUsers(AnalysisRow):
    """Distinct users by how their postcode was located, and whether it is terminated."""

    location_status: str
    terminated: bool = Field(description="The postcode is terminated in the loaded lookup")
    description: str
    users: int | None


class RunQuality(AnalysisRow):
    """The data-quality record of one load, from the audit table."""

    run_id: int
    as_of: UtcDateTime
    status: str
    records_read: int | None
    rejected: int | None
    duplicates: int | None
    users_in_snapshot: int | None
    full_matched: int | None
    partial_resolved: int | None
    partial_unresolved: int | None
    unmatched: int | None
    no_authority: int | None
    invalid: int | None
    missing: int | None
    postcodes_loaded: int | None = Field(
        description="Rows of the postcode lookup loaded (not people; None when unchanged)"
    )


class MapCell(BaseModel):
    """One grid cell of the users map: its south-west corner, size and published count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latitude: float
    longitude: float
    users: int


class UserMap(BaseModel):
    """Users at ``as_of`` binned on a latitude/longitude grid; sparse cells left out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: UtcDateTime
    cell_degrees: float
    min_users: int = Field(description="Cells with fewer users are not drawn")
    cells: list[MapCell]
    districts: list[tuple[float, float]] = Field(
        description="Centre of each postcode district in the lookup (public; the backdrop)"
    )
