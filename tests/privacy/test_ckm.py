"""The cell key method's perturbation table and record keys."""

from __future__ import annotations

import secrets

import pytest

from evergreen_etl.privacy.ckm import CELL_KEYS, MAX_NOISE, noise, perturb, record_key

COUNTS = range(0, 40)


@pytest.mark.parametrize("count", COUNTS)
def test_the_noise_averages_zero(count: int) -> None:
    """For every count, the noise over the 256 cell keys sums to exactly 0: unbiased."""
    assert sum(noise(count, key) for key in range(CELL_KEYS)) == 0


@pytest.mark.parametrize("count", COUNTS)
def test_the_noise_is_bounded(count: int) -> None:
    """No noise is larger than MAX_NOISE (3), and a figure never goes below 0."""
    for key in range(CELL_KEYS):
        assert abs(noise(count, key)) <= MAX_NOISE
        assert perturb(count, key) >= 0


@pytest.mark.parametrize("count", COUNTS)
def test_no_one_or_two_is_published(count: int) -> None:
    """Whatever the count and key, the published figure is never 1 or 2."""
    assert {perturb(count, key) for key in range(CELL_KEYS)}.isdisjoint({1, 2})


def test_zero_stays_zero() -> None:
    """An empty cell is published as 0 whatever its key."""
    assert {perturb(0, key) for key in range(CELL_KEYS)} == {0}


def test_large_counts_get_noise() -> None:
    """Counts of 5 and more are perturbed by -2 to +2, each value for some keys."""
    assert {noise(100, key) for key in range(CELL_KEYS)} == {-2, -1, 0, 1, 2}


def test_a_cell_key_outside_0_to_255_is_refused() -> None:
    """The table has 256 columns: a key outside them is a programming error."""
    with pytest.raises(ValueError, match="cell key"):
        noise(5, 256)


def test_record_keys_are_fixed_per_pseudonym() -> None:
    """The same pseudonym always gets the same record key, in 0..255."""
    pseudonym = secrets.token_hex(32)
    assert record_key(pseudonym) == record_key(pseudonym)
    assert 0 <= record_key(pseudonym) < CELL_KEYS


def test_record_keys_cover_every_value() -> None:
    """Over many pseudonyms, every record key from 0 to 255 occurs (they look uniform)."""
    keys = [record_key(secrets.token_hex(32)) for _ in range(6000)]
    assert set(keys) == set(range(CELL_KEYS))
    assert max(keys.count(k) for k in range(CELL_KEYS)) < 60
