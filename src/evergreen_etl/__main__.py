"""``python -m evergreen_etl``: the same as the ``evergreen-etl`` command."""

from evergreen_etl.entry import main

main()
