"""Session-wide fixtures: the real 2013 feed and small real slices of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from level1_devops.feed import default_feed_dir
from tests.helpers import write_feed


def pytest_configure(config: pytest.Config) -> None:
    """Before anything imports Prefect: a throw-away PREFECT_HOME and the project's defaults."""
    from level1_devops.settings import Settings
    from level2_training.orchestration import configure_prefect

    home = Path(tempfile.mkdtemp(prefix="mlops-tests-prefect-"))
    os.environ["PREFECT_HOME"] = str(home)
    configure_prefect(Settings(prefect_home=home))


@pytest.fixture(scope="session")
def real_feed_dir() -> Path:
    return default_feed_dir()


@pytest.fixture(scope="session")
def real_flights(real_feed_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_feed_dir / "flights.csv.zip")


@pytest.fixture(scope="session")
def real_weather(real_feed_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_feed_dir / "weather.csv")


@pytest.fixture(scope="session")
def small_flights(real_flights: pd.DataFrame) -> pd.DataFrame:
    """600 real flights from each of January-March, in file order."""
    months = real_flights[real_flights["month"].isin([1, 2, 3])]
    return months.groupby("month").sample(600, random_state=0).sort_index().reset_index(drop=True)


@pytest.fixture
def small_feed(tmp_path: Path, small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> Path:
    return write_feed(tmp_path / "feed", small_flights, real_weather)


@pytest.fixture(scope="session")
def level0_handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Execute the Level 0 notebook once, on a 10% sample, into a temporary MLflow and models dir.

    Returns the folder holding the handed-off model file and its note.
    """
    import sys

    from tests.helpers import REPO_ROOT, run

    out = tmp_path_factory.mktemp("level0")
    run([sys.executable, str(REPO_ROOT / "level0_notebooks" / "run.py"),
         "-p", "SAMPLE_FRAC=0.1",
         "-p", f"MLFLOW_TRACKING_URI=sqlite:///{out / 'mlflow.db'}",
         "-p", f"MLFLOW_ARTIFACTS_DIR={out / 'artifacts'}",
         "-p", f"MODELS_DIR={out / 'models'}",
         "--output", str(out / "executed.ipynb")], cwd=REPO_ROOT)
    return out
