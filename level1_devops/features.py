"""The one feature builder: training, batch scoring, the API and the monitor all call it.

Part of the example's adapter. Features are what is known at scheduled departure. Columns
that record what happened after departure (``LEAKAGE_COLUMNS``) never become features: they
leak the answer. The label, the behaviour scenarios certification runs and the words the
service uses for its prediction are stated here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from level1_devops.adapter import Scenario
from level1_devops.schema import WEATHER_COLUMNS


class FeatureParams(BaseModel):
    """``features:`` in params.yaml: how the label is made."""

    model_config = ConfigDict(extra="forbid")
    late_threshold_min: float = Field(15, description="late means arr_delay above this")
    missing_arrival_is_late: bool = Field(
        True, description="cancelled/diverted flights (no arr_delay) count as late")


CATEGORICAL_FEATURES = ["carrier", "origin", "dest"]
NUMERIC_FEATURES = [
    "distance", "hour", "minute", "month", "day_of_week",
    *(c.name for c in WEATHER_COLUMNS),
]
FEATURE_COLUMNS = CATEGORICAL_FEATURES + NUMERIC_FEATURES
LEAKAGE_COLUMNS = ("dep_time", "dep_delay", "arr_time", "air_time", "arr_delay")
# What must never change a prediction: the flight's identifiers and everything after departure.
INVARIANT_COLUMNS = ("flight", "tailnum", *LEAKAGE_COLUMNS)
LABEL_COLUMN = "is_late"
LABEL_SOURCE_COLUMNS = ("arr_delay",)  # what build_label reads (ground truth, once landed)
# P(late) above this is "late" where a model's run records no threshold of its own.
DEFAULT_DECISION_THRESHOLD = 0.3
SERVICE_TITLE = "Flight delay scoring service"
PREDICTION_DESCRIPTION = ("P(arrival delay > 15 min) for a flight from New York, 2013; "
                          "cancelled and diverted flights count as late")


def bad_weather(flights: pd.DataFrame) -> pd.DataFrame:
    """The same flights in a storm at the origin."""
    return flights.assign(visib=0.5, precip=flights["precip"].fillna(0) + 0.3,
                          wind_speed=flights["wind_speed"].fillna(0) + 20)


# Certification runs each (worse origin weather must not lower P(late)); the first one is
# also the drift `mlops replay --inject-drift` sends through the live service.
SCENARIOS = (
    Scenario("bad_weather", "visibility 0.5 mi, +0.3 in of rain, +20 mph wind", bad_weather, 1),
)


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
