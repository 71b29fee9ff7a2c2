"""Fake Evergreen users exports: people who move, leave, return and are recorded messily.

``write_users_snapshots`` writes one ``users*.json`` per snapshot, for people living at the
postcodes of a ``PostcodeSample``.
"""

from __future__ import annotations

import json
import random
import unicodedata
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path

from evergreen_etl.sample.geography import CHUNK_ROWS, INWARDS, PostcodeSample
from evergreen_etl.sample.words import FAMILY_NAMES, GIVEN_NAMES, STREET_KINDS, STREET_NAMES

__all__ = ["write_users_snapshots"]

# (value, weight); None means the "sex" key is absent.
_SEX_CHOICES: tuple[tuple[str | None, int], ...] = (
    ("Male", 24),
    ("M", 9),
    ("m", 4),
    ("Female", 26),
    ("F", 10),
    ("f", 4),
    ("Other", 2),
    ("Prefer not to say", 2),
    ("Non-binary", 1),
    ("", 2),
    (None, 2),
)
_SEX_VALUES: tuple[str | None, ...] = tuple(v for v, _ in _SEX_CHOICES)
_INVALID_DATES = ("31/02/1990", "unknown", "1990-13-01", "", "00/00/0000")
_INVALID_POSTCODES = ("NOT KNOWN", "12345", "N/A", "unknown", "SW1A 1A", "?", "TBC", "n/a")
_UNMATCHED_AREAS = ("ZZ", "QX", "XY")
_EXTRAS: tuple[tuple[str, object], ...] = (
    ("marketingOptIn", True),
    ("marketingOptIn", False),
    ("tags", ["beta", "android"]),
    ("tags", []),
    ("appVersion", "4.12.0"),
    ("consent", {"research": True, "updatedAt": "2022-11-03T09:14:00Z"}),
    ("lastLogin", None),
)

# Where a person's postcode comes from (the low three bits of the person's flags).
_PC_FULL = 0
_PC_PARTIAL = 1
_PC_INVALID = 2
_PC_UNMATCHED = 3
_PC_ADDRESS_EMPTY = 4  # "address": {}
_PC_ADDRESS_NULL = 5  # "address": null
_PC_ADDRESS_MISSING = 6  # no "address" key
_PC_STREET_ONLY = 7  # an address without a postcode
# Cumulative thresholds over one uniform draw, in that order: ~1 in 6 give only the outward code.
_PC_THRESHOLDS = (
    (0.1667, _PC_PARTIAL),
    (0.1867, _PC_INVALID),
    (0.1967, _PC_UNMATCHED),
    (0.2067, _PC_ADDRESS_EMPTY),
    (0.2167, _PC_ADDRESS_NULL),
    (0.2267, _PC_ADDRESS_MISSING),
    (0.2317, _PC_STREET_ONLY),
)
# Email kind (bits 3-4): 0 valid, else missing, no domain ("name@") or no "@".
_EMAIL_MISSING = 1
_EMAIL_NO_DOMAIN = 2
_EMAIL_NO_AT = 3
_SPARSE = 1 << 5  # no names, sex or date of birth
_BAD_DATE = 1 << 6
_NO_STREET = 1 << 7

_MOVE_RATE = 0.07
_LEAVE_RATE = 0.03
_JOIN_RATE = 0.02
_RETURN_RATE = 0.15  # of the people absent from the previous snapshot
_MOVE_BACK_RATE = 0.2
_DUPLICATE_RATE = 0.03
_CONFLICT_RATE = 0.013  # of people, ~3/4 of whom have a postcode to vary: ~1%
_EXTRA_FIELD_RATE = 0.05
_TERMINATED_SHARE = 0.03  # of the postcodes people live at


def _ascii_lower(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == "-")


_GIVEN_EMAIL = tuple(_ascii_lower(n) for n in GIVEN_NAMES)
_FAMILY_EMAIL = tuple(_ascii_lower(n) for n in FAMILY_NAMES)
_JSON_STRING = json.encoder.encode_basestring_ascii


class _People:
    """Compact per-person state: parallel arrays indexed by person number (no objects)."""

    def __init__(self) -> None:
        self.given = array("H")
        self.family = array("H")
        self.street = array("H")
        self.house = array("H")
        self.sex = array("B")
        self.birth = array("I")  # yyyymmdd
        self.flags = array("B")
        self.postcode = array("I")  # index into the postcode pool
        self.previous = array("I")  # the postcode before the last move, or _NO_PREVIOUS
        self.present = bytearray()

    def __len__(self) -> int:
        return len(self.present)

    def add(self, rng: random.Random, pool: _Pool) -> None:
        """Append one new person with random attributes."""
        rand = rng.random
        self.given.append(int(rand() * len(GIVEN_NAMES)))
        self.family.append(int(rand() * len(FAMILY_NAMES)))
        self.street.append(int(rand() * len(STREET_NAMES) * len(STREET_KINDS)))
        self.house.append(1 + int(rand() * 180))
        self.sex.append(_pick_sex(rand()))
        year = 1935 + int(rand() * 72)
        self.birth.append(year * 10000 + (1 + int(rand() * 12)) * 100 + 1 + int(rand() * 28))
        flags = _PC_FULL
        draw = rand()
        for threshold, kind in _PC_THRESHOLDS:
            if draw < threshold:
                flags = kind
                break
        draw = rand()
        if draw < 0.006:
            flags |= _EMAIL_MISSING << 3
        elif draw < 0.013:
            flags |= _EMAIL_NO_DOMAIN << 3
        elif draw < 0.02:
            flags |= _EMAIL_NO_AT << 3
        draw = rand()
        if draw < 0.03:
            flags |= _SPARSE
        elif draw < 0.037:
            flags |= _BAD_DATE
        if rand() < 0.45:
            flags |= _NO_STREET
        self.flags.append(flags)
        self.postcode.append(pool.draw(rand))
        self.previous.append(_NO_PREVIOUS)
        self.present.append(1)


_NO_PREVIOUS = 0xFFFFFFFF
_SEX_CUMULATIVE: tuple[float, ...] = tuple(
    sum(w for _, w in _SEX_CHOICES[: i + 1]) / sum(w for _, w in _SEX_CHOICES)
    for i in range(len(_SEX_CHOICES))
)


def _pick_sex(draw: float) -> int:
    for index, bound in enumerate(_SEX_CUMULATIVE):
        if draw < bound:
            return index
    return len(_SEX_CUMULATIVE) - 1


class _Pool:
    """Postcodes people live at: the sampled live ones, then the sampled terminated ones."""

    def __init__(self, lookup: PostcodeSample) -> None:
        live = [p for d in lookup.districts for p in d.live]
        terminated = [p for d in lookup.districts for p in d.terminated]
        self.postcodes: list[str] = live + terminated
        self.live = len(live)
        self.terminated = len(terminated)

    def draw(self, rand: Callable[[], float]) -> int:
        """A random postcode's index: a live one, or now and then a terminated one."""
        if self.terminated and rand() < _TERMINATED_SHARE:
            return self.live + int(rand() * self.terminated)
        return int(rand() * self.live)


class _Renderer:
    """Turns a person into the JSON text of one record, with per-record variation."""

    def __init__(self, people: _People, pool: Sequence[str], rng: random.Random) -> None:
        self.people = people
        self.pool = pool
        self.rand = rng.random

    def email(self, person: int) -> str | None:
        """The person's email as this record spells it (None: the key is absent)."""
        kind = (self.people.flags[person] >> 3) & 3
        local = (
            f"{_GIVEN_EMAIL[self.people.given[person]]}."
            f"{_FAMILY_EMAIL[self.people.family[person]]}.{person + 1}"
        )
        if kind == _EMAIL_MISSING:
            return None
        if kind == _EMAIL_NO_DOMAIN:
            text = f"{local}@"
        elif kind == _EMAIL_NO_AT:
            text = f"{local}.example.com"
        else:
            text = f"{local}@example.com"
        draw = self.rand()
        if draw < 0.70:
            return text
        if draw < 0.80:
            return ".".join(part[:1].upper() + part[1:] for part in text.split("."))
        if draw < 0.88:
            return text.upper()
        if draw < 0.94:
            return f"  {text} "
        return f" {text.upper()}\t"

    def postcode(self, person: int, pool_index: int) -> str | None:
        """The postcode as this record spells it (None: no postcode key)."""
        kind = self.people.flags[person] & 7
        if kind == _PC_INVALID:
            return _INVALID_POSTCODES[person % len(_INVALID_POSTCODES)]
        if kind == _PC_UNMATCHED:
            area = _UNMATCHED_AREAS[person % len(_UNMATCHED_AREAS)]
            unit = INWARDS[(person * 7) % len(INWARDS)]
            return f"{area}{person % 9 + 1} {unit}"
        if kind not in (_PC_FULL, _PC_PARTIAL):
            return None
        canonical = self.pool[pool_index]
        outward, _, inward = canonical.partition(" ")
        draw = self.rand()
        if kind == _PC_PARTIAL:
            if draw < 0.45:
                return outward
            if draw < 0.65:
                return f"{outward} "
            if draw < 0.85:
                return outward.lower()
            return f" {outward.lower()} "
        if draw < 0.45:
            return canonical
        if draw < 0.60:
            return canonical.lower()
        if draw < 0.72:
            return outward + inward
        if draw < 0.80:
            return (outward + inward).lower()
        if draw < 0.88:
            return f"{outward}  {inward}"
        if draw < 0.94:
            return f" {canonical.lower()} "
        return f"{canonical} "

    def record(self, person: int, pool_index: int) -> str:
        """The record's text: what ``json.dumps(record, indent=2)`` would give."""
        people = self.people
        flags = people.flags[person]
        lines: list[str] = []
        email = self.email(person)
        if email is not None:
            lines.append(f'  "email": {_JSON_STRING(email)}')
        if not flags & _SPARSE:
            lines.append(f'  "givenName": {_JSON_STRING(GIVEN_NAMES[people.given[person]])}')
            lines.append(f'  "familyName": {_JSON_STRING(FAMILY_NAMES[people.family[person]])}')
            sex = _SEX_VALUES[people.sex[person]]
            if sex is not None:
                lines.append(f'  "sex": {_JSON_STRING(sex)}')
            lines.append(f'  "dateOfBirth": {_JSON_STRING(self.birth_date(person))}')
        kind = flags & 7
        if kind == _PC_ADDRESS_EMPTY:
            lines.append('  "address": {}')
        elif kind == _PC_ADDRESS_NULL:
            lines.append('  "address": null')
        elif kind != _PC_ADDRESS_MISSING:
            parts: list[str] = []
            if not flags & _NO_STREET or kind == _PC_STREET_ONLY:
                street = people.street[person]
                name = STREET_NAMES[street % len(STREET_NAMES)]
                suffix = STREET_KINDS[street // len(STREET_NAMES)]
                parts.append(f'    "street": "{people.house[person]} {name} {suffix}"')
            postcode = self.postcode(person, pool_index)
            if postcode is not None:
                parts.append(f'    "postcode": {_JSON_STRING(postcode)}')
            lines.append('  "address": {\n' + ",\n".join(parts) + "\n  }")
        if self.rand() < _EXTRA_FIELD_RATE:
            key, value = _EXTRAS[int(self.rand() * len(_EXTRAS))]
            lines.append(f"  {_JSON_STRING(key)}: " + _indent_json(value))
        if not lines:
            return "{}"
        return "{\n" + ",\n".join(lines) + "\n}"

    def birth_date(self, person: int) -> str:
        """The date of birth as this record spells it: ISO, dd/mm/yyyy, or invalid."""
        if self.people.flags[person] & _BAD_DATE:
            return _INVALID_DATES[person % len(_INVALID_DATES)]
        packed = self.people.birth[person]
        year, month, day = packed // 10000, packed // 100 % 100, packed % 100
        if self.rand() < 0.6:
            return f"{year:04d}-{month:02d}-{day:02d}"
        return f"{day:02d}/{month:02d}/{year:04d}"


def _indent_json(value: object) -> str:
    """A nested value as ``json.dumps(..., indent=2)`` prints it one level down."""
    return json.dumps(value, indent=2).replace("\n", "\n  ")


def _advance(people: _People, rng: random.Random, pool: _Pool) -> None:
    """Turn the people of one snapshot into the next: moves, leavers, joiners, returners."""
    rand = rng.random
    present = people.present
    postcode = people.postcode
    previous = people.previous
    before = sum(present)
    for person in range(len(people)):
        draw = rand()
        if present[person]:
            if draw < _LEAVE_RATE:
                present[person] = 0
            elif draw < _LEAVE_RATE + _MOVE_RATE:
                if previous[person] != _NO_PREVIOUS and rand() < _MOVE_BACK_RATE:
                    postcode[person], previous[person] = previous[person], postcode[person]
                else:
                    previous[person] = postcode[person]
                    moved_to = pool.draw(rand)
                    if moved_to == postcode[person]:
                        moved_to = (moved_to + 1) % pool.live
                    postcode[person] = moved_to
        elif draw < _RETURN_RATE:
            present[person] = 1
            if rand() < 0.5:
                previous[person] = postcode[person]
                postcode[person] = pool.draw(rand)
    for _ in range(round(before * _JOIN_RATE)):
        people.add(rng, pool)


def _write_snapshot(path: Path, people: _People, pool: Sequence[str], rng: random.Random) -> None:
    """Write one snapshot: present people in order, with duplicates and conflicting records."""
    render = _Renderer(people, pool, rng)
    rand = rng.random
    pending: dict[int, list[str]] = {}
    chunk: list[str] = []
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for person in range(len(people)):
            chunk.extend(pending.pop(person, ()))
            if not people.present[person]:
                continue
            pool_index = people.postcode[person]
            draw = rand()
            kind = people.flags[person] & 7
            if draw < _CONFLICT_RATE and kind in (_PC_FULL, _PC_PARTIAL):
                # The same email with another address, before the true one: last one wins.
                other = (pool_index + 1 + int(rand() * (len(pool) - 1))) % len(pool)
                chunk.append(render.record(person, other))
            text = render.record(person, pool_index)
            chunk.append(text)
            if draw > 1.0 - _DUPLICATE_RATE:
                pending.setdefault(person + 1 + int(rand() * 40), []).append(text)
            if len(chunk) >= CHUNK_ROWS:
                out.write("\n".join(chunk))
                out.write("\n")
                chunk.clear()
        for due in sorted(pending):
            chunk.extend(pending[due])
        if chunk:
            out.write("\n".join(chunk))
            out.write("\n")


def _snapshot_name(number: int) -> str:
    return "users.json" if number == 1 else f"users-{number}.json"


def write_users_snapshots(
    directory: Path,
    lookup: PostcodeSample,
    *,
    users: int,
    snapshots: int = 1,
    seed: int,
) -> list[Path]:
    """Write ``snapshots`` users exports to ``directory``; return their paths in order.

    The first (``users.json``) holds ``users`` distinct people; each later one
    (``users-2.json``, ...) derives from the one before: about 7% move, 3% leave, 2% join and
    a few who left come back. Each file is a stream of pretty-printed JSON objects with the
    mess of the real export (README, "How the sources are read"); people live at postcodes
    drawn from ``lookup``.
    """
    if users < 0:
        raise ValueError("users must not be negative")
    if snapshots < 1:
        raise ValueError("snapshots must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    pool = _Pool(lookup)
    people = _People()
    rng = random.Random(f"evergreen-sample:{seed}:users")
    for _ in range(users):
        people.add(rng, pool)
    paths: list[Path] = []
    for number in range(1, snapshots + 1):
        if number > 1:
            _advance(people, random.Random(f"evergreen-sample:{seed}:advance:{number}"), pool)
        path = directory / _snapshot_name(number)
        _write_snapshot(
            path, people, pool.postcodes, random.Random(f"evergreen-sample:{seed}:render:{number}")
        )
        paths.append(path)
    return paths
