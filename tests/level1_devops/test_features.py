from __future__ import annotations

import pandas as pd

from level1_devops.features import (
    FEATURE_COLUMNS,
    LEAKAGE_COLUMNS,
    FeatureParams,
    build_features,
    build_label,
)
from level1_devops.schema import validate


def test_no_leakage_column_is_a_feature() -> None:
    assert not set(LEAKAGE_COLUMNS) & set(FEATURE_COLUMNS)


def test_features_do_not_change_when_leaking_columns_do(small_flights: pd.DataFrame,
                                                        real_weather: pd.DataFrame) -> None:
    weather = real_weather.drop_duplicates(["origin", "time_hour"]).drop(
        columns=["year", "month", "day", "hour"])
    valid, _ = validate(small_flights.merge(weather, on=["origin", "time_hour"], how="left"))
    features = build_features(valid)
    assert list(features.columns) == FEATURE_COLUMNS
    scrambled = valid.copy()
    for column in LEAKAGE_COLUMNS:
        scrambled[column] = scrambled[column].sample(frac=1, random_state=1).to_numpy()
    pd.testing.assert_frame_equal(build_features(scrambled), features)
    assert features["day_of_week"].between(0, 6).all()


def test_label_counts_missing_arrivals_as_late_by_default() -> None:
    flights = pd.DataFrame({"arr_delay": [-5.0, 15.0, 16.0, None]})
    assert build_label(flights).tolist() == [0, 0, 1, 1]
    strict = FeatureParams(missing_arrival_is_late=False, late_threshold_min=0)
    assert build_label(flights, strict).tolist() == [0, 1, 1, 0]


def test_feature_row_matches_the_feature_builder(small_flights: pd.DataFrame,
                                                 real_weather: pd.DataFrame) -> None:
    """The service's pandas-free path makes exactly the features build_features makes."""
    import numpy as np

    from level1_devops.features import feature_row

    weather = real_weather.drop_duplicates(["origin", "time_hour"]).drop(
        columns=["year", "month", "day", "hour"])
    valid, _ = validate(small_flights.merge(weather, on=["origin", "time_hour"], how="left"))
    records = valid.head(300).astype(object).where(valid.head(300).notna(), None)
    rows = [feature_row(r) for r in records.to_dict(orient="records")]
    expected = build_features(valid.head(300))
    for i, row in enumerate(rows):
        for value, (name, want) in zip(row, expected.iloc[i].items(), strict=True):
            if isinstance(want, float) and np.isnan(want):
                assert np.isnan(value), name
            else:
                assert value == want, name
