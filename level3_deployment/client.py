"""A client of the running scoring service: start it, wait for it, send it real records.

What the Level 3 demo, the Level 4 replay, the benchmarks and the tests share.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from level1_devops.schema import REQUEST_COLUMNS
from level1_devops.settings import Settings
from level2_training.data import load_periods, periods_between
from level2_training.params import TrainParams


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base_url: str, process: subprocess.Popen[bytes] | None = None,
               timeout_s: float = 120) -> None:
    """Return once ``/health/ready`` answers 200; raise TimeoutError otherwise (or at once
    when ``process``, the server, has exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become ready within {timeout_s:.0f} s")


def as_requests(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Records as the service receives them (JSON-ready: missing values are None)."""
    fields = records[list(REQUEST_COLUMNS)]
    requests: list[dict[str, Any]] = json.loads(
        fields.astype(object).where(pd.notna(fields), None).to_json(orient="records"))
    return requests


def real_records(settings: Settings, train: TrainParams, n: int) -> list[dict[str, Any]]:
    """``n`` real holdout records as the service receives them (JSON-ready)."""
    month = periods_between(train.holdout_from, train.holdout_from)
    return as_requests(load_periods(settings.raw_dir, month).sample(n, random_state=1))


@contextmanager
def running_service(settings: Settings, app: str, log_path: Path,
                    env: dict[str, str] | None = None) -> Iterator[str]:
    """`mlops serve --app APP` on a free loopback port with ``settings`` (output to
    ``log_path``), ready; yields its URL and stops it gracefully (SIGTERM: requests drained,
    logs flushed) on the way out. ``env``: the child's environment besides the settings
    (default: this process's).

    Raises:
        RuntimeError: it did not become ready (the log says why).
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    inherited = os.environ if env is None else env
    # The child's settings are exactly ``settings``: no MLOPS_* variable of this process leaks in.
    child_env = {**{k: v for k, v in inherited.items() if not k.startswith("MLOPS_")},
                 **settings.as_env()}
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "level1_devops.cli", "serve", "--app",
                                   app, "--port", str(port)], stdout=log,
                                  stderr=subprocess.STDOUT, env=child_env)
    try:
        try:
            wait_ready(base, server)
        except TimeoutError as err:
            raise RuntimeError(f"{err}; see {log_path}") from err
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


