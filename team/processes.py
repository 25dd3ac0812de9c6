"""Starting, watching and stopping the team stack's processes: free ports, commands that fail
with what they printed, Debian packages installed when missing, process groups recorded by id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A service of the stack could not be installed, started or reached; says which and why."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: Sequence[str], env: Mapping[str, str] | None = None,
        cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; a failure raises StackError with the command's own words."""
    try:
        done = subprocess.run(list(args), env=dict(env) if env is not None else None, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise StackError(f"{args[0]}: {err}") from err
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise StackError(f"{' '.join(args[:3])} ... failed ({done.returncode}): {said}")
    return done


_apt_updated = False


def apt_install(*packages: str) -> None:
    """``apt-get install`` Debian packages (as root; otherwise say what to run)."""
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(f"{', '.join(packages)} missing: install Debian's "
                         f"{' '.join(packages)} (sudo apt-get install {' '.join(packages)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        run(["apt-get", "update", "-q"], env=env)
        _apt_updated = True
    # The packages' own services are never started here (no init system in a container,
    # and the stack starts its own processes on its own ports).
    policy = Path("/usr/sbin/policy-rc.d")
    wrote_policy = not policy.exists()
    if wrote_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)
    finally:
        if wrote_policy:
            policy.unlink(missing_ok=True)


def start(args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running process in its own process group, its output in ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=dict(env) if env else None,
                                cwd=cwd, start_new_session=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def stop(pid: int, timeout_s: float = 20) -> None:
    """SIGTERM the process group ``pid`` leads, then SIGKILL what is left after the timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def wait_until(check: Callable[[], bool], what: str, timeout_s: float,
               process: subprocess.Popen[bytes] | None = None,
               log_path: Path | None = None) -> None:
    """Poll ``check`` until it is true; a dead process or the timeout raises StackError
    with the end of the process's log."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited ({process.returncode}) while starting"
                             + _tail(log_path))
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise StackError(f"{what} not ready after {timeout_s:.0f} s" + _tail(log_path))


def _tail(log_path: Path | None) -> str:
    if log_path is None or not log_path.exists():
        return ""
    lines = log_path.read_text(errors="replace").splitlines()[-15:]
    return f"; the end of {log_path}:\n" + "\n".join(lines)


def http_ok(url: str, headers: Mapping[str, str] | None = None,
            accept: Sequence[int] = (200,)) -> Callable[[], bool]:
    """A check for wait_until: ``url`` answers one of ``accept``."""
    import httpx

    def check() -> bool:
        try:
            return httpx.get(url, headers=dict(headers or {}), timeout=2).status_code in accept
        except httpx.HTTPError:
            return False
    return check


def port_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex((host, port)) == 0
    return check


def listening(pid: int) -> set[tuple[str, int]]:
    """The TCP addresses a process and its descendants listen on (exposure checks)."""
    import psutil

    leader = psutil.Process(pid)
    found = set()
    for proc in (leader, *leader.children(recursive=True)):
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in proc.net_connections("tcp")
                      if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return found
