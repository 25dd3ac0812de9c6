"""The Level 0 notebook runs headless on a sample and hands off a model file with its note."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import mlflow
import nbformat

from tests.helpers import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "level0_notebooks"


def test_notebook_hands_off_a_model_file_and_a_note(level0_handoff: Path) -> None:
    models = level0_handoff / "models"
    assert (models / "flight_delay.skops").stat().st_size > 10_000
    note = json.loads((models / "flight_delay.json").read_text())
    assert note["format"].startswith("skops")
    assert "dep_delay" not in note["inputs"] and "arr_delay" not in note["inputs"]
    assert note["test_metrics"]["roc_auc"] > 0.6
    assert (models / "flight_delay.md").read_text().startswith("# Flight delay model")


def test_notebook_logs_each_experiment_by_hand(level0_handoff: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{level0_handoff / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("level0-notebook")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3
    assert all("roc_auc" in r.data.metrics for r in runs)


def test_executed_notebook_shows_its_plots(level0_handoff: Path) -> None:
    executed = nbformat.read(level0_handoff / "executed.ipynb", as_version=4)
    images = [o for c in executed.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2


def test_ipynb_is_paired_with_the_reviewed_py_and_has_no_outputs() -> None:
    source = jupytext.read(NOTEBOOK_DIR / "01_explore_and_train.py")
    paired = nbformat.read(NOTEBOOK_DIR / "01_explore_and_train.ipynb", as_version=4)
    assert [c.source for c in paired.cells] == [c.source for c in source.cells]
    assert all(not c.get("outputs") for c in paired.cells if c.cell_type == "code")


def test_level0_imports_nothing_from_the_platform() -> None:
    text = (NOTEBOOK_DIR / "01_explore_and_train.py").read_text()
    assert "level1_devops" not in text and "level2_training" not in text
