"""Fuzzed readers: any users export or postcode zip ends in success or a clean exit 3 or 4.

Each reader is fuzzed in its own process (``fuzz/harness.py``) under a 512 MB address-space
limit and a per-input time limit. The default profile runs a few hundred examples per
reader; ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``) runs thousands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# Read at import: the suite's autouse fixture clears EVERGREEN_* variables, not this one.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
TIMEOUT = 3 * 3600 if PROFILE == "fuzz" else 300


@pytest.mark.parametrize("reader", ["users", "lookup"])
def test_reader_survives_hostile_input(reader: str, tmp_path: Path) -> None:
    """Every fuzzed input of the reader succeeds or fails cleanly, within memory and time."""
    done = subprocess.run(
        [sys.executable, "-m", "fuzz.harness", reader],
        cwd=tmp_path,  # Hypothesis keeps its example database there
        env={**os.environ, "PYTHONPATH": str(TESTS), "HYPOTHESIS_PROFILE": PROFILE},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
