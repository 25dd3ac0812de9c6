"""Monitoring windows: a month (``YYYY-MM``) or an ISO week (``YYYY-Www``) of records.

Pure. A logged prediction belongs to the window of its record's date (the adapter's
``period_of`` and ``record_dates``), not of the time it was made. `monitor.window` in
params.yaml says which kind `mlops monitor` picks by default (monthly or weekly); either kind
can be asked for by name.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import pandas as pd

from level1_devops.feed import period_of, record_dates

WindowKind = Literal["monthly", "weekly"]
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
WEEK = re.compile(r"(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])")


def window_kind(window: str) -> WindowKind:
    """Raises ValueError naming the accepted forms."""
    if MONTH.fullmatch(window):
        return "monthly"
    if WEEK.fullmatch(window):
        return "weekly"
    raise ValueError(f"window {window!r}: expected YYYY-MM (a month) or YYYY-Www (an ISO week)")


def windows_of(records: pd.DataFrame, kind: WindowKind) -> pd.Series:
    """The window of each record: its period (a month), or the ISO week of its date."""
    if kind == "monthly":
        return period_of(records)
    return record_dates(records).dt.strftime("%G-W%V")  # ISO year and week


def in_window(records: pd.DataFrame, window: str) -> pd.Series:
    """True for the records of ``window``."""
    return windows_of(records, window_kind(window)) == window


def month_of(window: str) -> str:
    """The month whose labelled flights a retrain after ``window`` certifies on: the month
    itself, or the month a week ends in."""
    if window_kind(window) == "monthly":
        return window
    year, week = (int(x) for x in WEEK.fullmatch(window).groups())  # type: ignore[union-attr]
    return date.fromisocalendar(year, week, 7).strftime("%Y-%m")
