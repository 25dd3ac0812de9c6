"""Ingestion: pull every period the feed published that is not ingested yet.

Each row of a period ends in exactly one place: ``data/raw/<period>.parquet`` when it fits
the schema, ``data/quarantine/<period>.parquet`` with its ``reason`` when it does not.
A period, once ingested, is never rewritten: re-running ingests nothing and changes no byte.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from level1_devops.feed import PERIOD_COLUMN, Feed, period_of
from level1_devops.schema import validate
from level1_devops.validation import REASON_COLUMN


@dataclass(frozen=True)
class PeriodResult:
    """What one period's ingestion did."""

    period: str
    n_rows: int
    n_raw: int
    n_quarantined: int
    top_reasons: dict[str, int] = field(default_factory=dict)


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


def _summarise_reasons(quarantined: pd.DataFrame, n_top: int = 5) -> dict[str, int]:
    # One reason per distinct problem: the field and what is wrong, without the value.
    kinds = quarantined[REASON_COLUMN].str.split("; ").explode().str.replace(r":.*", "", regex=True)
    return {str(k): int(v) for k, v in kinds.value_counts().head(n_top).items()}


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_period(valid: pd.DataFrame, quarantined: pd.DataFrame, period: str, raw_dir: Path,
                 quarantine_dir: Path) -> PeriodResult:
    """Write one period's raw and quarantine partitions.

    The quarantine partition is written first and the raw one last, so a crash in between
    leaves the period not ingested (it is redone whole next time), never half-ingested.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(quarantined.reset_index(drop=True), partition_path(quarantine_dir, period))
    _write_atomically(valid.reset_index(drop=True), partition_path(raw_dir, period))
    return PeriodResult(period, len(valid) + len(quarantined), len(valid), len(quarantined),
                        _summarise_reasons(quarantined))


def ingest(feed: Feed, raw_dir: Path, quarantine_dir: Path, until: str | None = None,
           progress: Callable[[Iterable[str]], Iterable[str]] = iter) -> list[PeriodResult]:
    """Ingest every pending period of ``feed``; returns what each period did, oldest first.

    Args:
        feed: the upstream.
        raw_dir: where valid partitions go.
        quarantine_dir: where rejected rows go, with their reason.
        until: last period to pull (``YYYY-MM``); None pulls everything published.
        progress: wraps the iteration over periods (a progress bar at the CLI).

    Raises:
        FeedError, SchemaError: the feed cannot be read; nothing is written.
    """
    pending = pending_periods(feed, raw_dir, until)
    if not pending:
        return []
    records = feed.read_periods(pending)
    # One validation pass over every pending row: per-call overhead is paid once, not per period.
    valid, quarantined = validate(records, where=str(feed.source_dir))
    valid_rows = valid.groupby(period_of(valid)).indices
    quarantined_rows = quarantined.groupby(PERIOD_COLUMN).indices
    no_rows: list[int] = []
    return [
        write_period(valid.iloc[valid_rows.get(p, no_rows)],
                     quarantined.iloc[quarantined_rows.get(p, no_rows)].drop(columns=PERIOD_COLUMN),
                     p, raw_dir, quarantine_dir)
        for p in progress(pending)
    ]
