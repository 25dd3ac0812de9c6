"""The one feature builder: training, batch scoring, the API and the monitor all call it.

Features are what is known at scheduled departure. Columns that record what happened
after departure (``LEAKAGE_COLUMNS``) never become features: they leak the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.params import FeatureParams
from level1_devops.schema import WEATHER_COLUMNS

CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]
NUMERIC_FEATURES = [
    "distance", "hour", "minute", "month", "day_of_week",
    *(c.name for c in WEATHER_COLUMNS),
]
FEATURE_COLUMNS = CATEGORICAL_FEATURES + NUMERIC_FEATURES
LEAKAGE_COLUMNS = ("dep_time", "dep_delay", "arr_time", "air_time", "arr_delay")
LABEL_COLUMN = "is_late"


def build_features(flights: pd.DataFrame) -> pd.DataFrame:
    """Model inputs from validated flight records, in ``FEATURE_COLUMNS`` order.

    Args:
        flights: rows that passed the schema (any extra columns are ignored).

    Returns:
        One row per flight: categoricals as text, everything else as float.
    """
    day_of_week = pd.to_datetime(
        pd.DataFrame({"year": flights["year"], "month": flights["month"], "day": flights["day"]})
    ).dt.dayofweek
    features = pd.DataFrame(index=flights.index)
    for name in CATEGORICAL_FEATURES:
        features[name] = flights[name].astype(str)
    for name in NUMERIC_FEATURES:
        source = day_of_week if name == "day_of_week" else flights[name]
        features[name] = source.astype("float64")
    return features


def feature_row(record: Mapping[str, Any]) -> list[Any]:
    """The features of one validated record, in ``FEATURE_COLUMNS`` order, without pandas.

    The same values as ``build_features`` (a test holds them equal); the scoring service uses
    it where building a DataFrame per request would cost more than the model.
    """
    row: list[Any] = [str(record[name]) for name in CATEGORICAL_FEATURES]
    for name in NUMERIC_FEATURES:
        if name == "day_of_week":
            value: Any = date(record["year"], record["month"], record["day"]).weekday()
        else:
            value = record.get(name)
        row.append(np.nan if value is None else float(value))
    return row


def build_label(flights: pd.DataFrame, params: FeatureParams | None = None) -> pd.Series:
    """1 when the flight arrived late, else 0.

    A flight with no ``arr_delay`` was cancelled or diverted: it did not arrive on time, so
    by default it counts as late (``features.missing_arrival_is_late`` in params.yaml).
    """
    params = params or FeatureParams()
    delay = flights["arr_delay"].astype("float64")
    late = delay > params.late_threshold_min
    if params.missing_arrival_is_late:
        late |= delay.isna()
    return pd.Series(np.asarray(late, dtype="int64"), index=flights.index, name=LABEL_COLUMN)
