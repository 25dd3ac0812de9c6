"""Data versioning with DVC: the ingested partitions are a DVC stage's outputs.

``dvc.yaml`` declares the ``ingest`` stage (``data/raw`` and ``data/quarantine``, persistent
so that periods accumulate). After an ingestion, ``commit`` records the new content hashes
in ``dvc.lock`` and the cache, and ``push`` copies them to the remote (a local folder by
default, S3/GCS/Azure by configuration). The DVC command line is used as people use it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

INGEST_STAGE = "ingest"


class VersioningError(RuntimeError):
    """A DVC command failed; the message carries DVC's own explanation."""


def run_dvc(project_dir: Path, *args: str) -> str:
    """Run ``dvc ARGS`` in the project; returns stdout or raises with DVC's message."""
    cmd = [sys.executable, "-m", "dvc", *args]
    done = subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise VersioningError(f"`dvc {' '.join(args)}` failed: {' '.join(message[-3:])}")
    return done.stdout


def is_dvc_repo(project_dir: Path) -> bool:
    return (project_dir / ".dvc").is_dir() and (project_dir / "dvc.yaml").is_file()


def commit_and_push(project_dir: Path) -> None:
    """Record the ingest stage's outputs in dvc.lock and the cache, then push to the remote."""
    run_dvc(project_dir, "commit", "--force", "--quiet", INGEST_STAGE)
    run_dvc(project_dir, "push", "--quiet", INGEST_STAGE)


def remote_in_sync(project_dir: Path) -> bool | None:
    """True when the remote holds every tracked version; None when it cannot be told."""
    if not is_dvc_repo(project_dir):
        return None
    try:
        out = run_dvc(project_dir, "status", "--cloud", "--json")
    except VersioningError:
        return None
    return json.loads(out or "{}") == {}


def data_versions(project_dir: Path) -> dict[str, str]:
    """The DVC content hash of each ingest output as recorded in dvc.lock (lineage tags)."""
    lock_path = project_dir / "dvc.lock"
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    outs = lock.get("stages", {}).get(INGEST_STAGE, {}).get("outs", [])
    return {o["path"]: o.get("md5", "") for o in outs}
