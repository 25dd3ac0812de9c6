"""The team profile's price and what its second workers buy, against the laptop, one run.

A small real project (2,000 real flights a month, January-June: tests/team_profile/project.py)
and the team stack of team/stack.py started on it (PostgreSQL, the MLflow server with basic
auth, the Prefect server and worker, a Dask scheduler with two workers, two scoring-service
processes, Prometheus), every process on 127.0.0.1, the project and the stack in temporary
folders removed at the end:
  (1) the same `mlops` commands on the laptop profile (embedded SQLite MLflow, a local Prefect
      API started by each flow command, the prediction log in files) and on the team profile
      (every call over HTTP to the servers, the log and the policy's history in PostgreSQL),
      each timed as a subprocess, as a user waits for it: `train`, `promote`, then
      `monitor --window 2013-05` once May's flights went through a service (one `mlops serve`
      on the laptop; the stack's two processes, half each). Floors, same run and same
      environments: `mlops --help` (a Python process and the CLI), a process that only
      imports the libraries those commands load (MLflow, Prefect, scikit-learn, Evidently),
      and one that runs an empty Prefect flow (on the laptop: Prefect's ephemeral API
      started in the process, as `mlops train` and `mlops monitor` start it).
  (2) `mlops tune --no-register` (the team tests' four candidates with 1,500 trees each, so
      that fitting them is worth sharing; same data) on the stack's scheduler with its two
      workers, against a second scheduler with one worker: the command's time, and the
      candidates' span (first start to last end) as the Prefect server recorded their runs.
  (3) /predict throughput at 32 connections (wrk, a real record): the stack's two service
      processes driven at once (two wrk, 16 connections each, summed) against one of them
      (one wrk, 32 connections), alternated. Two processes on two ports, as the team profile
      deploys them, not `mlops serve --workers 2`: they are what the stack runs, what each
      log to PostgreSQL and what Prometheus scrapes.
Ratios, no targets: on a 2-core machine the stack's idle servers, wrk and the services share
the same two cores, so (2) and (3) show what a second worker buys here, not on a cluster.
Needs wrk (`apt-get install wrk`) and the team stack's packages (`make team-up` installs them).

    uv run python benchmarks/team_profile.py [--seconds 10] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

os.environ.setdefault("OMP_NUM_THREADS", "1")

WINDOW = "2013-05"  # scored through the services, then monitored
TUNE_MAX_ITER = 1500  # trees per tuning candidate: a few seconds' fit each here
LIBRARY_IMPORTS = ("import level2_training.flows, level3_deployment.release, "
                   "level4_retraining.monitor_flow")
# An empty flow run: on the laptop it starts Prefect's ephemeral API in the process, as
# `mlops train` and `mlops monitor` do; on the team profile it talks to the server.
EMPTY_FLOW = ("from level1_devops.settings import Settings\n"
              "from level2_training.orchestration import configure_process\n"
              "configure_process(Settings())\n"
              "from prefect import flow\n"
              "@flow(name='bench-empty')\n"
              "def empty() -> None:\n    pass\n"
              "empty()\n")
OWN_PREFIXES = ("MLOPS_", "MLFLOW_", "PREFECT_", "DASK_")
LAPTOP_FOLDERS = {"LOCAL_DIR": ".", "MLFLOW_DIR": "mlflow", "PREFECT_HOME": "prefect",
                  "REPORTS_DIR": "reports", "MODELS_DIR": "models",
                  "PREDICTIONS_DIR": "predictions", "EVIDENTLY_DIR": "evidently"}


def clean_environ() -> dict[str, str]:
    """This process's environment without any project, MLflow, Prefect or Dask variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}


def laptop_env(project_dir: Path, feed_dir: Path, state_dir: Path) -> dict[str, str]:
    """The laptop profile on the same project: every store under ``state_dir``, no server."""
    folders = {f"MLOPS_{name}": str(state_dir / sub) for name, sub in LAPTOP_FOLDERS.items()}
    return {**clean_environ(), "MLOPS_PROJECT_DIR": str(project_dir),
            "MLOPS_FEED_DIR": str(feed_dir), **folders}


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Wall seconds of one command run as a subprocess with ``env``, and its output."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=env["MLOPS_PROJECT_DIR"], env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:5])} failed ({done.returncode}):\n{output[-4000:]}")
    return seconds, output


def mlops(env: dict[str, str], *args: str) -> tuple[float, str]:
    return timed(env, sys.executable, "-m", "level1_devops.cli", *args)


def floors(env: dict[str, str]) -> dict[str, float]:
    """What every command pays before its work, in this environment (medians)."""
    # The first flow on a new PREFECT_HOME (the laptop's) also creates Prefect's database,
    # once: warmed up here, not counted.
    timed(env, sys.executable, "-c", EMPTY_FLOW)
    return {
        "floor: mlops --help": statistics.median(mlops(env, "--help")[0] for _ in range(3)),
        "floor: import the flows' libraries": statistics.median(
            timed(env, sys.executable, "-c", LIBRARY_IMPORTS)[0] for _ in range(2)),
        "floor: an empty Prefect flow": timed(env, sys.executable, "-c", EMPTY_FLOW)[0],
    }


def say(line: str) -> None:
    """Progress, on stderr: the results alone go to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _quiet(items: Iterable[Any], what: str) -> Iterable[Any]:
    return items


def buffered_rows(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r"^mlops_prediction_log_rows_buffered (\S+)$", metrics, re.M)
    return float(found[1]) if found else 0.0


def score_window(urls: list[str], flights: pd.DataFrame, batch_rows: int) -> None:
    """The window's flights through the services (an equal share each), until each log has
    written every row."""
    from level3_deployment.client import wait_ready
    from level4_retraining.replay import send_period

    share = -(-len(flights) // len(urls))
    for i, url in enumerate(urls):
        wait_ready(url, timeout_s=120)
        with httpx.Client(base_url=url, timeout=60) as http:
            part = flights.iloc[i * share:(i + 1) * share]
            if send_period(http, part, batch_rows, _quiet, WINDOW):
                raise SystemExit(f"{url} refused some of {WINDOW}'s flights")
    deadline = time.monotonic() + 60
    while any(buffered_rows(url) for url in urls) and time.monotonic() < deadline:
        time.sleep(0.2)


@contextmanager
def process_group(args: list[str], log_path: Path, env: dict[str, str]) -> Iterator[int]:
    """A server in a process group of its own (a Dask worker's nanny has a child); its pid.
    Stopped by that group's id on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        yield process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def laptop_service(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`mlops serve --app level4` with the laptop env on a free port; its URL once ready."""
    from level3_deployment.client import free_port, wait_ready

    port = free_port()
    with process_group([sys.executable, "-m", "level1_devops.cli", "serve", "--app", "level4",
                        "--port", str(port)], log_path, env):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout_s=120)
        yield url


@contextmanager
def one_worker_scheduler(env: dict[str, str], folder: Path) -> Iterator[str]:
    """A second Dask scheduler with one worker (the stack's worker command); its address."""
    from level3_deployment.client import free_port
    from team import services as svc

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    with process_group([str(svc.BIN_DIR / "dask"), "scheduler", "--host", "127.0.0.1",
                        "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                       folder / "scheduler.log", env), \
         process_group(svc.dask_worker_command(address, "bench-one-worker", folder),
                       folder / "worker.log", env):
        deadline = time.monotonic() + 120
        while not svc.dask_workers_seen(address, 1):
            if time.monotonic() > deadline:
                raise SystemExit(f"the one-worker Dask cluster did not start; see {folder}")
            time.sleep(0.5)
        yield address


def candidates_span(env: dict[str, str], n_candidates: int) -> tuple[float, float]:
    """The newest tune's candidates as the Prefect server recorded them: seconds from the
    first one's start to the last one's end, and the sum of their run times."""
    from team.services import basic_auth

    reply = httpx.post(f"{env['PREFECT_API_URL']}/task_runs/filter", timeout=30,
                       headers=basic_auth(env["PREFECT_API_AUTH_STRING"]),
                       json={"task_runs": {"name": {"like_": "fit_and_validate"}},
                             "sort": "EXPECTED_START_TIME_DESC", "limit": n_candidates})
    reply.raise_for_status()
    runs = reply.json()
    starts = [pd.Timestamp(r["start_time"]) for r in runs]
    ends = [pd.Timestamp(r["end_time"]) for r in runs]
    return (max(ends) - min(starts)).total_seconds(), sum(r["total_run_time"] for r in runs)


def tune_workers(output: str) -> str:
    names = sorted(set(re.findall(r"\b(team-worker-\d|bench-one-worker)\b", output)))
    return ", ".join(names) or "?"


def throughput(urls: list[str], body: dict[str, Any], seconds: float, repeat: int
               ) -> dict[str, list[dict[str, float]]]:
    """wrk at 32 connections on one process, then 16 on each of both at once, alternated
    ``repeat`` times (one wrk result per process driven)."""
    from service_latency import load

    for url in urls:
        load(f"{url}/predict", body, 16, 3)  # warm up
    runs: dict[str, list[dict[str, float]]] = {"one": [], "both": []}
    for _ in range(repeat):
        runs["one"].append(load(f"{urls[0]}/predict", body, 32, seconds))
        with ThreadPoolExecutor(len(urls)) as pool:
            runs["both"] += pool.map(lambda url: load(f"{url}/predict", body,
                                                      32 // len(urls), seconds), urls)
    return runs


def make_project(root: Path) -> tuple[Path, Path]:
    """The team tests' project, its tune candidates made heavy enough to measure."""
    import yaml

    from level1_devops.feed import default_feed_dir
    from tests.helpers import run
    from tests.team_profile.project import make_team_project

    feed = default_feed_dir()
    project, feed_dir = make_team_project(root, pd.read_csv(feed / "flights.csv.zip"),
                                          pd.read_csv(feed / "weather.csv"))
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    # The tests' candidates fit in ~0.2 s each: the command would be all fixed cost, and
    # nothing would be left for a second worker to share.
    params["tune"]["candidates"] = [{**c, "max_iter": TUNE_MAX_ITER}
                                    for c in params["tune"]["candidates"]]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam",
         "benchmark candidates"], project)
    return project, feed_dir


def compare_profiles(laptop: dict[str, str], team: dict[str, str], flights: pd.DataFrame,
                     batch_rows: int, log_dir: Path) -> tuple[dict[str, tuple[float, float]],
                                                               list[str]]:
    """(1): each step's seconds on the laptop and on the team profile; the monitor's lines."""
    say("floors")
    team_floors = floors(team)
    rows = {name: (value, team_floors[name]) for name, value in floors(laptop).items()}
    for step in ("train", "promote"):
        say(f"mlops {step}, laptop then team")
        rows[f"mlops {step}"] = (mlops(laptop, step)[0], mlops(team, step)[0])
    say(f"{WINDOW} through the services, then mlops monitor")
    with laptop_service(laptop, log_dir / "laptop-service.log") as url:
        score_window([url], flights, batch_rows)
    score_window(team["MLOPS_TEAM_SERVICE_URLS"].split(","), flights, batch_rows)
    monitored = [mlops(env, "monitor", "--window", WINDOW) for env in (laptop, team)]
    rows[f"mlops monitor --window {WINDOW}"] = (monitored[0][0], monitored[1][0])
    decisions = [next((line for line in out.splitlines() if line.startswith(WINDOW)), "?")
                 for _, out in monitored]
    return rows, decisions


def compare_tuning(stack: Any, team: dict[str, str], n_candidates: int, folder: Path
                   ) -> dict[str, tuple[float, str, tuple[float, float]]]:
    """(2): `mlops tune --no-register` on the stack's two workers, then on one worker."""
    say("mlops tune on two Dask workers, then on one")
    out = {}
    seconds, output = mlops(team, "tune", "--no-register")
    out["two workers"] = (seconds, output, candidates_span(team, n_candidates))
    with one_worker_scheduler(stack.client_env(), folder) as address:
        seconds, output = mlops({**team, "MLOPS_DASK_SCHEDULER_ADDRESS": address}, "tune",
                                "--no-register")
    out["one worker"] = (seconds, output, candidates_span(team, n_candidates))
    return out


def print_profiles(rows: dict[str, tuple[float, float]], decisions: list[str]) -> None:
    print("\n(1) The same commands on both profiles, each a subprocess (wall seconds)")
    print("| step | laptop s | team s | team / laptop |\n| --- | --- | --- | --- |")
    for step, (laptop, team) in rows.items():
        print(f"| {step} | {laptop:.1f} | {team:.1f} | {team / laptop:.2f}x |")
    for profile, line in zip(("laptop", "team"), decisions, strict=True):
        print(f"  monitor, {profile}: {line}")


def print_tuning(tuning: dict[str, tuple[float, str, tuple[float, float]]], n: int) -> None:
    print(f"\n(2) mlops tune --no-register: {n} candidates (max_iter {TUNE_MAX_ITER}), "
          "same data, on the stack's Prefect and MLflow servers")
    print("| Dask cluster | command s | candidates' span s | sum of their run times s |\n"
          "| --- | --- | --- | --- |")
    for name, (seconds, output, (span, work)) in tuning.items():
        print(f"| {name} ({tune_workers(output)}) | {seconds:.1f} | {span:.1f} | {work:.1f} |")
    (two_s, _, two), (one_s, _, one) = tuning["two workers"], tuning["one worker"]
    print(f"one worker / two workers: {one_s / two_s:.2f}x the command's time, "
          f"{one[0] / two[0]:.2f}x the candidates' span")


def print_throughput(runs: dict[str, list[dict[str, float]]], seconds: float) -> None:
    n = len(runs["one"])
    one = [r["rps"] for r in runs["one"]]
    both = [a["rps"] + b["rps"] for a, b in zip(runs["both"][::2], runs["both"][1::2],
                                                   strict=True)]
    errors = sum(r["errors"] for rs in runs.values() for r in rs)
    print(f"\n(3) /predict at 32 connections (wrk, {seconds:.0f} s each, alternated {n}x)")
    print(f"  one process, 32 connections:          {' / '.join(f'{v:,.0f}' for v in one)} "
          f"req/s, p99 {max(r['p99'] for r in runs['one']):.1f} ms")
    print(f"  two processes, 16 connections each:   {' / '.join(f'{v:,.0f}' for v in both)} "
          f"req/s, p99 {max(r['p99'] for r in runs['both']):.1f} ms")
    print(f"  two / one: {statistics.mean(both) / statistics.mean(one):.2f}x; "
          f"non-2xx responses: {errors:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="each wrk run (default 10)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="wrk runs per side, alternated (default 2)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load test: apt-get install wrk")
    from level1_devops.settings import Settings
    from level2_training.data import load_periods
    from level3_deployment.client import real_records
    from level4_retraining.params import RetrainingParams
    from team.stack import Stack

    began = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="bench-team-"))
    project, feed_dir = make_project(root)
    laptop = laptop_env(project, feed_dir, root / "laptop")
    say(f"project in {root}; mlops ingest")
    ingest_s, _ = mlops(laptop, "ingest")
    settings, params = Settings(project_dir=project), RetrainingParams.load(project)
    flights = load_periods(settings.raw_dir, [WINDOW])
    body = real_records(settings, params.train, 1)[0]
    # PostgreSQL runs as its own user: the state folder is a mkdtemp of its own (0700 parents
    # elsewhere would lock it out), as the team tests do.
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-team-stack-")) / "state", project,
                  log=lambda line: None, feed_dir=feed_dir)
    try:
        start = time.perf_counter()
        team = {**clean_environ(), **stack.up()}
        up_s = time.perf_counter() - start
        rows, decisions = compare_profiles(laptop, team, flights, params.serve.max_batch_rows,
                                           root)
        tuning = compare_tuning(stack, team, len(params.tune.candidates), root / "dask-one")
        say("wrk: one service process, then both, alternated")
        runs = throughput(team["MLOPS_TEAM_SERVICE_URLS"].split(","), body, args.seconds,
                          args.repeat)
    finally:
        stack.down(purge=True)
        shutil.rmtree(stack.state_dir.parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nProject: 2,000 real flights a month, {len(flights):,} in {WINDOW}; ingest (once, "
          f"shared) {ingest_s:.1f} s; team stack up {up_s:.1f} s (once, not in the table)")
    print_profiles(rows, decisions)
    print_tuning(tuning, len(params.tune.candidates))
    print_throughput(runs, args.seconds)
    print(f"\nWhole benchmark: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
