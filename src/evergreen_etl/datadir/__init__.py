"""Everything under ``DATA_DIR``: the layout, durable writes, the manifest and the staged files.

Every stage finds its files through ``DataDir``; no other package spells a file name.
"""

from __future__ import annotations

from evergreen_etl.datadir.layout import DataDir

__all__ = ["DataDir"]
