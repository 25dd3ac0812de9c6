"""The training data: validated partitions of a window of periods, split by time.

Only ``data/raw`` is read: quarantined rows never enter training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from level1_devops.features import FeatureParams, build_features, build_label
from level1_devops.feed import PERIOD_COLUMN
from level1_devops.ingest import partition_path
from level2_training.params import TrainParams


class TrainingDataError(ValueError):
    """The window cannot be trained on: periods missing or no rows."""


def periods_between(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from first to last, inclusive."""
    return [p.strftime("%Y-%m") for p in pd.period_range(first, last, freq="M")]


def window_periods(params: TrainParams) -> list[str]:
    """Every period the train flow reads: train, validation and holdout."""
    return periods_between(params.train_from, params.holdout_to)


def require_periods(raw_dir: Path, periods: list[str]) -> None:
    """Raise TrainingDataError naming every period of the window that is not in raw."""
    missing = [p for p in periods if not partition_path(raw_dir, p).is_file()]
    if missing:
        raise TrainingDataError(f"{raw_dir}: periods not ingested: {', '.join(missing)} "
                                "(the feed has not published them)")


def load_periods(raw_dir: Path, periods: list[str], max_rows: int | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """Validated records of ``periods`` from raw, with their period (``PERIOD_COLUMN``).

    Raises:
        TrainingDataError: a period is not ingested, or the window has no rows.
    """
    require_periods(raw_dir, periods)
    frames = []
    for period in periods:
        frame = pd.read_parquet(partition_path(raw_dir, period))
        if max_rows is not None and len(frame) > max_rows:
            frame = frame.sample(max_rows, random_state=seed).sort_index()
        frames.append(frame.assign(**{PERIOD_COLUMN: period}))
    flights = pd.concat(frames, ignore_index=True)
    if flights.empty:
        raise TrainingDataError(f"{raw_dir}: no valid flights in {periods[0]}..{periods[-1]}")
    return flights


@dataclass(frozen=True)
class Split:
    """Features and labels of one side of the time split, with each row's period."""

    X: pd.DataFrame
    y: pd.Series
    period: pd.Series

    def __len__(self) -> int:
        return len(self.y)


def make_split(flights: pd.DataFrame, first: str, last: str,
               features: FeatureParams) -> Split:
    period = flights[PERIOD_COLUMN]
    rows = flights[(period >= first) & (period <= last)]
    if rows.empty:
        raise TrainingDataError(f"no valid records between {first} and {last}")
    rows = rows.reset_index(drop=True)
    return Split(build_features(rows), build_label(rows, features), rows[PERIOD_COLUMN])


def split_by_time(flights: pd.DataFrame, params: TrainParams) -> dict[str, Split]:
    """Train, validation and holdout sides, each a contiguous range of periods."""
    return {
        "train": make_split(flights, params.train_from, params.train_to, params.features),
        "validation": make_split(flights, params.validation_from, params.validation_to,
                                 params.features),
        "holdout": make_split(flights, params.holdout_from, params.holdout_to, params.features),
    }
