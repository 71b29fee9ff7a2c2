"""No suppressed cell can be worked out, to within K, from everything published with it.

The audit (tests/privacy/audit.py) is written apart from the suppression code: it bounds
every suppressed cell by linear programming over every relation an attacker knows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from evergreen_etl.privacy.disclosure import MinCount, NhsRule, NoDisclosureControl
from evergreen_etl.report import REPORTS, analysis
from evergreen_etl.report.publication import publish_all
from privacy.audit import Table, audit, hierarchy, narrow, table_of
from report.scenario import Warehouse

AFTER_LAST = datetime(2024, 4, 15)
DEMO_AS_OF = datetime(2024, 9, 1)


def publication(warehouse: Warehouse, rule: Any, as_of: datetime = AFTER_LAST) -> list[Table]:
    """Every report at ``as_of`` that is released together, under both boundary sets."""
    return [table_of(result) for result in publish_all(warehouse.engine, as_of, rule)]


def too_narrow(warehouse: Warehouse, rule: Any, width: int, as_of: datetime) -> list[Any]:
    """The suppressed cells an attacker can bound to an interval narrower than ``width``."""
    kind = "nhs" if rule.name == "nhs" else "min-count"
    intervals = audit(
        publication(warehouse, rule, as_of),
        publication(warehouse, NoDisclosureControl(), as_of),
        hierarchy(warehouse.engine),
        kind,
    )
    assert intervals, "some counts should be suppressed"
    return [(i.cell, i.low, i.high, i.true) for i in narrow(intervals, width)]


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_min_count_protects_the_scenario(scenario: Warehouse, k: int) -> None:
    """Under --min-count K, every suppressed cell of the scenario's reports, released
    together, can lie anywhere in an interval at least K wide."""
    assert too_narrow(scenario, MinCount(k), k, AFTER_LAST) == []


def test_nhs_rule_protects_the_scenario(scenario: Warehouse) -> None:
    """Under the NHS rule, every suppressed cell (1 to 7) can lie anywhere in an interval
    at least 8 wide, given every rounded count published with it."""
    assert too_narrow(scenario, NhsRule(), 8, AFTER_LAST) == []


@pytest.mark.parametrize("k", [3, 10])
def test_min_count_protects_the_demo(small_demo: Warehouse, k: int) -> None:
    """The same audit on the demo's generated data (hundreds of people, real geography)."""
    assert too_narrow(small_demo, MinCount(k), k, DEMO_AS_OF) == []


def test_nhs_rule_protects_the_demo(small_demo: Warehouse) -> None:
    """The NHS rule's audit on the demo's generated data."""
    assert too_narrow(small_demo, NhsRule(), 8, DEMO_AS_OF) == []


@pytest.mark.parametrize("rule", [MinCount(3), NhsRule()], ids=["min-count", "nhs"])
def test_each_report_alone_hides_what_the_publication_hides(scenario: Warehouse, rule: Any) -> None:
    """`report NAME` hides the same cells as the whole publication: reports asked for one by
    one put together give back nothing more than the publication."""
    together = {(t.name, t.boundaries): t for t in publication(scenario, rule)}
    for name, spec in REPORTS.items():
        if spec.period:
            continue
        for boundaries in ("supplied", "current") if spec.by_authority else (None,):
            alone = analysis(
                scenario.settings,
                name,
                as_of=AFTER_LAST,
                boundaries=boundaries,
                disclosure=rule,
                engine=scenario.engine,
            )
            assert table_of(alone) == together[(name, boundaries)], (name, boundaries)
