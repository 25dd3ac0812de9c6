"""Lineage: which code, data and parameters made a model, as tags on its run and version.

The fingerprint combines the data versions, the training code and the parameters (seed
included): two runs with the same fingerprint make the same model, so the second one
registers nothing new.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import level1_devops
import level2_training
from level1_devops.ingest import partition_path
from level1_devops.versioning import data_versions
from level2_training.params import TrainParams


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file's bytes (read in blocks)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """The content hash DVC records for a file (md5 of its bytes)."""
    return file_digest(path, "md5")


def partition_versions(raw_dir: Path, periods: list[str]) -> dict[str, str]:
    """The content hash of every raw partition a run reads, by period."""
    return {p: file_md5(partition_path(raw_dir, p)) for p in periods}


def git_state(project_dir: Path) -> dict[str, str]:
    """Commit and dirty flag of the project's git tree ("unknown" outside a git checkout)."""
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or "unknown",
            "git_dirty": "unknown" if dirty is None else str(bool(dirty)).lower()}


def code_version() -> str:
    """Hash of the training code (level 1 and level 2 sources), independent of git state."""
    digest = hashlib.sha256()
    for package in (level1_devops, level2_training):
        root = Path(next(iter(package.__path__)))
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(partitions: dict[str, str], params: TrainParams, code: str) -> str:
    """Same data versions + code + params (seed included) -> same fingerprint."""
    text = json.dumps({"data": partitions, "params": params.model_dump(), "code": code},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def lineage_tags(project_dir: Path, partitions: dict[str, str], params: TrainParams,
                 flow_run_id: str | None) -> dict[str, str]:
    """Every lineage tag of a training run."""
    code = code_version()
    tags = {
        **git_state(project_dir),
        "code_version": code,
        "params_hash": params.digest(),
        "fingerprint": fingerprint(partitions, params, code),
        "prefect_flow_run_id": flow_run_id or "none",
    }
    tags.update({f"data.raw.{p}": v for p, v in partitions.items()})
    tags.update({f"dvc.{path}": md5 for path, md5 in data_versions(project_dir).items()})
    return tags
