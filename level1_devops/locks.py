"""One operation at a time on the project's state: an exclusive file lock (fcntl.flock).

Two commands run at once (two `mlops ingest`, two `mlops promote`, two retrains) take turns
instead of racing; a holder that dies releases the lock with its process. The lock file holds
the holder's pid (for the message) and is removed on release, so it never lingers. It works
between the processes of one machine; the team profile needs a lock across machines.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockTimeout(RuntimeError):
    """Another process held the lock for longer than this one would wait."""


@contextmanager
def exclusive(path: Path, what: str, timeout_s: float = 600.0) -> Iterator[Path]:
    """Hold the lock at ``path`` for the block, waiting up to ``timeout_s`` for a holder.

    Args:
        path: the lock file (created, and removed on release).
        what: names the operation in the error (``ingestion``, ``release``).
        timeout_s: how long to wait for another holder; 0 tries once.

    Yields:
        The lock file's path.

    Raises:
        LockTimeout: another holder still held it after ``timeout_s``; the message names it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while (fd := _try_lock(path)) is None:
        if time.monotonic() >= deadline:
            holder = _read_pid(path)
            raise LockTimeout(
                f"another {what}{f' (pid {holder})' if holder else ''} holds {path} and "
                f"has not finished within {timeout_s:g} s: wait for it, or stop it, then re-run")
        time.sleep(0.1)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        path.unlink(missing_ok=True)  # before unlocking: a waiter then retries on a new file
        os.close(fd)  # releases the lock


def _try_lock(path: Path) -> int | None:
    """A descriptor holding the lock on the file now at ``path``, or None when it is held.

    A waiter may lock a file its holder has just removed; it then retries on the new one.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    locked = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now, mine = os.stat(path), os.fstat(fd)
        locked = (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)
    except (BlockingIOError, FileNotFoundError):
        pass
    finally:
        if not locked:
            os.close(fd)
    return fd if locked else None


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
