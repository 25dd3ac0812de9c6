"""What the team stack hands its services and its users: ports, generated secrets, and the
team profile's variables (``team.env``, usable as ``MLOPS_ENV_FILE``).

The profile's own variables are those ``level1_devops.settings`` reads; the stack adds a few
of its own, prefixed ``MLOPS_TEAM_`` (service URLs, the Dask dashboard, the MLflow admin),
that only people and the team tests read.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
from pathlib import Path

from team.processes import StackError
from team.services import BIN_DIR, WORK_POOL

DATABASES = ("mlflow", "mlflow_auth", "prefect", "mlops")  # each owned by a role of its name
SECRETS = ("pg_superuser", *(f"pg_{db}" for db in DATABASES), "mlflow_admin", "mlflow_user",
           "flask_secret_key", "prefect_auth", "service_api_key")
N_SERVICES = 2
MLFLOW_USER = "mlops"  # the project's own MLflow user; "admin" is the bootstrap account
MLFLOW_ADMIN = "admin"
PREFECT_USER = "mlops"
PORT_NAMES = ("postgres", "mlflow", "prefect", "dask", "dask_dashboard", "prometheus",
              *(f"service_{i}" for i in range(1, N_SERVICES + 1)))


def free_ports(names: tuple[str, ...] = PORT_NAMES) -> dict[str, int]:
    """One distinct free loopback port per name (held together while they are picked)."""
    socks = [socket.socket() for _ in names]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return {name: int(sock.getsockname()[1]) for name, sock in zip(names, socks,
                                                                         strict=True)}
    finally:
        for sock in socks:
            sock.close()


def load_secrets(path: Path) -> dict[str, str]:
    """The stack's secrets from ``path`` (0600), any missing one generated and saved: a
    second ``up`` on the same state folder can read what the first stored."""
    known = json.loads(path.read_text()) if path.exists() else {}
    values = {name: known.get(name) or secrets.token_urlsafe(24) for name in SECRETS}
    path.touch(mode=0o600)
    path.write_text(json.dumps(values, indent=2))
    return values


def service_urls(ports: dict[str, int]) -> list[str]:
    return [f"http://127.0.0.1:{ports[f'service_{i}']}" for i in range(1, N_SERVICES + 1)]


def team_env(ports: dict[str, int], keys: dict[str, str], state_dir: Path, project_dir: Path
             ) -> dict[str, str]:
    """Every variable of the team profile for these ports and secrets."""
    mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
    prefect_url = f"http://127.0.0.1:{ports['prefect']}"
    state_db = (f"postgresql://mlops:{keys['pg_mlops']}@127.0.0.1:{ports['postgres']}/mlops")
    return {
        "MLOPS_PROFILE": "team", "MLOPS_PROJECT_DIR": str(project_dir),
        "MLOPS_MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_TRACKING_USERNAME": MLFLOW_USER, "MLFLOW_TRACKING_PASSWORD": keys["mlflow_user"],
        "PREFECT_API_URL": f"{prefect_url}/api", "PREFECT_UI_URL": prefect_url,
        "PREFECT_API_AUTH_STRING": f"{PREFECT_USER}:{keys['prefect_auth']}",
        "MLOPS_WORK_POOL": WORK_POOL,  # prefect.yaml's deployments name their pool by it
        "MLOPS_DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{ports['dask']}",
        "MLOPS_STATE_DB_URL": state_db,
        "MLOPS_SERVICE_API_KEY": keys["service_api_key"],
        "PROMETHEUS_URL": f"http://127.0.0.1:{ports['prometheus']}",
        # Every service's state under the state folder; the data and the DVC remote stay the
        # project's.
        "MLOPS_LOCAL_DIR": str(state_dir), "MLOPS_PREFECT_HOME": str(state_dir / "prefect"),
        "MLOPS_REPORTS_DIR": str(state_dir / "reports"),
        "MLOPS_PREDICTIONS_DIR": str(state_dir / "predictions"),
        "MLOPS_EVIDENTLY_DIR": str(state_dir / "evidently"),
        "MLOPS_MODELS_DIR": str(state_dir / "models"),
        # The stack's own, for people and the team tests.
        "MLOPS_TEAM_SERVICE_URLS": ",".join(service_urls(ports)),
        "MLOPS_TEAM_DASK_DASHBOARD_URL": f"http://127.0.0.1:{ports['dask_dashboard']}/status",
        "MLOPS_TEAM_MLFLOW_ADMIN_USERNAME": MLFLOW_ADMIN,
        "MLOPS_TEAM_MLFLOW_ADMIN_PASSWORD": keys["mlflow_admin"],
    }


def child_environ() -> dict[str, str]:
    """This process's environment without any MLflow, Prefect, Dask or project variable:
    each service gets exactly what the stack gives it."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MLOPS_", "MLFLOW_", "PREFECT_", "DASK_"))}
    env["PATH"] = f"{BIN_DIR}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def client_env(team: dict[str, str], state_dir: Path) -> dict[str, str]:
    """What a process using the shared services runs with: the team env, Prefect's home
    and the project's library defaults (level2_training.orchestration)."""
    from level2_training.orchestration import MLFLOW_DEFAULTS, PREFECT_DEFAULTS

    return {**child_environ(), **PREFECT_DEFAULTS, **MLFLOW_DEFAULTS, **team,
            "PREFECT_HOME": str(state_dir / "prefect")}


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """``KEY=value`` lines (0600), quoted for a shell; python-dotenv reads them too."""
    path.touch(mode=0o600)
    path.write_text("# The team profile's variables (python -m team.stack up); use as "
                    "MLOPS_ENV_FILE or `set -a; . this-file`.\n"
                    + "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()))


def read_env(state_dir: Path) -> dict[str, str]:
    """The variables of the stack running in ``state_dir`` (its ``team.env``).

    Raises:
        StackError: no stack is up there.
    """
    path = state_dir / "team.env"
    if not path.exists():
        raise StackError(f"no team stack is up in {state_dir} (no {path}): "
                         "python -m team.stack up first (make team-up)")
    pairs = (line.partition("=") for line in path.read_text().splitlines()
             if line and not line.startswith("#"))
    return {key: (shlex.split(value) or [""])[0] for key, _, value in pairs}
