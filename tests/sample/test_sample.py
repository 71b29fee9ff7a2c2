"""The sample-data generator writes realistic, messy, deterministic sources in the real layouts."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from evergreen_etl.postcodes import PostcodeKind, normalise_postcode
from evergreen_etl.sample import (
    NAMES_MEMBER,
    NSPL_MEMBER,
    PostcodeSample,
    SampleResult,
    generate_sample,
    write_postcode_lookup,
)

EXPECTED_HEADER = (
    "X,Y,objectid,pcd,pcd2,pcds,dointr,doterm,usertype,oseast1m,osnrth1m,osgrdind,oa11,cty,laua,"
    "ward,hlthau,ctry,pcon,eer,teclec,ttwa,pct,nuts,park,lsoa11,msoa11,wz11,ccg,bua11,buasd11,"
    "ru11ind,oac11,lat,long,lep1,lep2,pfa,imd,ced,nhser,rgn,calncv,stp"
)
USERS = 2000
POSTCODES = 20000
PSEUDO_CODES = {"E99999999", "S99999999", "L99999999", "M99999999"}

Record = dict[str, Any]


def read_records(path: Path) -> list[Record]:
    """Parse a stream of concatenated JSON objects."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    records: list[Record] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return records
        record, position = decoder.raw_decode(text, position)
        records.append(record)


def read_lookup(path: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive, archive.open(NSPL_MEMBER) as raw:
        return list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))


def email_key(record: Record) -> str | None:
    email = record.get("email")
    return email.strip().lower() if isinstance(email, str) else None


def raw_postcode(record: Record) -> Any:
    address = record.get("address")
    return address.get("postcode") if isinstance(address, dict) else None


def postcode_of(record: Record) -> str | None:
    return normalise_postcode(raw_postcode(record))[0]


def last_postcode_by_email(records: list[Record]) -> dict[str, str | None]:
    """Each valid email's postcode, the last record winning (as the warehouse resolves it)."""
    return {
        key: postcode_of(record)
        for record in records
        if (key := email_key(record)) is not None and key.endswith("@example.com")
    }


def authority_names() -> list[str]:
    table = files("evergreen_etl") / "reference" / "local_authorities.csv"
    rows = csv.DictReader(io.StringIO(table.read_text(encoding="utf-8")))
    return [row["LADNM"].lower() for row in rows]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleResult:
    return generate_sample(
        tmp_path_factory.mktemp("sample"),
        users=USERS,
        postcodes=POSTCODES,
        snapshots=3,
        macos_junk=True,
    )


@pytest.fixture(scope="module")
def lookup_rows(sample: SampleResult) -> list[dict[str, str]]:
    return read_lookup(sample.postcodes_path)


@pytest.fixture(scope="module")
def snapshots(sample: SampleResult) -> list[list[Record]]:
    return [read_records(path) for path in sample.users_paths]


@pytest.fixture(scope="module")
def first(snapshots: list[list[Record]]) -> list[Record]:
    return snapshots[0]


def all_files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


# --- determinism and layout -------------------------------------------------------------------


def test_same_seed_gives_same_bytes(tmp_path: Path) -> None:
    """Two runs with the same seed write byte-identical files."""
    generate_sample(tmp_path / "a", users=300, postcodes=2000, snapshots=2, seed=7)
    generate_sample(tmp_path / "b", users=300, postcodes=2000, snapshots=2, seed=7)
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    """Another seed gives other postcodes and other users."""
    generate_sample(tmp_path / "a", users=300, postcodes=2000, seed=7)
    generate_sample(tmp_path / "b", users=300, postcodes=2000, seed=8)
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert a["postcodes.zip"] != b["postcodes.zip"]
    assert a["users.json"] != b["users.json"]


def test_result_names_the_files_and_counts(sample: SampleResult) -> None:
    """The result names postcodes.zip, users.json, users-2.json... and counts what was written."""
    directory = sample.postcodes_path.parent
    assert sample.postcodes_path == directory / "postcodes.zip"
    assert sample.users_paths == [
        directory / "users.json",
        directory / "users-2.json",
        directory / "users-3.json",
    ]
    assert sample.postcodes == POSTCODES
    assert sample.users == USERS


def test_users_count_is_distinct_people_in_first_snapshot(first: list[Record]) -> None:
    """Every person of the first snapshot has a record; duplicates do not add people."""
    people = {email_key(r) for r in first if email_key(r)}
    assert 0.97 * USERS <= len(people) <= USERS


def test_lookup_csv_has_the_exact_nspl_header(sample: SampleResult) -> None:
    """The centroid CSV starts with the real 44-column NSPL header."""
    with zipfile.ZipFile(sample.postcodes_path) as archive, archive.open(NSPL_MEMBER) as raw:
        header = raw.readline().decode("utf-8").rstrip("\r\n")
    assert header == EXPECTED_HEADER
    assert len(header.split(",")) == 44


def test_lookup_has_one_row_per_requested_postcode(lookup_rows: list[dict[str, str]]) -> None:
    """The CSV holds exactly the requested number of distinct postcodes, every row complete."""
    assert len(lookup_rows) == POSTCODES
    assert len({row["pcds"] for row in lookup_rows}) == POSTCODES
    assert all(None not in row and len(row) == 44 for row in lookup_rows)


def test_zip_has_names_member_listing_the_codes_used(
    sample: SampleResult, lookup_rows: list[dict[str, str]]
) -> None:
    """The Documents/ names lookup names every real authority code of the CSV."""
    with zipfile.ZipFile(sample.postcodes_path) as archive, archive.open(NAMES_MEMBER) as raw:
        names = list(csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))
    assert names[0] == ["LAD23CD", "LAD23NM", "LAD23NMW"]
    named = {row[0] for row in names[1:] if row[1]}
    used = {row["laua"] for row in lookup_rows} - PSEUDO_CODES
    assert used == named


def test_macos_junk_only_when_asked(tmp_path: Path, sample: SampleResult) -> None:
    """__MACOSX/._* entries are added only with macos_junk=True."""
    with zipfile.ZipFile(sample.postcodes_path) as archive:
        assert f"__MACOSX/._{NSPL_MEMBER}" in archive.namelist()
    write_postcode_lookup(tmp_path / "plain.zip", postcodes=200, seed=1)
    with zipfile.ZipFile(tmp_path / "plain.zip") as archive:
        assert archive.namelist() == [NSPL_MEMBER, NAMES_MEMBER]


def test_lookup_is_deflated(sample: SampleResult) -> None:
    """The CSV member is deflate-compressed, as the real zip is."""
    with zipfile.ZipFile(sample.postcodes_path) as archive:
        assert archive.getinfo(NSPL_MEMBER).compress_type == zipfile.ZIP_DEFLATED


# --- lookup values ------------------------------------------------------------------------------


def test_postcode_forms_follow_nspl(lookup_rows: list[dict[str, str]]) -> None:
    """pcd is 7 characters, pcd2 8, pcds canonical with one space; all spell one postcode."""
    for row in lookup_rows:
        outward, inward = row["pcds"].split(" ")
        assert row["pcd"] == f"{outward:<4}{inward}"
        assert row["pcd2"] == f"{outward:<4} {inward}"
        assert len(row["pcd"]) == 7
        assert len(row["pcd2"]) == 8
        assert normalise_postcode(row["pcds"]) == (row["pcds"], PostcodeKind.FULL)


def test_about_one_in_ten_postcodes_terminated(lookup_rows: list[dict[str, str]]) -> None:
    """dointr/doterm are YYYYMM, doterm empty while live, about 10% terminated."""
    month = re.compile(r"^(19[89]\d|20[0-2]\d)(0[1-9]|1[0-2])$")
    terminated = [row for row in lookup_rows if row["doterm"]]
    assert 0.07 <= len(terminated) / len(lookup_rows) <= 0.13
    assert all(month.match(row["dointr"]) for row in lookup_rows)
    assert all(month.match(row["doterm"]) for row in terminated)
    assert all(row["doterm"] > row["dointr"] for row in terminated)


def test_authorities_are_current_with_matching_country_and_region(
    lookup_rows: list[dict[str, str]],
) -> None:
    """laua is a current district code, and ctry/rgn are that district's."""
    table = files("evergreen_etl") / "reference" / "local_authorities.csv"
    current = {
        row["LADCD"]: row
        for row in csv.DictReader(io.StringIO(table.read_text(encoding="utf-8")))
        if row["Current"] == "TRUE"
    }
    real = [row for row in lookup_rows if row["laua"] not in PSEUDO_CODES]
    assert len({row["laua"] for row in real}) > 150
    for row in real:
        authority = current[row["laua"]]
        assert row["ctry"] == authority["CTRYCD"]
        assert row["rgn"] == (authority["RGNCD"] or f"{row['laua'][0]}99999999")


def test_pseudo_code_and_crown_dependency_rows_present(lookup_rows: list[dict[str, str]]) -> None:
    """Some rows carry E/S99999999, the Channel Islands L99999999 and the Isle of Man M99999999."""
    by_code = defaultdict(set)
    for row in lookup_rows:
        by_code[row["laua"]].add(row["pcds"][:2])
    assert by_code["E99999999"] or by_code["S99999999"]
    assert by_code["L99999999"] == {"GY", "JE"}
    assert by_code["M99999999"] == {"IM"}


def test_grid_references_keep_leading_zeros(lookup_rows: list[dict[str, str]]) -> None:
    """osnrth1m is zero-padded to 7 digits (or empty without a grid reference)."""
    northings = [row["osnrth1m"] for row in lookup_rows if row["osnrth1m"]]
    assert all(re.fullmatch(r"\d{7}", value) for value in northings)
    assert any(value.startswith("0") for value in northings)


def test_coordinates_are_in_the_british_isles(lookup_rows: list[dict[str, str]]) -> None:
    """lat/long are UK values, except NSPL's 99.999999/0 for a postcode with no grid reference."""
    for row in lookup_rows:
        if row["lat"] == "99.999999":
            assert row["long"] == "0.000000"
            continue
        assert 49.0 <= float(row["lat"]) <= 61.0
        assert -8.7 <= float(row["long"]) <= 2.0
        assert (row["X"], row["Y"]) == (row["long"], row["lat"])


def live_authorities_by_district(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    districts: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if not row["doterm"]:
            districts[row["pcds"].split(" ")[0]].add(row["laua"])
    return districts


def test_most_districts_lie_in_one_authority_some_straddle_two(
    lookup_rows: list[dict[str, str]],
) -> None:
    """About 10% of districts have live postcodes in two authorities; the rest in one."""
    sizes = Counter(len(codes) for codes in live_authorities_by_district(lookup_rows).values())
    assert set(sizes) == {1, 2}
    assert 0.06 <= sizes[2] / sum(sizes.values()) <= 0.14


def test_some_districts_have_a_terminated_postcode_elsewhere(
    lookup_rows: list[dict[str, str]],
) -> None:
    """A few single-authority districts have a terminated postcode in another authority."""
    live = live_authorities_by_district(lookup_rows)
    stale = {
        row["pcds"].split(" ")[0]
        for row in lookup_rows
        if row["doterm"] and row["laua"] not in PSEUDO_CODES
        for district in [row["pcds"].split(" ")[0]]
        if len(live[district]) == 1 and row["laua"] not in live[district]
    }
    assert stale


def test_returned_districts_describe_the_file(
    tmp_path: Path,
) -> None:
    """The returned districts carry the file's live authorities and postcodes."""
    lookup: PostcodeSample = write_postcode_lookup(tmp_path / "p.zip", postcodes=3000, seed=3)
    rows = read_lookup(tmp_path / "p.zip")
    live = {row["pcds"]: row["laua"] for row in rows if not row["doterm"]}
    terminated = {row["pcds"] for row in rows if row["doterm"]}
    expected = live_authorities_by_district(rows)
    assert lookup.rows == len(rows)
    assert {d.outward for d in lookup.districts} == set(expected)
    for district in lookup.districts:
        assert set(district.authorities) == expected[district.outward]
        assert set(district.live) <= set(live)
        assert set(district.terminated) <= terminated
    assert lookup.straddling()


# --- users.json ---------------------------------------------------------------------------------


def test_users_file_is_a_stream_of_pretty_printed_objects(sample: SampleResult) -> None:
    """Records are json.dumps(record, indent=2) one after another, not a JSON array."""
    text = sample.users_paths[0].read_text(encoding="utf-8")
    records = read_records(sample.users_paths[0])
    assert text.startswith("{\n")
    assert text == "\n".join(json.dumps(record, indent=2) for record in records) + "\n"


def test_about_one_in_six_postcodes_are_outward_codes_only(first: list[Record]) -> None:
    """Roughly one record in six gives only the outward code."""
    kinds = Counter(normalise_postcode(raw_postcode(record))[1] for record in first)
    assert 0.13 <= kinds[PostcodeKind.PARTIAL] / len(first) <= 0.20


def test_exact_duplicates_about_three_percent(first: list[Record]) -> None:
    """About 3% of records repeat an earlier record exactly."""
    texts = Counter(json.dumps(record, sort_keys=True) for record in first)
    repeats = sum(count - 1 for count in texts.values())
    assert 0.015 <= repeats / USERS <= 0.045


def test_same_email_with_two_addresses_about_one_percent(first: list[Record]) -> None:
    """About 1% of people appear twice in one snapshot with different postcodes."""
    postcodes: dict[str, set[str | None]] = defaultdict(set)
    for record in first:
        if (key := email_key(record)) is not None:
            postcodes[key].add(postcode_of(record))
    conflicting = sum(1 for found in postcodes.values() if len(found) > 1)
    assert 0.004 <= conflicting / USERS <= 0.02


def test_invalid_or_missing_emails_about_two_percent(first: list[Record]) -> None:
    """About 2% of records have no email or one that is not an address."""
    bad = [
        r
        for r in first
        if not isinstance(r.get("email"), str)
        or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", r["email"].strip())
    ]
    assert 0.01 <= len(bad) / len(first) <= 0.035


def test_postcodes_come_from_the_lookup(
    first: list[Record], lookup_rows: list[dict[str, str]]
) -> None:
    """Full postcodes are mostly in the lookup (some terminated), about 1% well-formed but not."""
    live = {row["pcds"] for row in lookup_rows if not row["doterm"]}
    terminated = {row["pcds"] for row in lookup_rows if row["doterm"]}
    full = [pc for r in first if (pc := postcode_of(r)) is not None and " " in pc]
    in_live = sum(pc in live for pc in full)
    in_terminated = sum(pc in terminated for pc in full)
    unmatched = len(full) - in_live - in_terminated
    assert in_terminated > 0
    assert 0.004 <= unmatched / len(first) <= 0.02
    assert in_live / len(full) > 0.9


def test_partial_postcodes_are_districts_of_the_lookup(
    first: list[Record], lookup_rows: list[dict[str, str]]
) -> None:
    """An outward code alone names a district the lookup has."""
    districts = {row["pcds"].split(" ")[0] for row in lookup_rows}
    partial = {
        value
        for r in first
        for value, kind in [normalise_postcode(raw_postcode(r))]
        if kind is PostcodeKind.PARTIAL
    }
    assert partial
    assert partial <= districts


def has_address(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[Record], bool]:
    return lambda r: isinstance(r.get("address"), dict) and predicate(r["address"])


def postcode_text(predicate: Callable[[str], bool]) -> Callable[[Record], bool]:
    return lambda r: isinstance(raw_postcode(r), str) and predicate(raw_postcode(r))


def email_text(predicate: Callable[[str], bool]) -> Callable[[Record], bool]:
    return lambda r: isinstance(r.get("email"), str) and predicate(r["email"])


MESS: dict[str, Callable[[Record], bool]] = {
    "email-upper-case": email_text(lambda e: e.strip() != e.strip().lower()),
    "email-surrounding-spaces": email_text(lambda e: e != e.strip()),
    "email-missing": lambda r: "email" not in r,
    "email-without-domain": email_text(lambda e: e.strip().endswith("@")),
    "email-without-at": email_text(lambda e: "@" not in e),
    **{
        f"sex-{value or 'empty'}": (lambda r, v=value: r.get("sex") == v)
        for value in ("Male", "M", "m", "Female", "F", "f", "Other", "Prefer not to say", "")
    },
    "sex-missing-with-names": lambda r: "sex" not in r and "givenName" in r,
    "sex-names-and-birth-missing": lambda r: not {"sex", "givenName", "dateOfBirth"} & set(r),
    "birth-iso": lambda r: bool(re.fullmatch(r"\d{4}-\d\d-\d\d", r.get("dateOfBirth", ""))),
    "birth-day-first": lambda r: bool(re.fullmatch(r"\d\d/\d\d/\d{4}", r.get("dateOfBirth", ""))),
    "birth-impossible": lambda r: r.get("dateOfBirth") == "31/02/1990",
    "birth-unknown": lambda r: r.get("dateOfBirth") == "unknown",
    "postcode-lower-case": postcode_text(lambda p: p != p.upper()),
    "postcode-no-space": postcode_text(lambda p: bool(re.fullmatch(r"[A-Z0-9]{5,7}", p))),
    "postcode-double-space": postcode_text(lambda p: "  " in p.strip()),
    "postcode-stray-spaces": postcode_text(lambda p: p != p.strip()),
    "postcode-outward-with-trailing-space": postcode_text(
        lambda p: bool(re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? ", p))
    ),
    "postcode-invalid": postcode_text(lambda p: p in ("NOT KNOWN", "12345")),
    "postcode-unmatched": postcode_text(lambda p: p.startswith("ZZ")),
    "address-empty": lambda r: r.get("address", None) == {},
    "address-null": lambda r: "address" in r and r["address"] is None,
    "address-missing": lambda r: "address" not in r,
    "street-absent": has_address(lambda a: "postcode" in a and "street" not in a),
    "street-without-postcode": has_address(lambda a: "street" in a and "postcode" not in a),
    "extra-marketing-opt-in": lambda r: isinstance(r.get("marketingOptIn"), bool),
    "extra-tags": lambda r: isinstance(r.get("tags"), list),
    "non-ascii-name": lambda r: any(ord(ch) > 127 for ch in r.get("givenName", "")),
}


@pytest.mark.parametrize("predicate", MESS.values(), ids=MESS.keys())
def test_sample_has_each_kind_of_mess(
    first: list[Record], predicate: Callable[[Record], bool]
) -> None:
    """A 2000-user sample holds at least one record of every known kind of mess."""
    assert any(predicate(record) for record in first)


def test_streets_always_have_a_house_number(first: list[Record]) -> None:
    """A street is a house number, a distinctive name and a kind ("14 Larkspur Mews")."""
    streets = [r["address"]["street"] for r in first if has_address(lambda a: "street" in a)(r)]
    assert streets
    assert all(re.fullmatch(r"\d{1,3} [A-Z][a-z]+ [A-Z][a-z]+", street) for street in streets)


def test_names_and_streets_are_distinctive(snapshots: list[list[Record]]) -> None:
    """Names and street names have 5+ characters and occur in no local-authority name."""
    names = authority_names()
    words: set[str] = set()
    for record in (r for snapshot in snapshots for r in snapshot):
        words.update(record[key] for key in ("givenName", "familyName") if key in record)
        if has_address(lambda a: "street" in a)(record):
            words.add(record["address"]["street"].split(" ")[1])
    assert len(words) > 150
    for word in words:
        assert len(word) >= 5, word
        assert not any(word.lower() in name for name in names), word


def test_each_email_belongs_to_one_person(snapshots: list[list[Record]]) -> None:
    """An email, modulo case and spaces, always comes with the same names, in every snapshot."""
    names: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in (r for snapshot in snapshots for r in snapshot):
        if (key := email_key(record)) is not None and "givenName" in record:
            names[key].add((record["givenName"], record["familyName"]))
    assert all(len(found) == 1 for found in names.values())


def test_email_spelling_varies_between_snapshots(snapshots: list[list[Record]]) -> None:
    """The same person's email is spelt differently (case, spaces) in another snapshot."""
    spellings: dict[str, set[str]] = defaultdict(set)
    for record in (r for snapshot in snapshots for r in snapshot):
        if (key := email_key(record)) is not None:
            spellings[key].add(record["email"])
    assert sum(len(found) > 1 for found in spellings.values()) > 0.1 * USERS


def test_snapshot_changes_within_expected_ranges(snapshots: list[list[Record]]) -> None:
    """From one snapshot to the next ~3% leave, ~2% join and ~7% of those who stay move."""
    before = last_postcode_by_email(snapshots[0])
    after = last_postcode_by_email(snapshots[1])
    stayed = before.keys() & after.keys()
    left = len(before.keys() - after.keys()) / len(before)
    joined = len(after.keys() - before.keys()) / len(before)
    located = [key for key in stayed if before[key] is not None]
    moved = sum(before[key] != after[key] for key in located) / len(located)
    assert 0.015 <= left <= 0.045
    assert 0.01 <= joined <= 0.035
    assert 0.045 <= moved <= 0.10


def test_some_people_who_left_come_back(snapshots: list[list[Record]]) -> None:
    """A few people absent from one snapshot reappear in the next."""
    first, second, third = (last_postcode_by_email(s).keys() for s in snapshots)
    assert (first - second) & third


def test_some_movers_return_to_an_earlier_postcode(tmp_path: Path) -> None:
    """Over several snapshots, some people move back to where they lived before."""
    result = generate_sample(tmp_path, users=1000, postcodes=2000, snapshots=5, seed=5)
    history: dict[str, list[str | None]] = defaultdict(list)
    for path in result.users_paths:
        for key, postcode in last_postcode_by_email(read_records(path)).items():
            if not history[key] or history[key][-1] != postcode:
                history[key].append(postcode)
    assert any(len(h) > 2 and h[-1] in h[:-2] for h in history.values())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"postcodes": 10}, "postcodes"),
        ({"users": -1}, "users"),
        ({"snapshots": 0}, "snapshots"),
    ],
    ids=["too-few-postcodes", "negative-users", "no-snapshots"],
)
def test_rejects_impossible_arguments(
    tmp_path: Path, arguments: dict[str, int], message: str
) -> None:
    """Arguments that cannot give a sample fail with a message naming the argument."""
    with pytest.raises(ValueError, match=message):
        generate_sample(tmp_path, **{"users": 10, "postcodes": 200, **arguments})


def _person_number(key: str) -> int:
    """The person's number in an email's local part ("given.family.17@example.com" -> 17)."""
    return int(key.split("@", 1)[0].rsplit(".", 1)[1])


def test_people_made_in_blocks_keep_one_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across blocks and snapshots each person keeps a number and names; joiners come after."""
    monkeypatch.setattr("evergreen_etl.sample.users.BLOCK_PEOPLE", 300)
    result = generate_sample(tmp_path, users=2000, postcodes=4000, snapshots=3, seed=3)
    snapshots = [read_records(path) for path in result.users_paths]
    names: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for record in (r for snapshot in snapshots for r in snapshot):
        key = email_key(record)
        if key is not None and key.endswith("@example.com") and "givenName" in record:
            names[_person_number(key)].add((record["givenName"], record["familyName"]))
    first = {_person_number(key) for key in last_postcode_by_email(snapshots[0])}
    joiners = {_person_number(key) for key in last_postcode_by_email(snapshots[2])} - first

    assert all(len(found) == 1 for found in names.values())
    assert max(first) <= 2000 < min(joiners)
    assert 0.02 * 2000 <= len(joiners) <= 0.08 * 2000


def test_changes_follow_the_rates_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """People made a block at a time move, leave and join at the same rates as in one block."""
    monkeypatch.setattr("evergreen_etl.sample.users.BLOCK_PEOPLE", 250)
    result = generate_sample(tmp_path, users=2000, postcodes=4000, snapshots=2, seed=9)
    before, after = (last_postcode_by_email(read_records(p)) for p in result.users_paths)
    stayed = before.keys() & after.keys()
    located = [key for key in stayed if before[key] is not None]

    assert 0.015 <= len(before.keys() - after.keys()) / len(before) <= 0.045
    assert 0.01 <= len(after.keys() - before.keys()) / len(before) <= 0.035
    assert 0.045 <= sum(before[k] != after[k] for k in located) / len(located) <= 0.10
