"""Evidently on real frames: the same month against itself, and winter against summer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from level1_devops.features import build_features
from level1_devops.feed import Feed
from level1_devops.schema import validate
from level4_retraining.drift_report import feature_drift


@pytest.fixture(scope="module")
def months(real_feed_dir: Path) -> dict[str, pd.DataFrame]:
    feed = Feed(real_feed_dir)
    frames = {}
    for period in ("2013-01", "2013-07"):
        valid, _ = validate(feed.read_period(period))
        frames[period] = build_features(valid.sample(3000, random_state=0))
    return frames


def test_winter_against_summer_drifts_and_a_month_against_itself_does_not(
        months: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    january, july = months["2013-01"], months["2013-07"]
    same = feature_drift(january.iloc[:1500], january.iloc[1500:], ignore=["month"])
    seasons = feature_drift(january, july, ignore=["month"])
    assert same.share < 0.2
    assert seasons.share > 0.3 and {"temp", "dewp"} <= set(seasons.drifted)
    assert "month" not in seasons.drifted
    html, js = seasons.save(tmp_path, "2013-07")
    assert html.stat().st_size > 100_000 and js.read_text().startswith("{")
