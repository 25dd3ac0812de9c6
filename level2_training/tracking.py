"""MLflow tracking: the embedded store by default, a server by ``MLOPS_MLFLOW_TRACKING_URI``.

Nothing happens at import; ``use_tracking`` points MLflow at the store and checks that it
answers, so an unreachable store fails fast with a clear message instead of at the end.
Every experiment the project creates gets an explicit artifact location under the project's
state (never ``./mlruns`` of whatever folder a command runs in), and every client names its
tracking URI (``client``).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from level1_devops.features import LABEL_COLUMN
from level1_devops.feed import PERIOD_COLUMN
from level1_devops.model_file import TRUSTED_TYPES
from level1_devops.settings import Settings

# What the logged model needs to load, stated rather than inferred: MLflow's inference runs
# a subprocess and picks up whatever else is imported (measured: 7.2 s of an 8.9 s log_model).
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "pandas", "numpy")


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message names it."""


def client(settings: Settings) -> Any:
    """An MLflow client of the configured store (never the process's default)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri)


def experiment_name(model_name: str, purpose: str = "training") -> str:
    """The experiment of one purpose for one registered model, e.g. ``flight-delay-training``."""
    return f"{model_name}-{purpose}"


def use_tracking(settings: Settings, experiment: str) -> str:
    """Point MLflow at the configured store and ``experiment``; returns the experiment id.

    The experiment is created when missing, with its artifacts under the project's MLflow
    folder (an HTTP server keeps its own artifact root).

    Raises:
        TrackingError: the store does not answer.
    """
    import mlflow

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = str(found.experiment_id)
        else:
            # Artifacts under the project, not ./mlruns of whatever the working directory is.
            artifacts = settings.mlflow_artifacts_dir
            location = artifacts.as_uri() if not uri.startswith("http") else None
            if location:
                artifacts.mkdir(parents=True, exist_ok=True)
            experiment_id = str(mlflow.create_experiment(experiment, artifact_location=location))
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id
    except Exception as err:  # MLflow raises many types for an unreachable or broken store
        raise TrackingError(f"MLflow tracking store {uri} cannot be used: "
                            f"{type(err).__name__}: {str(err)[:300]}") from err


def pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS]


def log_model(model: Any, input_example: Any) -> Any:
    """Log the fitted pipeline in skops format with its signature; returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict_proba(input_example)[:, 1])
    return mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=input_example,
        serialization_format="skops", skops_trusted_types=TRUSTED_TYPES,
        pip_requirements=pip_requirements())


REFERENCE_ARTIFACT = "reference/features.parquet"
# The model's P(positive) beside the features: in the reference sample and the prediction log.
PROBABILITY_COLUMN = "probability"


def log_reference(train: Any, model: Any, n_rows: int, seed: int) -> None:
    """A sample of the training features, labels and the model's probabilities, kept with the
    run: what later windows of production data are compared with (Level 4's monitor)."""
    import tempfile

    import mlflow

    frame = train.X.assign(**{LABEL_COLUMN: train.y.to_numpy(),
                              PERIOD_COLUMN: train.period.to_numpy()})
    sample = frame.sample(min(n_rows, len(frame)), random_state=seed)
    sample[PROBABILITY_COLUMN] = model.predict_proba(sample[train.X.columns])[:, 1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))


def write_metrics(metrics: dict[str, float], path: Path) -> None:
    """The run's metrics as JSON, where `dvc metrics show` reads them (dvc.yaml, train)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: round(v, 6) for k, v in sorted(metrics.items())}, indent=2))


def log_figures(figures: dict[str, Any], folder: Path) -> None:
    """Save each figure under ``folder`` and log it to the active run under ``plots/``."""
    import matplotlib.pyplot as plt
    import mlflow

    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in figures.items():
        figure.savefig(folder / name, dpi=100, bbox_inches="tight")
        mlflow.log_artifact(str(folder / name), artifact_path="plots")
        plt.close(figure)
