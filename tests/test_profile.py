"""The one switch: MLOPS_PROFILE=team (environment or .env) names every shared service or the
settings refuse to load, saying which are missing and never echoing a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from level1_devops.settings import Settings, SettingsError, load_settings
from level2_training.orchestration import library_env

TEAM = {
    "MLOPS_PROFILE": "team",
    "MLOPS_MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    "MLFLOW_TRACKING_USERNAME": "ops",
    "MLFLOW_TRACKING_PASSWORD": "a-password-never-echoed",
    "PREFECT_API_URL": "http://127.0.0.1:4200/api",
    "PREFECT_API_AUTH_STRING": "ops:an-auth-string-never-echoed",
    "MLOPS_DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:8786",
    "MLOPS_STATE_DB_URL": "postgresql://mlops:a-db-password@127.0.0.1:5432/mlops",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MLOPS_/MLflow/Prefect server variable of the session; an empty .env by default."""
    for key in list(os.environ):
        if key.startswith("MLOPS_") or key in TEAM:
            monkeypatch.delenv(key)
    env_file = tmp_path / ".env"
    monkeypatch.setenv("MLOPS_ENV_FILE", str(env_file))
    return env_file


def test_laptop_is_the_default(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.profile == "laptop"
    assert settings.tracking_uri.startswith("sqlite:///")
    assert settings.state_db_dsn is None


def test_team_profile_from_a_env_file(clean_env: Path) -> None:
    clean_env.write_text("".join(f"{k}={v}\n" for k, v in TEAM.items()))
    settings = load_settings()
    assert settings.profile == "team"
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.state_db_dsn == TEAM["MLOPS_STATE_DB_URL"]
    # What MLflow and Prefect read from their own variables, handed on by configure_process.
    assert library_env(settings) == {k: TEAM[k] for k in (
        "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PREFECT_API_URL",
        "PREFECT_API_AUTH_STRING")}


def test_the_environment_wins_over_the_env_file(clean_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env.write_text("".join(f"{k}={v}\n" for k, v in TEAM.items()))
    monkeypatch.setenv("MLOPS_DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9999")
    assert load_settings().dask_scheduler_address == "tcp://127.0.0.1:9999"


@pytest.mark.parametrize("missing", ["MLOPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD",
                                     "PREFECT_API_URL", "MLOPS_DASK_SCHEDULER_ADDRESS",
                                     "MLOPS_STATE_DB_URL"])
def test_team_profile_names_what_is_missing(clean_env: Path, missing: str) -> None:
    clean_env.write_text("".join(f"{k}={v}\n" for k, v in TEAM.items() if k != missing))
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert missing in str(err.value)
    for secret in ("a-password-never-echoed", "an-auth-string-never-echoed", "a-db-password"):
        assert secret not in str(err.value)


def test_team_profile_refuses_a_laptop_store(clean_env: Path) -> None:
    """A sqlite URI in the team profile would quietly track to one machine's disk."""
    clean_env.write_text("".join(f"{k}={v}\n" for k, v in {
        **TEAM, "MLOPS_MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}.items()))
    with pytest.raises(SettingsError, match="MLOPS_MLFLOW_TRACKING_URI"):
        load_settings()


def test_the_cli_says_what_is_wrong_without_the_secret(clean_env: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if k not in TEAM},
           "MLOPS_SERVICE_API_KEY": "short-secret", "MLOPS_ENV_FILE": str(clean_env)}
    done = subprocess.run([sys.executable, "-m", "level1_devops.cli", "status"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "MLOPS_SERVICE_API_KEY is short" in done.stderr
    assert "short-secret" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_settings_round_trip_through_as_env(clean_env: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A child process (a demo's service, a worker) gets the same settings."""
    for key, value in TEAM.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key in TEAM:
        monkeypatch.delenv(key)
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    again = Settings()
    assert again.profile == "team" and again.state_db_dsn == settings.state_db_dsn
    assert again.prefect_api_url == TEAM["PREFECT_API_URL"]
