"""team/stack.py: every service of the team stack is a real process that answers on
127.0.0.1 only, refuses a caller without its secret, and ``down`` leaves nothing behind."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import psycopg
import pytest

from team import services
from team.launcher import record_alive
from team.processes import StackError, listening, port_open
from team.stack import Stack
from team.stack_env import child_environ

pytestmark = pytest.mark.team
T = TypeVar("T")
RULES_PATH = Path(services.__file__).parent / "prometheus" / "rules.yml"


def basic(user_password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


def eventually(check: Callable[[], T], timeout_s: float = 60) -> T:
    """The value of ``check()`` once it is truthy (Prometheus scrapes every 2 s)."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value




def test_every_service_answers(team_stack: Stack, team_env: dict[str, str]) -> None:
    names = [rec.name for rec in team_stack.records()]
    assert names == ["postgres", "mlflow", "prefect-server", "dask-scheduler", "prometheus",
                     "dask-worker-1", "dask-worker-2", "service-1", "service-2",
                     "prefect-worker"]
    for rec in team_stack.records():
        assert record_alive(rec), rec.name
        if rec.port:
            assert port_open(rec.port)(), f"{rec.name} does not listen on {rec.port}"
    assert httpx.get(f"{team_env['MLOPS_MLFLOW_TRACKING_URI']}/health").status_code == 200
    assert httpx.get(f"{team_env['PREFECT_API_URL']}/health").status_code == 200
    assert httpx.get(team_env["MLOPS_TEAM_DASK_DASHBOARD_URL"]).status_code == 200
    assert httpx.get(f"{team_env['PROMETHEUS_URL']}/-/ready").status_code == 200
    for url in team_env["MLOPS_TEAM_SERVICE_URLS"].split(","):
        assert httpx.get(f"{url}/health/live").status_code == 200
        assert "mlops_requests_total" in httpx.get(f"{url}/metrics").text


def test_every_listener_is_on_loopback(team_stack: Stack) -> None:
    for rec in team_stack.records():
        addresses = listening(rec.pid)
        if rec.port:
            assert ("127.0.0.1", rec.port) in addresses, rec.name
        assert {ip for ip, _ in addresses} <= {"127.0.0.1"}, (rec.name, addresses)


def test_mlflow_refuses_without_credentials(team_env: dict[str, str]) -> None:
    url = team_env["MLOPS_MLFLOW_TRACKING_URI"]
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    user = f"{team_env['MLFLOW_TRACKING_USERNAME']}:{team_env['MLFLOW_TRACKING_PASSWORD']}"
    assert httpx.get(search).status_code == 401
    assert httpx.get(search, headers=basic("admin:password1234")).status_code == 401
    assert httpx.post(f"{url}/api/2.0/mlflow/experiments/create",
                      json={"name": "intruder"}).status_code == 401
    assert httpx.get(search, headers=basic(user)).status_code == 200
    # --allowed-hosts: a request naming another host (DNS rebinding) is refused.
    assert httpx.get(search, headers={**basic(user), "Host": "evil.example"}).status_code == 403


def test_mlflow_keeps_runs_in_postgres_and_artifacts_behind_the_server(
        team_stack: Stack, team_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    from mlflow import MlflowClient

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, team_env[name])
    client = MlflowClient(team_env["MLOPS_MLFLOW_TRACKING_URI"])
    name = f"team-stack-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(name))
    (tmp_path / "note.txt").write_text("proxied")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # clients hold no storage
    assert list((team_stack.state_dir / "mlflow-artifacts").rglob("note.txt"))
    dsn = team_stack.database_urls["mlflow"].replace("+psycopg", "")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT e.name FROM runs r JOIN experiments e USING "
                           "(experiment_id) WHERE r.run_uuid = %s", (run.info.run_id,)).fetchone()
    assert row == (name,)


def test_prefect_refuses_without_the_auth_string(team_env: dict[str, str]) -> None:
    api, auth = team_env["PREFECT_API_URL"], basic(team_env["PREFECT_API_AUTH_STRING"])
    assert httpx.get(f"{api}/admin/version").status_code == 401
    assert httpx.post(f"{api}/flows/filter", json={}).status_code == 401
    assert httpx.get(f"{api}/admin/version", headers=basic("mlops:wrong")).status_code == 401
    assert httpx.get(f"{api}/admin/version", headers=auth).status_code == 200
    pool = httpx.get(f"{api}/work_pools/{team_env['MLOPS_WORK_POOL']}", headers=auth).json()
    assert pool["type"] == "process"
    workers = httpx.post(f"{api}/work_pools/{pool['name']}/workers/filter", headers=auth,
                         json={}).json()
    assert [w["name"] for w in workers] == ["team-worker"]


def test_dask_scheduler_on_loopback_with_two_workers(team_env: dict[str, str]) -> None:
    from distributed import Client

    address = team_env["MLOPS_DASK_SCHEDULER_ADDRESS"]
    assert address.startswith("tcp://127.0.0.1:")
    with Client(address, timeout=10, set_as_default=False) as client:
        info = client.scheduler_info(n_workers=-1)
        assert info["address"] == address
        assert sorted(w["name"] for w in info["workers"].values()) == ["team-worker-1",
                                                                      "team-worker-2"]
        assert all(a.startswith("tcp://127.0.0.1:") for a in info["workers"])
        # Each worker runs with the team env: tasks reach the shared services.
        seen = client.run(lambda: __import__("os").environ.get("MLOPS_PROFILE"))
        assert set(seen.values()) == {"team"}


def test_prometheus_scrapes_both_services_with_the_rules(team_env: dict[str, str]) -> None:
    prometheus = team_env["PROMETHEUS_URL"]
    services_at = {url.removeprefix("http://")
                   for url in team_env["MLOPS_TEAM_SERVICE_URLS"].split(",")}

    def targets_up() -> list[dict[str, Any]]:
        active = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        return active if all(t["health"] == "up" for t in active) else []

    active = eventually(targets_up)
    assert {t["labels"]["instance"] for t in active} == services_at
    groups = httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
    rules = {rule["name"] for group in groups for rule in group["rules"]}
    assert {g["name"] for g in groups} == {"mlops-service", "mlops-monitoring"}
    assert {"instance:mlops_request_error_ratio:rate1m", "MlopsHighErrorRate",
            "MlopsHighLatencyP99", "MlopsDataDrift", "MlopsRetrainStarted",
            "MlopsModelRefused"} <= rules

    def series() -> list[dict[str, Any]]:
        return httpx.get(f"{prometheus}/api/v1/query",
                         params={"query": "mlops_requests_total"}).json()["data"]["result"]

    assert {s["metric"]["instance"] for s in eventually(series)} == services_at


def test_promtool_accepts_the_shipped_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(RULES_PATH)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 13 rules found" in done.stdout


def test_team_env_file_is_the_team_profile(team_stack: Stack, team_env: dict[str, str]) -> None:
    assert team_stack.env_path.stat().st_mode & 0o777 == 0o600
    assert (team_stack.state_dir / "secrets.json").stat().st_mode & 0o777 == 0o600
    code = ("from level1_devops.settings import load_settings; s = load_settings(); "
            "print(s.profile, s.tracking_uri, s.prefect_api_url, s.dask_scheduler_address)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**child_environ(), "MLOPS_ENV_FILE": str(team_stack.env_path)},
                          check=True)
    assert done.stdout.split() == ["team", team_env["MLOPS_MLFLOW_TRACKING_URI"],
                                   team_env["PREFECT_API_URL"],
                                   team_env["MLOPS_DASK_SCHEDULER_ADDRESS"]]
    # No secret on any command line (every user of the machine can read those).
    secrets = [team_env["MLFLOW_TRACKING_PASSWORD"], team_env["MLOPS_SERVICE_API_KEY"],
               team_env["PREFECT_API_AUTH_STRING"], team_env["MLOPS_STATE_DB_URL"]]
    for rec in team_stack.records():
        assert not any(s in " ".join(rec.command) for s in secrets), rec.name


def test_a_second_up_is_refused(team_stack: Stack) -> None:
    with pytest.raises(StackError, match="already running"):
        Stack(team_stack.state_dir, team_stack.project_dir, log=lambda line: None).up()


@pytest.mark.team_teardown
def test_down_stops_every_process_and_purges(team_stack: Stack) -> None:
    records = team_stack.records()
    team_stack.down(purge=True)
    assert not [rec.name for rec in records if record_alive(rec)]
    assert not [rec.pid for rec in records if psutil.pid_exists(rec.pid)
                and psutil.Process(rec.pid).status() != psutil.STATUS_ZOMBIE]
    for rec in records:
        if rec.port:
            assert not port_open(rec.port)(), f"{rec.name} still listens on {rec.port}"
    assert not (team_stack.state_dir / "postgres").exists()
    assert not team_stack.state_dir.exists()


@pytest.mark.parametrize("folder", ["team dir", "team$(touch pwned)", "team`id`"])
def test_a_state_dir_a_shell_would_reinterpret_is_refused(tmp_path: Path, folder: str) -> None:
    # pg_ctl runs the server through /bin/sh with the folder in its command line.
    with pytest.raises(StackError, match="without spaces, quotes"):
        Stack(tmp_path / folder, log=lambda line: None).up()
    assert not (tmp_path / folder).exists()
    assert not (Path.cwd() / "pwned").exists()
