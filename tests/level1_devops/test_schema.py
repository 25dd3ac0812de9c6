from __future__ import annotations

import pandas as pd
import pytest

from level1_devops.schema import COLUMNS, RECORD_ID_COLUMN, validate
from level1_devops.validation import REASON_COLUMN, SchemaError


def _records(small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> pd.DataFrame:
    weather = real_weather.drop_duplicates(["origin", "time_hour"]).drop(
        columns=["year", "month", "day", "hour"])
    return small_flights.merge(weather, on=["origin", "time_hour"], how="left").astype(object)


@pytest.fixture
def records(small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> pd.DataFrame:
    return _records(small_flights, real_weather)


def test_real_rows_are_valid_and_typed(records: pd.DataFrame) -> None:
    valid, quarantined = validate(records)
    assert len(valid) == len(records) and quarantined.empty
    assert valid["distance"].dtype == "int64"
    assert valid["time_hour"].dt.tz is not None
    assert valid[RECORD_ID_COLUMN].is_unique
    assert valid[RECORD_ID_COLUMN].str.fullmatch(r"\d{4}-\d\d-\d\d_\w+_(EWR|JFK|LGA)_\d{4}").all()


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("distance", "far", "distance: not a number: far"),
    ("flight", 12.5, "flight: not a whole number"),
    ("origin", "XYZ", "origin: 'XYZ' not one of EWR, JFK, LGA"),
    ("month", 13, "month: 13.0 outside [1, 12]"),
    ("wind_speed", 1048.4, "wind_speed: 1048.4 outside [0, 150]"),
    ("carrier", None, "carrier: missing"),
    ("dest", "Boston", "dest: 'Boston' does not match"),
    ("time_hour", "yesterday", "time_hour: not a timestamp: yesterday"),
    ("day", 31, "year/month/day: not a calendar date"),  # February 31st
    ("arr_delay", float("inf"), "arr_delay: not a number"),
])
def test_bad_value_is_quarantined_with_its_reason(records: pd.DataFrame, column: str,
                                                  value: object, reason: str) -> None:
    row = records.index[records["month"] == 2][0]
    records.loc[row, column] = value
    valid, quarantined = validate(records)
    assert len(valid) + len(quarantined) == len(records)
    assert len(quarantined) == 1
    assert reason in quarantined.loc[0, REASON_COLUMN]


def test_every_reason_of_a_row_is_kept(records: pd.DataFrame) -> None:
    records.loc[0, ["origin", "distance"]] = ["XYZ", "far"]
    _, quarantined = validate(records)
    assert quarantined.loc[0, REASON_COLUMN].count("; ") == 1


def test_duplicate_rows_keep_the_first(records: pd.DataFrame) -> None:
    doubled = pd.concat([records, records.head(3)], ignore_index=True)
    valid, quarantined = validate(doubled)
    assert len(valid) == len(records)
    reasons = list(quarantined[REASON_COLUMN].unique())
    assert reasons == ["duplicate: same key as an earlier row"]


def test_missing_or_renamed_column_is_an_error_naming_both(records: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="flights.csv: missing columns: arr_delay; unexpected "
                                          "columns: arr_dly"):
        validate(records.rename(columns={"arr_delay": "arr_dly"}), where="flights.csv")


def test_optional_values_may_be_missing(records: pd.DataFrame) -> None:
    optional = [c.name for c in COLUMNS if not c.required]
    records.loc[0, optional] = None
    valid, quarantined = validate(records)
    assert quarantined.empty and valid.loc[0, optional].isna().all()
