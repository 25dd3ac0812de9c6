"""Monitoring windows: a month (``YYYY-MM``) or an ISO week (``YYYY-Www``) of flights.

Pure. A logged prediction belongs to the window of its flight's scheduled date, not of the
time it was made. `monitor.window` in params.yaml says which kind `mlops monitor` picks by
default; either kind can be asked for by name.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import pandas as pd

WindowKind = Literal["month", "week"]
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def window_kind(window: str) -> WindowKind:
    """Raises ValueError naming the accepted forms."""
    if MONTH.match(window):
        return "month"
    if WEEK.match(window):
        return "week"
    raise ValueError(f"window {window!r}: expected YYYY-MM (a month) or YYYY-Www (an ISO week)")


def windows_of(flights: pd.DataFrame, kind: WindowKind) -> pd.Series:
    """The window of each flight (by its scheduled year, month, day)."""
    if kind == "month":
        return (flights["year"].astype(int).astype(str) + "-"
                + flights["month"].astype(int).astype(str).str.zfill(2))
    dates = pd.to_datetime(flights[["year", "month", "day"]].astype(int))
    iso = dates.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)


def in_window(flights: pd.DataFrame, window: str) -> pd.Series:
    """True for the flights of ``window``."""
    return windows_of(flights, window_kind(window)) == window


def month_of(window: str) -> str:
    """The month whose labelled flights a retrain after ``window`` certifies on: the month
    itself, or the month a week ends in."""
    if window_kind(window) == "month":
        return window
    year, week = (int(x) for x in WEEK.match(window).groups())  # type: ignore[union-attr]
    return date.fromisocalendar(year, week, 7).strftime("%Y-%m")
