"""Tuning on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
loopback, the candidates spread over both, and every report naming the worker that fit each."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from level1_devops.settings import Settings
from team.processes import free_port, listening, port_open, start, stop, wait_until
from tests.helpers import context, mlops

pytestmark = pytest.mark.slow

WORKERS = ("worker-a", "worker-b")
BIN = Path(sys.executable).parent




@pytest.fixture(scope="module")
def dask_processes(prefect_server: str, l2_project: Path,
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """`dask scheduler` + two one-thread `dask worker` processes; yields the address and
    the processes (the scheduler first).

    Every HTTP server (the scheduler's dashboard, each worker's dashboard, /metrics and
    /health) binds 127.0.0.1: a worker opens its HTTP server on all interfaces even with
    --no-dashboard.

    The workers run Prefect tasks, so they inherit this process's environment: the session's
    Prefect API (PREFECT_API_URL) and the project's settings.
    """
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ)
    scheduler = start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                       str(port), "--dashboard-address", "127.0.0.1:0"],
                      logs / "scheduler.log", env)
    processes = [scheduler]
    try:
        wait_until(port_open(port), "dask scheduler", 60, scheduler, logs / "scheduler.log")
        for name in WORKERS:
            processes.append(start(
                [str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1",
                 "--nworkers", "1", "--host", "127.0.0.1",
                 "--dashboard-address", "127.0.0.1:0"],
                logs / f"{name}.log", env))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(len(WORKERS), timeout=120)
        yield address, processes
    finally:
        for process in reversed(processes):
            stop(process.pid)


@pytest.fixture(scope="module")
def dask_cluster(dask_processes: tuple[str, list[subprocess.Popen[bytes]]]) -> str:
    """The scheduler's address."""
    return dask_processes[0]


def test_every_listener_of_the_cluster_is_on_loopback(
        dask_processes: tuple[str, list[subprocess.Popen[bytes]]]) -> None:
    address, processes = dask_processes
    scheduler, *workers = processes
    assert ("127.0.0.1", int(address.rsplit(":", 1)[1])) in listening(scheduler.pid)
    assert len(listening(scheduler.pid)) >= 2  # the scheduler and its dashboard
    for process in workers:
        assert len(listening(process.pid)) >= 3  # nanny, worker, the worker's HTTP server
    for process in processes:
        assert {ip for ip, _ in listening(process.pid)} == {"127.0.0.1"}, listening(process.pid)


def test_candidates_spread_over_both_workers_and_each_names_its_worker(
        dask_cluster: str, trained: Any) -> None:
    from prefect_dask import DaskTaskRunner

    from level2_training.flows import dask_runner, tune

    settings, params = context()
    settings = settings.model_copy(update={"dask_scheduler_address": dask_cluster})
    runner = dask_runner(settings)
    assert isinstance(runner, DaskTaskRunner) and runner.address == dask_cluster
    grid = [{"learning_rate": lr, "max_leaf_nodes": leaves}
            for lr in (0.05, 0.1) for leaves in (7, 15, 31)]
    params = params.model_copy(update={"tune": params.tune.model_copy(
        update={"candidates": grid})})
    result = tune.with_options(task_runner=runner)(settings, params, register_best=False)

    assert [c.index for c in result.candidates] == list(range(len(grid)))
    assert {c.worker for c in result.candidates} == set(WORKERS)  # both workers did work
    assert all(c.worker_address.startswith("tcp://127.0.0.1:") for c in result.candidates)
    client = MlflowClient(tracking_uri=Settings().tracking_uri)
    for c in result.candidates:
        run = client.get_run(c.run_id)
        assert run.data.tags["mlflow.parentRunId"] == result.run_id
        assert run.data.tags["dask_worker"] == c.worker
        assert run.data.tags["dask_worker_address"] == c.worker_address
        assert run.data.metrics["validation_roc_auc"] == pytest.approx(c.validation_roc_auc)
    parent = client.get_run(result.run_id)
    assert parent.data.tags["tuning.workers"] == ", ".join(WORKERS)
    assert result.version == "" and not result.created  # --no-register: nothing registered


def test_mlops_tune_prints_the_worker_of_each_candidate(dask_cluster: str, trained: Any,
                                                        l2_project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DASK_SCHEDULER_ADDRESS", dask_cluster)
    done = mlops(l2_project, "tune", "--no-register")
    # One row per candidate: "* 0  0.6812  worker-a (tcp://127.0.0.1:41234)  {...}".
    row = re.compile(r"^[* ]\s+(\d+)\s+0\.\d{4}\s+(worker-[ab]) \(tcp://127\.0\.0\.1:\d+\)")
    rows = [m.groups() for m in map(row.match, done.stdout.splitlines()) if m]
    n = len(context()[1].tune.candidates)
    assert [int(i) for i, _ in rows] == list(range(n)), done.stdout
    assert "candidates on" in done.stdout and "(* best)" in done.stdout


def test_outside_a_dask_worker_a_candidate_says_local() -> None:
    from level2_training.tasks import running_worker

    assert running_worker() == ("local", "")
