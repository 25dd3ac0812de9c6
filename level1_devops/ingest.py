"""Ingestion: pull every period the feed published that is not ingested yet.

Each row of a period ends in exactly one place: ``data/raw/<period>.parquet`` when it fits
the schema, ``data/quarantine/<period>.parquet`` with its ``reason`` when it does not.
A period, once ingested, is rewritten only when asked (``force``): re-running ingests
nothing and changes no byte. Rows published later for an ingested period are reported
(``late_rows``), not ingested. One ingestion at a time: callers hold ``ingest_lock``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from level1_devops.feed import PERIOD_COLUMN, Feed, period_of
from level1_devops.locks import LockTimeout, exclusive
from level1_devops.schema import validate
from level1_devops.validation import REASON_COLUMN

LOCK_FILE = ".ingest.lock"


@dataclass(frozen=True)
class PeriodResult:
    """What one period's ingestion did."""

    period: str
    n_rows: int
    n_raw: int
    n_quarantined: int
    top_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LateRows:
    """An ingested period for which the feed now publishes rows that are not ingested."""

    period: str
    n_published: int
    n_ingested: int

    @property
    def n_late(self) -> int:
        return self.n_published - self.n_ingested


IngestLockTimeout = LockTimeout  # another ingestion held the lock for too long


def ingest_lock(data_dir: Path, timeout_s: float = 600.0) -> AbstractContextManager[Path]:
    """Hold the project's ingestion lock, ``data_dir/.ingest.lock``, for the block.

    A second ingestion waits for the running one (then finds its periods done), for up to
    ``timeout_s`` (0 tries once); see ``locks.exclusive``.

    Raises:
        IngestLockTimeout: another ingestion still held it after ``timeout_s``.
    """
    return exclusive(data_dir / LOCK_FILE, "ingestion", timeout_s)


def partition_path(folder: Path, period: str) -> Path:
    return folder / f"{period}.parquet"


def ingested_periods(raw_dir: Path) -> list[str]:
    """Periods already in raw, oldest first (a raw partition marks a period as done)."""
    return sorted(p.stem for p in raw_dir.glob("*.parquet")) if raw_dir.is_dir() else []


def count_rows(folder: Path) -> int:
    """Rows across a folder's Parquet partitions, read from their footers only."""
    if not folder.is_dir():
        return 0
    return sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))


def pending_periods(feed: Feed, raw_dir: Path, until: str | None = None) -> list[str]:
    """Published periods not yet ingested, up to and including ``until`` when given."""
    done = set(ingested_periods(raw_dir))
    return [p for p in feed.periods() if p not in done and (until is None or p <= until)]


def late_rows(feed: Feed, raw_dir: Path, quarantine_dir: Path) -> list[LateRows]:
    """Ingested periods for which the feed publishes more rows than raw and quarantine hold.

    Every row of a period lands in exactly one of the two partitions, so their row counts
    (read from the Parquet footers) add up to what the feed published when the period was
    ingested: a feed that publishes more now has that many rows not ingested. Counting is
    what an append-only upstream needs and costs no validation; a row replaced by another
    (the count unchanged) is not seen.
    """
    published = feed.records[PERIOD_COLUMN].value_counts()
    late = []
    for period in ingested_periods(raw_dir):
        n_published = int(published.get(period, 0))
        n_ingested = sum(pq.read_metadata(path).num_rows for path in (
            partition_path(raw_dir, period), partition_path(quarantine_dir, period))
            if path.is_file())
        if n_published > n_ingested:
            late.append(LateRows(period, n_published, n_ingested))
    return late


def _summarise_reasons(quarantined: pd.DataFrame, n_top: int = 5) -> dict[str, int]:
    # One reason per distinct problem: the field and what is wrong, without the value.
    kinds = quarantined[REASON_COLUMN].str.split("; ").explode().str.replace(r":.*", "", regex=True)
    return {str(k): int(v) for k, v in kinds.value_counts().head(n_top).items()}


def _temporary(path: Path, frame: pd.DataFrame) -> Path:
    """``frame`` written beside ``path`` under a name no other writer uses (pid + random),
    so two writers never write into, or move, each other's file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_period(valid: pd.DataFrame, quarantined: pd.DataFrame, period: str, raw_dir: Path,
                 quarantine_dir: Path) -> PeriodResult:
    """Write (or rewrite) one period's raw and quarantine partitions.

    Both are written to temporary files first. Then the old raw partition goes, the
    quarantine partition is moved into place and the raw one last: a crash at any point
    leaves the period either as it was or not ingested (redone whole next time), never new
    quarantined rows beside old raw ones.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    raw, quarantine = partition_path(raw_dir, period), partition_path(quarantine_dir, period)
    tmp_quarantine = _temporary(quarantine, quarantined.reset_index(drop=True))
    try:
        tmp_raw = _temporary(raw, valid.reset_index(drop=True))
        try:
            raw.unlink(missing_ok=True)  # from here on the period is not ingested
            os.replace(tmp_quarantine, quarantine)
            os.replace(tmp_raw, raw)
        finally:
            tmp_raw.unlink(missing_ok=True)
    finally:
        tmp_quarantine.unlink(missing_ok=True)
    return PeriodResult(period, len(valid) + len(quarantined), len(valid), len(quarantined),
                        _summarise_reasons(quarantined))


def ingest(feed: Feed, raw_dir: Path, quarantine_dir: Path, until: str | None = None,
           progress: Callable[[Iterable[str]], Iterable[str]] = iter, *,
           periods: Sequence[str] | None = None, force: bool = False) -> list[PeriodResult]:
    """Ingest every pending period of ``feed``; returns what each period did, oldest first.

    The caller holds ``ingest_lock`` of the data folder (the CLI does): two ingestions at
    once would each write every pending period.

    Args:
        feed: the upstream.
        raw_dir: where valid partitions go.
        quarantine_dir: where rejected rows go, with their reason.
        until: last period to pull (``YYYY-MM``); None pulls everything published.
        progress: wraps the iteration over periods (a progress bar at the CLI).
        periods: only these periods (``until`` does not apply); None: every published one.
        force: re-ingest the chosen periods whole even when they are ingested (late rows);
            without it an ingested period is left as it is.

    Raises:
        FeedError, SchemaError: the feed cannot be read, or publishes none of a period in
            ``periods``; nothing is written.
    """
    if periods is None:
        chosen = [p for p in feed.periods() if until is None or p <= until]
    else:
        chosen = sorted(set(periods))  # one the feed has not published fails in read_periods
    done = set(ingested_periods(raw_dir))
    todo = [p for p in chosen if force or p not in done]
    if not todo:
        return []
    records = feed.read_periods(todo)
    # One validation pass over every pending row: per-call overhead is paid once, not per period.
    valid, quarantined = validate(records, where=str(feed.source_dir))
    valid_rows = valid.groupby(period_of(valid)).indices
    quarantined_rows = quarantined.groupby(PERIOD_COLUMN).indices
    no_rows: list[int] = []
    return [
        write_period(valid.iloc[valid_rows.get(p, no_rows)],
                     quarantined.iloc[quarantined_rows.get(p, no_rows)].drop(columns=PERIOD_COLUMN),
                     p, raw_dir, quarantine_dir)
        for p in progress(todo)
    ]
