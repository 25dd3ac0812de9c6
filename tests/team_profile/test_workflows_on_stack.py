"""release.yml and retrain.yml as a fresh runner runs them, against the local team stack: a
fresh clone of the repository (the team's fork: this checkout's commit, with the project's
params.yaml and dvc.lock), each job's `run:` steps in order, with exactly the variables the
job sets (the secrets and repository variables named like them, filled from the stack's
team.env) on a bare environment. The runner has no data until `make data-pull` fetches it
from the shared DVC remote; the certification and the monitor then work on the shared
registry, Prefect server and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from team.stack import Stack
from tests.helpers import run
from tests.team_profile.project import MONTHS
from tests.team_profile.workflow_steps import bare_env, context_for, load_job, run_steps

pytestmark = pytest.mark.team
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner_checkout(tmp_path_factory: pytest.TempPathFactory,
                    team_project: tuple[Path, Path]) -> Path:
    """What actions/checkout gives the runner: the committed repository, nothing else."""
    checkout = tmp_path_factory.mktemp("runner") / "checkout"
    run(["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(checkout)], REPO_ROOT)
    project = team_project[0]
    for name in ("params.yaml", "dvc.lock"):  # the team's fork: its params and data versions
        shutil.copy(project / name, checkout / name)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam",
         "the team's params and data versions"], checkout)
    assert not (checkout / "data" / "raw").exists()
    return checkout


def job_context(team_env: dict[str, str], project: Path, **inputs: str) -> dict[str, Any]:
    values = {**team_env, "MLOPS_DVC_REMOTE_DIR": str(project / "local" / "dvc-remote"),
              "MLOPS_ALERT_WEBHOOK_URL": ""}
    return context_for(values, inputs=inputs)


def check(done: list[Any], n_steps: int) -> str:
    out = "\n".join(d.stdout + d.stderr for d in done)
    assert len(done) == n_steps and all(d.returncode == 0 for d in done), out[-6000:]
    return out


def test_the_release_job_certifies_on_a_fresh_runner(loop: dict[str, Any],
                                                     team_env: dict[str, str],
                                                     team_project: tuple[Path, Path],
                                                     runner_checkout: Path) -> None:
    job = load_job("release.yml", "certify-and-promote")
    done = run_steps(job, runner_checkout, job_context(team_env, team_project[0],
                                                       version=loop["champion"]), bare_env())
    out = check(done, len(job.steps))
    assert (runner_checkout / "data" / "raw" / f"{MONTHS[-1]}.parquet").exists()
    assert f"v{loop['champion']}" in out and "passed" in out.lower()


def test_the_retrain_job_monitors_on_a_fresh_runner(loop: dict[str, Any],
                                                    team_env: dict[str, str],
                                                    team_project: tuple[Path, Path],
                                                    runner_checkout: Path,
                                                    team_stack: Stack) -> None:
    with psycopg.connect(team_env["MLOPS_STATE_DB_URL"]) as conn:
        before = conn.execute("SELECT max(monitored_at) FROM monitoring_history").fetchone()[0]
    job = load_job("retrain.yml", "monitor-and-maybe-retrain")
    done = run_steps(job, runner_checkout, job_context(team_env, team_project[0],
                                                       window=MONTHS[-1]), bare_env())
    out = check(done, len(job.steps))
    assert MONTHS[-1] in out
    # The runner read the service processes' log in PostgreSQL and recorded the window there.
    with psycopg.connect(team_env["MLOPS_STATE_DB_URL"]) as conn:
        after, n = conn.execute("SELECT max(monitored_at), count(*) FROM monitoring_history "
                                "WHERE window_name = %s", (MONTHS[-1],)).fetchone()
    assert n == 1 and after > before
