from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from level1_devops.feed import Feed
from level1_devops.ingest import count_rows, ingest, ingested_periods
from level1_devops.validation import REASON_COLUMN
from tests.helpers import corrupt, file_digests, make, make_dvc_project, mlops, run, write_feed


def test_every_row_ends_in_raw_or_quarantine(tmp_path: Path, small_feed: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    results = ingest(Feed(small_feed), raw, quarantine)
    assert [r.period for r in results] == ["2013-01", "2013-02", "2013-03"]
    assert count_rows(raw) + count_rows(quarantine) == 1800
    assert count_rows(raw) == 1800  # the real rows are valid


def test_rerun_ingests_nothing_and_changes_no_byte(tmp_path: Path, small_feed: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    ingest(Feed(small_feed), raw, quarantine)
    before = file_digests(tmp_path)
    assert ingest(Feed(small_feed), raw, quarantine) == []
    assert file_digests(tmp_path) == before


def test_until_pulls_periods_as_they_are_due(tmp_path: Path, small_feed: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    assert [r.period for r in ingest(Feed(small_feed), raw, quarantine, "2013-01")] == [
        "2013-01"]
    assert [r.period for r in ingest(Feed(small_feed), raw, quarantine)] == [
        "2013-02", "2013-03"]


def test_corrupted_feed_accounts_for_every_row(tmp_path: Path, small_flights: pd.DataFrame,
                                               real_weather: pd.DataFrame) -> None:
    broken, n_broken = corrupt(small_flights)
    feed = write_feed(tmp_path / "feed", broken, real_weather)
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    results = ingest(Feed(feed), raw, quarantine)
    assert sum(r.n_rows for r in results) == len(broken)
    assert count_rows(raw) + count_rows(quarantine) == len(broken)
    assert count_rows(quarantine) == n_broken
    quarantined = pd.concat(pd.read_parquet(p) for p in sorted(quarantine.glob("*.parquet")))
    assert quarantined[REASON_COLUMN].str.len().gt(0).all()
    assert quarantined["source_row"].notna().all()  # traceable to its line in the file


def test_a_broken_feed_leaves_ingested_data_intact(tmp_path: Path, small_flights: pd.DataFrame,
                                                   real_weather: pd.DataFrame) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    good = write_feed(tmp_path / "good", small_flights[small_flights["month"] == 1], real_weather)
    ingest(Feed(good), raw, quarantine)
    before = file_digests(raw)
    renamed = write_feed(tmp_path / "renamed", small_flights.rename(columns={"dest": "to"}),
                         real_weather)
    with pytest.raises(ValueError, match="missing columns: dest"):
        ingest(Feed(renamed), raw, quarantine)
    assert file_digests(raw) == before and ingested_periods(raw) == ["2013-01"]


@pytest.fixture
def dvc_project(tmp_path: Path) -> Path:
    return make_dvc_project(tmp_path / "project")


def test_cli_ingest_versions_with_dvc_and_reruns_clean(dvc_project: Path, small_flights,
                                                       real_weather) -> None:
    broken, n_broken = corrupt(small_flights)
    feed = write_feed(dvc_project.parent / "feed", broken, real_weather)
    done = mlops(dvc_project, "ingest", "--source", str(feed))
    assert "Versioned with DVC" in done.stdout and "quarantined" in done.stdout
    status = json.loads(mlops(dvc_project, "status", "--json").stdout)["data"]
    assert status["rows_raw"] + status["rows_quarantined"] == len(broken)
    assert status["rows_quarantined"] == n_broken
    assert status["n_periods"] == 3 and status["dvc_remote_in_sync"] is True
    cloud = run([sys.executable, "-m", "dvc", "status", "--cloud"], dvc_project).stdout
    assert "in sync" in cloud
    lock = (dvc_project / "dvc.lock").read_bytes()
    before = file_digests(dvc_project / "data")
    again = mlops(dvc_project, "ingest", "--source", str(feed))
    assert "Nothing new" in again.stdout
    assert (dvc_project / "dvc.lock").read_bytes() == lock
    assert file_digests(dvc_project / "data") == before


def test_cli_reports_a_broken_feed_without_a_traceback(dvc_project: Path,
                                                       real_weather: pd.DataFrame) -> None:
    feed = dvc_project.parent / "feed"
    feed.mkdir()
    real_weather.to_csv(feed / "weather.csv", index=False)
    (feed / "flights.csv.zip").write_bytes(b"PK\x03\x04 cut short")
    done = mlops(dvc_project, "ingest", "--source", str(feed), check=False)
    assert done.returncode == 1
    assert "error:" in done.stderr and "flights.csv.zip" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (dvc_project / "data" / "raw").exists()


def test_the_workshop_exercise_make_quarantine(tmp_path: Path) -> None:
    """Level 1's exercise, as typed: a broken copy of January ingested into a scratch project."""
    done = make("quarantine", f"WORKSHOP_DIR={tmp_path}")
    raw = pd.read_parquet(tmp_path / "project" / "data" / "raw" / "2013-01.parquet")
    quarantined = pd.read_parquet(tmp_path / "project" / "data" / "quarantine" / "2013-01.parquet")
    assert len(raw) + len(quarantined) == 27_006 and len(quarantined) == 9_004, done.stdout
    assert quarantined["reason"].str.len().gt(0).all()
