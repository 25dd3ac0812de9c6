"""The team stack's process records: every process it starts is the leader of its own
process group, written to ``pids.json`` the moment it starts, so ``down`` (or a failed
``up``) stops exactly those and nothing else, and a recycled pid is never taken for one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from team.processes import StackError, alive, start, stop, wait_until

if TYPE_CHECKING:
    from team.postgres import Cluster

START_TIMEOUT_S = 180.0
SERVERS = ("mlflow", "prefect-server", "dask-scheduler")  # what the other processes use


@dataclass
class Record:
    """One process the stack started (the leader of its own process group)."""

    name: str
    pid: int
    port: int | None
    log_path: str
    command: list[str]
    # The kernel's start time of the process: a recycled pid is never taken for it.
    started: int | None = None


def start_ticks(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def record_alive(rec: Record) -> bool:
    return alive(rec.pid) and (rec.started is None or start_ticks(rec.pid) == rec.started)


@dataclass
class Launcher:
    """Starts the stack's processes and keeps ``pids.json`` in step with them."""

    state_dir: Path
    records: list[Record] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def pids_path(self) -> Path:
        return self.state_dir / "pids.json"

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def launch(self, name: str, args: Sequence[str], env: Mapping[str, str],
               port: int | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        proc = start(args, self.log_path(name), env=env, cwd=cwd)
        self.add(Record(name, proc.pid, port, str(self.log_path(name)), list(args),
                        start_ticks(proc.pid)))
        self.procs[name] = proc
        return proc

    def add(self, rec: Record) -> None:
        self.records.append(rec)
        self.pids_path.write_text(json.dumps([asdict(r) for r in self.records], indent=2))

    def wait(self, name: str, check: Callable[[], bool],
             timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until ``check()`` holds. Any process started so far dying first fails at
        once, naming it, with the end of its log."""
        def guarded() -> bool:
            for other, proc in self.procs.items():
                if other != name and proc.poll() is not None:
                    raise StackError(f"{other} exited ({proc.returncode}) while the stack "
                                     f"started{log_tail(self.log_path(other))}")
            return check()

        wait_until(guarded, name, timeout_s, self.procs.get(name), self.log_path(name))

    def stop_all(self) -> None:
        stop_records(self.records)



def stop_records(records: Sequence[Record],
                 log: Callable[[str], None] = lambda line: None) -> None:
    """Stop the recorded process groups (PostgreSQL aside): the servers' clients first, then
    the servers, each tier's groups at once (SIGTERM, SIGKILL after a grace period)."""
    from concurrent.futures import ThreadPoolExecutor

    def stop_one(rec: Record) -> str:
        began = time.monotonic()
        stop(rec.pid)
        return f"  {rec.name} stopped ({time.monotonic() - began:.1f} s)"

    running = [rec for rec in reversed(records) if rec.name != "postgres" and record_alive(rec)]
    for tier in ([r for r in running if r.name not in SERVERS],
                 [r for r in running if r.name in SERVERS]):
        if tier:
            with ThreadPoolExecutor(len(tier)) as pool:
                for line in pool.map(stop_one, tier):
                    log(line)


def log_tail(log_path: Path, n_lines: int = 15) -> str:
    if not log_path.exists():
        return ""
    lines = log_path.read_text(errors="replace").splitlines()[-n_lines:]
    return f"; the end of {log_path}:\n" + "\n".join(lines)


def load_records(pids_path: Path) -> list[Record]:
    if not pids_path.exists():
        return []
    return [Record(**item) for item in json.loads(pids_path.read_text())]


def stop_postgres(cluster: Cluster, records: Sequence[Record],
                  log: Callable[[str], None] = lambda line: None) -> None:
    """``pg_ctl stop`` the cluster; when pg_ctl cannot reach its folder (deleted, or a parent
    closed to the postgres user), tell the recorded postmaster to shut down fast (SIGINT)."""
    try:
        cluster.stop()
        return
    except StackError as err:
        reason = str(err)
    for rec in records:
        if rec.name == "postgres" and record_alive(rec):
            os.kill(rec.pid, signal.SIGINT)
            wait_until(lambda: not record_alive(rec), "postgres (fast shutdown)", 60)  # noqa: B023
            log(f"  postgres stopped by its pid; pg_ctl could not: {reason}")
