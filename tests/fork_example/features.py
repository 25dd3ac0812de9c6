"""Features and label of the second example: will it rain at this airport in the next hour?

A fork's ``level1_devops/features.py``. The features are one hour's readings at an airport
(what is known at the hour); the label is whether the same airport records precipitation
in the hour after (``precip_next_hour``, which the feed adds and which never becomes a
feature). The behaviour scenarios certification runs and the service's words are here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from level1_devops.adapter import Scenario
from level1_devops.schema import LABEL_SOURCE


class FeatureParams(BaseModel):
    """``features:`` in params.yaml: how the label is made."""

    model_config = ConfigDict(extra="forbid")
    rain_threshold_in: float = Field(
        0.0, ge=0, description="the next hour is rainy when its precipitation is above this, in")
    missing_next_hour_is_dry: bool = Field(
        True, description="an hour whose next hour has no reading (48 of 26,115 in 2013) "
                          "counts as dry; false counts it as rainy")


CATEGORICAL_FEATURES = ["origin"]
NUMERIC_FEATURES = ["month", "hour", "temp", "dewp", "humid", "wind_dir", "wind_speed",
                    "wind_gust", "precip", "pressure", "visib"]
FEATURE_COLUMNS = CATEGORICAL_FEATURES + NUMERIC_FEATURES
LABEL_COLUMN = "rain_next_hour"
LABEL_SOURCE_COLUMNS: tuple[str, ...] = (LABEL_SOURCE,)  # what build_label reads
# What the next hour recorded leaks the answer.
LEAKAGE_COLUMNS: tuple[str, ...] = (LABEL_SOURCE,)
# What must never change a prediction: the leak, and the parts of the key and the UTC
# timestamp that are not features.
INVARIANT_COLUMNS: tuple[str, ...] = ("year", "day", "time_hour", *LEAKAGE_COLUMNS)
# About 7% of hours are followed by a rainy one; P above this is "rain" where a model's run
# records no threshold of its own.
DEFAULT_DECISION_THRESHOLD = 0.4
SERVICE_TITLE = "Next-hour precipitation scoring service"
PREDICTION_DESCRIPTION = ("P(precipitation is recorded at the same New York airport in the "
                          "next hour), from one hour's weather readings, 2013")


def build_features(readings: pd.DataFrame) -> pd.DataFrame:
    """Model inputs from validated readings (or request records), in ``FEATURE_COLUMNS``
    order: categoricals as text, everything else as float."""
    features = pd.DataFrame(index=readings.index)
    for name in CATEGORICAL_FEATURES:
        features[name] = readings[name].astype(str)
    for name in NUMERIC_FEATURES:
        features[name] = pd.to_numeric(readings[name]).astype("float64")
    return features


def feature_row(record: Mapping[str, Any]) -> list[Any]:
    """The features of one validated record, in ``FEATURE_COLUMNS`` order, without pandas:
    the same values as ``build_features`` (missing values are NaN)."""
    row: list[Any] = [str(record[name]) for name in CATEGORICAL_FEATURES]
    for name in NUMERIC_FEATURES:
        value = record.get(name)
        row.append(np.nan if value is None else float(value))
    return row


def build_label(readings: pd.DataFrame, params: FeatureParams | None = None) -> pd.Series:
    """1 when the next hour at the same airport recorded precipitation, else 0."""
    params = params or FeatureParams()
    amount = readings[LABEL_SOURCE].astype("float64")
    rain = amount > params.rain_threshold_in
    if not params.missing_next_hour_is_dry:
        rain |= amount.isna()
    return pd.Series(np.asarray(rain, dtype="int64"), index=readings.index, name=LABEL_COLUMN)


def saturated_air(readings: pd.DataFrame) -> pd.DataFrame:
    """The same hours with saturated air: 100% humidity, dew point at the temperature,
    visibility 1 mile."""
    return readings.assign(humid=100.0, dewp=readings["temp"], visib=1.0)


def raining_now(readings: pd.DataFrame) -> pd.DataFrame:
    """The same hours with at least 0.1 in of rain falling in them."""
    return readings.assign(precip=np.maximum(readings["precip"].fillna(0.0), 0.1))


def dry_clear_air(readings: pd.DataFrame) -> pd.DataFrame:
    """The same hours dry and clear: no rain, 30% humidity, visibility 10 miles."""
    return readings.assign(precip=0.0, humid=30.0, visib=10.0,
                           dewp=np.minimum(readings["dewp"], readings["temp"] - 30.0))


# Certification runs each; the first is also the drift `mlops replay --inject-drift` sends.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("saturated_air", "100% humidity, dew point = temperature, visibility 1 mi",
             saturated_air, 1),
    Scenario("raining_now", "at least 0.1 in of rain in the hour", raining_now, 1),
    Scenario("dry_clear_air", "no rain, 30% humidity, dew point 30 °F or more below the "
                              "temperature, visibility 10 mi", dry_clear_air, -1),
)
