"""The whole job: ``run`` (extract, anonymise, load, report) and ``demo`` on generated data."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from evergreen_etl.anonymise import anonymise
from evergreen_etl.datadir.lock import holding_data_dir
from evergreen_etl.datadir.modes import private_umask
from evergreen_etl.extract import extract
from evergreen_etl.failpoints import failpoint
from evergreen_etl.load import load
from evergreen_etl.logs import current_run_id, new_run_id, timed_stage
from evergreen_etl.models import RunResult
from evergreen_etl.privacy.disclosure import NO_DISCLOSURE_CONTROL, DisclosureRule
from evergreen_etl.report import report
from evergreen_etl.settings import Settings
from evergreen_etl.times import to_utc_naive
from evergreen_etl.warehouse.guards import check_not_future
from evergreen_etl.warehouse.scd2 import AbsentPolicy

log = logging.getLogger("evergreen_etl.pipeline")

DEMO_FIRST_SNAPSHOT = datetime(2024, 1, 1)
DEMO_SNAPSHOT_INTERVAL = timedelta(days=91)


@holding_data_dir
def run(
    settings: Settings,
    *,
    as_of: datetime | None = None,
    absent: AbsentPolicy = "close",
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    max_reject_rate: float | None = None,
    auto_upgrade: bool = True,
    coarsen: bool = False,
    progress: bool = True,
    dry_run: bool = False,
    max_left_rate: float | None = None,
    allow_future: bool = False,
    replace: bool = False,
) -> RunResult:
    """Run every stage in order on the configured sources; return each stage's result.

    The stages run under the data directory's lock (``holding_data_dir``): a second run on
    the same directory waits for this one to end. With ``dry_run`` the load is computed and
    rolled back, and there is no report. ``replace`` loads a different snapshot at a time
    already loaded as its correction.
    """
    if as_of is not None:  # before anything is fetched
        check_not_future(to_utc_naive(as_of), what="--as-of", allow_future=allow_future)
    run_id = current_run_id() or new_run_id()
    with timed_stage("extract", run_id) as out:
        extracted = extract(settings, progress=progress)
        out.append(extracted)
    with timed_stage("anonymise", run_id) as out:
        anonymised = anonymise(settings, max_reject_rate=max_reject_rate, progress=progress)
        out.append(anonymised)
    failpoint("run.anonymised")
    with timed_stage("load", run_id) as out:
        loaded = load(
            settings,
            as_of=as_of,
            absent=absent,
            auto_upgrade=auto_upgrade,
            coarsen=coarsen,
            progress=progress,
            replace=replace,
            dry_run=dry_run,
            max_left_rate=max_left_rate,
            allow_future=allow_future,
        )
        out.append(loaded)
    if dry_run:
        return RunResult(extract=extracted, anonymise=anonymised, load=loaded, report=None)
    with timed_stage("report", run_id) as out:
        reported = report(settings, disclosure=disclosure)
        out.append(reported)
    return RunResult(extract=extracted, anonymise=anonymised, load=loaded, report=reported)


def demo(
    settings: Settings,
    *,
    users: int = 2000,
    postcodes: int = 20000,
    snapshots: int = 3,
    seed: int = 42,
    disclosure: DisclosureRule = NO_DISCLOSURE_CONTROL,
    progress: bool = True,
) -> list[RunResult]:
    """Generate sample sources under ``DATA_DIR/raw/sample`` and run the job on each snapshot.

    Snapshot k is loaded as of 2024-01-01 plus k quarters, so the history has moves,
    leavers and joiners to look at with ``report --as-of``.
    """
    from evergreen_etl.sample import generate_sample

    sample_dir = settings.data.sample
    with private_umask():  # sample users are made up, but kept like real ones
        sample = generate_sample(
            sample_dir, users=users, postcodes=postcodes, snapshots=snapshots, seed=seed
        )
    results = []
    for k, users_path in enumerate(sample.users_paths):
        as_of = DEMO_FIRST_SNAPSHOT + k * DEMO_SNAPSHOT_INTERVAL
        log.info("demo snapshot %d of %d as of %s", k + 1, snapshots, as_of.date())
        step = settings.model_copy(
            update={"users_url": str(users_path), "postcodes_url": str(sample.postcodes_path)}
        )
        results.append(run(step, as_of=as_of, disclosure=disclosure, progress=progress))
    return results
