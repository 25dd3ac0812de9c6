"""`mlops replay` end to end: a live uvicorn service, real Prefect, MLflow, Evidently, DVC.

The project is the session's small real feed (2,000 flights a month, January-May) with a
policy eager enough to retrain on the first replayed window, and certification gates scaled
to such small models: this test is about the loop's mechanics (the full-data figures are in
level4_retraining/README.md, measured with `make level4`).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from level3_deployment.client import free_port
from level4_retraining.drift_report import is_drift
from tests.helpers import REPO_ROOT, make, make_dvc_project, mlops, run

pytestmark = pytest.mark.slow

EAGER_POLICY = {"ignore_columns": ["month"], "drift_share_threshold": 0.05,
                "performance_drop_threshold": 0.03, "k_consecutive": 1, "cooldown_windows": 1,
                "min_samples": 500, "drift_severity": "retrain",
                "performance_severity": "retrain", "retrain_train_periods": 1}
LOOSE_GATES = {"min_roc_auc": 0.5, "max_log_loss": 0.9, "max_auc_drop": 0.5,
               "max_log_loss_increase": 0.5, "min_directional_shift": -1.0,
               "slice_min_roc_auc": 0.3}


@pytest.fixture(scope="module")
def replay_project(tmp_path_factory: pytest.TempPathFactory, l2_project: Path,
                   prefect_server: str) -> Path:
    project = make_dvc_project(tmp_path_factory.mktemp("replay") / "project")
    params = yaml.safe_load((l2_project / "params.yaml").read_text())
    params["monitor"] = EAGER_POLICY
    params["certify"] = {**params["certify"], **LOOSE_GATES}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"],
        project)
    mlops(project, "ingest")
    return project


def test_the_replay_retrains_certifies_promotes_and_hot_swaps(replay_project: Path) -> None:
    state = replay_project / "local" / "replay"
    # As the workshop types it: make level4 (ingest, then mlops replay).
    done = make("level4", "REPLAY_ARGS=--first 2013-04 --last 2013-05", project=replay_project)
    out = done.stdout
    assert "Initial champion: trained on 2013-01..2013-01" in out
    assert "Retrains promoted and hot-swapped: 1 (v2 at 2013-04)" in out, out
    assert "the live service answered with v2" in out
    assert "heartbeat" in out and ", 0 failed" in out.split("heartbeat")[-1].splitlines()[0]
    folder = state / "reports" / "level4" / "replay"
    rows = list(csv.DictReader((folder / "timeline.csv").open()))
    assert [r["period"] for r in rows] == ["2013-04", "2013-05"]
    assert rows[0]["decision"] == "retrain" and rows[0]["retrain"] == "promoted"
    assert rows[1]["champion"] == "2" and rows[1]["decision"] == "warn"
    assert "in cooldown after the retrain at 2013-04" in rows[1]["reason"]
    assert all(r["baseline_auc"] for r in rows)
    assert (folder / "auc_over_time.png").stat().st_size > 10_000
    assert "| 2013-04 |" in (folder / "timeline.md").read_text()
    # Every prediction of the replay is in its own log, the project's champion untouched.
    history = [json.loads(line) for line in
               (state / "reports" / "level4" / "history.jsonl").read_text().splitlines()]
    assert [h["result"]["n"] for h in history] == [2000, 2000]
    assert not (replay_project / "local" / "mlflow" / "mlflow.db").exists()
    from mlflow import MlflowClient

    store = MlflowClient(tracking_uri=f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    assert str(store.get_model_version_by_alias("flight-delay", "champion").version) == "2"
    status = json.loads(mlops(replay_project, "status", "--json").stdout)["monitoring"]
    assert status["windows"] == 0  # the project's own log is untouched
    assert status["replay"]["windows"] == 2 and status["replay"]["promoted"] == 1
    assert status["replay"]["last_decision"]["action"] == "warn"


def test_a_second_replay_starts_afresh(replay_project: Path) -> None:
    state = replay_project / "local" / "replay"
    if not state.exists():
        pytest.skip("needs the first replay")
    marker = state / "reports" / "level4" / "stale.txt"
    marker.write_text("from an earlier run")
    done = mlops(replay_project, "replay", "--first", "2013-04", "--last", "2013-04")
    assert "Retrains promoted and hot-swapped: 1 (v2 at 2013-04)" in done.stdout
    assert not marker.exists()
    history = (state / "reports" / "level4" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1


def test_a_replay_of_missing_months_says_what_to_do(replay_project: Path,
                                                    tmp_path: Path) -> None:
    done = mlops(replay_project, "replay", "--first", "2013-04", "--last", "2013-08",
                 "--state-dir", "local/elsewhere", check=False)
    assert done.returncode == 1
    assert "error:" in done.stderr and "2013-06" in done.stderr and "Traceback" not in done.stderr


def test_the_replay_refuses_to_empty_the_project_state(replay_project: Path) -> None:
    done = mlops(replay_project, "replay", "--state-dir", "local", check=False)
    assert done.returncode == 1 and "would empty the project's own state" in done.stderr


def test_the_workshop_exercise_make_drift(replay_project: Path) -> None:
    """Level 4's exercise, as typed: `make drift` sends every flight as if in a storm; the
    monitor sees the weather columns and the predictions drift, and the loop reacts."""
    done = make("drift", "DRIFT_ARGS=--first 2013-04 --last 2013-05", project=replay_project)
    assert "Retrains promoted and hot-swapped" in done.stdout, done.stdout
    report = json.loads((replay_project / "local" / "drift" / "reports" / "level4" / "windows"
                         / "2013-04.json").read_text())
    drifted = {m["config"]["column"] for m in report["metrics"]
               if m["config"]["type"].endswith("ValueDrift")
               and is_drift(float(m["value"]), m["config"])}
    assert {"visib", "wind_speed", "precip", "probability"} <= drifted
    rows = list(csv.DictReader((replay_project / "local" / "drift" / "reports" / "level4"
                                / "replay" / "timeline.csv").open()))
    assert rows[0]["decision"] == "retrain" and float(rows[0]["drift_share"]) >= 0.18


def test_make_evidently_ui_serves_the_replays_reports(replay_project: Path) -> None:
    """`make evidently-ui` opens the workspace the monitor flow writes to."""
    workspace = replay_project / "local" / "evidently"
    if not workspace.exists():
        pytest.skip("needs a replay")
    port = free_port()
    ui = subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO_ROOT), "evidently-ui",
                           f"EVIDENTLY_DIR={workspace}", f"EVIDENTLY_PORT={port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                projects = httpx.get(f"http://127.0.0.1:{port}/api/projects", timeout=5)
                if projects.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and ui.poll() is None, "evidently ui did not start"
            time.sleep(0.5)
        names = {p["name"] for p in projects.json()}
        assert "flight-delay replay" in names
        project = next(p for p in projects.json() if p["name"] == "flight-delay replay")
        runs = httpx.get(f"http://127.0.0.1:{port}/api/projects/{project['id']}/snapshots",
                         timeout=10)
        assert runs.status_code == 200 and len(runs.json()) >= 1
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
