"""The one schema of a flight record: the upstream flight plus the weather at its origin.

Ingestion validates with it, the feature builder reads its columns, the scoring service
builds its request model from it and the drift monitor compares its features. A fork that
brings its own data changes this module and the feed adapter, and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["int", "float", "str", "timestamp"]

ORIGINS = frozenset({"EWR", "JFK", "LGA"})
CARRIERS = frozenset(
    {"9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"}
)


@dataclass(frozen=True)
class Column:
    """One column: its type, whether it may be missing, and the values it may take."""

    name: str
    kind: Kind
    description: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    pattern: str | None = None


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
REASON_COLUMN = "reason"
FLIGHT_ID_COLUMN = "flight_id"


class SchemaError(ValueError):
    """A whole input does not fit the schema (columns missing or renamed): nothing is ingested."""


def check_columns(columns: Iterable[str], expected: Iterable[str], *, where: str) -> None:
    """Raise SchemaError naming what is missing (and what is unexpected) in ``where``."""
    present = list(columns)
    missing = [c for c in expected if c not in present]
    if missing:
        unexpected = [c for c in present if c not in set(expected)]
        hint = f"; unexpected columns: {', '.join(unexpected)}" if unexpected else ""
        raise SchemaError(f"{where}: missing columns: {', '.join(missing)}{hint}")


def flight_id(frame: pd.DataFrame) -> pd.Series:
    """The flight key of valid rows as one string, e.g. ``2013-01-01_UA1545_EWR_0515``."""
    ints = frame[["year", "month", "day", "flight", "sched_dep_time"]].astype("int64")
    date = ints["year"] * 10_000 + ints["month"] * 100 + ints["day"]
    return (
        _map_unique(date, lambda d: f"{d // 10_000:04d}-{d // 100 % 100:02d}-{d % 100:02d}_")
        + frame["carrier"].astype(str) + _map_unique(ints["flight"], str) + "_"
        + frame["origin"].astype(str) + _map_unique(ints["sched_dep_time"], lambda t: f"_{t:04d}")
    )


def _map_unique(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """``values.map(func)``, calling func once per distinct value (columns repeat a lot)."""
    distinct = values.unique()
    return values.map(dict(zip(distinct, map(func, distinct), strict=True)))


class _Reasons:
    """Collects, per row, every reason it fails; only failing rows cost string work."""

    def __init__(self) -> None:
        self._parts: list[pd.Series] = []

    def add(self, mask: pd.Series, message: str, values: pd.Series | None = None,
            suffix: str = "") -> None:
        """Record ``message`` (+ the row's value + ``suffix``) for the rows in ``mask``."""
        if not mask.any():
            return
        if values is None:
            self._parts.append(pd.Series(message, index=mask.index[mask.to_numpy()]))
        else:
            self._parts.append(message + values[mask].astype(str) + suffix)

    def joined(self, index: pd.Index) -> pd.Series:
        if not self._parts:
            return pd.Series("", index=index)
        parts = pd.concat(self._parts)
        per_row = parts.groupby(level=0, sort=False).agg("; ".join)
        return per_row.reindex(index, fill_value="")


def _fullmatch(pattern: re.Pattern[str], value: object) -> bool:
    return pattern.fullmatch(str(value)) is not None


def _is_blank(raw: pd.Series) -> pd.Series:
    blank = raw.isna()
    if not pd.api.types.is_numeric_dtype(raw):
        blank |= raw.eq("")
    return blank


def _coerce(col: Column, raw: pd.Series, reasons: _Reasons) -> pd.Series:
    """Typed values of one column; records unreadable, missing and out-of-range values."""
    blank = _is_blank(raw)
    name = col.name
    value: pd.Series
    if col.kind in ("int", "float"):
        # Columns the reader already parsed as numbers cost nothing here; text is parsed.
        value = pd.to_numeric(raw, errors="coerce").astype("float64")
        value[~np.isfinite(value)] = np.nan
        reasons.add(~blank & value.isna(), f"{name}: not a number: ", raw)
        if col.kind == "int":
            reasons.add(value.notna() & (value % 1 != 0), f"{name}: not a whole number: ", raw)
        low = -np.inf if col.min is None else col.min
        high = np.inf if col.max is None else col.max
        reasons.add(value.notna() & ~value.between(low, high), f"{name}: ", value,
                    f" outside [{low:g}, {high:g}]")
    elif col.kind == "timestamp":
        value = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        reasons.add(~blank & value.isna(), f"{name}: not a timestamp: ", raw)
    else:
        value = raw.where(~blank, None).astype(object)
        present = ~blank
        if col.allowed is not None:
            reasons.add(present & ~value.isin(col.allowed), f"{name}: '", value,
                        f"' not one of {', '.join(sorted(col.allowed))}")
        if col.pattern is not None:
            pattern = re.compile(col.pattern)
            matches = _map_unique(value, partial(_fullmatch, pattern))
            reasons.add(present & ~matches, f"{name}: '", value, f"' does not match {col.pattern}")
    if col.required:
        reasons.add(blank, f"{name}: missing")
    return value


def validate(frame: pd.DataFrame, *, where: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split flight records into valid typed rows and quarantined rows with their reason.

    Args:
        frame: flight records, typed or as text (as read from CSV), one column per schema column;
            other columns are carried into the quarantine but not into the valid rows.
        where: names the input in errors.

    Returns:
        ``(valid, quarantined)``: valid rows typed by the schema plus ``flight_id``; quarantined
        rows as they came (as text) plus ``reason``. Every input row is in exactly one of them.

    Raises:
        SchemaError: a schema column is missing from ``frame``.
    """
    check_columns(frame.columns, [c.name for c in COLUMNS], where=where)
    reasons = _Reasons()
    typed = pd.DataFrame({c.name: _coerce(c, frame[c.name], reasons) for c in COLUMNS},
                         index=frame.index)
    date = pd.to_datetime(typed[["year", "month", "day"]], errors="coerce")
    reasons.add(typed[["year", "month", "day"]].notna().all(axis=1) & date.isna(),
                "year/month/day: not a calendar date")
    sched = typed["sched_dep_time"]
    reasons.add(sched.notna() & typed["hour"].notna() & (sched // 100 != typed["hour"]),
                "hour: disagrees with sched_dep_time")
    reasons.add(typed.duplicated(list(KEY_COLUMNS), keep="first"),
                "duplicate: same flight key as an earlier row")
    why = reasons.joined(frame.index)
    bad = why.ne("")

    valid = typed.loc[~bad].copy()
    for c in COLUMNS:
        if c.kind == "int":
            valid[c.name] = valid[c.name].astype("int64")
    valid.insert(0, FLIGHT_ID_COLUMN, flight_id(valid))
    quarantined = frame.loc[bad].astype(str).where(frame.loc[bad].notna(), None)
    quarantined[REASON_COLUMN] = why[bad]
    return valid.reset_index(drop=True), quarantined.reset_index(drop=True)
