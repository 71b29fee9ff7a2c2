"""What a load did (or, for a dry run, would do) to the users: a report like every other."""

from __future__ import annotations

from evergreen_etl.models import Analysis, AnalysisRow, LoadResult

# The counts of a merge, in order. A count this build does not compute (relocation by a new
# lookup, late snapshots replayed) reads as zero.
CHANGES = ("new", "returned", "moved", "left", "unchanged", "relocated", "replayed")


class LoadCount(AnalysisRow):
    """How many users one kind of change touched."""

    change: str
    users: int


def load_counts(result: LoadResult) -> Analysis[LoadCount]:
    """The counts of ``result`` as a report, for the reports' renderer (``render``)."""
    values = result.model_dump()
    what = "Dry run" if result.dry_run else "Load"
    if result.skipped:
        note = "This snapshot is already loaded: nothing to merge."
    elif result.dry_run:
        note = "Nothing was changed: the load was rolled back."
    else:
        note = None
    return Analysis[LoadCount](
        name="load-counts",
        title=f"{what}: the snapshot as of {result.as_of:%Y-%m-%d %H:%M:%S} UTC",
        as_of=result.as_of,
        columns=("change", "users"),
        counts=("users",),
        rows=[LoadCount(change=change, users=int(values.get(change) or 0)) for change in CHANGES],
        totals={},
        note=note,
    )
