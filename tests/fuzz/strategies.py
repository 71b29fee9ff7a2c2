"""Hypothesis strategies for hostile sources: users exports and postcode zips, as bytes.

Each input starts from something plausible (so the readers get deep) and is then bent:
truncated, byte-flipped, given giant lines and fields, nested deep, quoted in storms,
re-encoded, or packed into zip entries of every size.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable

from hypothesis import strategies as st

GIANT = 3 * 1024 * 1024  # the largest line or field a default example builds

# --- generic byte mutations ---------------------------------------------------------------


def _truncate(data: bytes, at: float) -> bytes:
    return data[: int(len(data) * at)]


def _flip(data: bytes, at: float, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    i = min(int(len(data) * at), len(data) - 1)
    return data[:i] + bytes([byte]) + data[i + 1 :]


def _insert(data: bytes, at: float, piece: bytes) -> bytes:
    i = int(len(data) * at)
    return data[:i] + piece + data[i:]


def _repeat(data: bytes, at: float, length: int, total: int) -> bytes:
    """Repeat a slice until it is ``total`` bytes long: one giant line, or a giant field."""
    i = int(len(data) * at)
    piece = data[i : i + length] or b"x"
    return data[:i] + piece * max(1, total // len(piece)) + data[i:]


def _delete(data: bytes, at: float, length: int) -> bytes:
    i = int(len(data) * at)
    return data[:i] + data[i + length :]


_FRACTION = st.floats(0, 1)
_PIECES = st.one_of(
    st.binary(max_size=16),
    st.sampled_from(
        [b'"', b'""', b"\\", b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"\xef\xbb\xbf", b","]
    ),
)
MUTATION: st.SearchStrategy[Callable[[bytes], bytes]] = st.one_of(
    st.builds(lambda at: lambda d: _truncate(d, at), _FRACTION),
    st.builds(lambda at, b: lambda d: _flip(d, at, b), _FRACTION, st.integers(0, 255)),
    st.builds(lambda at, p: lambda d: _insert(d, at, p), _FRACTION, _PIECES),
    st.builds(
        lambda at, n, total: lambda d: _repeat(d, at, n, total),
        _FRACTION,
        st.integers(1, 64),
        st.sampled_from([1024, 70_000, 1024 * 1024 + 7, GIANT]),
    ),
    st.builds(lambda at, n: lambda d: _delete(d, at, n), _FRACTION, st.integers(1, 256)),
    st.builds(lambda at, n: lambda d: _insert(d, at, b'"' * n), _FRACTION, st.integers(1, 5000)),
)


def mutated(base: st.SearchStrategy[bytes], max_mutations: int = 3) -> st.SearchStrategy[bytes]:
    """``base`` bytes, then up to ``max_mutations`` mutations applied in turn."""

    def apply(data: bytes, mutations: list[Callable[[bytes], bytes]]) -> bytes:
        for mutation in mutations:
            data = mutation(data)
        return data

    return st.builds(apply, base, st.lists(MUTATION, max_size=max_mutations))


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252"]


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(
        encoding, errors="surrogatepass" if encoding.startswith("utf") else "replace"
    )


# --- users exports ------------------------------------------------------------------------

# Every JSON escape, lone and paired surrogates among them.
JSON_ESCAPES = [
    '\\"',
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\n",
    "\\r",
    "\\t",
    "\\u0000",
    "\\u001b",
    "\\u00e9",
    "\\u202e",
    "\\ud800",
    "\\udfff",
    "\\ud83d\\ude00",
    "\\uffff",
    "\\ufeff",
]
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_BODY = st.lists(
    st.one_of(st.sampled_from(JSON_ESCAPES), _TEXT.map(lambda t: json.dumps(t)[1:-1])), max_size=6
).map("".join)
STRING = _BODY.map(lambda body: f'"{body}"')
_EMAIL = st.one_of(
    st.sampled_from(['"a@example.com"', '" Jane.Doe@Example.COM "', '"x@y.zz"']),
    st.builds(lambda a, b: f'"{a}@{b}.com"', _BODY, _BODY),
    STRING,
)
_SCALAR = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "-1", "1.5e308", "1e999", "-0.0", "7" * 5000]),
    STRING,
)
VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(STRING, inner), max_size=4).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=8,
)
_FIELD = st.one_of(
    st.tuples(st.just('"email"'), _EMAIL),
    st.tuples(st.just('"sex"'), st.one_of(STRING, VALUE)),
    st.tuples(st.just('"dateOfBirth"'), st.one_of(STRING, VALUE)),
    st.tuples(
        st.just('"address"'),
        st.one_of(STRING.map(lambda p: '{"postcode": ' + p + "}"), VALUE),
    ),
    st.tuples(STRING, VALUE),
)
RECORD = st.one_of(
    st.lists(_FIELD, max_size=6).map(lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
    VALUE,
)


def _export(records: list[str], style: str) -> str:
    if style == "array":
        return "[\n" + ",\n".join(records) + "\n]\n"
    if style == "ndjson":
        return "".join(record.replace("\n", " ") + "\n" for record in records)
    return "\n".join(records) + "\n"


_PLAIN_EXPORT = st.builds(
    lambda records, style, encoding: _encode(_export(records, style), encoding),
    st.lists(RECORD, min_size=0, max_size=20),
    st.sampled_from(["concatenated", "array", "ndjson"]),
    st.sampled_from(ENCODINGS[:1] * 6 + ENCODINGS),
)
# Shapes a mutation is unlikely to find by itself.
_SHAPES = st.one_of(
    st.integers(1, 300_000).map(lambda n: b"[" * n + b"]" * (n // 2)),
    st.integers(1, 100_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, GIANT).map(lambda n: b'{"email": "' + b"a" * n),
    st.integers(1, GIANT).map(lambda n: b'{"email": "a@b.cd", "x": "' + b"y" * n + b'"}\n'),
    st.integers(1, 5000).map(lambda n: b'{"email": "a@b.cd"}\n' * n),
    st.integers(1, GIANT).map(lambda n: b" " * n + b"{}"),
    st.integers(1, 5000).map(lambda n: b'{"email": ' + b"[" * n + b"]" * n + b"}\n"),
)
USERS_EXPORT = st.one_of(mutated(_PLAIN_EXPORT), _SHAPES, mutated(_SHAPES, 1))


# --- postcode zips ------------------------------------------------------------------------

_COLUMNS = [
    "pcds",
    "pcd",
    "pcd2",
    "laua",
    "lad23cd",
    "ctry",
    "rgn",
    "lat",
    "long",
    "dointr",
    "doterm",
    "objectid",
]
_POSTCODE = st.one_of(
    st.from_regex(r"[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}", fullmatch=True),
    st.sampled_from(["", " ", "GIR 0AA", "ab1 3qf"]),
    _TEXT,
)
_CODE = st.one_of(
    st.from_regex(r"[ENSWLM][0-9]{8}", fullmatch=True),
    st.sampled_from(["", "E99999999", "=1+1", "e06000001", "E0600000\x1b"]),
    _TEXT,
)
_CELL = st.one_of(_POSTCODE, _CODE, st.sampled_from(["54.5", "-1.2", "99.999999", "202001"]), _TEXT)


def _csv_text(header: list[str], rows: list[list[str]], quoting: int, newline: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


_HEADER = st.lists(st.sampled_from(_COLUMNS), min_size=1, max_size=8, unique=True).flatmap(
    lambda cols: st.sampled_from([cols, [c.upper() for c in cols], ["pcds", "laua", *cols]])
)
_CSV = st.builds(
    lambda header, rows, quoting, newline, encoding: _encode(
        _csv_text(header, [row[: len(header) + 1] for row in rows], quoting, newline), encoding
    ),
    _HEADER,
    st.lists(st.lists(_CELL, max_size=10), max_size=30),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(ENCODINGS[:1] * 8 + ENCODINGS),
)
_GSS = st.from_regex(r"[ENSW][0-9]{8}", fullmatch=True)
_VALID_ROW = st.tuples(
    st.from_regex(r"[A-Z]{1,2}[0-9][0-9A-Z]? [0-9][A-Z]{2}", fullmatch=True),
    _GSS,
    st.sampled_from(["", "E92000001", "S99999999"]),
    st.sampled_from(["54.5", "-1.2", "99.999999", "", "x"]),
).map(list)
_VALID_CSV = st.builds(
    lambda rows, newline, extra: _encode(
        _csv_text(
            ["pcds", "laua", "ctry", "lat", *extra],
            [r + [""] * len(extra) for r in rows],
            csv.QUOTE_MINIMAL,
            newline,
        ),
        "utf-8",
    ),
    st.lists(_VALID_ROW, min_size=1, max_size=40),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(st.sampled_from(["rgn", "long", "dointr", "doterm"]), max_size=4, unique=True),
)
_QUOTE_STORM = st.builds(
    lambda data, at, n: _insert(data, at, b'"' * n), _CSV, _FRACTION, st.integers(1, 5000)
)
_NAMES = st.builds(
    lambda rows, encoding: _encode(
        "LAD23CD,LAD23NM\n" + "".join(f"{c},{n}\n" for c, n in rows), encoding
    ),
    st.lists(st.tuples(_CODE, _TEXT), max_size=20),
    st.sampled_from(ENCODINGS),
)
_MEMBER_NAME = st.one_of(
    st.sampled_from(
        [
            "nspl.csv",
            "Data/NSPL_FEB_2024_UK.csv",
            "a.CSV",
            "__MACOSX/._nspl.csv",
            "Documents/LA_UA names and codes UK as at 04_23.csv",
            "dir/",
            "notes.txt",
        ]
    ),
    st.text(
        st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=20
    ).map(lambda name: name + ".csv"),
)
# Entries of every size: empty, tiny, around the reader's block and line limits, large.
_SIZED = st.sampled_from([0, 1, 2, 255, 4096, 262_143, 262_144, 262_145, 1_048_577, GIANT]).map(
    lambda n: (b"pcds,laua\n" + b"AB1 3QF,E06000001\n" * (n // 18 + 1))[:n]
)
_CONTENT = st.one_of(
    mutated(_CSV), _QUOTE_STORM, mutated(_NAMES, 1), _SIZED, st.binary(max_size=64)
)


def _zip(members: list[tuple[str, bytes]], method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, content in members:
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, content)
    return out.getvalue()


_ZIP = st.builds(
    _zip,
    st.lists(st.tuples(_MEMBER_NAME, _CONTENT), min_size=0, max_size=4),
    st.sampled_from(
        [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
    ),
)
_GOOD_ZIP = st.builds(
    lambda csv_bytes, names: _zip(
        [("nspl.csv", csv_bytes), *([("names.csv", names)] if names else [])],
        zipfile.ZIP_DEFLATED,
    ),
    st.one_of(_VALID_CSV, mutated(_VALID_CSV), mutated(_CSV)),
    st.one_of(st.none(), _NAMES),
)
LOOKUP_ZIP = st.one_of(_GOOD_ZIP, _ZIP, mutated(_GOOD_ZIP, 2))
