"""The ``anonymise`` stage: raw users in, pseudonymised staged records and PII-free rejects out.

The stage itself is ``stage.py``; the staged-file contract it writes is
``evergreen_etl.datadir.staged``.
"""

from __future__ import annotations

from evergreen_etl.anonymise.stage import anonymise
from evergreen_etl.datadir.staged import STAGED_COLUMNS, read_staged_summary

__all__ = ["STAGED_COLUMNS", "anonymise", "read_staged_summary"]
