"""The Level 2 flows end to end: real Prefect, real MLflow (SQLite), real DVC, real Dask."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from level1_devops.settings import Settings
from level2_training.lineage import file_md5
from level2_training.registry import CHALLENGER
from tests.helpers import context, make, run

pytestmark = pytest.mark.slow


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=Settings().tracking_uri)


def registry_state(name: str = "flight-delay") -> tuple[list[str], dict[str, str]]:
    model = client().get_registered_model(name)
    versions = sorted(str(v.version) for v in client().search_model_versions(f"name = '{name}'"))
    return versions, {k: str(v) for k, v in model.aliases.items()}


def test_train_registers_a_challenger_with_metrics_and_plots(trained) -> None:
    assert trained.created and trained.version == "1"
    versions, aliases = registry_state()
    assert versions == ["1"] and aliases == {CHALLENGER: "1"}
    run_ = client().get_run(trained.run_id)
    for key in ("holdout_roc_auc", "holdout_pr_auc", "holdout_log_loss", "holdout_brier",
                "holdout_f1", "holdout_precision", "holdout_recall", "holdout_roc_auc.2013-04",
                "validation_roc_auc", "train_roc_auc"):
        assert key in run_.data.metrics, key
    assert 0.55 < run_.data.metrics["holdout_roc_auc"] < 0.95
    plots = {a.path for a in client().list_artifacts(trained.run_id, "plots")}
    assert plots == {f"plots/{n}.png" for n in ("roc", "precision_recall", "calibration",
                                                "feature_importance")}
    reference = {a.path for a in client().list_artifacts(trained.run_id, "reference")}
    assert reference == {"reference/features.parquet"}  # the drift monitor's reference


def test_registered_model_has_a_signature_and_loads_with_the_trusted_types(trained) -> None:
    from mlflow.models import get_model_info

    from level1_devops.model_file import load_model

    info = get_model_info(f"models:/flight-delay/{trained.version}")
    assert info.signature is not None and "carrier" in info.signature.inputs.input_names()
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    import mlflow

    folder = Path(mlflow.artifacts.download_artifacts(f"models:/flight-delay/{trained.version}"))
    model = load_model(folder / "model.skops")
    assert hasattr(model, "predict_proba")


def test_lineage_tags_name_code_data_params_and_flow_run(trained, l2_project: Path,
                                                         prefect_server: str) -> None:
    tags = client().get_model_version("flight-delay", trained.version).tags
    head = run(["git", "rev-parse", "HEAD"], l2_project).stdout.strip()
    assert tags["git_commit"] == head and tags["git_dirty"] in {"true", "false"}
    raw = l2_project / "data" / "raw"
    for period in ("2013-01", "2013-02", "2013-03", "2013-04"):
        assert tags[f"data.raw.{period}"] == file_md5(raw / f"{period}.parquet")
    assert tags["params_hash"] == context()[1].train.digest()
    assert tags["dvc.data/raw"].endswith(".dir")
    flow_run_id = uuid.UUID(tags["prefect_flow_run_id"])

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        assert prefect.read_flow_run(flow_run_id).state.is_completed()


def test_same_inputs_register_no_duplicate(trained) -> None:
    from level2_training.flows import train

    again = train(*context())
    assert not again.created and again.version == trained.version
    assert again.metrics["holdout_roc_auc"] == trained.metrics["holdout_roc_auc"]
    assert registry_state() == (["1"], {CHALLENGER: "1"})


def test_training_is_reproducible(trained, tmp_path: Path, monkeypatch) -> None:
    """Same data + code + params + seed, a fresh tracking store: the same metrics."""
    from level2_training.flows import train

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("MLOPS_MLFLOW_DIR", str(tmp_path))
    other = train(*context())
    assert other.created
    for key in ("holdout_roc_auc", "holdout_log_loss", "validation_roc_auc"):
        assert other.metrics[key] == pytest.approx(trained.metrics[key], abs=1e-12)


def test_a_window_the_feed_never_published_fails_and_changes_nothing(trained, l2_project):
    from level2_training.data import TrainingDataError
    from level2_training.flows import train

    before = registry_state()
    settings, params = context()
    with pytest.raises(TrainingDataError, match="periods not ingested: 2013-06, 2013-07"):
        train(settings, params.with_train(holdout_to="2013-09"))
    assert registry_state() == before


def test_a_failing_fit_registers_nothing_and_marks_the_run_failed(trained, l2_project):
    from level1_devops.features import FeatureParams
    from level2_training.flows import train

    before = registry_state()
    no_late = FeatureParams(late_threshold_min=5000, missing_arrival_is_late=False)
    settings, params = context()
    with pytest.raises(ValueError, match="single class"):
        train(settings, params.with_train(features=no_late.model_dump()))
    assert registry_state() == before
    experiment = client().get_experiment_by_name("flight-delay-training")
    newest = client().search_runs([experiment.experiment_id], order_by=["start_time DESC"],
                                  max_results=1)[0]
    assert newest.info.status == "FAILED"


def test_an_unreachable_tracking_store_fails_fast(trained, monkeypatch) -> None:
    from level2_training.flows import train
    from level2_training.tracking import TrackingError

    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(TrackingError, match=r"http://127.0.0.1:9 cannot be used"):
        train(*context())
    monkeypatch.delenv("MLOPS_MLFLOW_TRACKING_URI")
    assert registry_state() == (["1"], {CHALLENGER: "1"})


def test_tune_runs_candidates_on_dask_and_registers_the_best(trained) -> None:
    from level2_training.flows import dask_runner, tune

    result = tune.with_options(task_runner=dask_runner(Settings(), n_workers=2))(*context())
    assert result.created and result.version == "2"
    parent = client().get_run(result.run_id)
    children = client().search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 2
    best = max(children, key=lambda r: r.data.metrics["validation_roc_auc"])
    assert parent.data.params["tuning.best_candidate"] in {"0", "1"}
    assert parent.data.metrics["validation_roc_auc"] == pytest.approx(
        best.data.metrics["validation_roc_auc"])
    assert registry_state()[1] == {CHALLENGER: "2"}


def test_dvc_train_stage_lists_exactly_the_parameters_training_reads() -> None:
    import yaml

    from level2_training.params import TrainParams
    from tests.helpers import REPO_ROOT

    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["train"]
    listed = set(stage["params"])
    trained_on = {f"train.{name}" for name in TrainParams.model_fields if name != "features"}
    assert {p for p in listed if p.startswith("train.")} == trained_on
    # The whole features section (the adapter's label definition, whatever a fork names it).
    assert {"features", "registry.model_name"} <= listed
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for key in listed:
        section, _, name = key.partition(".")
        assert section in params and (not name or name in params[section]), (
            f"dvc.yaml lists {key}, params.yaml lacks it")


def test_train_writes_the_metrics_dvc_reads(trained) -> None:
    import json

    metrics = json.loads((Settings().training_reports_dir / "metrics.json").read_text())
    newest = client().get_model_version_by_alias("flight-delay", CHALLENGER)  # the last run
    logged = client().get_run(newest.run_id).data.metrics
    assert metrics["holdout_roc_auc"] == pytest.approx(logged["holdout_roc_auc"], abs=1e-6)


def test_the_workshop_exercise_make_train(trained, l2_project: Path) -> None:
    """Level 2's exercise, as typed: `make train`. Unchanged params register nothing new;
    the guide then changes train.model and trains again."""
    done = make("train", project=l2_project)
    assert f"version {trained.version} already registered" in done.stdout, done.stdout
