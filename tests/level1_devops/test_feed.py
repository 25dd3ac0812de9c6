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
