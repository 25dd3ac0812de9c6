"""The project's Prefect deployments on a real server: `prefect server start`, a process work
pool, `prefect worker start`, `prefect deploy --all` with the repository's prefect.yaml; a run
triggered over the server's API is executed by the worker, in this checkout.

The server keeps its state in SQLite under a temporary PREFECT_HOME (the team stack's
PostgreSQL is its own test's business); the registry and data are the session's project.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from team.processes import free_port, http_ok, run, start, stop, wait_until
from tests.helpers import REPO_ROOT
from tests.level3_deployment.conftest import set_champion

pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "team-pool"
# prefect.yaml's deployments, by their full names (flow/deployment).
DEPLOYMENTS = {
    "train": "scheduled-train/train",
    "batch-score": "scheduled-batch-score/batch-score",
    "monitor": "monitor-latest/monitor",
    "retrain": "retrain-on-demand/retrain",
}


@dataclass
class PrefectStack:
    api_url: str
    env: dict[str, str]
    logs_dir: Path


@pytest.fixture(scope="module")
def prefect_stack(l2_project: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[PrefectStack]:
    """`prefect server start` on a free loopback port, the `process` pool, one worker.

    The worker starts outside the checkout: the deployments' pull step takes each flow run
    there. Its flow runs inherit its environment (the session's project and MLflow store).
    """
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
           "MLOPS_WORK_POOL": POOL,
           # Poll every 2 s instead of 10: the test waits for the worker, not the clock.
           "PREFECT_WORKER_QUERY_SECONDS": "2"}
    server_log, worker_log = home / "server.log", home / "worker.log"
    server = start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                   server_log, env, cwd=home)
    processes = [server]
    try:
        wait_until(http_ok(f"{api_url}/health"), "prefect server", 180, server, server_log)
        run([PREFECT, "work-pool", "create", POOL, "--type", "process"], env=env, cwd=home)
        worker = start([PREFECT, "worker", "start", "--pool", POOL, "--name", "team-worker"],
                       worker_log, env, cwd=home)
        processes.append(worker)
        yield PrefectStack(api_url, env, home)
    finally:
        for process in reversed(processes):
            stop(process.pid)


@pytest.fixture(scope="module")
def deployed(prefect_stack: PrefectStack) -> str:
    """`prefect deploy --all` from the repository root, as a person types it."""
    return run([PREFECT, "--no-prompt", "deploy", "--all"], env=prefect_stack.env,
               cwd=REPO_ROOT, timeout=300).stdout


def api(stack: PrefectStack) -> Any:
    """A client of the test's server (this process's default API is the session's)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api=stack.api_url)


def test_deploy_all_registers_the_four_deployments_on_the_pool(
        prefect_stack: PrefectStack, deployed: str) -> None:
    with api(prefect_stack) as client:
        found = {key: client.read_deployment_by_name(name) for key, name in DEPLOYMENTS.items()}
    for key, deployment in found.items():
        assert deployment.work_pool_name == POOL, key
        # The worker runs the code of this checkout: nothing cloned, nothing uploaded.
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                          {"directory": str(REPO_ROOT)}}], key
    crons = {key: [s.schedule.cron for s in d.schedules if hasattr(s.schedule, "cron")]
             for key, d in found.items()}
    assert crons["monitor"] and crons["batch-score"] and crons["train"]
    assert crons["retrain"] == []  # on demand only
    assert found["retrain"].global_concurrency_limit.limit == 1
    assert set(found["batch-score"].parameter_openapi_schema["properties"]) == {"period"}


def test_a_batch_score_run_triggered_over_the_api_is_run_by_the_worker(
        prefect_stack: PrefectStack, deployed: str, trained: Any, l2_project: Path) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    set_champion(trained.version)
    out = l2_project / "local" / "reports" / "level3" / "batch" / (
        f"scores-2013-02-v{trained.version}.parquet")
    out.unlink(missing_ok=True)
    started = time.monotonic()
    with temporary_settings({PREFECT_API_URL: prefect_stack.api_url}), api(
            prefect_stack) as client:
        # Through the server's API, as the UI's "Run" button or another system triggers it.
        flow_run = run_deployment(DEPLOYMENTS["batch-score"], parameters={"period": "2013-02"},
                                  timeout=0)
        state = flow_run.state
        while time.monotonic() - started < 300 and not (state and state.is_final()):
            time.sleep(1)
            state = client.read_flow_run(flow_run.id).state
        final = client.read_flow_run(flow_run.id)
    worker_log = (prefect_stack.logs_dir / "worker.log").read_text(errors="replace")
    assert state is not None and state.is_completed(), (
        f"{state}: the end of the worker's log:\n{worker_log[-3000:]}")
    assert final.work_pool_name == POOL and final.parameters == {"period": "2013-02"}
    assert str(flow_run.id) in worker_log  # this worker, not an in-process run, ran it
    scores = pd.read_parquet(out)
    assert len(scores) and set(scores["model_version"]) == {trained.version}
    print(f"batch-score via the worker: {time.monotonic() - started:.1f} s")
