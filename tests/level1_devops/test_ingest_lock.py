"""Concurrent ingestion: unique temporary files, one ingestion at a time (the project's lock)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from level1_devops import ingest as ingest_module
from level1_devops.ingest import LOCK_FILE, IngestLockTimeout, count_rows, ingest_lock, write_period
from level1_devops.validation import REASON_COLUMN
from tests.helpers import make_dvc_project, run

NO_QUARANTINE = pd.DataFrame({"x": pd.Series(dtype="int64"), REASON_COLUMN: pd.Series(dtype=str)})


def start_mlops(project: Path, *args: str) -> subprocess.Popen[str]:
    """Start the real `mlops` CLI against a project, without waiting for it."""
    env = {**os.environ, "MLOPS_PROJECT_DIR": str(project)}
    return subprocess.Popen([sys.executable, "-m", "level1_devops.cli", *args], cwd=project,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout_s: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout_s)
    return process.returncode, out, err


def test_temporary_files_are_named_by_process_and_never_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[str] = []
    replace = os.replace

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        moved.append(Path(src).name)
        replace(src, dst)

    monkeypatch.setattr(ingest_module.os, "replace", recording_replace)
    frame = pd.DataFrame({"x": [1, 2]})
    for _ in range(2):
        write_period(frame, NO_QUARANTINE, "2013-01", tmp_path / "raw", tmp_path / "quarantine")
    assert len(moved) == 4 and len(set(moved)) == 4
    assert all(f".{os.getpid()}." in name for name in moved)
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_writers_of_one_partition_never_collide(tmp_path: Path) -> None:
    frames = [pd.DataFrame({"x": range(n, n + 5_000)}) for n in (0, 1)]
    errors: list[BaseException] = []

    def write(frame: pd.DataFrame) -> None:
        try:
            for _ in range(40):
                write_period(frame, NO_QUARANTINE, "2013-01", tmp_path / "raw",
                             tmp_path / "quarantine")
        except BaseException as err:  # reported by the test, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=write, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    written = pd.read_parquet(tmp_path / "raw" / "2013-01.parquet")
    assert any(written.equals(f) for f in frames)
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_lock_is_exclusive_waits_then_says_who_holds_it(tmp_path: Path) -> None:
    with ingest_lock(tmp_path) as path:
        assert path == tmp_path / LOCK_FILE
        start = time.monotonic()
        held = re.escape(f"another ingestion (pid {os.getpid()}) holds {path}")
        with pytest.raises(IngestLockTimeout, match=held), ingest_lock(tmp_path, timeout_s=0.5):
            pass
        assert time.monotonic() - start >= 0.5
    with ingest_lock(tmp_path, timeout_s=0):  # released: taken at once
        pass
    assert not (tmp_path / LOCK_FILE).exists()  # leaves no file behind in the data folder


def test_a_second_ingest_waits_for_the_running_one(tmp_path: Path, small_feed: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    data = project / "data"
    with ingest_lock(data):  # an ingestion is running
        waiting = start_mlops(project, "ingest", "--source", str(small_feed), "--no-version")
        time.sleep(6)  # long enough to have ingested all of it, were it not waiting
        assert waiting.poll() is None and not (data / "raw").exists()
    code, out, err = finish(waiting)
    assert code == 0, err
    assert count_rows(data / "raw") == 1800 and "2013-03" in out


def test_a_second_ingest_gives_up_after_its_timeout_with_a_clear_error(
        tmp_path: Path, small_feed: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    with ingest_lock(project / "data"):
        code, _, err = finish(start_mlops(project, "ingest", "--source", str(small_feed),
                                          "--lock-timeout", "1"))
    assert code == 1 and "Traceback" not in err
    assert f"another ingestion (pid {os.getpid()}) holds {project / 'data' / LOCK_FILE}" in err
    assert "Nothing was ingested" in err and not (project / "data" / "raw").exists()


def test_two_ingests_at_once_ingest_each_period_once(tmp_path: Path, small_feed: Path) -> None:
    project = make_dvc_project(tmp_path / "project")
    both = [start_mlops(project, "ingest", "--source", str(small_feed)) for _ in range(2)]
    outcomes = [finish(p, timeout_s=300) for p in both]
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    # One ingested the three months; the other waited, then found nothing new.
    outs = sorted((out for _, out, _ in outcomes), key=lambda out: "2013-01" in out)
    assert ["2013-01" in out for out in outs] == [False, True]
    assert "Nothing new" in outs[0]
    data = project / "data"
    assert count_rows(data / "raw") == 1800 and count_rows(data / "quarantine") == 0
    assert not list(data.rglob("*.tmp")) and not (data / LOCK_FILE).exists()
    assert "in sync" in run([sys.executable, "-m", "dvc", "status", "--cloud"], project).stdout
