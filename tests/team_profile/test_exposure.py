"""Exposure safety of every listener of the team stack (docs/team-profile.md, Exposure): each
refuses a write from a caller without its secret, or listens on 127.0.0.1 only where it has no
authentication of its own (Prometheus, Dask, the Evidently UI), with the write APIs it can
switch off switched off. Everything runs against the session's real stack on loopback."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from team.launcher import Record
from team.processes import free_port, listening, port_open, stop
from team.stack import Stack
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.team
BIN = Path(sys.executable).parent


def basic(user_password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}




def record(stack: Stack, name: str) -> Record:
    return next(rec for rec in stack.records() if rec.name == name)


# --- MLflow ----------------------------------------------------------------------------------

@pytest.fixture
def mlflow_reader(team_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A non-admin MLflow user (what a person's account is), deleted afterwards."""
    url = team_env["MLOPS_MLFLOW_TRACKING_URI"]
    admin = basic(f"{team_env['MLOPS_TEAM_MLFLOW_ADMIN_USERNAME']}:"
                  f"{team_env['MLOPS_TEAM_MLFLOW_ADMIN_PASSWORD']}")
    name, password = f"reader-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    made = httpx.post(f"{url}/api/2.0/mlflow/users/create", headers=admin, timeout=60,
                      json={"username": name, "password": password})
    assert made.status_code == 200, made.text
    try:
        yield name, password
    finally:
        httpx.request("DELETE", f"{url}/api/2.0/mlflow/users/delete", headers=admin,
                      json={"username": name}, timeout=60)


def test_mlflow_refuses_every_write_without_credentials(team_env: dict[str, str]) -> None:
    url = team_env["MLOPS_MLFLOW_TRACKING_URI"]
    api = f"{url}/api/2.0/mlflow"
    project = basic(f"{team_env['MLFLOW_TRACKING_USERNAME']}:"
                    f"{team_env['MLFLOW_TRACKING_PASSWORD']}")
    name = f"exposure-{uuid.uuid4().hex[:8]}"
    writes = [("POST", "experiments/create", {"name": name}),
              ("POST", "registered-models/create", {"name": name}),
              ("POST", "registered-models/alias", {"name": name, "alias": "champion",
                                                   "version": "1"}),
              ("POST", "runs/create", {"experiment_id": "0"}),
              ("POST", "users/create", {"username": name, "password": "intruder-password"}),
              ("PATCH", "users/update-admin", {"username": name, "is_admin": True})]
    for method, path, body in writes:
        for headers in ({}, basic(f"{team_env['MLFLOW_TRACKING_USERNAME']}:wrong-password"),
                        basic(f"nobody-{name}:whatever")):
            reply = httpx.request(method, f"{api}/{path}", json=body, headers=headers,
                                  timeout=60)
            assert reply.status_code == 401, (method, path, headers, reply.text[:200])
            assert reply.headers.get("WWW-Authenticate", "").startswith("Basic")
    # Nothing was written: the project's user finds neither the experiment nor the model.
    assert httpx.get(f"{api}/experiments/get-by-name", params={"experiment_name": name},
                     headers=project, timeout=60).status_code == 404
    assert httpx.get(f"{api}/registered-models/get", params={"name": name},
                     headers=project, timeout=60).status_code == 404
    assert httpx.get(f"{url}/health", timeout=30).status_code == 200  # the one open route


def test_mlflow_a_non_admin_user_reads_but_cannot_change_the_projects_models(
        team_env: dict[str, str], mlflow_reader: tuple[str, str]) -> None:
    api = f"{team_env['MLOPS_MLFLOW_TRACKING_URI']}/api/2.0/mlflow"
    project = basic(f"{team_env['MLFLOW_TRACKING_USERNAME']}:"
                    f"{team_env['MLFLOW_TRACKING_PASSWORD']}")
    reader = basic(":".join(mlflow_reader))
    model = f"exposure-model-{uuid.uuid4().hex[:8]}"
    assert httpx.post(f"{api}/registered-models/create", json={"name": model},
                      headers=project, timeout=60).status_code == 200
    try:
        # default_permission = READ: an authenticated person sees the registry ...
        seen = httpx.get(f"{api}/registered-models/get", params={"name": model},
                         headers=reader, timeout=60)
        assert seen.status_code == 200 and seen.json()["registered_model"]["name"] == model
        # ... and cannot move @champion, rename or delete what the project registered, nor
        # make itself an admin.
        for method, path, body in [
                ("POST", "registered-models/alias", {"name": model, "alias": "champion",
                                                     "version": "1"}),
                ("PATCH", "registered-models/update", {"name": model,
                                                       "description": "hijacked"}),
                ("DELETE", "registered-models/delete", {"name": model}),
                ("PATCH", "users/update-admin", {"username": mlflow_reader[0],
                                                 "is_admin": True}),
                ("PATCH", "users/update-password", {"username": team_env[
                    "MLFLOW_TRACKING_USERNAME"], "password": "taken-over-1234"})]:
            reply = httpx.request(method, f"{api}/{path}", json=body, headers=reader,
                                  timeout=60)
            assert reply.status_code == 403, (method, path, reply.text[:200])
        after = httpx.get(f"{api}/registered-models/get", params={"name": model},
                          headers=project, timeout=60).json()["registered_model"]
        assert not after.get("aliases") and not after.get("description")
    finally:
        httpx.request("DELETE", f"{api}/registered-models/delete", json={"name": model},
                      headers=project, timeout=60)


# --- Prefect ---------------------------------------------------------------------------------

def test_prefect_refuses_to_start_a_run_without_the_auth_string(
        team_env: dict[str, str]) -> None:
    api, auth = team_env["PREFECT_API_URL"], basic(team_env["PREFECT_API_AUTH_STRING"])
    deployments = httpx.post(f"{api}/deployments/filter", json={}, headers=auth, timeout=60)
    assert deployments.status_code == 200
    # prefect.yaml's deployments, when the checkout has them; the refusal comes first anyway.
    deployment = next((d["id"] for d in deployments.json()), str(uuid.uuid4()))
    name = f"intruder-{uuid.uuid4().hex[:8]}"
    wrong = basic(team_env["PREFECT_API_AUTH_STRING"].split(":")[0] + ":wrong")
    for headers in ({}, wrong, {"Authorization": "Bearer " + team_env["PREFECT_API_AUTH_STRING"]}):
        for method, path, body in [
                ("POST", f"deployments/{deployment}/create_flow_run", {"name": name}),
                ("POST", "flow_runs/", {"flow_id": str(uuid.uuid4()), "name": name}),
                ("POST", "flows/", {"name": name}),
                ("PATCH", f"deployments/{deployment}", {"paused": True}),
                ("DELETE", f"deployments/{deployment}", None),
                ("POST", f"work_pools/{team_env['MLOPS_WORK_POOL']}/get_scheduled_flow_runs",
                 {})]:
            reply = httpx.request(method, f"{api}/{path}", json=body, headers=headers,
                                  timeout=60)
            assert reply.status_code == 401, (method, path, reply.text[:200])
    runs = httpx.post(f"{api}/flow_runs/filter", headers=auth, timeout=60,
                      json={"flow_runs": {"name": {"any_": [name]}}})
    assert runs.status_code == 200 and runs.json() == []
    flows = httpx.post(f"{api}/flows/filter", headers=auth, timeout=60,
                       json={"flows": {"name": {"any_": [name]}}})
    assert flows.status_code == 200 and flows.json() == []
    if deployments.json():
        still = httpx.get(f"{api}/deployments/{deployment}", headers=auth, timeout=60).json()
        assert still["id"] == deployment
        assert still["paused"] == next(d for d in deployments.json()
                                       if d["id"] == deployment)["paused"]


# --- The scoring service ---------------------------------------------------------------------

def test_each_service_process_refuses_a_reload_without_the_key(
        team_env: dict[str, str]) -> None:
    urls = team_env["MLOPS_TEAM_SERVICE_URLS"].split(",")
    assert len(urls) == 2
    for url in urls:
        for headers in ({}, {"X-API-Key": "wrong-key-of-enough-length"},
                        {"X-API-Key": team_env["MLOPS_SERVICE_API_KEY"][:-1]},
                        {"X-API-Key": ""}):
            reply = httpx.post(f"{url}/admin/reload", headers=headers, timeout=60)
            assert reply.status_code == 403, (url, reply.text[:200])
            assert reply.headers["content-type"].startswith("application/json")
            assert reply.json()["detail"] == "wrong or missing X-API-Key"
        # The key itself is accepted (the 403 was about the key, not the route).
        good = httpx.post(f"{url}/admin/reload", timeout=120,
                          headers={"X-API-Key": team_env["MLOPS_SERVICE_API_KEY"]})
        assert good.status_code == 200 and "swapped" in good.json(), good.text[:300]


@pytest.mark.parametrize(("args", "extra_env"), [
    (["--host", "0.0.0.0"], {}),
    (["--host", "::"], {}),
    ([], {"MLOPS_SERVICE_HOST": "0.0.0.0"}),
])
def test_mlops_serve_on_an_exposed_address_without_a_key_exits(
        team_stack: Stack, args: list[str], extra_env: dict[str, str]) -> None:
    """The stack's service command, asked for a non-loopback bind without
    MLOPS_SERVICE_API_KEY, stops before it binds, and says why."""
    env = {k: v for k, v in team_stack.client_env().items() if k != "MLOPS_SERVICE_API_KEY"}
    port = free_port()
    done = subprocess.run([str(BIN / "mlops"), "serve", "--app", "level4", *args, "--port",
                           str(port)], env={**env, **extra_env}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "exposes the service: set MLOPS_SERVICE_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    assert not port_open(port)()


# --- PostgreSQL ------------------------------------------------------------------------------

def pg_connect(host: str, port: int, user: str, dbname: str,
               password: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    """A connection with exactly this password (none: no password at all, no ~/.pgpass)."""
    return psycopg.connect(host=host, port=port, user=user, dbname=dbname, password=password,
                           passfile="/nonexistent", connect_timeout=10)


def test_postgres_needs_a_password_on_every_path(team_stack: Stack,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    cluster = team_stack.cluster
    # TCP and the cluster's Unix socket, the project's role and the superuser: no password,
    # no connection (the server asks for a SCRAM password; no `trust` line).
    for host in ("127.0.0.1", str(cluster.folder)):
        for user, db in (("mlops", "mlops"), (cluster.superuser, "postgres")):
            with pytest.raises(psycopg.OperationalError, match="no password supplied"):
                pg_connect(host, cluster.port, user, db)
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                pg_connect(host, cluster.port, user, db, "wrong")
    with psycopg.connect(cluster.url()) as conn:
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert rules and {method for _, method in rules} == {"scram-sha-256"}, rules
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        stored = conn.execute("SELECT rolname, rolpassword FROM pg_authid "
                              "WHERE rolcanlogin").fetchall()
        assert all(pw.startswith("SCRAM-SHA-256$") for _, pw in stored), [r for r, _ in stored]
    # One role per database, owning only its own: the shared-state role writes nothing of
    # MLflow's.
    with (pg_connect("127.0.0.1", cluster.port, "mlops", "mlflow",
                     team_stack.keys["pg_mlops"]) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute("UPDATE experiments SET name = 'hijacked'")


# --- Prometheus ------------------------------------------------------------------------------

def test_prometheus_on_loopback_with_its_admin_and_lifecycle_apis_off(
        team_stack: Stack, team_env: dict[str, str]) -> None:
    rec = record(team_stack, "prometheus")
    assert {ip for ip, _ in listening(rec.pid)} == {"127.0.0.1"}
    assert not [a for a in rec.command if a.startswith(("--web.enable-admin-api",
                                                        "--web.enable-lifecycle"))]
    prometheus = team_env["PROMETHEUS_URL"]
    for path in ("/-/quit", "/-/reload"):
        reply = httpx.post(f"{prometheus}{path}", timeout=30)
        assert reply.status_code == 403 and "Lifecycle API is not enabled" in reply.text
    # Debian's 2.42 answers a disabled admin API with 500 {"errorType": "unavailable"}.
    for path in ("tsdb/delete_series?match[]=up", "tsdb/clean_tombstones", "tsdb/snapshot"):
        reply = httpx.post(f"{prometheus}/api/v1/admin/{path}", timeout=30)
        assert reply.status_code >= 400 and reply.json()["error"] == "admin APIs disabled"
    assert httpx.get(f"{prometheus}/-/ready", timeout=30).status_code == 200  # still up
    up = httpx.get(f"{prometheus}/api/v1/query", params={"query": "up"}, timeout=30).json()
    assert up["data"]["result"], "the series are still there"


# --- Dask ------------------------------------------------------------------------------------

def test_dask_scheduler_workers_and_dashboard_listen_on_loopback_only(
        team_stack: Stack, team_env: dict[str, str]) -> None:
    scheduler = record(team_stack, "dask-scheduler")
    port = int(team_env["MLOPS_DASK_SCHEDULER_ADDRESS"].rsplit(":", 1)[1])
    dashboard = int(team_env["MLOPS_TEAM_DASK_DASHBOARD_URL"].split(":")[2].split("/")[0])
    addresses = listening(scheduler.pid)
    assert {("127.0.0.1", port), ("127.0.0.1", dashboard)} <= addresses
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
    workers = [rec for rec in team_stack.records() if rec.name.startswith("dask-worker-")]
    assert len(workers) == 2
    for rec in workers:
        addresses = listening(rec.pid)
        # Each worker's nanny, worker and HTTP server (dashboard, /metrics).
        assert len(addresses) >= 3 and {ip for ip, _ in addresses} == {"127.0.0.1"}, (
            rec.name, addresses)


# --- The Evidently UI ------------------------------------------------------------------------

def make_evidently_ui(tmp_path: Path, *variables: str, secret: str | None = None
                      ) -> subprocess.Popen[bytes]:
    """`make evidently-ui VAR=value ...` as a person runs it, in its own process group."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "EVIDENTLY_"))}
    env["MLOPS_PROJECT_DIR"] = str(project)  # `setup` makes its folders there
    if secret:
        env["EVIDENTLY_SECRET"] = secret
    log = (tmp_path / "evidently-ui.log").open("ab")
    return subprocess.Popen(["make", "--no-print-directory", "-C", str(REPO_ROOT),
                             "evidently-ui", *variables], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def test_evidently_ui_binds_loopback_and_its_secret_guards_only_writes(tmp_path: Path) -> None:
    port, secret = free_port(), uuid.uuid4().hex
    ui = make_evidently_ui(tmp_path, f"EVIDENTLY_DIR={tmp_path / 'workspace'}",
                           f"EVIDENTLY_PORT={port}", secret=secret)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not port_open(port)():
            assert ui.poll() is None, (tmp_path / "evidently-ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "evidently ui did not start"
            time.sleep(0.5)
        addresses = listening(ui.pid)
        assert ("127.0.0.1", port) in addresses
        assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
        project = {"name": "intruder"}
        for headers in ({}, {"evidently-secret": "wrong"}):
            reply = httpx.post(f"{url}/api/projects", json=project, headers=headers, timeout=30)
            assert reply.status_code == 403, reply.text[:200]
        # Why it stays on loopback: reads need no secret at all.
        assert httpx.get(f"{url}/api/projects", timeout=30).json() == []
        made = httpx.post(f"{url}/api/projects", json=project,
                          headers={"evidently-secret": secret}, timeout=30)
        assert made.status_code == 201
    finally:
        stop(ui.pid)  # make, uv and evidently: the whole process group
        ui.wait(timeout=30)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_make_evidently_ui_refuses_a_non_loopback_host(tmp_path: Path, host: str) -> None:
    port = free_port()
    ui = make_evidently_ui(tmp_path, f"EVIDENTLY_HOST={host}", f"EVIDENTLY_PORT={port}",
                           f"EVIDENTLY_DIR={tmp_path / 'workspace'}", secret=uuid.uuid4().hex)
    try:
        assert ui.wait(timeout=120) != 0
    finally:
        if ui.poll() is None:
            stop(ui.pid)
    out = (tmp_path / "evidently-ui.log").read_text()
    assert f"EVIDENTLY_HOST={host} refused: the Evidently UI answers on loopback only" in out
    assert "Traceback" not in out and not port_open(port)()
    assert not (tmp_path / "workspace").exists()
