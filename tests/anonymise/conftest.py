"""Fixtures of the anonymise tests: no warehouse, just a data directory and the test key."""

from __future__ import annotations

from pathlib import Path

import pytest

from evergreen_etl.settings import Settings
from support.keys import TEST_KEY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fixed key and no reject-rate limit."""
    return Settings(data_dir=tmp_path / "data", pseudonym_key=TEST_KEY, max_reject_rate=1.0)
