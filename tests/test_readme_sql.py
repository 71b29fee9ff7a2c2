"""The README's plain-SQL examples give exactly the command line's answers on the demo."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evergreen_etl.cli import app
from support.keys import TEST_KEY

README = Path(__file__).resolve().parents[1] / "README.md"
# Each view the README shows, and the report that answers the same question.
VIEW_REPORTS = {
    "v_users_by_local_authority": ["report"],
    "v_users_by_region": ["report", "region"],
    "v_users_by_country": ["report", "country"],
    "v_users_by_current_local_authority": ["report", "--boundaries", "current"],
}
_LITERAL = re.compile(r"'(\d{4}-\d\d-\d\d[^']*)'")


# The sections whose SQL is for "a plain SQL client" of either backend (the PostgreSQL section's
# role grants are PostgreSQL's own).
PLAIN_SQL_SECTIONS = ("The warehouse", "Analyses")


def _statements() -> list[str]:
    """Every SQL statement of the plain-SQL sections' ```sql blocks, comments taken out."""
    sections = README.read_text(encoding="utf-8").split("\n## ")
    text = "\n".join(part for part in sections if part.startswith(PLAIN_SQL_SECTIONS))
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    text = "\n".join(line.split("--")[0] for block in blocks for line in block.splitlines())
    return [" ".join(part.split()) for part in text.split(";") if part.strip()]


STATEMENTS = _statements()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's warehouse (three snapshots a quarter apart, from 2024-01-01)."""
    data = tmp_path_factory.mktemp("demo") / "data"
    result = CliRunner().invoke(
        app,
        ["demo", "--data-dir", str(data), "--users", "300", "--postcodes", "3000", "-q"],
        env={"EVERGREEN_PSEUDONYM_KEY": TEST_KEY},
    )
    assert result.exit_code == 0, result.output
    return data


def _sql(demo: Path, statement: str) -> list[dict[str, object]]:
    with sqlite3.connect(demo / "warehouse.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(statement)]


def _cli(demo: Path, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(demo), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def _counts(rows: list[dict[str, object]]) -> Counter[tuple[object, ...]]:
    return Counter(tuple(row.values()) for row in rows)


@pytest.mark.parametrize("statement", STATEMENTS)
def test_every_readme_statement_runs_on_sqlite(demo: Path, statement: str) -> None:
    """Each SQL statement in the README runs as written on the demo's SQLite warehouse."""
    _sql(demo, statement)


@pytest.mark.parametrize("view", sorted(VIEW_REPORTS))
def test_readme_views_match_the_reports(demo: Path, view: str) -> None:
    """Each view the README names gives the rows of the matching report, now."""
    (statement,) = [s for s in STATEMENTS if f"FROM {view} " in s + " " and "SELECT *" in s]

    assert _counts(_sql(demo, statement)) == _counts(_cli(demo, *VIEW_REPORTS[view]))


def _by_code(rows: list[dict[str, object]]) -> dict[object, object]:
    """``{code: users}`` from rows whose first value is a code and whose last is a count."""
    pairs = (tuple(row.values()) for row in rows)
    return {values[0]: values[-1] for values in pairs}


def test_readme_current_location_query_matches_the_headline(demo: Path) -> None:
    """Counting v_user_current_location by authority gives the headline report's counts."""
    (statement,) = [s for s in STATEMENTS if "FROM v_user_current_location" in s]

    assert _by_code(_sql(demo, statement)) == _by_code(_cli(demo, "report"))


def _past_date_statement() -> tuple[str, str]:
    """The README's past-date query and the time literal it uses."""
    (statement,) = [s for s in STATEMENTS if "FROM user_address" in s]
    (literal,) = set(_LITERAL.findall(statement))
    return statement, literal


def test_readme_past_date_query_matches_report_as_of(demo: Path) -> None:
    """The README's past-date query, as written, gives `report --as-of` at that date."""
    statement, literal = _past_date_statement()
    expected = _cli(demo, "report", "--as-of", literal[:10])

    assert _by_code(_sql(demo, statement)) == _by_code(expected)


@pytest.mark.parametrize("day", ["2024-01-01", "2024-02-15", "2024-04-01", "2024-07-01"])
def test_readme_past_date_query_matches_at_every_snapshot_date(demo: Path, day: str) -> None:
    """With the time written as the README says, snapshot dates themselves agree too."""
    statement, literal = _past_date_statement()
    moved = statement.replace(literal, day + literal[10:])

    assert _by_code(_sql(demo, moved)) == _by_code(_cli(demo, "report", "--as-of", day))
