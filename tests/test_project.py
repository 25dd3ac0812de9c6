"""The project's own interface: make, the CLI, the layout, the workflows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, mlops, run

LEVELS = {p.name: int(p.name[5]) for p in REPO_ROOT.glob("level[0-9]_*") if p.is_dir()}


def test_make_lists_every_target_with_a_description() -> None:
    out = run(["make", "--no-print-directory"], REPO_ROOT).stdout
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", out, flags=re.M))
    for target in ("setup", "level0", "level1", "level2", "level3", "level4", "demo", "test",
                   "lint", "status", "clean", "mlflow-ui", "prefect-ui", "evidently-ui"):
        assert listed.get(target), f"make does not list {target}"
    makefile = (REPO_ROOT / "Makefile").read_text()
    declared = set(re.findall(r"^([a-z0-9-]+):", makefile, flags=re.M))
    assert declared <= set(listed), f"targets without a ## line: {declared - set(listed)}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


@pytest.mark.parametrize("command", [[], ["ingest"], ["score"], ["status"], ["train"], ["tune"],
                                     ["train-serve"], ["certify"], ["promote"], ["rollback"],
                                     ["serve"], ["monitor"], ["monitor-serve"], ["replay"]])
def test_every_command_explains_itself(command: list[str]) -> None:
    done = mlops(REPO_ROOT, *command, "--help")
    assert "Usage: mlops" in done.stdout and len(done.stdout) > 300


def test_help_is_fast() -> None:
    """Heavy imports (mlflow, prefect, evidently, dvc) wait for the command that needs them."""
    code = ("import sys, level1_devops.cli as c; c.register_plugins(c.app); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'mlflow', 'prefect', 'evidently', 'dvc', 'sklearn', 'pandas'}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert loaded.strip() == "[]"
    start = time.perf_counter()
    mlops(REPO_ROOT, "--help")
    assert time.perf_counter() - start < 10  # generous: the real guard is the import list above


def test_status_json_has_the_data_section(tmp_path: Path) -> None:
    state = json.loads(mlops(tmp_path, "status", "--json").stdout)
    assert state["data"] == {"periods": [], "n_periods": 0, "rows_raw": 0,
                             "rows_quarantined": 0, "dvc_remote_in_sync": None}
    assert set(state["folders"]) >= {"raw", "quarantine", "mlflow", "dvc_remote", "models"}
    assert state["registry"]["versions"] == [] and state["monitoring"]["windows"] == 0
    assert all(p.startswith(str(tmp_path)) for p in state["folders"].values())


def test_levels_import_only_from_lower_levels() -> None:
    pattern = re.compile(r"^\s*(?:from|import)\s+(level[0-9]_\w+)", re.M)
    upward = []
    for name, level in LEVELS.items():
        for path in (REPO_ROOT / name).rglob("*.py"):
            for target in pattern.findall(path.read_text()):
                if target in LEVELS and LEVELS[target] >= level and target != name:
                    upward.append(f"{path.relative_to(REPO_ROOT)} imports {target}")
                if name.startswith("level0") and target != name:
                    upward.append(f"{path.relative_to(REPO_ROOT)} imports {target}")
    assert not upward


def test_state_folders_are_git_ignored() -> None:
    ignored = run(["git", "check-ignore", "local/mlflow", "data/raw", "data/quarantine"],
                  REPO_ROOT, check=False).stdout.split()
    assert ignored == ["local/mlflow", "data/raw", "data/quarantine"]
    # Run output that tools leave in whatever folder they run from: ignored at any depth.
    stray = ["mlruns/0/meta.yaml", "level0_notebooks/mlruns/0/meta.yaml",
             "tests/.schemathesis/x", "level3_deployment/mlartifacts/x"]
    ignored = run(["git", "check-ignore", "--no-index", *stray], REPO_ROOT, check=False)
    assert ignored.stdout.split() == stray


def test_no_run_output_or_large_file_is_tracked() -> None:
    tracked = run(["git", "ls-files"], REPO_ROOT).stdout.splitlines()
    runs = [p for p in tracked if re.search(r"(^|/)(mlruns|mlartifacts|\.schemathesis)/", p)]
    assert not runs, f"run output tracked by git: {runs[:5]}"
    large = [p for p in tracked if p != "uv.lock" and (REPO_ROOT / p).is_file()
             and (REPO_ROOT / p).stat().st_size > 1_000_000]
    assert not large, f"files over 1 MB tracked by git (data belongs in DVC): {large}"


WORKSHOP_EXERCISES = ("level0", "quarantine", "train", "promote", "rollback", "level4", "drift")


def test_every_workshop_exercise_is_a_make_target_run_by_a_test() -> None:
    guide = (REPO_ROOT / "docs" / "workshop.md").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    tests = "\n".join(p.read_text() for p in (REPO_ROOT / "tests").rglob("*.py"))
    for target in WORKSHOP_EXERCISES:
        assert f"make {target}" in guide, f"docs/workshop.md does not use make {target}"
        assert re.search(rf"^{target}:", makefile, re.M), f"no make target {target}"
        assert re.search(rf'make\("{target}"', tests), f"no test runs make {target}"


def test_monitor_with_nothing_logged_says_what_to_do(tmp_path: Path) -> None:
    done = mlops(tmp_path, "monitor", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no logged predictions" in done.stderr and "make serve" in done.stderr
