"""The validation engine: typed columns, a reason for every rejected row, nothing dropped.

The example's facts (its columns, key and cross-column checks) live in ``schema.py``; this
module is what a fork keeps unchanged. ``validate_records`` splits records into typed valid
rows and quarantined rows with every reason they fail.
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
REASON_COLUMN = "reason"
# Cross-column checks of a schema: (rows that fail, why), on the typed frame.
RowChecks = Callable[[pd.DataFrame], list[tuple[pd.Series, str]]]


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


def map_unique(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
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

    def flagged(self, index: pd.Index) -> np.ndarray:
        """Whether each row of ``index`` has a reason so far."""
        if not self._parts:
            return np.zeros(len(index), dtype=bool)
        return index.isin(pd.Index(np.concatenate([p.index.to_numpy() for p in self._parts])))

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
            matches = map_unique(value, partial(_fullmatch, pattern))
            reasons.add(present & ~matches, f"{name}: '", value, f"' does not match {col.pattern}")
    if col.required:
        reasons.add(blank, f"{name}: missing")
    return value


def validate_records(frame: pd.DataFrame, columns: tuple[Column, ...], *,
                     key_columns: tuple[str, ...], record_id: Callable[[pd.DataFrame], pd.Series],
                     record_id_column: str, row_checks: RowChecks | None = None,
                     where: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split records into valid typed rows and quarantined rows with their reason.

    Args:
        frame: records, typed or as text (as read from CSV), one column per schema column;
            other columns are carried into the quarantine but not into the valid rows.
        columns: the schema.
        key_columns: what identifies a record; of the rows otherwise valid, a later row with
            the key of an earlier one is quarantined as a duplicate (an invalid row is
            quarantined for its own reasons, and never makes a valid copy a duplicate).
        record_id: the key of valid typed rows as one string.
        record_id_column: the name of that string, inserted first in the valid rows.
        row_checks: cross-column checks on the typed rows.
        where: names the input in errors.

    Returns:
        ``(valid, quarantined)``: valid rows typed by the schema plus the record id;
        quarantined rows as they came (as text) plus ``reason``. Every input row is in
        exactly one of them.

    Raises:
        SchemaError: a schema column is missing from ``frame``.
    """
    check_columns(frame.columns, [c.name for c in columns], where=where)
    reasons = _Reasons()
    typed = pd.DataFrame({c.name: _coerce(c, frame[c.name], reasons) for c in columns},
                         index=frame.index)
    for mask, reason in (row_checks(typed) if row_checks else []):
        reasons.add(mask, reason)
    # Duplicates are judged among the rows valid so far: the first valid copy wins, and an
    # invalid copy is quarantined for its own reasons only (it never costs the valid one).
    otherwise_valid = ~reasons.flagged(frame.index)
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[otherwise_valid] = typed.loc[otherwise_valid, list(key_columns)].duplicated(
        keep="first").to_numpy()
    reasons.add(pd.Series(duplicate, index=frame.index), "duplicate: same key as an earlier row")
    why = reasons.joined(frame.index)
    bad = why.ne("")

    valid = typed.loc[~bad].copy()
    for c in columns:
        if c.kind == "int":
            valid[c.name] = valid[c.name].astype("int64")
    valid.insert(0, record_id_column, record_id(valid))
    quarantined = frame.loc[bad].astype(str).where(frame.loc[bad].notna(), None)
    quarantined[REASON_COLUMN] = why[bad]
    return valid.reset_index(drop=True), quarantined.reset_index(drop=True)
