"""The prediction log under failure: a failed write keeps its rows, bounded and counted;
several writers share a folder; an unreadable file never stops monitoring."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from level1_devops.settings import PROJ_ROOT, Settings
from level3_deployment.loading import LoadedModel
from level4_retraining.prediction_log import PredictionLog, log_files, read_predictions

MODEL = LoadedModel(None, "flight-delay", "1", "", 0.3, 0)
DAY_ONE, DAY_TWO = 1_372_636_800.0, 1_372_723_200.0  # 2013-07-01 and 07-02, UTC


def record(log: PredictionLog, request_id: str, n: int = 1, at: float = DAY_ONE) -> None:
    log.record(request_id, MODEL, [{"hour": h} for h in range(n)], [0.5] * n, at=at)


def counts(folder: Path) -> dict[str, int]:
    return read_predictions(folder).groupby("request_id").size().to_dict()


def test_a_failed_flush_keeps_its_rows_and_a_later_one_writes_them_once(tmp_path: Path) -> None:
    blocker = tmp_path / "disk"
    blocker.write_text("a file where the log's parent folder should be")
    folder = blocker / "predictions"
    log = PredictionLog(folder)
    record(log, "a", 2)
    record(log, "b", 1, at=DAY_TWO)
    with pytest.raises(OSError):
        log.flush()
    assert log.n_failed_flushes == 1 and log.n_buffered == 3 and log.n_written == 0
    record(log, "c", 1)  # answered while the disk is still failing
    with pytest.raises(OSError):
        log.flush()
    assert log.n_failed_flushes == 2 and log.n_buffered == 4
    blocker.unlink()  # the disk is back
    assert log.flush() == 4 and log.n_buffered == 0 and log.flush() == 0
    assert counts(folder) == {"a": 2, "b": 1, "c": 1} and log.n_written == 4
    assert log.n_dropped == 0 and not list(folder.rglob("*.tmp"))


def test_a_flush_that_fails_on_one_day_writes_the_others_exactly_once(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    record(log, "a", 2, at=DAY_ONE)
    record(log, "b", 3, at=DAY_TWO)
    (tmp_path / "date=2013-07-02").write_text("not a folder")  # only the second day fails
    with pytest.raises(OSError):
        log.flush()
    assert log.n_written == 2 and log.n_buffered == 3
    (tmp_path / "date=2013-07-02").unlink()
    assert log.flush() == 3
    assert counts(tmp_path) == {"a": 2, "b": 3}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_folder_keeps_the_rows(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    folder.mkdir()
    folder.chmod(0o500)
    log = PredictionLog(folder)
    record(log, "a", 2)
    try:
        with pytest.raises(OSError):
            log.flush()
    finally:
        folder.chmod(0o700)
    assert log.flush() == 2 and counts(folder) == {"a": 2}


def test_past_the_bound_the_oldest_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    blocker = tmp_path / "disk"
    blocker.write_text("")
    log = PredictionLog(blocker / "predictions", max_buffered_rows=5)
    record(log, "a", 3)
    with pytest.raises(OSError):
        log.flush()
    record(log, "b", 3)  # one row too many: the oldest goes
    assert log.n_buffered == 5 and log.n_dropped == 1
    record(log, "c", 7)  # a request larger than the whole buffer keeps its last 5 rows
    assert log.n_buffered == 5 and log.n_dropped == 8
    blocker.unlink()
    assert log.flush() == 5
    logged = read_predictions(blocker / "predictions")
    assert logged["request_id"].tolist() == ["c"] * 5 and logged["row"].tolist() == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="max_buffered_rows"):
        PredictionLog(tmp_path, max_buffered_rows=0)


def test_the_log_counters_are_on_metrics(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from level3_deployment.params import DeploymentParams
    from level4_retraining.logged_service import PredictionLogCollector, create_app

    blocker = tmp_path / "disk"
    blocker.write_text("")
    log = PredictionLog(blocker / "predictions", max_buffered_rows=2)
    record(log, "a", 3)
    with pytest.raises(OSError):
        log.flush()
    registry = CollectorRegistry()
    registry.register(PredictionLogCollector(log))
    text = generate_latest(registry).decode()
    assert "mlops_prediction_log_rows_dropped_total 1.0" in text
    assert "mlops_prediction_log_flush_failures_total 1.0" in text
    assert "mlops_prediction_log_rows_buffered 2.0" in text

    # The Level 4 app registers it: its /metrics shows the series from the start.
    settings = Settings(project_dir=tmp_path)
    app = create_app(settings, DeploymentParams.load(PROJ_ROOT))
    served = generate_latest(app.state.service.metrics.registry).decode()
    assert "mlops_prediction_log_rows_dropped_total 0.0" in served
    assert "mlops_prediction_log_flush_failures_total 0.0" in served


# Several workers, one folder.

WORKER = textwrap.dedent("""
    import sys, time
    time.time_ns = lambda: 1_372_636_800_000_000_000  # every worker at the same nanosecond
    from pathlib import Path
    from level3_deployment.loading import LoadedModel
    from level4_retraining.prediction_log import PredictionLog
    log = PredictionLog(Path(sys.argv[1]))
    model = LoadedModel(None, "flight-delay", "1", "", 0.3, 0)
    for i in range(2):
        log.record(sys.argv[2], model, [{"hour": i}], [0.5], at=1_372_636_800.0)
        log.flush()
""")


def test_workers_sharing_a_folder_never_overwrite_each_other(tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    for worker in ("w1", "w2"):
        subprocess.run([sys.executable, "-c", WORKER, str(folder), worker], check=True,
                       cwd=PROJ_ROOT, timeout=120)
    assert counts(folder) == {"w1": 2, "w2": 2}
    assert len(log_files(folder)) == 4


def test_file_names_carry_the_process_id_and_old_names_are_still_read(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    record(log, "new", 2)
    log.flush()
    (written,) = log_files(tmp_path)
    assert re.fullmatch(rf"part-{os.getpid()}-\d+\.parquet", written.name), written.name
    old = tmp_path / "date=2013-06-30" / "part-1372550400000000000.parquet"  # before the pid
    old.parent.mkdir()
    pd.read_parquet(written).assign(request_id="old", timestamp=DAY_ONE - 3600).to_parquet(old)
    assert log_files(tmp_path)[0] == old
    assert counts(tmp_path) == {"new": 2, "old": 2}


# An unreadable file is skipped, named in a warning.

def test_an_unreadable_file_is_skipped_with_a_warning_naming_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = PredictionLog(tmp_path)
    record(log, "a", 2, at=DAY_ONE)
    record(log, "b", 3, at=DAY_TWO)
    log.flush()
    good = log_files(tmp_path)[0]
    data = good.read_bytes()
    broken = {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"PAR1 not parquet"}
    paths = []
    for i, (name, content) in enumerate(broken.items()):
        path = good.parent / f"part-{i}-{name}.parquet"
        path.write_bytes(content)
        paths.append(path)
    with caplog.at_level(logging.WARNING, logger="mlops.prediction_log"):
        assert counts(tmp_path) == {"a": 2, "b": 3}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for path in paths:
        assert str(path) in warned
    for path in log_files(tmp_path):
        if path.parent.name == "date=2013-07-02":
            path.write_bytes(b"")
    assert counts(tmp_path) == {"a": 2}
    for path in log_files(tmp_path):
        path.write_bytes(b"")
    assert read_predictions(tmp_path).empty
