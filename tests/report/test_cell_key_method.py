"""--disclosure ckm: the same users give the same figure, whatever report or date; no figure
is 1 or 2; a difference between two dates is not the true difference."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from evergreen_etl.privacy.ckm import MAX_NOISE, record_key
from evergreen_etl.privacy.disclosure import CellKeyMethod, MinCount, NoDisclosureControl
from evergreen_etl.report import analysis
from evergreen_etl.report.cellkey import AT_TIME
from report.scenario import Warehouse

CKM = CellKeyMethod()


def figures(warehouse: Warehouse, name: str, as_of: datetime, rule: Any = CKM) -> dict[Any, Any]:
    """Report ``name``'s published counts by row key, and its total under ``None``."""
    result = analysis(
        warehouse.settings, name, as_of=as_of, disclosure=rule, engine=warehouse.engine
    )
    key = result.columns[0]
    out: dict[Any, Any] = {getattr(row, key): row.users for row in result.rows}
    out[None] = result.totals["users"]
    return out


def test_every_user_has_the_record_key_of_their_pseudonym(scenario: Warehouse) -> None:
    """The load gives each user the record key derived from their pseudonym."""
    with scenario.engine.connect() as conn:
        users = conn.execute(text("SELECT pseudonym, record_key FROM dim_user")).all()
    assert users
    assert all(key == record_key(pseudonym) for pseudonym, key in users)


def test_the_same_users_give_the_same_figure_in_every_report(scenario: Warehouse) -> None:
    """The total of every report at one time is the same set of users: the same figure."""
    as_of = datetime(2024, 4, 15)
    totals = {name: figures(scenario, name, as_of)[None] for name in AT_TIME}
    assert len(set(totals.values())) == 1, totals


def test_the_same_users_give_the_same_figure_at_every_date(scenario: Warehouse) -> None:
    """Between two dates with no load in between, every figure is the same; and a cell whose
    users did not change (Darlington: erin from the first snapshot on) keeps its figure."""
    march, april = datetime(2024, 3, 15), datetime(2024, 3, 31, 23, 59)
    assert figures(scenario, "local-authority", march) == figures(
        scenario, "local-authority", april
    )
    darlington = {
        figures(scenario, "local-authority", datetime(2024, month, 15))["E06000005"]
        for month in (1, 2, 3, 4)
    }
    assert len(darlington) == 1


def test_no_one_or_two_is_ever_published(small_demo: Warehouse) -> None:
    """No count of any report at one time is published as 1 or 2, and each is within the
    table's noise of the truth."""
    as_of = datetime(2024, 9, 1)
    for name in AT_TIME:
        noisy = figures(small_demo, name, as_of)
        true = figures(small_demo, name, as_of, NoDisclosureControl())
        assert not set(noisy.values()) & {1, 2}, name
        assert all(abs(noisy[k] - true[k]) <= MAX_NOISE for k in true), name


def test_one_second_apart_around_a_load(small_demo: Warehouse) -> None:
    """Attack 4: the same cell one second before and at a load. Published as they are (here
    --min-count 1) the difference is exactly the users who joined, left or moved; under the
    cell key method it is not, and cells whose users did not change say nothing new."""
    load = datetime(2024, 7, 1)
    before, after = load - timedelta(seconds=1), load
    true_before = figures(small_demo, "local-authority", before, NoDisclosureControl())
    true_after = figures(small_demo, "local-authority", after, NoDisclosureControl())
    plain_before = figures(small_demo, "local-authority", before, MinCount(1))
    plain_after = figures(small_demo, "local-authority", after, MinCount(1))
    changed = [
        k
        for k in true_after
        if k is not None and k in true_before and true_after[k] != true_before[k]
    ]
    assert changed
    assert all(plain_after[k] - plain_before[k] == true_after[k] - true_before[k] for k in changed)
    noisy_before = figures(small_demo, "local-authority", before)
    noisy_after = figures(small_demo, "local-authority", after)
    wrong = [
        k for k in changed if noisy_after[k] - noisy_before[k] != true_after[k] - true_before[k]
    ]
    assert wrong, "the cell key method should blur some differences"
