from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from level1_devops.feed import PERIOD_COLUMN, Feed, FeedError
from level1_devops.validation import SchemaError
from tests.helpers import write_feed


def test_the_package_feed_publishes_twelve_months(real_feed_dir: Path) -> None:
    feed = Feed(real_feed_dir)
    assert feed.periods() == [f"2013-{m:02d}" for m in range(1, 13)]
    assert len(feed.records) == 336_776  # the weather join adds no row
    assert feed.records["temp"].notna().mean() > 0.99


def test_a_period_holds_its_flights_with_weather(small_feed: Path) -> None:
    february = Feed(small_feed).read_period("2013-02")
    assert len(february) == 600 and PERIOD_COLUMN not in february
    assert {"temp", "visib", "source_row"} <= set(february.columns)


def test_an_unpublished_period_is_an_error(small_feed: Path) -> None:
    with pytest.raises(FeedError, match="no flights for 2013-07"):
        Feed(small_feed).read_period("2013-07")


def test_rows_with_an_unreadable_month_stay_in_the_file_order_period(
        tmp_path: Path, small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> None:
    flights = small_flights.astype(object)
    flights.loc[700, "month"] = "Feb"  # a February row (rows 600-1199)
    feed = Feed(write_feed(tmp_path, flights, real_weather))
    assert len(feed.read_period("2013-02")) == 600


def test_zipped_feed_is_read(tmp_path: Path, small_flights: pd.DataFrame,
                             real_weather: pd.DataFrame) -> None:
    feed = Feed(write_feed(tmp_path, small_flights, real_weather, zipped=True))
    assert len(feed.records) == len(small_flights)


def test_truncated_zip_is_a_clear_error(tmp_path: Path, small_flights: pd.DataFrame,
                                        real_weather: pd.DataFrame) -> None:
    write_feed(tmp_path, small_flights, real_weather, zipped=True)
    path = tmp_path / "flights.csv.zip"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FeedError, match=r"flights.csv.zip: cannot read the file"):
        _ = Feed(tmp_path).records


def test_truncated_csv_keeps_every_row(tmp_path: Path, small_flights: pd.DataFrame,
                                       real_weather: pd.DataFrame) -> None:
    write_feed(tmp_path, small_flights, real_weather)
    path = tmp_path / "flights.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 60])  # cut inside the last row
    assert len(Feed(tmp_path).records) == len(small_flights)


def test_missing_files_and_columns_name_the_file(tmp_path: Path, small_flights: pd.DataFrame,
                                                 real_weather: pd.DataFrame) -> None:
    with pytest.raises(FeedError, match="no flights.csv or flights.csv.zip"):
        _ = Feed(tmp_path).records
    write_feed(tmp_path, small_flights.drop(columns="carrier"), real_weather)
    with pytest.raises(SchemaError, match=r"flights.csv: missing columns: carrier"):
        _ = Feed(tmp_path).records
    write_feed(tmp_path, small_flights, real_weather.rename(columns={"visib": "visibility"}))
    with pytest.raises(SchemaError, match=r"weather.csv: missing columns: visib"):
        _ = Feed(tmp_path).records


def test_empty_feed_files_are_clear_errors(tmp_path: Path, small_flights: pd.DataFrame,
                                           real_weather: pd.DataFrame) -> None:
    write_feed(tmp_path, small_flights.head(0), real_weather)
    with pytest.raises(FeedError, match="header but no flights"):
        _ = Feed(tmp_path).records
    (tmp_path / "flights.csv").write_text("")
    with pytest.raises(FeedError, match="flights.csv: the file is empty"):
        _ = Feed(tmp_path).records


def test_a_zip_that_is_not_a_zip(tmp_path: Path, real_weather: pd.DataFrame) -> None:
    real_weather.to_csv(tmp_path / "weather.csv", index=False)
    (tmp_path / "flights.csv.zip").write_bytes(b"not a zip at all")
    assert not zipfile.is_zipfile(tmp_path / "flights.csv.zip")
    with pytest.raises(FeedError, match="flights.csv.zip: cannot read"):
        _ = Feed(tmp_path).records


def _reformatted(weather: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """The weather with its time_hour written another way (the same instants)."""
    when = pd.to_datetime(weather["time_hour"], utc=True)
    if fmt == "offset":  # local time with its offset, e.g. 2013-01-01T01:00:00-05:00
        text = when.dt.tz_convert("America/New_York").map(lambda t: t.isoformat())
    else:  # naive, space-separated, e.g. 2013-01-01 06:00:00 (UTC, as the schema says)
        text = when.dt.strftime("%Y-%m-%d %H:%M:%S")
    return weather.assign(time_hour=text)


@pytest.mark.parametrize("fmt", ["offset", "naive"])
def test_weather_joins_on_the_instant_not_on_the_text(tmp_path: Path, small_flights: pd.DataFrame,
                                                      real_weather: pd.DataFrame,
                                                      fmt: str) -> None:
    expected = Feed(write_feed(tmp_path / "same", small_flights, real_weather)).records
    other = _reformatted(real_weather, fmt)
    assert not other["time_hour"].isin(small_flights["time_hour"]).any()
    records = Feed(write_feed(tmp_path / fmt, small_flights, other)).records
    assert records["temp"].notna().mean() > 0.99
    pd.testing.assert_frame_equal(records, expected)  # time_hour as the flights file has it


def test_a_weather_file_no_flight_finds_its_weather_in_is_a_feed_error(
        tmp_path: Path, small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> None:
    # The weather of another year: well-formed, but no flight's hour is in it.
    shifted = pd.to_datetime(real_weather["time_hour"], utc=True) + pd.DateOffset(years=1)
    weather = real_weather.assign(time_hour=shifted.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    feed = Feed(write_feed(tmp_path, small_flights, weather))
    with pytest.raises(FeedError, match=r"weather.csv: no flight found its weather .*"
                                        r"2013-01-01T\d\d:00:00Z.*2014-01-01T"):
        _ = feed.records


def test_flights_without_a_readable_time_hour_get_no_weather(
        tmp_path: Path, small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> None:
    flights = small_flights.astype(object)
    flights.loc[:1, ["origin", "time_hour"]] = ["EWR", "soon"]
    weather = real_weather.astype(object)
    weather.loc[:1, ["origin", "time_hour"]] = ["EWR", "soon"]  # unreadable on both sides
    records = Feed(write_feed(tmp_path, flights, weather)).records
    assert records.loc[:1, "temp"].isna().all() and records.loc[2:, "temp"].notna().mean() > 0.99
    assert list(records.loc[:1, "time_hour"]) == ["soon", "soon"]
