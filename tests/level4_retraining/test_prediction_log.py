"""The prediction log: every prediction kept, written off the request path, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from level1_devops.schema import EXAMPLE_RECORD
from level3_deployment.loading import LoadedModel
from level4_retraining.prediction_log import PredictionLog, read_predictions
from tests.level3_deployment.conftest import API_KEY, free_port, set_champion, wait_ready


def test_rows_are_written_by_day_and_read_back(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    assert log.flush() == 0 and not list(tmp_path.iterdir())
    day_one, day_two = 1_372_636_800.0, 1_372_723_200.0  # 2013-07-01 and 07-02, UTC
    model = LoadedModel(None, "flight-delay", "1", "", 0.3, 0)
    log.record("a", model, [{"origin": "JFK"}], [0.2], at=day_one)
    log.record("b", model, [{"origin": None}], [0.7], at=day_two)
    assert log.flush() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["date=2013-07-01", "date=2013-07-02"]
    assert not list(tmp_path.rglob("*.tmp"))
    rows = read_predictions(tmp_path)
    assert rows["request_id"].tolist() == ["a", "b"] and log.n_written == 2


@pytest.mark.slow
def test_a_graceful_shutdown_loses_no_logged_prediction(trained: Any, tmp_path: Path) -> None:
    """Real uvicorn: predictions answered just before SIGTERM are all in the log after it."""
    set_champion(trained.version)
    port = free_port()
    env = {**os.environ, "MLOPS_SERVICE_API_KEY": API_KEY,
           "MLOPS_PREDICTIONS_DIR": str(tmp_path / "predictions")}
    with (tmp_path / "service.log").open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "level1_devops.cli", "serve",
                                   "--app", "level4", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url)
        answered: dict[str, int] = {}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            for hour in range(5, 23):
                reply = http.post("/predict", json={**EXAMPLE_RECORD, "hour": hour}).json()
                answered[reply["request_id"]] = 1
            batch = http.post("/predict/batch", json={"flights": [EXAMPLE_RECORD] * 30}).json()
            answered[batch["request_id"]] = 30
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    logged = read_predictions(tmp_path / "predictions")
    counts = logged.groupby("request_id").size().to_dict()
    assert counts == answered  # 18 single + one batch of 30: every row, once
    assert set(logged["model_version"]) == {trained.version}
    assert {"origin", "dest", "probability", "timestamp", "row"} <= set(logged.columns)
