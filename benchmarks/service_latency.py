"""Scoring service latency and throughput against a floor and `mlflow models serve`, one run.

Same model version (@champion: run `make level3` first), same clients for every server:
sequential httpx calls at low load, wrk (C, `apt-get install wrk`) with 32 connections under
load; servers in their own processes, one worker each, one OpenMP thread:
  (a) floor: in-process predict_proba of one row + a bare uvicorn endpoint's round trip;
  (b) this service: /predict at low load and at 32 concurrent clients, /predict/batch (100);
  (c) `mlflow models serve` on the same version, at low load and at 32 concurrent clients.
Targets: single-row p50 at low load within 2x the floor; throughput at 32 clients at least
10x `mlflow models serve` with p99 under 100 ms; /predict/batch (100 rows) within 1.5x of
the in-process batch call.

    uv run python benchmarks/service_latency.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from level1_devops.settings import Settings
from level3_deployment.client import free_port, wait_ready

os.environ.setdefault("OMP_NUM_THREADS", "1")


def start(cmd: list[str], port: int, ready_path: str, env: dict[str, str] | None = None) -> Any:
    log = Path(tempfile.mkdtemp(prefix="bench-")) / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code < 500:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"{cmd[:4]} did not start; see {log}")


def stop(process: Any) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q) * 1000)


def timed_calls(call: Callable[[], Any], n: int) -> list[float]:
    call()  # warm up
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def load(url: str, body: dict[str, Any], clients: int, seconds: float) -> dict[str, float]:
    """wrk with ``clients`` connections posting ``body`` for ``seconds``: rate, p50, p99, errors.

    (An asyncio + httpx generator topped out at ~790 requests/s against a bare endpoint here,
    so it measured itself; wrk does not.)
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the load test: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    (folder / "body.json").write_text(json.dumps(body))
    script = folder / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'local f = io.open("{folder / "body.json"}")\nwrk.body = f:read("*a")\n'
                      "f:close()\n")
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True,
                         check=True).stdout

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert value, out
        return float(value[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[value[2]]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rate, out
    return {"rps": float(rate[1]), "p50": ms("50"), "p99": ms("99"),
            "errors": float(errors[1]) if errors else 0.0}


def sequential(url: str, body: dict[str, Any], n: int = 300) -> list[float]:
    with httpx.Client(timeout=30) as http:
        return timed_calls(lambda: http.post(url, json=body).raise_for_status(), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    from mlflow import MlflowClient

    from level1_devops.features import build_features
    from level2_training.params import TrainingParams
    from level3_deployment.client import real_records
    from level3_deployment.loading import load_version, records_to_features, version_for_alias

    settings = Settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    version = version_for_alias(client, "flight-delay", "champion")
    if version is None:
        raise SystemExit("no @champion: run `make level3` first")
    model = load_version(client, "flight-delay", version)
    flights = real_records(settings, TrainingParams.load(settings.project_dir).train, 100)
    one = flights[0]
    rows: dict[str, list[float]] = {}

    # (a) the floor
    rows["in-process predict_proba, 1 row"] = timed_calls(
        lambda: model.predict_proba(records_to_features([one])), 300)
    rows["in-process predict_proba, 100 rows"] = timed_calls(
        lambda: model.predict_proba(records_to_features(flights)), 100)
    bare_port = free_port()
    bench_dir = str(Path(__file__).parent)
    bare = start([sys.executable, "-m", "uvicorn", "--app-dir", bench_dir, "bare_app:app",
                  "--port", str(bare_port), "--log-level", "warning"], bare_port, "/predict")
    try:
        rows["bare uvicorn endpoint, round trip"] = sequential(
            f"http://127.0.0.1:{bare_port}/predict", one)
    finally:
        stop(bare)

    # (b) this service
    port = free_port()
    service = start([sys.executable, "-m", "level1_devops.cli", "serve", "--app", "level4",
                     "--port", str(port)],
                    port, "/health/ready")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, service)
        rows["service /predict, low load"] = sequential(f"{url}/predict", one)
        rows["service /predict/batch 100, low load"] = sequential(
            f"{url}/predict/batch", {"flights": flights}, 100)
        ours = load(f"{url}/predict", one, 32, args.seconds)
    finally:
        stop(service)

    # (c) mlflow models serve, same version
    mlflow_port = free_port()
    features = build_features(__import__("pandas").DataFrame([one]))
    payload = {"dataframe_records": features.to_dict(orient="records")}
    payload = {"dataframe_records": [{k: (None if isinstance(v, float) and np.isnan(v) else v)
                                      for k, v in r.items()} for r in payload["dataframe_records"]]}
    mlflow_server = start([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                           f"models:/flight-delay/{version}", "--env-manager", "local",
                           "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
                          mlflow_port, "/ping",
                          {"MLFLOW_TRACKING_URI": settings.tracking_uri,
                           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"})
    try:
        rows["mlflow models serve, low load"] = sequential(
            f"http://127.0.0.1:{mlflow_port}/invocations", payload, 200)
        theirs = load(f"http://127.0.0.1:{mlflow_port}/invocations", payload, 32,
                      args.seconds)
    finally:
        stop(mlflow_server)

    print(f"\nModel flight-delay v{version}; one worker per server; wrk for the load.")
    print(f"{'what':<42}{'p50 ms':>9}{'p99 ms':>9}")
    for name, samples in rows.items():
        print(f"{name:<42}{percentile_ms(samples, 50):>9.2f}{percentile_ms(samples, 99):>9.2f}")
    print(f"\n{'32 concurrent clients, /predict':<42}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'errors':>8}")
    for name, r in (("this service", ours), ("mlflow models serve", theirs)):
        print(f"{name:<42}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['errors']:>8.0f}")
    p50 = {k: percentile_ms(v, 50) for k, v in rows.items()}
    floor = p50["in-process predict_proba, 1 row"] + p50["bare uvicorn endpoint, round trip"]
    single = p50["service /predict, low load"] / floor
    speedup = ours["rps"] / theirs["rps"]
    batch = p50["service /predict/batch 100, low load"] / p50["in-process predict_proba, 100 rows"]
    print(f"\nsingle-row p50 / floor: {single:.2f}x (target <= 2x)")
    print(f"throughput vs mlflow models serve: {speedup:.1f}x (target >= 10x), "
          f"p99 {ours['p99']:.0f} ms (target < 100 ms)")
    print(f"batch of 100 / in-process batch call: {batch:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
