"""``python -m evergreen_etl``: the same as the ``evergreen-etl`` command."""

from evergreen_etl.cli import main

main()
