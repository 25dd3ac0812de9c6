"""The one schema of a flight record: the upstream flight plus the weather at its origin.

Part of the example's adapter (with ``feed.py``, ``features.py`` and ``params.yaml``): every
fact about a flight record that the platform needs is stated here once. Ingestion validates
with it, the feature builder reads its columns, the scoring service builds its request model
and its examples from it, and the monitor joins ground truth by its key. A fork that brings
its own data rewrites this module; the engine (``validation.py``) stays.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from level1_devops.validation import Column, map_unique, validate_records

ORIGINS = frozenset({"EWR", "JFK", "LGA"})
# The clock of year/month/day/hour (and of every HHMM time); time_hour is UTC.
LOCAL_TIMEZONE = "America/New_York"
CARRIERS = frozenset(
    {"9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"}
)

FLIGHT_COLUMNS: tuple[Column, ...] = (
    Column("year", "int", "Year of the scheduled departure", min=1990, max=2100),
    Column("month", "int", "Month of the scheduled departure", min=1, max=12),
    Column("day", "int", "Day of month of the scheduled departure", min=1, max=31),
    Column("dep_time", "float", "Actual departure time, HHMM local", required=False,
           min=0, max=2400),
    Column("sched_dep_time", "int", "Scheduled departure time, HHMM local", min=0, max=2359),
    Column("dep_delay", "float", "Departure delay, minutes", required=False, min=-120, max=2000),
    Column("arr_time", "float", "Actual arrival time, HHMM local", required=False, min=0, max=2400),
    Column("sched_arr_time", "int", "Scheduled arrival time, HHMM local", min=0, max=2400),
    Column("arr_delay", "float", "Arrival delay, minutes (the label)", required=False,
           min=-120, max=2000),
    Column("carrier", "str", "Two-letter carrier code", allowed=CARRIERS),
    Column("flight", "int", "Flight number", min=1, max=9999),
    Column("tailnum", "str", "Plane tail number", required=False, pattern=r"^[A-Z0-9]{2,7}$"),
    Column("origin", "str", "Origin airport (FAA code)", allowed=ORIGINS),
    Column("dest", "str", "Destination airport (FAA code)", pattern=r"^[A-Z]{3}$"),
    Column("air_time", "float", "Minutes in the air", required=False, min=0, max=1000),
    Column("distance", "int", "Distance between airports, miles", min=1, max=6000),
    Column("hour", "int", "Scheduled departure hour, local", min=0, max=23),
    Column("minute", "int", "Scheduled departure minute", min=0, max=59),
    Column("time_hour", "timestamp", "Scheduled departure hour as a UTC timestamp"),
)

# Hourly weather at the origin at the scheduled hour; any of it may be missing upstream.
WEATHER_COLUMNS: tuple[Column, ...] = (
    Column("temp", "float", "Temperature, °F", required=False, min=-40, max=130),
    Column("dewp", "float", "Dew point, °F", required=False, min=-60, max=100),
    Column("humid", "float", "Relative humidity, %", required=False, min=0, max=100),
    Column("wind_dir", "float", "Wind direction, degrees", required=False, min=0, max=360),
    Column("wind_speed", "float", "Wind speed, mph", required=False, min=0, max=150),
    Column("wind_gust", "float", "Wind gust speed, mph", required=False, min=0, max=200),
    Column("precip", "float", "Precipitation, inches", required=False, min=0, max=10),
    Column("pressure", "float", "Sea-level pressure, millibars", required=False, min=900, max=1100),
    Column("visib", "float", "Visibility, miles", required=False, min=0, max=10),
)

COLUMNS: tuple[Column, ...] = FLIGHT_COLUMNS + WEATHER_COLUMNS
COLUMNS_BY_NAME = {c.name: c for c in COLUMNS}
# What identifies one scheduled flight; unique in the 2013 data.
KEY_COLUMNS = ("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time")
RECORD_ID_COLUMN = "flight_id"
# The plural noun of a record: the batch request's field and the word in messages.
RECORDS_NAME = "flights"

# What a caller of the scoring service sends: the flight as scheduled and the weather at its
# origin. The key fields (flight, sched_dep_time) are optional: they name the flight but never
# change its score.
REQUEST_COLUMNS = ("year", "month", "day", "carrier", "flight", "origin", "dest", "distance",
                   "hour", "minute", "sched_dep_time", "temp", "dewp", "humid", "wind_dir",
                   "wind_speed", "wind_gust", "precip", "pressure", "visib")
OPTIONAL_REQUEST_COLUMNS = ("flight", "sched_dep_time")

# One real flight (2013-07-01, JFK to LAX) as the service receives it: the smoke test of
# every model load and the example in the OpenAPI docs.
EXAMPLE_RECORD: dict[str, Any] = {
    "year": 2013, "month": 7, "day": 1, "carrier": "AA", "flight": 1, "origin": "JFK",
    "dest": "LAX", "distance": 2475, "hour": 9, "minute": 0, "sched_dep_time": 900,
    "temp": 80.06, "dewp": 66.02, "humid": 62.21, "wind_dir": 200.0, "wind_speed": 10.36,
    "wind_gust": None, "precip": 0.0, "pressure": 1012.4, "visib": 10.0,
}
_NO_WEATHER = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib")
# Records at the edges a fast scorer must get right: unseen categories, missing weather.
PROBE_RECORDS: list[dict[str, Any]] = [
    EXAMPLE_RECORD,
    {**EXAMPLE_RECORD, "dest": "ZZZ", "carrier": "HA", "hour": 23, "minute": 59},
    {**EXAMPLE_RECORD, **dict.fromkeys(_NO_WEATHER)},
    {**EXAMPLE_RECORD, "origin": "EWR", "month": 12, "day": 24, "visib": 0.25},
]
# A request the service must refuse, and why (the Level 3 demo shows it).
INVALID_RECORD: tuple[dict[str, Any], str] = (
    {**EXAMPLE_RECORD, "origin": "BOS"}, "origin BOS: not a New York airport")


def describe_record(record: dict[str, Any]) -> str:
    """One line naming a flight, e.g. ``AA1 JFK->LAX 2013-07-01 09:00``."""
    r = record
    return (f"{r['carrier']}{r.get('flight') or ''} {r['origin']}->{r['dest']} "
            f"{r['year']}-{r['month']:02d}-{r['day']:02d} {r['hour']:02d}:{r['minute']:02d}")


def record_problems(record: dict[str, Any]) -> list[str]:
    """What is wrong across the fields of one request record ([] when nothing is)."""
    year, month, day = record["year"], record["month"], record["day"]
    try:
        date(year, month, day)
    except ValueError:
        return [f"day: {year}-{month:02d}-{day:02d} is not a calendar date"]
    return []


def record_id(frame: pd.DataFrame) -> pd.Series:
    """The flight key of valid typed rows as one string, e.g. ``2013-01-01_UA1545_EWR_0515``."""
    ints = frame[["year", "month", "day", "flight", "sched_dep_time"]].astype("int64")
    date = ints["year"] * 10_000 + ints["month"] * 100 + ints["day"]
    return (
        map_unique(date, lambda d: f"{d // 10_000:04d}-{d // 100 % 100:02d}-{d % 100:02d}_")
        + frame["carrier"].astype(str) + map_unique(ints["flight"], str) + "_"
        + frame["origin"].astype(str) + map_unique(ints["sched_dep_time"], lambda t: f"_{t:04d}")
    )


def _row_checks(typed: pd.DataFrame) -> list[tuple[pd.Series, str]]:
    """Checks across columns: a calendar date, an hour that agrees with the scheduled time,
    and a ``time_hour`` that is the local scheduled hour (see ``_local_hour_differs``)."""
    when = pd.to_datetime(typed[["year", "month", "day"]], errors="coerce")
    sched = typed["sched_dep_time"]
    return [
        (typed[["year", "month", "day"]].notna().all(axis=1) & when.isna(),
         "year/month/day: not a calendar date"),
        (sched.notna() & typed["hour"].notna() & (sched // 100 != typed["hour"]),
         "hour: disagrees with sched_dep_time"),
        (_local_hour_differs(typed["time_hour"], when, typed["hour"]),
         f"time_hour: not the hour year/month/day/hour name in {LOCAL_TIMEZONE}"),
    ]


def _local_hour_differs(time_hour: pd.Series, day: pd.Series, hour: pd.Series) -> pd.Series:
    """Rows whose UTC ``time_hour``, read on the local clock, is not ``day`` at ``hour``:00.

    Comparing on the local clock handles daylight saving time: when clocks go back, both UTC
    instants of the repeated hour read as that hour; when they go forward, the skipped hour
    is no reading of any instant, so a flight scheduled in it is quarantined. Rows whose date,
    hour or time_hour is unreadable or out of range are left to the reasons they already have.
    """
    checkable = time_hour.notna() & day.notna() & hour.between(0, 23)
    # In numpy: pd.to_timedelta of float hours costs more than the rest of the check.
    hours = hour.where(checkable, 0).to_numpy().astype("int64").astype("timedelta64[h]")
    stated = day.to_numpy() + hours
    local = time_hour.dt.tz_convert(LOCAL_TIMEZONE).dt.tz_localize(None).to_numpy()
    return checkable & (local != stated)


def validate(frame: pd.DataFrame, *, where: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split flight records into valid typed rows (with ``flight_id``) and quarantined rows
    (as they came, with their ``reason``); see ``validation.validate_records``.

    Raises:
        SchemaError: a schema column is missing from ``frame``.
    """
    return validate_records(frame, COLUMNS, key_columns=KEY_COLUMNS, record_id=record_id,
                            record_id_column=RECORD_ID_COLUMN, row_checks=_row_checks,
                            where=where)
