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


def test_the_valid_copy_of_a_duplicate_wins_over_an_invalid_first_copy(
        records: pd.DataFrame) -> None:
    broken_first = records.head(1).assign(distance="far")
    valid, quarantined = validate(pd.concat([broken_first, records], ignore_index=True))
    assert len(valid) == len(records)  # the valid copy is kept
    assert list(quarantined[REASON_COLUMN]) == ["distance: not a number: far"]


def test_an_invalid_later_copy_is_quarantined_for_its_own_reasons_only(
        records: pd.DataFrame) -> None:
    broken_copy = records.head(1).assign(distance="far")
    valid_copy = records.head(1)
    valid, quarantined = validate(
        pd.concat([records, broken_copy, valid_copy], ignore_index=True))
    assert len(valid) == len(records)
    assert list(quarantined[REASON_COLUMN]) == ["distance: not a number: far",
                                                "duplicate: same key as an earlier row"]


TIME_HOUR_REASON = "time_hour: not the hour year/month/day/hour name in America/New_York"


def _scheduled(records: pd.DataFrame, when: str, hour: int, time_hour: str) -> pd.DataFrame:
    """The first record moved to local date ``when`` and ``hour``, with this ``time_hour``."""
    year, month, day = (int(x) for x in when.split("-"))
    return records.head(1).assign(year=year, month=month, day=day, hour=hour,
                                  sched_dep_time=hour * 100 + 30, minute=30,
                                  time_hour=time_hour)


def test_the_whole_real_feed_passes_the_time_hour_check(real_feed_dir) -> None:
    from level1_devops.feed import Feed

    valid, quarantined = validate(Feed(real_feed_dir).records)
    assert quarantined.empty and len(valid) == 336_776


@pytest.mark.parametrize(("when", "hour", "time_hour", "ok"), [
    ("2013-01-01", 5, "2013-01-01T10:00:00Z", True),    # EST: UTC-5
    ("2013-07-01", 5, "2013-07-01T09:00:00Z", True),    # EDT: UTC-4
    ("2013-07-01", 5, "2013-07-01T10:00:00Z", False),   # an hour off (EST offset in summer)
    ("2013-01-01", 5, "2013-01-01T05:00:00Z", False),   # the local hour labelled UTC
    ("2013-01-01", 5, "2013-01-01T10:30:00Z", False),   # not the start of an hour
    ("2013-01-01", 23, "2013-01-02T04:00:00Z", True),   # the UTC date is the next day
    ("2013-11-03", 1, "2013-11-03T05:00:00Z", True),    # clocks go back: 01:00 EDT ...
    ("2013-11-03", 1, "2013-11-03T06:00:00Z", True),    # ... and 01:00 EST, both real
    ("2013-11-03", 2, "2013-11-03T07:00:00Z", True),
    ("2013-03-10", 1, "2013-03-10T06:00:00Z", True),    # clocks go forward: 01:00 EST
    ("2013-03-10", 3, "2013-03-10T07:00:00Z", True),    # then 03:00 EDT
    ("2013-03-10", 2, "2013-03-10T07:00:00Z", False),   # 02:00 does not exist that day
])
def test_time_hour_must_be_the_local_scheduled_hour(records: pd.DataFrame, when: str, hour: int,
                                                    time_hour: str, ok: bool) -> None:
    valid, quarantined = validate(_scheduled(records, when, hour, time_hour))
    if ok:
        assert quarantined.empty and len(valid) == 1
    else:
        assert valid.empty and list(quarantined[REASON_COLUMN]) == [TIME_HOUR_REASON]


def test_time_hour_is_not_checked_when_the_date_or_hour_is_already_wrong(
        records: pd.DataFrame) -> None:
    """One wrong value gives one reason, not a second one about time_hour."""
    row = records.head(1)
    _, quarantined = validate(pd.concat([row.assign(day=31, month=2), row.assign(hour=-5),
                                         row.assign(time_hour="soon")], ignore_index=True))
    assert TIME_HOUR_REASON not in " ".join(quarantined[REASON_COLUMN])
    assert len(quarantined) == 3
