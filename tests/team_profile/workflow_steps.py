"""A workflow job's shell steps and environment, as a GitHub runner would see them.

`load_job` reads one job of a workflow file: its `env:`, its `uses:` steps (which a test
stands in for: a fresh clone for `actions/checkout`, this Python for `actions/setup-python`)
and its `run:` steps in order. `resolve_env` evaluates the `${{ ... }}` expressions the
workflows use (`secrets.X`, `vars.X`, `github.event.inputs.x`, `||` and quoted literals; any
other expression is refused, so a workflow this cannot model fails loudly). `run_steps` runs
the `run:` steps the way a runner does (`bash --noprofile --norc -eo pipefail`, in the
checkout, with only the variables the job sets on top of a bare base environment), stopping
at the first failure. An end-to-end test points the context at the local team stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / ".github" / "workflows"
# What GitHub runs a `run:` step with when the job names no shell.
RUNNER_SHELL = ("bash", "--noprofile", "--norc", "-eo", "pipefail")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
LITERAL = re.compile(r"^'((?:[^']|'')*)'$")
PATH_EXPR = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")


@dataclass(frozen=True)
class RunStep:
    """One `run:` step: its name, its script and its own `env:` (expressions unresolved)."""

    name: str
    script: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One workflow job: its `env:`, the actions it uses and its `run:` steps, in order."""

    workflow: str
    name: str
    env: dict[str, str]
    uses: list[str]
    steps: list[RunStep]
    # Every step in order, as ("uses", action) or ("run", step name).
    order: list[tuple[str, str]]


def load_job(workflow: str | Path, job: str) -> Job:
    """The job ``job`` of ``workflow`` (a path, or a file name in .github/workflows)."""
    path = Path(workflow) if Path(workflow).is_file() else WORKFLOWS_DIR / str(workflow)
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    body = spec["jobs"][job]
    env = {k: str(v) for k, v in {**spec.get("env", {}), **body.get("env", {})}.items()}
    uses, steps, order = [], [], []
    for i, step in enumerate(body["steps"]):
        if "uses" in step:
            uses.append(step["uses"].split("@")[0])
            order.append(("uses", uses[-1]))
        else:
            name = step.get("name", f"step {i + 1}")
            steps.append(RunStep(name, step["run"], {k: str(v) for k, v in
                                                     step.get("env", {}).items()}))
            order.append(("run", name))
    return Job(path.name, job, env, uses, steps, order)


def context_for(values: Mapping[str, str], inputs: Mapping[str, str] | None = None,
                client_payload: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An expression context where each secret and repository variable is named like the
    variable it feeds (what docs/team-profile.md asks a team to set), e.g. from team.env."""
    return {"secrets": dict(values), "vars": dict(values),
            "github": {"event": {"inputs": dict(inputs or {}),
                                 "client_payload": dict(client_payload or {})}}}


def evaluate(expression: str, context: Mapping[str, Any]) -> str:
    """One `${{ }}` expression's value: operands joined by `||`, the first non-empty wins."""
    for operand in (o.strip() for o in expression.split("||")):
        literal = LITERAL.match(operand)
        if literal:
            value: Any = literal[1].replace("''", "'")
        elif PATH_EXPR.match(operand):
            value = context
            for part in operand.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
        else:
            raise ValueError(f"cannot evaluate workflow expression operand {operand!r}")
        if value:
            return str(value)
    return ""


def substitute(text: str, context: Mapping[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: evaluate(m[1], context), text)


def resolve_env(job: Job, context: Mapping[str, Any],
                step: RunStep | None = None) -> dict[str, str]:
    """The job's (and the step's) variables with their expressions evaluated."""
    env = {**job.env, **(step.env if step else {})}
    return {name: substitute(value, context) for name, value in env.items()}


def bare_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a runner has before the job's variables: its machine's own environment (PATH,
    HOME, the network's proxies and certificates), CI=true, and nothing of the project's:
    no MLOPS_*, MLFLOW_*, PREFECT_* or DASK_* variable of this test process."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MLOPS_", "MLFLOW_", "PREFECT_", "DASK_", "VIRTUAL_ENV",
                                   "PYTEST_", "COV_"))}
    return {**env, "CI": "true", "GITHUB_ACTIONS": "true", **(extra or {})}


def run_steps(job: Job, checkout_dir: Path, context: Mapping[str, Any],
              base_env: Mapping[str, str] | None = None, timeout_s: float = 3600,
              only: Sequence[str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run the job's `run:` steps (or those named in ``only``) in ``checkout_dir`` as a runner
    does, stopping at the first that fails; returns each finished step's result."""
    done = []
    for step in job.steps:
        if only is not None and step.name not in only:
            continue
        env = {**(base_env if base_env is not None else bare_env()),
               **resolve_env(job, context, step)}
        script = substitute(step.script, context)
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
            handle.write(script)
        try:
            result = subprocess.run([*RUNNER_SHELL, handle.name], cwd=checkout_dir, env=env,
                                    capture_output=True, text=True, timeout=timeout_s,
                                    check=False)
        finally:
            os.unlink(handle.name)
        done.append(result)
        if result.returncode != 0:
            break
    return done
