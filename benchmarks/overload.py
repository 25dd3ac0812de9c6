"""Overload: the scoring service at 1x, 4x and 10x its sustainable rate, one run.

Needs @champion in the project's store (`make level3`), wrk (`apt-get install wrk`: a Lua
script paces each connection and times every request by its status), and for ``--front
nginx`` (the default runs both) nginx (`apt-get install nginx-light`).
Level 3's app (`mlops serve --app level3`), one worker, one OpenMP thread, /predict:
  1. the sustainable rate R: wrk with 32 connections (the capacity, as service_latency.py
     measures it);
  2. then R, 4R and 10R offered by 32 paced wrk connections, for ``--seconds`` each (a
     connection waits for its answer, so a slow answer lowers what is offered: the table
     prints what was).
Per load: goodput (200s per second), p50/p99 of the 200s, how fast the 503s come back (p99),
and how many 504s and other errors. Targets at 10x: no 504, 503s in under 50 ms p99, goodput
at least 90% of the 1x throughput.

Twice: the service alone (its own bounds answer the 503s), and behind nginx shedding at 95% of
the rate measured through it (level3_deployment/nginx/shed.conf.template): the same load
generator, the same 2 cores.

    uv run python benchmarks/overload.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from service_latency import load, start, stop

from level1_devops.settings import Settings
from level2_training.params import TrainingParams
from level3_deployment.client import free_port, real_records

# wrk, one connection per thread (so each thread's request and response alternate), each
# connection paced by wrk's delay() (a request every cycle) and timing its own requests with
# CLOCK_MONOTONIC (LuaJIT's ffi): every request's status and latency, at an offered rate.
# hey, paced the same way, could not offer more than ~1,600 requests/s here (it shares the 2
# cores); wrk can.
PACED_LUA = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } mono_ts;
           int clock_gettime(int clk, mono_ts *ts); ]]
local ts = ffi.new("mono_ts")
local function now()
  ffi.C.clock_gettime(1, ts); return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local f = io.open("BODY"); local body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  cycle_ms = tonumber(args[1]); sent_at = 0; last_ms = 0; lines = {}
  req = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
-- Each connection starts a request every cycle_ms (less the wait for the last answer).
function delay() return math.max(0, math.floor(cycle_ms - last_ms)) end
function request() sent_at = now(); return req end
function response(status, headers, body)
  local took = now() - sent_at
  last_ms = took * 1000
  lines[#lines + 1] = status .. " " .. string.format("%.6f", took)
end
function done(summary, latency, requests)
  local out = io.open("OUT", "w")
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("lines")) do out:write(line, "\\n") end
  end
  out:close()
end
"""


def paced(url: str, body: Path, seconds: float, rate: float) -> dict[str, float]:
    """``rate`` requests per second offered for ``seconds``: enough connections that each
    starts a request every 50 ms (while its answers take less), each request's outcome."""
    connections = min(512, max(16, math.ceil(rate * 0.05)))
    folder = Path(tempfile.mkdtemp(prefix="bench-paced-"))
    script = folder / "paced.lua"
    script.write_text(PACED_LUA.replace("BODY", str(body)).replace("OUT", str(folder / "out")))
    cycle_ms = 1000 * connections / rate
    subprocess.run(["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds:g}s", "-s",
                    str(script), url, "--", f"{cycle_ms:.3f}"], capture_output=True, text=True,
                   check=True)
    rows = [line.split() for line in (folder / "out").read_text().splitlines()]
    shutil.rmtree(folder, ignore_errors=True)
    ok = [float(t) for code, t in rows if code == "200"]
    shed = [float(t) for code, t in rows if code == "503"]
    return {
        "offered": len(rows) / seconds, "goodput": len(ok) / seconds,
        "p50_ok_ms": float(np.percentile(ok, 50) * 1000) if ok else math.nan,
        "p99_ok_ms": float(np.percentile(ok, 99) * 1000) if ok else math.nan,
        "n_503": len(shed), "p99_503_ms": float(np.percentile(shed, 99) * 1000) if shed
        else math.nan,
        "n_504": sum(code == "504" for code, _ in rows),
        "n_other": sum(code not in {"200", "503", "504"} for code, _ in rows),
    }


NGINX_TEMPLATE = (Path(__file__).resolve().parents[1] / "level3_deployment" / "nginx"
                  / "shed.conf.template")


def loads(capacity_url: str, url: str, one: dict[str, Any], body: Path,
          seconds: float) -> tuple[float, dict[int, dict[str, float]]]:
    """The sustainable rate R (wrk at ``capacity_url``), then R, 4R, 10R offered at ``url``."""
    load(capacity_url, one, 32, 3)  # warm up
    capacity = load(capacity_url, one, 32, seconds)
    rate = capacity["rps"]
    print(f"  sustainable rate (wrk, 32 connections): {rate:,.0f} req/s, p99 "
          f"{capacity['p99']:.1f} ms")
    return rate, {k: paced(url, body, seconds, k * rate) for k in (1, 4, 10)}


def nginx_front(prefix: Path, port: int, upstream_port: int, rate: float) -> Path:
    """nginx.conf on ``port`` for the service on ``upstream_port``, shedding past ``rate``."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_TEMPLATE.read_text().format(
        prefix=prefix, listen=f"127.0.0.1:{port}", upstream=f"127.0.0.1:{upstream_port}",
        rate=max(1, int(rate)), burst=max(1, int(rate * 0.05)), retry_after=1))
    return conf


def behind_nginx(service_port: int, one: dict[str, Any], body: Path,
                 seconds: float) -> tuple[float, dict[int, dict[str, float]]]:
    """The same loads through nginx: R measured through it, then shedding at 0.95 R."""
    prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    port = free_port()
    conf = nginx_front(prefix, port, service_port, 1_000_000)
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(prefix), "-g",
                              "daemon off;"])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while nginx.poll() is None and time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        if nginx.poll() is not None:
            raise SystemExit(f"nginx did not start: see {prefix}/error.log")
        load(f"{base}/unlimited/predict", one, 32, 3)  # warm up
        rate = load(f"{base}/unlimited/predict", one, 32, seconds)["rps"]
        nginx_front(prefix, port, service_port, 0.95 * rate)
        subprocess.run(["nginx", "-c", str(conf), "-p", str(prefix), "-s", "reload"],
                       check=True)
        return loads(f"{base}/unlimited/predict", f"{base}/predict", one, body, seconds)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)


def print_table(title: str, rate: float, rows: dict[int, dict[str, float]]) -> None:
    print(f"\n{title}\n\n| load | offered req/s | goodput req/s | goodput vs 1x | p50 200 ms "
          "| p99 200 ms | 503s | p99 503 ms | 504s | other |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, r in rows.items():
        print(f"| {k}x | {r['offered']:,.0f} | {r['goodput']:,.0f} | "
              f"{r['goodput'] / rows[1]['goodput']:.0%} | {r['p50_ok_ms']:.1f} | "
              f"{r['p99_ok_ms']:.1f} | {r['n_503']:,} | {r['p99_503_ms']:.1f} | "
              f"{r['n_504']} | {r['n_other']} |")
    worst = rows[10]
    print(f"\nAt 10x: 504s {worst['n_504']} (target 0); 503 p99 {worst['p99_503_ms']:.1f} ms "
          f"(target < 50); goodput {worst['goodput'] / rows[1]['goodput']:.0%} of the 1x "
          f"goodput (target >= 90%); sustainable rate {rate:,.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--front", choices=("none", "nginx", "both"), default="both",
                        help="the service alone, behind nginx shedding at a fixed rate, or both")
    args = parser.parse_args()
    needed = ["wrk"] + (["nginx"] if args.front != "none" else [])
    if missing := [tool for tool in needed if shutil.which(tool) is None]:
        raise SystemExit(f"{', '.join(missing)} needed: apt-get install wrk nginx-light")
    settings = Settings()
    one = real_records(settings, TrainingParams.load(settings.project_dir).train, 1)[0]
    body = Path(tempfile.mkdtemp(prefix="bench-overload-")) / "body.json"
    body.write_text(json.dumps(one))
    port = free_port()
    service = start([sys.executable, "-m", "level1_devops.cli", "serve", "--app", "level3",
                     "--port", str(port)], port, "/health/ready")
    url = f"http://127.0.0.1:{port}/predict"
    try:
        if args.front in ("none", "both"):
            print("The service alone (its own bounds answer 503):")
            print_table("The service alone", *loads(url, url, one, body, args.seconds))
        if args.front in ("nginx", "both"):
            print("Behind nginx shedding at 95% of the rate measured through it:")
            print_table("Behind nginx (level3_deployment/nginx/shed.conf.template)",
                        *behind_nginx(port, one, body, args.seconds))
    finally:
        stop(service)


if __name__ == "__main__":
    main()
