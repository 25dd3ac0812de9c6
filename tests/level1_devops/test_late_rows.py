"""Late rows: rows published for a period already ingested are reported, and `--force`
re-ingests that period whole."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from level1_devops import ingest as ingest_module
from level1_devops.feed import Feed
from level1_devops.ingest import LateRows, count_rows, ingest, ingested_periods, late_rows
from tests.helpers import file_digests, make_dvc_project, mlops, run, write_feed


@pytest.fixture
def feeds(tmp_path: Path, small_flights: pd.DataFrame,
          real_weather: pd.DataFrame) -> tuple[Path, Path]:
    """(early, later): early publishes 500 of January's 600 flights and all of February; later
    publishes the 100 missing January flights too (one of them broken) and March."""
    january = small_flights.index[small_flights["month"] == 1]
    late = january[-100:]
    early = small_flights.drop(late)
    early = early[early["month"] <= 2]
    later = small_flights.astype(object)
    later.loc[late[0], "distance"] = "far"
    return (write_feed(tmp_path / "early", early, real_weather),
            write_feed(tmp_path / "later", later, real_weather))


def test_late_rows_of_an_ingested_period_are_reported_and_not_ingested(
        tmp_path: Path, feeds: tuple[Path, Path]) -> None:
    early, later = feeds
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    ingest(Feed(early), raw, quarantine)
    assert late_rows(Feed(early), raw, quarantine) == []
    before = file_digests(tmp_path)
    assert [r.period for r in ingest(Feed(later), raw, quarantine)] == ["2013-03"]
    report = late_rows(Feed(later), raw, quarantine)
    assert report == [LateRows("2013-01", n_published=600, n_ingested=500)]
    assert report[0].n_late == 100
    after = file_digests(tmp_path)
    assert {k: v for k, v in after.items() if "2013-03" not in k} == before  # January kept


def test_force_reingests_a_period_whole(tmp_path: Path, feeds: tuple[Path, Path]) -> None:
    early, later = feeds
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    ingest(Feed(early), raw, quarantine)
    [redone] = ingest(Feed(later), raw, quarantine, periods=["2013-01"], force=True)
    assert (redone.period, redone.n_rows, redone.n_raw, redone.n_quarantined) == (
        "2013-01", 600, 599, 1)
    assert len(pd.read_parquet(raw / "2013-01.parquet")) == 599
    assert late_rows(Feed(later), raw, quarantine) == []
    assert ingested_periods(raw) == ["2013-01", "2013-02"]  # March was not asked for
    # Without force, naming an ingested period re-ingests nothing.
    assert ingest(Feed(later), raw, quarantine, periods=["2013-01"]) == []


def test_a_reingest_that_fails_midway_leaves_the_period_to_be_redone_whole(
        tmp_path: Path, feeds: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    early, later = feeds
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    ingest(Feed(early), raw, quarantine)
    replace = os.replace

    def crash_on_raw(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).parent == raw:
            raise OSError("disk gone")
        replace(src, dst)

    monkeypatch.setattr(ingest_module.os, "replace", crash_on_raw)
    with pytest.raises(OSError, match="disk gone"):
        ingest(Feed(later), raw, quarantine, periods=["2013-01"], force=True)
    monkeypatch.undo()
    # Never the new quarantine beside the old raw rows: January is not ingested any more.
    assert ingested_periods(raw) == ["2013-02"] and not list(tmp_path.rglob("*.tmp"))
    assert [r.period for r in ingest(Feed(later), raw, quarantine, until="2013-02")] == [
        "2013-01"]
    assert count_rows(raw) + count_rows(quarantine) == 1200


def test_cli_reports_late_rows_then_force_reingests_and_versions(
        tmp_path: Path, feeds: tuple[Path, Path]) -> None:
    early, later = feeds
    project = make_dvc_project(tmp_path / "project")
    mlops(project, "ingest", "--source", str(early))
    lock = (project / "dvc.lock").read_bytes()

    reported = mlops(project, "ingest", "--source", str(later), "--until", "2013-02").stdout
    assert "Nothing new" in reported
    assert "2013-01: 100 published rows are in neither raw nor quarantine" in reported
    assert "mlops ingest --period 2013-01 --force" in reported
    assert len(pd.read_parquet(project / "data" / "raw" / "2013-01.parquet")) == 500
    assert (project / "dvc.lock").read_bytes() == lock

    refused = mlops(project, "ingest", "--source", str(later), "--period", "2013-01").stdout
    assert "2013-01 is already ingested" in refused and "--force" in refused

    forced = mlops(project, "ingest", "--source", str(later), "--period", "2013-01", "--force")
    assert "Versioned with DVC" in forced.stdout and "in neither" not in forced.stdout
    raw = pd.read_parquet(project / "data" / "raw" / "2013-01.parquet")
    quarantined = pd.read_parquet(project / "data" / "quarantine" / "2013-01.parquet")
    assert (len(raw), len(quarantined)) == (599, 1)
    assert (project / "dvc.lock").read_bytes() != lock
    assert ingested_periods(project / "data" / "raw") == ["2013-01", "2013-02"]
    assert "in sync" in run([sys.executable, "-m", "dvc", "status", "--cloud"], project).stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--force"], "--force re-ingests the periods named with --period"),
    (["--period", "2013-07"], "the feed has published no flights for 2013-07"),
])
def test_cli_refuses_unclear_reingestion(tmp_path: Path, small_feed: Path, args: list[str],
                                         message: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    done = mlops(project, "ingest", "--source", str(small_feed), *args, check=False)
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
    assert not (project / "data" / "raw").exists()
