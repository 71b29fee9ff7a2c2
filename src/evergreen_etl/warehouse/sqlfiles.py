"""The package's SQL files: read ``<package>/sql/<name>.sql`` and fill in shared fragments.

The report and privacy queries are plain ``.sql`` files that analysts can read and run. SQL
that several of them share (the authority mapping, the age band) is written once, in
``warehouse/sql/fragments.sql``, and a query names it as ``{{ name }}``: :func:`read_sql`
returns the query with every fragment in place, :func:`sql_statement` the same without its
comment lines, ready for the driver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

__all__ = ["fragments", "read_sql", "sql_statement"]

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_FRAGMENT = re.compile(r"^-- fragment: (\w+)[ \t]*$", re.M)


def _package_text(*parts: str) -> str:
    return files("evergreen_etl").joinpath(*parts).read_text(encoding="utf-8")


@cache
def fragments() -> dict[str, str]:
    """Every shared fragment by name, from ``warehouse/sql/fragments.sql``."""
    pieces = _FRAGMENT.split(_package_text("warehouse", "sql", "fragments.sql"))
    # pieces: the file's header, then name, body, name, body, ...
    return {name: _code(body) for name, body in zip(pieces[1::2], pieces[2::2], strict=True)}


def _code(body: str) -> str:
    """A fragment's SQL: its text without the comment lines that document it first."""
    lines = body.strip("\n").splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines)


def _fill(sql: str, source: str, aliases: Mapping[str, str]) -> str:
    known = fragments()

    def replace(match: re.Match[str]) -> str:
        name = aliases.get(match[1], match[1])
        if name not in known:
            raise ValueError(f"{source} names an unknown SQL fragment '{name}'")
        # The fragment's later lines line up under its first, where the placeholder stood.
        column = match.start() - (sql.rfind("\n", 0, match.start()) + 1)
        return known[name].replace("\n", "\n" + " " * column)

    # A fragment may name another: fill until none is left (fragments do not name themselves).
    for _ in range(len(known) + 1):
        filled = _PLACEHOLDER.sub(replace, sql)
        if filled == sql:
            break
        sql = filled
    return sql


# Where a query names {{ counts }}: the users per authority code at :as_of from the address
# history (located_counts), or from the periodic-snapshot facts (snapshot_counts).
COUNTS = ("located_counts", "snapshot_counts")


@cache
def read_sql(package: str, name: str, counts: str = COUNTS[0]) -> str:
    """The text of ``evergreen_etl/<package>/sql/<name>.sql``, its fragments filled in
    (``{{ counts }}`` with the fragment ``counts`` names, one of ``COUNTS``)."""
    if counts not in COUNTS:
        raise ValueError(f"counts is one of {', '.join(COUNTS)}")
    text = _package_text(package, "sql", f"{name}.sql")
    return _fill(text, f"{package}/sql/{name}.sql", {"counts": counts})


def sql_statement(package: str, name: str, counts: str = COUNTS[0]) -> str:
    """:func:`read_sql` without comment lines: a comment may mention a ``:parameter``, which
    the driver would count as a placeholder."""
    return "\n".join(
        line
        for line in read_sql(package, name, counts).splitlines()
        if not line.lstrip().startswith("--")
    )
