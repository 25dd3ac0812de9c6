"""What `make level3` shows: the service started, a few real requests, the answers, a stop.

    uv run python -m level3_deployment.demo
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

from level1_devops.settings import Settings
from level2_training.data import load_periods, periods_between
from level2_training.params import load_train_params
from level3_deployment.service.schemas import REQUEST_FIELDS


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


def as_requests(flights: pd.DataFrame) -> list[dict[str, Any]]:
    """Flight records as the service receives them (JSON-ready: missing values are None)."""
    fields = flights[list(REQUEST_FIELDS)]
    records: list[dict[str, Any]] = json.loads(
        fields.astype(object).where(pd.notna(fields), None).to_json(orient="records"))
    return records


def real_flights(settings: Settings, n: int) -> list[dict[str, Any]]:
    """``n`` real holdout flights as the service receives them (JSON-ready)."""
    train = load_train_params(settings.project_dir)
    month = periods_between(train.holdout_from, train.holdout_from)
    return as_requests(load_periods(settings.raw_dir, month).sample(n, random_state=1))


@contextmanager
def running_service(log_path: Path) -> Iterator[str]:
    """`mlops serve` on a free loopback port (output to ``log_path``), ready; yields its URL
    and stops it gracefully (SIGTERM: requests drained, logs flushed) on the way out.

    Raises:
        RuntimeError: it did not become ready (the log says why).
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "level1_devops.cli", "serve", "--port",
                                   str(port)], stdout=log, stderr=subprocess.STDOUT,
                                  env=os.environ.copy())
    try:
        try:
            wait_ready(base, server)
        except TimeoutError as err:
            raise RuntimeError(f"{err}; see {log_path}") from err
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    settings = Settings()
    log_path = settings.reports_dir / "level3" / "service.log"
    print(f"Starting the service (log: {log_path}) ...", flush=True)
    try:
        with running_service(log_path) as base:
            show(settings, base)
    except RuntimeError as err:
        raise SystemExit(str(err)) from err
    print("Service stopped (graceful shutdown).")


def show(settings: Settings, base: str) -> None:
    """A few real requests and their answers."""
    flights = real_flights(settings, 100)
    with httpx.Client(base_url=base, timeout=30) as http:
        print(f"\nGET /model -> {http.get('/model').json()}")
        for flight in flights[:3]:
            reply = http.post("/predict", json=flight).json()
            print(f"\nPOST /predict {flight['carrier']}{flight['flight']} {flight['origin']}->"
                  f"{flight['dest']} {flight['year']}-{flight['month']:02d}-{flight['day']:02d}"
                  f" {flight['hour']:02d}:{flight['minute']:02d}\n  -> P(late) "
                  f"{reply['probability']:.3f}, late={reply['late']}, model "
                  f"v{reply['model_version']}, request {reply['request_id']}")
        batch = http.post("/predict/batch", json={"flights": flights}).json()
        late = sum(p["late"] for p in batch["predictions"])
        print(f"\nPOST /predict/batch with {len(flights)} flights -> {late} predicted late "
              f"(model v{batch['model_version']})")
        bad = http.post("/predict", json={**flights[0], "origin": "BOS"})
        print(f"\nA bad request (origin BOS) -> {bad.status_code} {bad.json()}")
    print(f"\nDocs while it runs: {base}/docs (start it yourself with `make serve`: "
          "http://127.0.0.1:8000/docs)")


if __name__ == "__main__":
    main()
