"""release.yml and retrain.yml point at the team profile: every variable they set is one the
profile needs, named like the secret or repository variable it comes from; together they make
a complete team profile; a fresh runner installs, pulls data/raw from the shared DVC remote,
then runs the same make target, whose exit code is the job's. The DVC step is also run for
real, against a folder remote, as tests/team_profile/workflow_steps.py runs steps."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from level1_devops.settings import Settings
from tests.helpers import run
from tests.team_profile.workflow_steps import (
    Job,
    bare_env,
    context_for,
    evaluate,
    load_job,
    resolve_env,
    run_steps,
)
from tests.test_team_files import EXAMPLES, env_file, is_secret

JOBS = {"release.yml": ("certify-and-promote", "make promote VERSION=\"$VERSION\"", "VERSION"),
        "retrain.yml": ("monitor-and-maybe-retrain", "make monitor WINDOW=\"$WINDOW\"", "WINDOW")}
# What the team profile needs from a runner (docs/team-profile.md#the-workflows).
TEAM_VARIABLES = {"MLOPS_PROFILE", "MLOPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                  "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_URL", "PREFECT_API_AUTH_STRING",
                  "MLOPS_DASK_SCHEDULER_ADDRESS", "MLOPS_STATE_DB_URL",
                  "MLOPS_ALERT_WEBHOOK_URL", "MLOPS_DVC_REMOTE_DIR"}
PULL_STEP = "Install, then pull data/raw from the shared DVC remote"


def job_of(workflow: str) -> Job:
    return load_job(workflow, JOBS[workflow][0])


@pytest.mark.parametrize("workflow", JOBS)
def test_the_job_sets_the_team_profile_and_nothing_else(workflow: str) -> None:
    job = job_of(workflow)
    make_argument = JOBS[workflow][2]
    assert set(job.env) == TEAM_VARIABLES | {make_argument}
    assert job.env["MLOPS_PROFILE"] == "team"
    for name, expression in job.env.items():
        if name in ("MLOPS_PROFILE", make_argument):
            continue
        # Each comes from a secret or variable of its own name; secrets never from vars.
        kind = "secrets" if is_secret(name) else "vars"
        assert expression == f"${{{{ {kind}.{name} }}}}", (name, expression)


@pytest.mark.parametrize("workflow", JOBS)
def test_what_the_job_sets_is_a_complete_team_profile(
        workflow: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {**env_file(EXAMPLES["compose.env"]), "MLOPS_MLFLOW_TRACKING_URI":
              "http://mlflow:5000", "PREFECT_API_URL": "http://prefect-server:4200/api",
              "MLOPS_DASK_SCHEDULER_ADDRESS": "tcp://dask-scheduler:8786",
              "MLOPS_DVC_REMOTE_DIR": "/shared/dvc-remote"}
    env = resolve_env(job_of(workflow), context_for(values))
    for name in [n for n in os.environ if n.startswith(("MLOPS_", "MLFLOW_", "PREFECT_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.profile == "team" and settings.tracking_uri == "http://mlflow:5000"
    assert str(settings.dvc_remote_dir) == "/shared/dvc-remote"


@pytest.mark.parametrize("workflow", JOBS)
def test_a_fresh_runner_pulls_the_data_before_the_make_target(workflow: str) -> None:
    job = job_of(workflow)
    assert job.order == [("uses", "actions/checkout"), ("uses", "actions/setup-python"),
                         ("run", PULL_STEP), ("run", job.steps[-1].name)]
    pull, target = job.steps
    assert pull.script.strip() == "make data-pull"  # installs first, then dvc pull
    assert target.script.strip() == JOBS[workflow][1]  # VERSION/WINDOW only through env


@pytest.mark.parametrize("workflow", JOBS)
def test_no_step_hides_a_failure(workflow: str) -> None:
    """A refused retrain or a failed monitor exits non-zero: the job must fail with it."""
    import yaml

    spec = yaml.safe_load((Path(__file__).parents[1] / ".github" / "workflows" /
                           workflow).read_text())
    body = spec["jobs"][JOBS[workflow][0]]
    assert "defaults" not in body and "defaults" not in spec  # the runner's bash -e
    for step in body["steps"]:
        assert not step.get("continue-on-error"), step
        assert "|| true" not in step.get("run", "") and "set +e" not in step.get("run", "")


def test_expressions_evaluate_as_github_does() -> None:
    context = context_for({"A": "a"}, inputs={"version": ""}, client_payload={"version": "7"})
    assert evaluate("secrets.A", context) == "a" and evaluate("vars.MISSING", context) == ""
    assert evaluate("github.event.inputs.version || github.event.client_payload.version || ''",
                    context) == "7"
    with pytest.raises(ValueError):
        evaluate("toJSON(secrets)", context)


def test_run_steps_runs_like_a_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the job's variables (no MLOPS_* of this process), bash -e, stop at a failure."""
    workflow = tmp_path / "w.yml"
    workflow.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    env:\n"
        "      X: ${{ secrets.X }}\n    steps:\n"
        "      - run: test \"$X\" = hi && test -z \"${MLOPS_PROFILE:-}\"\n"
        "      - name: fails\n        run: |\n          false\n          echo after\n"
        "      - run: echo never\n")
    monkeypatch.setenv("MLOPS_PROFILE", "team")
    done = run_steps(load_job(workflow, "j"), tmp_path, context_for({"X": "hi"}))
    assert [d.returncode for d in done] == [0, 1] and "after" not in done[1].stdout


def test_data_pull_needs_the_shared_remote(tmp_path: Path) -> None:
    """Without MLOPS_DVC_REMOTE_DIR the pull step says what to set. (The pull itself runs for
    real in a fresh clone against the team stack: team_profile/test_workflows_on_stack.py.)"""
    done = run(["make", "--no-print-directory", "-C", str(Path(__file__).parents[1]),
                "data-pull"], tmp_path, env=bare_env(), check=False)
    assert done.returncode != 0 and "MLOPS_DVC_REMOTE_DIR" in done.stderr


def write_script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
