"""The team stack's services, one function each: the command line that starts it, the
environment it gets, and the condition that says it is up (never a fixed sleep).

Secrets reach a service through its environment or a 0600 file, never its command line (which
every user of the machine can read in ``ps``).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import yaml

from team.processes import StackError, run

BIN_DIR = Path(sys.executable).parent  # the environment's mlflow, prefect, dask, mlops
PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
WORK_POOL = "team-pool"


def basic_auth(user_password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


def status_of(url: str, headers: Mapping[str, str] | None = None) -> int:
    return httpx.get(url, headers=dict(headers or {}), timeout=30).status_code


def expect_status(what: str, url: str, want: int, headers: Mapping[str, str] | None = None
                  ) -> None:
    got = status_of(url, headers)
    if got != want:
        raise StackError(f"{what}: GET {url} answered {got}, expected {want}")


# --- MLflow: tracking server on PostgreSQL, artifacts proxied, basic-auth app -------------

def write_mlflow_auth_config(path: Path, database_uri: str, admin_password: str) -> None:
    """MLflow's basic-auth config (0600: it holds the admin's first password and the URI).

    Authenticated users may read every experiment and model (READ); what a user creates it
    manages. The admin password is used once, when the auth database has no admin yet.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("[mlflow]\ndefault_permission = READ\n"
                    f"database_uri = {database_uri}\nadmin_username = admin\n"
                    f"admin_password = {admin_password}\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    # Each request's password check is a PBKDF2 hash (~0.5 s of CPU, seconds
                    # on a busy machine); cached for a minute, per worker (we run one).
                    "auth_cache_ttl_seconds = 60\n")


def mlflow_command(port: int, artifacts_dir: Path) -> list[str]:
    return [str(BIN_DIR / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--app-name", "basic-auth", "--serve-artifacts",
            "--artifacts-destination", str(artifacts_dir),
            # Host headers accepted (DNS-rebinding guard); exact host:port, no wildcard.
            "--allowed-hosts", f"127.0.0.1:{port},localhost:{port}",
            # One uvicorn worker: each costs ~10 s of imports at start on 2 cores, and one
            # serves the demo's load; raise it for a real team.
            "--workers", "1"]


def ensure_mlflow_user(url: str, admin: str, user: str, password: str) -> None:
    """The project's MLflow user (created once), an admin of the server.

    Why admin: to a non-admin user MLflow's auth app answers 403 for a registered model that
    does not exist yet (it hides which names exist), where the project's registry code (and
    the service waiting for a first @champion) expects MLflow's 404. Its own user still tells
    the project's runs and registrations from a person's, and "admin" stays for people.
    """
    auth = basic_auth(admin)
    httpx.post(f"{url}/api/2.0/mlflow/users/create", headers=auth, timeout=30,
               json={"username": user, "password": password})  # an existing user: 400, fine
    made = httpx.patch(f"{url}/api/2.0/mlflow/users/update-admin", headers=auth, timeout=30,
                       json={"username": user, "is_admin": True})
    if made.status_code != 200:
        raise StackError(f"MLflow: making {user} an admin answered {made.status_code}: "
                         f"{made.text[:300]}")
    expect_status("MLflow with the project user's credentials",
                  f"{url}/api/2.0/mlflow/experiments/search?max_results=1", 200,
                  basic_auth(f"{user}:{password}"))


# --- Prefect: server on PostgreSQL with an auth string, a process pool and a worker -------

def prefect_server_command(port: int) -> list[str]:
    return [str(BIN_DIR / "prefect"), "server", "start", "--host", "127.0.0.1",
            "--port", str(port), "--analytics-off"]


def prefect_worker_registered(api_url: str, auth_string: str) -> bool:
    try:
        answer = httpx.post(f"{api_url}/work_pools/{WORK_POOL}/workers/filter",
                            headers=basic_auth(auth_string), json={}, timeout=5)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and len(answer.json()) > 0


def create_work_pool(env: Mapping[str, str]) -> None:
    """The ``process`` work pool; ``--overwrite`` makes a second ``up`` a no-op."""
    run([str(BIN_DIR / "prefect"), "work-pool", "create", WORK_POOL, "--type", "process",
         "--overwrite"], env=env)


def deploy_flows(env: Mapping[str, str], code_dir: Path) -> str:
    """``prefect deploy --all`` from the checkout's prefect.yaml, when there is one (a fork
    may drop it): the worker then runs the flows from ``code_dir``."""
    if not (code_dir / "prefect.yaml").exists():
        return f"no prefect.yaml in {code_dir}: no deployments registered"
    run([str(BIN_DIR / "prefect"), "--no-prompt", "deploy", "--all"], env=env,
        cwd=code_dir, timeout=600)
    return "deployments registered from prefect.yaml"


# --- Dask ---------------------------------------------------------------------------------

def dask_worker_command(scheduler: str, name: str, local_dir: Path) -> list[str]:
    return [str(BIN_DIR / "dask"), "worker", scheduler, "--nthreads", "1", "--name", name,
            "--host", "127.0.0.1", "--local-directory", str(local_dir),
            # The worker's HTTP server (dashboard, /metrics, /health) binds all interfaces
            # by default, even with --no-dashboard.
            "--dashboard-address", "127.0.0.1:0"]


def dask_workers_seen(scheduler: str, n_workers: int) -> bool:
    from distributed import Client

    try:
        with Client(scheduler, timeout=5, set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"]) >= n_workers
    except OSError:
        return False


# --- Prometheus ----------------------------------------------------------------------------

def ensure_prometheus() -> None:
    """Debian's prometheus (it ships promtool too), installed when missing."""
    import shutil

    from team.processes import apt_install

    if not (shutil.which("prometheus") and shutil.which("promtool")):
        apt_install("prometheus")


def write_prometheus_config(path: Path, targets: Sequence[str]) -> None:
    """The repository's prometheus.yml with these scrape targets and an absolute rules path;
    ``promtool`` checks the result and the rules before Prometheus starts."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": list(targets)}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run(["promtool", "check", "rules", str(PROMETHEUS_DIR / "rules.yml")])
    run(["promtool", "check", "config", str(path)])


def prometheus_command(config_path: Path, data_dir: Path, port: int) -> list[str]:
    return ["prometheus", f"--config.file={config_path}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}"]

