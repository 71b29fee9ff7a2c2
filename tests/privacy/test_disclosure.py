"""Disclosure control: NHS England's rule and the simple minimum count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evergreen_etl.privacy.disclosure import (
    MinCount,
    NhsRule,
    NoDisclosureControl,
    disclosure_rule,
    round_to_nearest,
)

counts = st.integers(min_value=0, max_value=10_000_000)


@given(counts)
def test_nhs_never_publishes_one_to_seven(count: int) -> None:
    """No published cell lies between 1 and 7."""
    published = NhsRule().publish(count)
    assert published is None or not 1 <= published <= 7


@given(counts)
def test_nhs_publishes_zero_or_multiples_of_five(count: int) -> None:
    """Every published count except 0 is a multiple of 5, within 2 of the truth."""
    published = NhsRule().publish(count)
    if published is None:
        assert 1 <= count <= 7
    elif count == 0:
        assert published == 0
    else:
        assert published % 5 == 0
        assert abs(published - count) <= 2


@given(st.lists(counts, max_size=30))
def test_nhs_total_is_rounded_from_unrounded_values(cells: list[int]) -> None:
    """A total is computed from the true counts, then put through the rule."""
    rule = NhsRule()
    assert rule.publish_total(sum(cells)) == rule.publish(sum(cells))


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0), (1, None), (7, None), (8, 10), (12, 10), (13, 15), (17, 15), (18, 20), (100, 100)],
    ids=lambda v: str(v),
)
def test_nhs_rule_table(count: int, expected: int | None) -> None:
    """The rule on its boundaries."""
    assert NhsRule().publish(count) == expected


@pytest.mark.parametrize(("k", "count", "expected"), [(5, 4, None), (5, 5, 5), (1, 0, None)])
def test_min_count_suppresses_below_k(k: int, count: int, expected: int | None) -> None:
    """Counts below K are suppressed, K and above are published as they are."""
    assert MinCount(k).publish(count) == expected


def test_rule_selection() -> None:
    """--disclosure nhs wins over --min-count; neither gives the counts as they are."""
    assert isinstance(disclosure_rule("nhs", 10), NhsRule)
    assert disclosure_rule(None, 10) == MinCount(10)
    assert isinstance(disclosure_rule(None, None), NoDisclosureControl)


@given(st.integers(min_value=0, max_value=10**9))
def test_round_to_nearest_five(count: int) -> None:
    """Rounding gives the nearest multiple of 5."""
    rounded = round_to_nearest(count)
    assert rounded % 5 == 0
    assert abs(rounded - count) <= 2
