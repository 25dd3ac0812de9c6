"""`make team-demo`: the whole loop through the team stack's services, as a team runs it.

With the stack up (``python -m team.stack up``), every step goes through a shared service:
the data is ingested and pushed to the shared DVC remote; ``mlops train`` and ``mlops tune``
track to the MLflow server (tuning on the Dask workers); ``mlops promote`` certifies and moves
``@champion`` on the server's registry; the two service processes follow it; a few months
are scored through both (every prediction logged to PostgreSQL), then each month is
monitored by the ``monitor`` deployment, run by the Prefect worker; a retrain (the policy's,
or the ``retrain`` deployment's when the policy saw no need) is certified, promoted and
hot-swapped into both service processes while a heartbeat calls each of them; last, the
``batch-score`` deployment scores a month with ``@champion``.

Every command is the one a person types, with the stack's variables (``team.env``) as its
only configuration: no code knows it runs in the team profile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from team.stack import DEFAULT_STATE_DIR, Stack, read_env

Say = Callable[[str], None]


@dataclass
class LoopResult:
    """What the demo did, for a person (printed) and for the end-to-end test (asserted)."""

    champion: str = ""
    promoted: list[str] = field(default_factory=list)
    monitor_runs: dict[str, str] = field(default_factory=dict)  # window -> flow-run id
    retrain_run: str = ""
    retrain_refused: str = ""  # why certification refused the retrained version, if it did
    batch_run: str = ""
    swaps: dict[str, list[str]] = field(default_factory=dict)  # service URL -> versions seen
    heartbeat_failed: int = 0
    heartbeat_ok: int = 0
    tune_output: str = ""


def mlops(env: dict[str, str], project_dir: Path, *args: str, say: Say) -> str:
    """One `mlops` command with the stack's variables; its output is echoed and returned."""
    say(f"$ mlops {' '.join(args)}")
    done = subprocess.run([sys.executable, "-m", "level1_devops.cli", *args], cwd=project_dir,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    output = (done.stdout + done.stderr).rstrip()
    if output:
        say(output)
    if done.returncode != 0:
        raise RuntimeError(f"`mlops {' '.join(args)}` failed ({done.returncode})")
    return output


def served_version(base_url: str) -> str | None:
    try:
        reply = httpx.get(f"{base_url}/model", timeout=5)
    except httpx.HTTPError:
        return None
    return str(reply.json()["model_version"]) if reply.status_code == 200 else None


def wait_served(urls: Iterable[str], version: str, timeout_s: float = 180) -> None:
    """Until every service process serves ``version``."""
    deadline = time.monotonic() + timeout_s
    pending = list(urls)
    while pending:
        pending = [url for url in pending if served_version(url) != version]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{', '.join(pending)} not serving v{version} "
                               f"after {timeout_s:.0f} s")
        time.sleep(0.2)


# Per service process: the replay's heartbeat (every 0.1 s) and a busier client (every
# 10 ms), so the swap happens under load; not flat out, since on one machine the load would
# also slow the certification's latency check of the retrained version.
CALLER_INTERVALS_S = (0.1, 0.01)


@contextmanager
def callers(urls: list[str], flight: dict[str, Any]) -> Iterator[dict[str, list[Any]]]:
    """Clients calling each service process all along (Level 4's replay heartbeat), by URL;
    each counts its answers and failures and when each model version first answered."""
    from level4_retraining.replay import Heartbeat

    with ExitStack() as stack:
        yield {url: [stack.enter_context(Heartbeat(url, flight, interval_s))
                     for interval_s in CALLER_INTERVALS_S] for url in urls}


class DeploymentFailed(RuntimeError):
    """A deployment's run did not complete; ``run_id`` names it on the Prefect server."""

    def __init__(self, message: str, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


def run_deployment(env: dict[str, str], name: str, parameters: dict[str, Any],
                   say: Say, timeout_s: float = 900) -> str:
    """Run a deployment through the Prefect server; the worker executes it. Its run id.

    Raises:
        DeploymentFailed: the run ended in another state than Completed.
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment as prefect_run

    say(f"Prefect: running deployment {name} {parameters or ''} (executed by the worker)")
    run = prefect_run(name, parameters=parameters, timeout=timeout_s)
    assert isinstance(run, FlowRun)  # called from synchronous code: not a coroutine
    state = run.state
    say(f"Prefect: {name} -> {state.name if state else '?'} (flow run {run.id})")
    if state is None or not state.is_completed():
        raise DeploymentFailed(f"deployment {name} ended {state.name if state else 'unknown'}"
                               f": {state.message if state else ''}", str(run.id))
    return str(run.id)


def run_loop(env: dict[str, str], project_dir: Path, months: list[str], rows: int | None,
             say: Say) -> LoopResult:
    """The loop through the stack (see the module's text). ``env``: the stack's variables."""
    from level1_devops.settings import load_settings
    from level2_training.data import load_periods
    from level3_deployment.client import as_requests
    from level4_retraining.params import RetrainingParams
    from level4_retraining.replay import send_period

    os.environ.update(env)  # this process is an entry point too: Prefect and MLflow read it
    settings = load_settings()
    params = RetrainingParams.load(settings.project_dir)
    urls = env["MLOPS_TEAM_SERVICE_URLS"].split(",")
    result = LoopResult(swaps={url: [] for url in urls})

    mlops(env, project_dir, "ingest", "--until", months[-1], say=say)
    mlops(env, project_dir, "train", say=say)
    result.tune_output = mlops(env, project_dir, "tune", say=say)
    mlops(env, project_dir, "promote", "--reason", "team demo: tuned on Dask", say=say)
    result.champion = champion_version(settings, params.model_name)
    result.promoted.append(result.champion)
    wait_served(urls, result.champion)
    say(f"Both service processes serve v{result.champion}: {', '.join(urls)}")

    flight = as_requests(load_periods(settings.raw_dir, [months[0]]).head(1))[0]
    with callers(urls, flight) as calling, ExitStack() as clients:
        https = [clients.enter_context(httpx.Client(base_url=url, timeout=60)) for url in urls]
        for month in months:
            flights = load_periods(settings.raw_dir, [month], rows)
            half = len(flights) // 2
            for http, part in zip(https, (flights.iloc[:half], flights.iloc[half:]), strict=True):
                send_period(http, part, params.serve.max_batch_rows, _quiet, month)
            say(f"{month}: {len(flights):,} flights scored through both service processes")
            # The newest window of the log is the month just scored. A run fails when the
            # policy's retrain is refused: the window is recorded and the champion serves on.
            try:
                result.monitor_runs[month] = run_deployment(env, "monitor-latest/monitor", {},
                                                            say)
            except DeploymentFailed as err:
                result.monitor_runs[month], result.retrain_refused = err.run_id, str(err)
                say(f"{month}: the policy's retrain was refused, v{result.champion} serves "
                    f"on: {err}")
            say(f"{month}: " + describe_window(settings))
        newest = champion_version(settings, params.model_name)
        if newest == result.champion:
            say("The policy saw no need to retrain: running the retrain deployment by hand")
            try:
                result.retrain_run = run_deployment(env, "retrain-on-demand/retrain", {
                    "period": months[-1], "reason": "team demo: by hand"}, say)
            except DeploymentFailed as err:  # the gate refused it: the champion serves on
                result.retrain_run, result.retrain_refused = err.run_id, str(err)
                say(f"The retrained version was refused, v{result.champion} serves on: {err}")
            newest = champion_version(settings, params.model_name)
        if newest != result.champion:
            result.champion = newest
            result.promoted.append(newest)
            wait_served(urls, newest)
            say(f"Hot-swapped: both service processes serve v{newest}")
        for url, beats in calling.items():
            first_seen: dict[str, float] = {}
            for beat in beats:
                for version, at in beat.first_seen.items():
                    first_seen[version] = min(at, first_seen.get(version, at))
            result.swaps[url] = sorted(first_seen, key=first_seen.__getitem__)
        everyone = [beat for beats in calling.values() for beat in beats]
        result.heartbeat_ok = sum(beat.ok for beat in everyone)
        result.heartbeat_failed = sum(beat.failed for beat in everyone)
    say(f"Callers all along: {result.heartbeat_ok:,} requests to the two service processes, "
        f"{result.heartbeat_failed} failed")
    result.batch_run = run_deployment(env, "scheduled-batch-score/batch-score",
                                      {"period": months[-1]}, say)
    return result


def describe_window(settings: Any) -> str:
    """The last monitored window as the shared state holds it (what the worker recorded)."""
    from level4_retraining.status import monitoring_status

    state = monitoring_status(settings)
    decision = state.get("last_decision") or {}
    auc = state.get("roc_auc")
    return (f"drift share {state['drift_share']}, ROC AUC "
            f"{'-' if auc is None else f'{auc:.3f}'}; the policy: "
            f"{decision.get('action', '?')} ({decision.get('reason', '')})")


def champion_version(settings: Any, model_name: str) -> str:
    """The version ``@champion`` points at, read from the registry (the MLflow server)."""
    from level2_training.registry import CHAMPION
    from level2_training.tracking import client as tracking_client

    return str(tracking_client(settings).get_model_version_by_alias(model_name,
                                                                     CHAMPION).version)


def _quiet(items: Iterable[Any], what: str) -> Iterable[Any]:
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m team.demo", description=__doc__.split("\n\n")[0],
        epilog="Start the stack first (make team-up); make team-down stops it.")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="The stack's state folder (default: %(default)s).")
    # The champion of params.yaml is trained on January-May; by July summer has moved the
    # data, and a retrain on the months before July beats it there.
    parser.add_argument("--months", default="2013-06,2013-07",
                        help="Months scored through the service and monitored, comma-separated "
                             "(default: %(default)s).")
    parser.add_argument("--rows", type=int, default=None,
                        help="Flights per month sent (default: all of them).")
    parser.add_argument("--result-json", type=Path, default=None,
                        help="Also write what the loop did as JSON here (the tests read it).")
    args = parser.parse_args(argv)
    env = read_env(args.state_dir)
    project_dir = Path(env.get("MLOPS_PROJECT_DIR", Path.cwd()))
    result = run_loop(env, project_dir, args.months.split(","), args.rows, print)
    if args.result_json:
        args.result_json.write_text(json.dumps(asdict(result), indent=2))
    print(f"\nChampion v{result.champion}; versions promoted: {', '.join(result.promoted)}")
    print(Stack(args.state_dir, project_dir).describe())
    return 0 if result.heartbeat_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
