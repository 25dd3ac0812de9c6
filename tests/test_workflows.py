"""Every GitHub workflow is valid and free of Actions security findings, checked offline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, run

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(workflow)], REPO_ROOT)


def test_workflows_have_no_security_findings() -> None:
    done = run([str(BIN / "zizmor"), "--offline", "--no-progress", str(REPO_ROOT / ".github")],
               REPO_ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_call_make_targets(workflow: Path) -> None:
    """CI runs what people run: every step's command is a make target."""
    spec = yaml.safe_load(workflow.read_text())
    commands = [s["run"] for job in spec["jobs"].values() for s in job["steps"] if "run" in s]
    assert commands and all(c.strip().startswith("make ") for c in commands)


def test_workflow_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  x:\n    steps: []\n")  # no runs-on
    done = run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                str(broken)], REPO_ROOT, check=False)
    assert done.returncode != 0
