"""The attacks of issue 15, each tried on what the reports publish now: none works.

Each test first shows that the attack works on primary suppression alone (the cells the
rule hides by themselves, what was published before), then that it fails on what the
reports publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from typer.testing import CliRunner

from evergreen_etl.cli import app
from evergreen_etl.privacy.disclosure import MinCount, NoDisclosureControl
from evergreen_etl.report import analysis
from privacy.audit import LOCATIONS, hierarchy
from report.scenario import Warehouse

DEMO_AS_OF = datetime(2024, 9, 1)
K = 10


def report(warehouse: Warehouse, name: str, rule: Any, **options: Any) -> list[dict[str, Any]]:
    """The rows of report ``name`` at DEMO_AS_OF under ``rule``, with its totals as a row."""
    result = analysis(
        warehouse.settings,
        name,
        as_of=DEMO_AS_OF,
        disclosure=rule,
        engine=warehouse.engine,
        **options,
    )
    return [row.model_dump() for row in result.rows] + [{"total": True, **result.totals}]


def primary_only(
    true_rows: list[dict[str, Any]], columns: Iterable[str], k: int
) -> list[dict[str, Any]]:
    """What primary suppression alone publishes: every count below k hidden, nothing else."""
    return [
        {**row, **{c: None if row[c] is not None and row[c] < k else row[c] for c in columns}}
        for row in true_rows
    ]


def first_k(works: Callable[[int], bool]) -> int:
    """The smallest K at which the attack works on primary suppression alone."""
    k = next((k for k in range(2, 60) if works(k)), None)
    assert k is not None, "the attack should work on primary suppression alone for some K"
    return k


def recovered(
    whole: dict[str, Any], parts: list[dict[str, Any]], column: str = "users"
) -> int | None:
    """The attacker's arithmetic: a published whole minus its published parts gives the one
    hidden part back, when exactly one part is hidden."""
    hidden = [p for p in parts if p[column] is None]
    if whole[column] is None or len(hidden) != 1:
        return None
    return int(whole[column]) - sum(int(p[column]) for p in parts if p[column] is not None)


def attack(
    wholes: list[dict[str, Any]],
    parts: list[dict[str, Any]],
    belongs: Callable[[dict[str, Any], dict[str, Any]], bool],
) -> list[int]:
    """Every hidden count recovered as a whole minus its parts."""
    found = []
    for whole in wholes:
        value = recovered(whole, [p for p in parts if belongs(whole, p)])
        if value is not None and value > 0:
            found.append(value)
    return found


def test_a_total_below_k_is_suppressed(small_demo: Warehouse) -> None:
    """`report joiners-leavers --min-count K`: a total below K (the "returned" total of a few
    users) is suppressed, not published as it is."""
    truth = report(small_demo, "joiners-leavers", NoDisclosureControl())[-1]
    small = [c for c, v in truth.items() if c != "total" and v is not None and 0 < v < K]
    assert small, "the demo should have a total below K"
    published = report(small_demo, "joiners-leavers", MinCount(K))[-1]
    assert all(published[c] is None for c in small)


def test_a_total_minus_the_published_countries(small_demo: Warehouse) -> None:
    """`report country --min-count K`: the total minus the published countries no longer
    gives back a suppressed country."""
    truth = report(small_demo, "country", NoDisclosureControl())
    rows, total = truth[:-1], truth[-1]
    k = first_k(lambda k: recovered(total, primary_only(rows, ["users"], k)) is not None)
    published = report(small_demo, "country", MinCount(k))
    assert recovered(published[-1], published[:-1]) is None


def test_a_region_minus_its_published_authorities(small_demo: Warehouse) -> None:
    """A region's count minus its published authorities (two separate `report` runs) no
    longer gives back one suppressed authority."""
    region_of = {
        a["code"]: a["region_code"] or a["country_code"] or "UNKNOWN"
        for a in hierarchy(small_demo.engine)
    }

    def belongs(region: dict[str, Any], authority: dict[str, Any]) -> bool:
        return (
            "region_code" in region
            and region_of.get(authority.get("local_authority_code", ""), "UNKNOWN")
            == region["region_code"]
        )

    regions = report(small_demo, "region", NoDisclosureControl())[:-1]
    authorities = report(small_demo, "local-authority", NoDisclosureControl())[:-1]
    k = first_k(
        lambda k: bool(
            attack(
                primary_only(regions, ["users"], k),
                primary_only(authorities, ["users"], k),
                belongs,
            )
        )
    )
    rule = MinCount(k)
    after = attack(
        report(small_demo, "region", rule)[:-1],
        report(small_demo, "local-authority", rule)[:-1],
        belongs,
    )
    assert after == []


def test_sex_age_minus_the_headline(small_demo: Warehouse) -> None:
    """An authority's published users minus its published sex and age cells (`report` and
    `report sex-age`) no longer gives back a suppressed cell."""

    def belongs(authority: dict[str, Any], cell: dict[str, Any]) -> bool:
        return authority.get("local_authority_code") == cell.get("local_authority_code")

    authorities = report(small_demo, "local-authority", NoDisclosureControl())[:-1]
    cells = report(small_demo, "sex-age", NoDisclosureControl())[:-1]
    k = first_k(
        lambda k: bool(
            attack(
                primary_only(authorities, ["users"], k), primary_only(cells, ["users"], k), belongs
            )
        )
    )
    rule = MinCount(k)
    after = attack(
        report(small_demo, "local-authority", rule)[:-1],
        report(small_demo, "sex-age", rule)[:-1],
        belongs,
    )
    assert after == []


IDENTITIES = (
    ("records_read", ("rejected", "duplicates", "users_in_snapshot")),
    ("users_in_snapshot", LOCATIONS),
)


def data_quality_attack(rows: list[dict[str, Any]]) -> list[int]:
    """Counts recovered from data quality's identities: records read = rejected + duplicates
    + users in the snapshot, and users in the snapshot = the location counts."""
    found = []
    for row in rows:
        for whole, parts in IDENTITIES:
            as_rows = [{"users": row[p]} for p in parts]
            value = recovered({"users": row[whole]}, as_rows)
            if value is not None and value > 0:
                found.append(value)
    return found


def test_data_quality_identities(small_demo: Warehouse) -> None:
    """Inside `report data-quality`, the counts that add up to each other no longer give
    back a suppressed one."""
    columns = ("records_read", "rejected", "duplicates", "users_in_snapshot", *LOCATIONS)
    truth = report(small_demo, "data-quality", NoDisclosureControl())[:-1]
    k = first_k(lambda k: bool(data_quality_attack(primary_only(truth, columns, k))))
    assert data_quality_attack(report(small_demo, "data-quality", MinCount(k))[:-1]) == []


def test_the_cli_hides_the_small_returned_total(sqlite_scenario: Warehouse) -> None:
    """On the command line, the small "returned" total is printed as suppressed."""
    result = CliRunner().invoke(
        app,
        [
            "report",
            "joiners-leavers",
            "--min-count",
            "10",
            "--format",
            "table",
            "--database-url",
            str(sqlite_scenario.engine.url),
            "--data-dir",
            str(sqlite_scenario.settings.data_dir),
            "--as-of",
            "2024-04-15",
        ],
    )
    assert result.exit_code == 0, result.output
    total_line = next(line for line in result.stdout.splitlines() if "Total" in line)
    assert "suppressed" in total_line
