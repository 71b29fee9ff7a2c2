"""Streaming the users export: three input forms, any chunking, exact lines, PII-free errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evergreen_etl.errors import SourceError
from evergreen_etl.sources.users import UsersReader
from support.sources import user, write_users

Style = Literal["concatenated", "array", "ndjson"]
STYLES: list[Style] = ["concatenated", "array", "ndjson"]

RECORDS: list[dict[str, Any]] = [
    user("jane.doe@example.com", "ab1 3qf", sex="Female"),
    user("JOHN@example.com ", None, sex=None, dateOfBirth="02/03/1970", extra={"a": [1, 2.5]}),
    {"email": "zoë@example.com", "givenName": "Zoë", "note": 'say "hi" \\ €😀', "ok": True},
    {"email": None, "address": None, "flags": [True, False, None], "n": -1.5e-3},
]

# Content that stresses chunk boundaries: escapes, surrogate-pair escapes, literals and raw
# multi-byte UTF-8 (two-, three- and four-byte characters).
TRICKY_TEXT = (
    '{"email": "é@example.com", "s": "a\\"b\\\\c\\u00e9\\ud83d\\ude00", "t": true, '
    '"f": false, "z": null, "n": -12.5e+3, "raw": "é€😀 ünïcödé"}\n'
    '{\n  "email": "second@example.com",\n  "list": [true, false, null, 0, "€"]\n}\n'
)
TRICKY_VALUES = [
    {
        "email": "é@example.com",
        "s": 'a"b\\cé😀',
        "t": True,
        "f": False,
        "z": None,
        "n": -12500.0,
        "raw": "é€😀 ünïcödé",
    },
    {"email": "second@example.com", "list": [True, False, None, 0, "€"]},
]


def _write(path: Path, records: list[Any], style: Style) -> Path:
    """Like support.sources.write_users, but with raw (not escaped) non-ASCII characters."""
    if style == "array":
        text = json.dumps(records, indent=2, ensure_ascii=False)
    elif style == "ndjson":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = "\n".join(json.dumps(r, indent=2, ensure_ascii=False) for r in records) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def _values(path: Path, chunk_size: int = 1 << 20) -> list[Any]:
    return [record.value for record in UsersReader(path, chunk_size=chunk_size)]


@pytest.mark.parametrize("style", STYLES)
def test_each_form_gives_the_same_records(tmp_path: Path, style: Style) -> None:
    """Concatenated objects, a JSON array and NDJSON of the same records read back equal."""
    path = write_users(tmp_path / "users.json", RECORDS, style=style)

    assert _values(path) == RECORDS


@pytest.mark.parametrize("style", STYLES)
def test_input_format_is_detected(tmp_path: Path, style: Style) -> None:
    """After iteration, input_format names the form the file was written in."""
    path = write_users(tmp_path / "users.json", RECORDS, style=style)
    reader = UsersReader(path)

    list(reader)

    assert reader.input_format == style


def test_positions_count_records_from_one(tmp_path: Path) -> None:
    """Records are numbered 1, 2, 3... in file order."""
    path = write_users(tmp_path / "users.json", RECORDS)

    assert [record.position for record in UsersReader(path)] == [1, 2, 3, 4]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64], ids=lambda size: f"chunk-{size}")
def test_small_chunks_give_identical_records(tmp_path: Path, style: Style, chunk_size: int) -> None:
    """Chunk boundaries anywhere (inside strings, escapes, literals, characters) change nothing."""
    path = _write(tmp_path / "users.json", RECORDS, style)
    reader = UsersReader(path, chunk_size=chunk_size)

    records = [(record.position, record.line, record.value) for record in reader]

    reference = [(record.position, record.line, record.value) for record in UsersReader(path)]
    assert records == reference
    assert reader.input_format == style


@pytest.mark.parametrize("chunk_size", range(1, 12), ids=lambda size: f"chunk-{size}")
def test_escapes_literals_and_multibyte_characters_survive_any_chunking(
    tmp_path: Path, chunk_size: int
) -> None:
    """Escapes, true/false/null and 2-4 byte UTF-8 characters read right at every split point."""
    path = tmp_path / "users.json"
    path.write_text(TRICKY_TEXT, encoding="utf-8")

    assert _values(path, chunk_size=chunk_size) == TRICKY_VALUES


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20], ids=lambda size: f"chunk-{size}")
def test_byte_order_mark_is_accepted(tmp_path: Path, style: Style, chunk_size: int) -> None:
    """A UTF-8 byte order mark at the start of the file is skipped, in every form."""
    path = _write(tmp_path / "users.json", RECORDS, style)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    reader = UsersReader(path, chunk_size=chunk_size)

    assert [record.value for record in reader] == RECORDS
    assert reader.input_format == style


LINES_TEXT = """{
  "email": "a@example.com",
  "n": 1
}
{
  "email": "b@example.com",
  "n": 2
}

{"email": "c@example.com", "n": 3}
   {"email": "d@example.com",
    "n": 4}
"""


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20], ids=lambda size: f"chunk-{size}")
def test_record_line_is_where_the_record_starts(tmp_path: Path, chunk_size: int) -> None:
    """Each record carries the 1-based line of its opening brace."""
    path = tmp_path / "users.json"
    path.write_text(LINES_TEXT)

    lines = [record.line for record in UsersReader(path, chunk_size=chunk_size)]

    assert lines == [1, 5, 10, 11]


def test_array_record_lines_follow_the_opening_bracket(tmp_path: Path) -> None:
    """In a pretty-printed array the first record starts on line 2."""
    path = tmp_path / "users.json"
    path.write_text('[\n  {"n": 1},\n  {\n    "n": 2\n  },\n\n  {"n": 3}\n]\n')

    assert [record.line for record in UsersReader(path)] == [2, 3, 7]


def test_crlf_line_endings_count_lines_once(tmp_path: Path) -> None:
    """Windows line endings give the same line numbers as Unix ones."""
    path = tmp_path / "users.json"
    path.write_bytes(LINES_TEXT.replace("\n", "\r\n").encode())

    assert [record.line for record in UsersReader(path)] == [1, 5, 10, 11]


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    """An empty (or blank) file yields nothing rather than failing."""
    path = tmp_path / "users.json"
    path.write_text(" \n\n")

    assert _values(path) == []


def test_single_five_megabyte_record_is_read(tmp_path: Path) -> None:
    """A record much larger than the read chunk is read whole."""
    big = {"email": "big@example.com", "blob": "x" * 5_000_000}
    path = write_users(tmp_path / "users.json", [big, user("next@example.com")])

    values = _values(path)

    assert values == [big, user("next@example.com")]


SECRET_EMAIL = "secret.person@example.com"

# (bytes, line the error names, what the message says)
ERRORS = [
    (b"hello\n", 1, "not JSON", "not-json"),
    (
        b'{"email": "a@example.com"}\n{\n  "email": "' + SECRET_EMAIL.encode() + b'",\n  "n": ',
        2,
        "truncated",
        "truncated-mid-object",
    ),
    (
        b'[\n  {"email": "a@example.com"},\n  {"email": "' + SECRET_EMAIL.encode() + b'"}',
        3,
        "array is not closed",
        "truncated-array",
    ),
    (
        b'{"n": 1}\n{"n": 2}\n{\n  "email": "' + SECRET_EMAIL.encode() + b'",\n  "n": 3,,\n}\n',
        5,
        "not valid JSON",
        "invalid-json-on-line-5",
    ),
    (
        b'{"n": 1}\n{"n": 2}\n\n{"email": "' + SECRET_EMAIL.encode() + b'\xff"}\n{"n": 5}\n',
        4,
        "not valid UTF-8",
        "non-utf8-on-line-4",
    ),
    (
        b'{"email": "' + SECRET_EMAIL.encode() + b'"} trailing words\n',
        1,
        "not JSON",
        "garbage-after-record",
    ),
    (
        b'[{"email": "' + SECRET_EMAIL.encode() + b'"}]\n\n{"n": 2}\n',
        3,
        "after the closing ']'",
        "content-after-array",
    ),
    (
        b'{"n": 1}\n{"email": "' + SECRET_EMAIL.encode() + b'", "n": ' + b"9" * 5000 + b"}\n",
        2,
        "number too long",
        "integer-beyond-python-limit",
    ),
]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [(content, line, message) for content, line, message, _ in ERRORS],
    ids=[rule_id for *_, rule_id in ERRORS],
)
def test_malformed_file_error_names_file_and_line(
    tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    """A malformed export raises SourceError naming the file, the line and the problem."""
    path = tmp_path / "users.json"
    path.write_bytes(content)

    with pytest.raises(SourceError) as caught:
        list(UsersReader(path))

    assert str(caught.value).startswith(f"users.json: line {line}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [content for content, *_ in ERRORS],
    ids=[rule_id for *_, rule_id in ERRORS],
)
@pytest.mark.parametrize("chunk_size", [7, 1 << 20], ids=lambda size: f"chunk-{size}")
def test_error_message_never_quotes_the_record(
    tmp_path: Path, content: bytes, chunk_size: int
) -> None:
    """Errors describe where and what, never the content (an email is personal data)."""
    path = tmp_path / "users.json"
    path.write_bytes(content)

    with pytest.raises(SourceError) as caught:
        list(UsersReader(path, chunk_size=chunk_size))

    assert SECRET_EMAIL not in str(caught.value)
    assert "secret" not in str(caught.value).lower()


def test_non_utf8_line_is_right_when_a_character_straddles_a_chunk_boundary(
    tmp_path: Path,
) -> None:
    """The bad byte's line is reported even when the character before it is split across reads."""
    path = tmp_path / "users.json"
    # Bytes 16-18 are the euro sign; with 6-byte reads the split falls inside it.
    path.write_bytes('{"a": 1}\n{"b": "€'.encode() + b'\xff\n"}\n')

    with pytest.raises(SourceError, match=r"^users\.json: line 2: not valid UTF-8"):
        list(UsersReader(path, chunk_size=6))


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    """A users file that does not exist raises SourceError naming it."""
    with pytest.raises(SourceError, match=r"nowhere\.json"):
        list(UsersReader(tmp_path / "nowhere.json"))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
records = st.lists(st.dictionaries(st.text(), json_values, max_size=5), max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    records=records,
    style=st.sampled_from(STYLES),
    chunk_size=st.one_of(st.integers(1, 16), st.just(1 << 20)),
)
def test_any_records_in_any_form_read_back_equal(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[dict[str, Any]],
    style: Style,
    chunk_size: int,
) -> None:
    """Any list of objects written in any of the three forms reads back equal, in order."""
    path = _write(tmp_path_factory.mktemp("users") / "users.json", records, style)

    read = list(UsersReader(path, chunk_size=chunk_size))

    assert [record.value for record in read] == records
    assert [record.position for record in read] == list(range(1, len(records) + 1))


@pytest.mark.parametrize("ending", ["", '"}\n'], ids=["never-ends", "ends-too-late"])
def test_a_record_over_the_limit_is_refused(tmp_path: Path, ending: str) -> None:
    """A record longer than the limit is refused naming its line, whether it ends or not."""
    path = tmp_path / "users.json"
    path.write_text('{"email": "a@example.com"}\n{"email": "' + "x" * 5000 + ending)

    reader = UsersReader(path, chunk_size=64, max_record_chars=1000)
    with pytest.raises(SourceError, match=r"users\.json: line 2: a record longer than 1,000"):
        list(reader)
