"""The staged-file contract: what ``anonymise`` writes under ``DATA_DIR/staged`` and ``load`` reads.

``StagedUser`` is one row of ``users.csv``: its fields, in order, are the file's columns and
the columns of the warehouse's ``stg_user`` table (``STAGED_TABLE_COLUMNS``); ``Reject`` is
one row of ``rejects.csv``. ``summary.json`` holds the counts of the last anonymise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evergreen_etl.datadir.layout import SUMMARY_NAME
from evergreen_etl.errors import SourceError
from evergreen_etl.postcodes import PostcodeKind

__all__ = [
    "REJECT_COLUMNS",
    "STAGED_COLUMNS",
    "STAGED_TABLE_COLUMNS",
    "Reject",
    "StagedUser",
    "check_staged_columns",
    "read_staged_summary",
]


def _column(sql: str, description: str | None = None) -> Any:
    """A field of the staged file and its column type in the ``stg_user`` table."""
    return Field(description=description, json_schema_extra={"sql": sql})


class StagedUser(BaseModel):
    """A pseudonymised user as the ``anonymise`` stage writes it: no direct identifier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int = _column("INTEGER NOT NULL", "1-based position of the record in the source")
    pseudonym: str = _column("VARCHAR(64) NOT NULL", "HMAC-SHA256 of the normalised email, hex")
    sex: Literal["F", "M", "U"] = _column("VARCHAR(1) NOT NULL")
    birth_year: int | None = _column("INTEGER")
    postcode: str | None = _column(
        "VARCHAR(8)", "Canonical full postcode, or outward code if partial"
    )
    postcode_kind: PostcodeKind = _column("VARCHAR(8) NOT NULL")
    postcode_token: str | None = _column(
        "VARCHAR(32)", "Keyed token of the postcode, for the coarser location precisions"
    )
    record_key: int = _column(
        "SMALLINT NOT NULL", "Cell key method: 0-255, from the pseudonym (privacy/ckm.py)"
    )


class Reject(BaseModel):
    """Why a source record was not staged. Holds position and reason, never the raw value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    line: int
    reason: str
    field: str | None


STAGED_COLUMNS: tuple[str, ...] = tuple(StagedUser.model_fields)
REJECT_COLUMNS: tuple[str, ...] = tuple(Reject.model_fields)


def _table_columns() -> str:
    columns = []
    for name, field in StagedUser.model_fields.items():
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        columns.append(f"{name} {extra['sql']}")
    return ", ".join(columns)


STAGED_TABLE_COLUMNS = _table_columns()
"""The column definitions of the ``stg_user`` table that ``load`` copies ``users.csv`` into."""


def read_staged_summary(staged_dir: Path) -> dict[str, Any]:
    """The summary the last successful ``anonymise`` wrote."""
    path = staged_dir / SUMMARY_NAME
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SourceError(
            f"{path}: no staged users (run `evergreen-etl anonymise` first)"
        ) from None
    return data


def check_staged_columns(path: Path) -> None:
    """Refuse a staged users file whose header is not this version's columns: one written by
    another version of evergreen-etl, or not by ``anonymise`` at all. (The header is not
    quoted: a file that is not ours may hold anything.)"""
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = handle.readline(4096).rstrip("\r\n")
    except FileNotFoundError:
        raise SourceError(
            f"{path}: no staged users (run `evergreen-etl anonymise` first)"
        ) from None
    if header != ",".join(STAGED_COLUMNS):
        raise SourceError(
            f"{path}: not the columns this version of evergreen-etl stages "
            f"({', '.join(STAGED_COLUMNS)}); run `evergreen-etl anonymise` again"
        )
