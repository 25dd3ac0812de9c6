"""``python -m team.stack up|down|status``: the command line of team/stack.py, and what
``status`` shows a person (each service, alive or not; the UIs and their credentials)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from team.processes import StackError

if TYPE_CHECKING:
    from team.stack import Stack


def uis(env: dict[str, str]) -> dict[str, str]:
    """What a person opens, with the credentials it asks for."""
    urls = env["MLOPS_TEAM_SERVICE_URLS"].split(",")
    return {
        "MLflow UI": f"{env['MLOPS_MLFLOW_TRACKING_URI']}  "
                     f"user {env['MLFLOW_TRACKING_USERNAME']} / "
                     f"{env['MLFLOW_TRACKING_PASSWORD']} (server admin "
                     f"{env['MLOPS_TEAM_MLFLOW_ADMIN_USERNAME']} / "
                     f"{env['MLOPS_TEAM_MLFLOW_ADMIN_PASSWORD']})",
        "Prefect UI": f"{env['PREFECT_UI_URL']}  auth string {env['PREFECT_API_AUTH_STRING']}"
                      f" (work pool {env['MLOPS_WORK_POOL']})",
        "Dask dashboard": env["MLOPS_TEAM_DASK_DASHBOARD_URL"],
        "Prometheus": f"{env['PROMETHEUS_URL']}  (targets: /targets, rules: /rules)",
        **{f"Service {i} docs": f"{url}/docs" for i, url in enumerate(urls, 1)},
        "Service API key": f"{env['MLOPS_SERVICE_API_KEY']}  (X-API-Key, admin endpoints)",
    }


def describe(stack: Stack) -> str:
    rows = stack.status()
    if not rows:
        return f"No team stack in {stack.state_dir} (python -m team.stack up)."
    lines = [f"Team stack in {stack.state_dir}:"]
    for row in rows:
        where = f"127.0.0.1:{row['port']}" if row["port"] else "-"
        lines.append(f"  {row['name']:<15} {where:<16} pid {row['pid']!s:<8} "
                     f"{'alive' if row['alive'] else 'NOT RUNNING':<12} {row['log']}")
    if stack.env_path.exists():
        lines.append("")
        lines += [f"  {name + ':':<17} {where}" for name, where in uis(stack.env()).items()]
        lines.append(f"  {'Variables:':<17} {stack.env_path}  (MLOPS_ENV_FILE={stack.env_path}"
                     f" mlops status)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from team.stack import DEFAULT_STATE_DIR, Stack

    parser = argparse.ArgumentParser(
        prog="python -m team.stack", description=sys.modules["team.stack"].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status"),
                        help="up: start every service and wait until it answers; down: stop "
                             "what up started; status: each service, alive or not, the UIs")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help="where the stack keeps its data, logs, pids.json, secrets.json "
                             "and team.env (default: %(default)s)")
    parser.add_argument("--purge", action="store_true",
                        help="with down: also delete the state folder (every service's data)")
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir)
    try:
        if args.command == "up":
            stack.up()
        elif args.command == "down":
            stack.down(purge=args.purge)
            return 0
    except StackError as err:
        print(f"team stack: {err}", file=sys.stderr)
        return 1
    print(stack.describe())
    rows = stack.status()
    return 0 if rows and all(row["alive"] for row in rows) else 1
