"""Coarsening of quasi-identifiers: sex to F/M/U, date of birth to birth year."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

Sex = Literal["F", "M", "U"]

_SEX: dict[str, Sex] = {"female": "F", "f": "F", "male": "M", "m": "M"}
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][0-9:.+\-Z]*)?$")
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
EARLIEST_BIRTH_YEAR = 1900


def coarsen_sex(value: object) -> tuple[Sex, bool]:
    """``(F|M|U, recognised)``: any spelling of female/male, else U (unrecognised if given)."""
    if not isinstance(value, str) or not value.strip():
        return "U", value is None or isinstance(value, str)
    sex = _SEX.get(value.strip().lower())
    return (sex, True) if sex else ("U", False)


def birth_year(value: object, *, latest_year: int) -> tuple[int | None, bool]:
    """``(year, valid)`` from an ISO or dd/mm/yyyy date; a missing date is valid with no year."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, True
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    match = _ISO_DATE.match(text)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _UK_DATE.match(text)
        if not match:
            return None, False
        day, month, year = (int(g) for g in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        return None, False
    if not EARLIEST_BIRTH_YEAR <= year <= latest_year:
        return None, False
    return year, True
