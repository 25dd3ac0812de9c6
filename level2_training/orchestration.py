"""The process's set-up for Prefect and MLflow: what entry points call before any flow runs.

Both libraries read their configuration from the environment, so this is the one module that
writes it; entry points (the CLI commands, the deployment entry flows, the test session) call
``configure_process`` once, and nothing else in the project touches ``os.environ``.

By default flows run against a local ephemeral API whose database lives in the project's
``PREFECT_HOME``; set ``PREFECT_API_URL`` to use a Prefect server instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from level1_devops.settings import Settings

PREFECT_DEFAULTS = {
    # Measured here: a fresh ephemeral API takes 32-36 s to start on 2 busy cores, longer
    # than Prefect's default 20 s startup timeout.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # Its telemetry write also hit "database is locked" here; nothing leaves the machine.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    # Dask's scheduler and workers narrate every connection at INFO; warnings are enough.
    "DASK_LOGGING__DISTRIBUTED": "warning",
}
MLFLOW_DEFAULTS = {
    # Fail in seconds, not after MLflow's default minutes of retries against a dead server.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # Requirements are stated (tracking.MODEL_REQUIREMENTS); do not copy the uv files in.
    "MLFLOW_UV_AUTO_DETECT": "false",
    # Downloads are logged, not drawn: a service's log is not a terminal.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def library_env(settings: Settings) -> dict[str, str]:
    """The settings MLflow and Prefect read from their own variables (the team profile's
    servers and credentials), for this process and every process it starts."""
    values = {
        "MLFLOW_TRACKING_USERNAME": settings.mlflow_tracking_username,
        "MLFLOW_TRACKING_PASSWORD": settings.mlflow_tracking_password,
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_API_AUTH_STRING": settings.prefect_api_auth_string,
    }
    return {key: value if isinstance(value, str) else value.get_secret_value()
            for key, value in values.items() if value is not None}


def configure_process(settings: Settings) -> None:
    """Project-local PREFECT_HOME, the servers and credentials the settings name (a ``.env``
    file's included), and the defaults above, unless the environment says otherwise."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    for key, value in library_env(settings).items():
        os.environ.setdefault(key, value)
    for key, value in {**PREFECT_DEFAULTS, **MLFLOW_DEFAULTS}.items():
        os.environ.setdefault(key, value)


@contextmanager
def prefect_api() -> Iterator[str]:
    """One Prefect API for this process and every process it starts (Dask workers included).

    Uses ``PREFECT_API_URL`` when set (a Prefect server); otherwise starts a local API on
    the project's database for the duration, instead of one ephemeral API per process.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        # Deliver the queued logs and events while the API still answers; after it stops
        # they would be retried against a dead port for a minute.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for worker in (APILogWorker, EventsWorker):
            worker.drain_all(timeout=10, at_exit=False)
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()
