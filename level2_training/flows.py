"""Level 2 flows: ``train`` (one model) and ``tune`` (candidates fanned out on Dask).

Both end the same way: the chosen model is evaluated, logged to MLflow with its lineage,
and registered as a new version of one model name with the ``challenger`` alias. A run whose
inputs (data versions, code, parameters, seed) match a registered version registers nothing
and reports that version instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import flow, get_run_logger, runtime

from level1_devops.settings import Settings
from level2_training import registry, tracking
from level2_training.data import Split, window_periods
from level2_training.lineage import lineage_tags, partition_versions
from level2_training.params import ModelParams, TrainingParams, TrainParams
from level2_training.tasks import (
    Candidate,
    ensure_ingested,
    evaluate,
    fit,
    fit_and_validate,
    load_window,
    split_window,
)


@dataclass
class CandidateRun:
    """One tuning candidate as reported: what it changed, its score, the worker that fit it."""

    index: int
    params: dict[str, Any]   # its entry in params.yaml tune.candidates
    validation_roc_auc: float
    worker: str              # the Dask worker's name, or "local"
    worker_address: str
    run_id: str              # its nested MLflow run


@dataclass
class TrainResult:
    """What a training flow did: the registered version, and whether it is new; for `tune`,
    every candidate too."""

    model_name: str
    version: str
    run_id: str
    created: bool
    metrics: dict[str, float] = field(default_factory=dict)
    candidates: list[CandidateRun] = field(default_factory=list)


@dataclass
class _Prepared:
    settings: Settings
    params: TrainParams
    model_name: str
    partitions: dict[str, str]
    tags: dict[str, str]
    existing: Any


def _prepare(settings: Settings, params: TrainingParams) -> _Prepared:
    """Make sure the window is ingested, and compute the lineage."""
    train = params.train
    # Fail fast when the store does not answer.
    tracking.use_tracking(settings, tracking.experiment_name(params.model_name))
    periods = window_periods(train)
    ensure_ingested(settings, periods)
    partitions = partition_versions(settings.raw_dir, periods)
    tags = lineage_tags(settings.project_dir, partitions, train,
                        str(runtime.flow_run.id) if runtime.flow_run.id else None)
    existing = registry.find_by_fingerprint(tracking.client(settings), params.model_name,
                                            tags["fingerprint"])
    return _Prepared(settings, train, params.model_name, partitions, tags, existing)


def _existing(prepared: _Prepared) -> TrainResult:
    version = prepared.existing
    metrics = tracking.client(prepared.settings).get_run(version.run_id).data.metrics
    get_run_logger().info("Same data, code and parameters as version %s: nothing registered.",
                          version.version)
    return TrainResult(prepared.model_name, str(version.version), version.run_id, False, metrics)


def _log_and_register(prepared: _Prepared, model: Any, splits: dict[str, Split],
                      extra_params: dict[str, Any] | None = None) -> TrainResult:
    """Evaluate the chosen model, log it to the active MLflow run and register it."""
    import mlflow

    params = prepared.params
    evaluation = evaluate(model, splits, params)
    mlflow.log_params({"seed": params.seed, "decision_threshold": params.decision_threshold,
                       "train": f"{params.train_from}..{params.train_to}",
                       "validation": f"{params.validation_from}..{params.validation_to}",
                       "holdout": f"{params.holdout_from}..{params.holdout_to}",
                       "n_train": len(splits["train"]),
                       **{f"model.{k}": v for k, v in params.model.model_dump().items()},
                       **(extra_params or {})})
    mlflow.log_metrics(evaluation.metrics)
    tracking.log_figures(evaluation.figures, prepared.settings.training_plots_dir)
    tracking.write_metrics(evaluation.metrics, prepared.settings.training_metrics_path)
    tracking.log_reference(splits["train"], model, params.reference_rows, params.seed)
    info = tracking.log_model(model, splits["holdout"].X.head(5))
    active = mlflow.active_run()
    assert active is not None, "called inside mlflow.start_run()"
    run_id = active.info.run_id
    version = registry.register(tracking.client(prepared.settings), prepared.model_name,
                                info.model_uri, {**prepared.tags, "run_id": run_id})
    get_run_logger().info("Registered %s version %s (holdout ROC AUC %.3f) as @%s",
                          prepared.model_name, version, evaluation.metrics["holdout_roc_auc"],
                          registry.CHALLENGER)
    return TrainResult(prepared.model_name, version, run_id, True, evaluation.metrics)


@flow(name="train", log_prints=True)
def train(settings: Settings, params: TrainingParams) -> TrainResult:
    """Ingest -> load window -> split by time -> features -> fit -> evaluate -> log -> register."""
    import mlflow

    prepared = _prepare(settings, params)
    if prepared.existing is not None:
        return _existing(prepared)
    train = prepared.params
    flights = load_window(settings, window_periods(train), train)
    splits = split_window(flights, train)
    with mlflow.start_run(run_name="train", tags=prepared.tags):
        model = fit(splits["train"], train.model, train.seed)
        return _log_and_register(prepared, model, splits)


@flow(name="tune", log_prints=True)
def tune(settings: Settings, params: TrainingParams, register_best: bool = True) -> TrainResult:
    """Fit every candidate in parallel (Dask), keep the best validation ROC AUC, register it.

    The candidates are ``params.tune.candidates``. With ``register_best=False`` they are
    tracked (nested runs) and the winner reported, but nothing is registered: a person
    decides whether it goes into params.yaml. Each candidate's run is tagged with the Dask
    worker that fit it (``dask_worker``), and the result lists them.
    """
    import mlflow

    candidates = params.tune.candidates
    prepared = _prepare(settings, params)
    train: TrainParams = prepared.params
    if not candidates:
        raise ValueError("params.yaml tune.candidates is empty: nothing to tune")
    grid = [train.model.model_copy(update=c) for c in candidates]
    ModelParams.model_validate(grid[0].model_dump())  # reject typos before any work
    flights = load_window(settings, window_periods(train), train)
    splits = split_window(flights, train)
    with warnings.catch_warnings():
        # Dask suggests scattering the frames; a few candidates x a few MB each is fine.
        warnings.filterwarnings("ignore", message=".*[Ll]arge.*", category=UserWarning)
        futures = [fit_and_validate.submit(splits, g, train.seed, train.decision_threshold)
                   for g in grid]
        fitted: list[Candidate] = [f.result() for f in futures]
    with mlflow.start_run(run_name="tune", tags={**prepared.tags, "tuning": "true"}):
        reported = [_log_candidate(i, candidates[i], g, c)
                    for i, (g, c) in enumerate(zip(grid, fitted, strict=True))]
        workers = sorted({c.worker for c in fitted})
        mlflow.set_tag("tuning.workers", ", ".join(workers))
        best = max(range(len(grid)), key=lambda i: fitted[i].metrics["validation_roc_auc"])
        mlflow.log_params({"tuning.best_candidate": best, "tuning.n_candidates": len(grid)})
        get_run_logger().info("Best candidate %d: %s (validation ROC AUC %.4f); fit on %s",
                              best, candidates[best], fitted[best].metrics["validation_roc_auc"],
                              ", ".join(workers))
        result = _choose(prepared, grid[best], fitted[best], best, splits, register_best)
    return replace(result, candidates=reported)


def _log_candidate(index: int, overrides: dict[str, Any], model_params: ModelParams,
                   fitted: Candidate) -> CandidateRun:
    """One nested run per candidate: its parameters, metrics and the worker that fit it."""
    import mlflow

    with mlflow.start_run(run_name=f"candidate-{index}", nested=True) as run:
        mlflow.log_params(model_params.model_dump())
        mlflow.log_metrics(fitted.metrics)
        mlflow.set_tags({"dask_worker": fitted.worker,
                         "dask_worker_address": fitted.worker_address or "local"})
    return CandidateRun(index, dict(overrides), fitted.metrics["validation_roc_auc"],
                        fitted.worker, fitted.worker_address, run.info.run_id)


def _choose(prepared: _Prepared, model_params: ModelParams, best: Candidate, index: int,
            splits: dict[str, Split], register_best: bool) -> TrainResult:
    """Report the best candidate, or register it (unless its inputs are registered already)."""
    import mlflow

    if not register_best:
        active = mlflow.active_run()
        assert active is not None
        return TrainResult(prepared.model_name, "", active.info.run_id, False,
                           {**best.metrics, "tuning.best_candidate": float(index)})
    prepared.params = prepared.params.model_copy(update={"model": model_params})
    # The winner's parameters make its fingerprint (same data, same flow run).
    prepared.tags = lineage_tags(prepared.settings.project_dir, prepared.partitions,
                                 prepared.params, prepared.tags["prefect_flow_run_id"])
    prepared.existing = registry.find_by_fingerprint(
        tracking.client(prepared.settings), prepared.model_name, prepared.tags["fingerprint"])
    if prepared.existing is not None:
        return _existing(prepared)
    return _log_and_register(prepared, best.model, splits)


def dask_runner(settings: Settings, n_workers: int = 2) -> Any:
    """A DaskTaskRunner: the configured scheduler, or a local cluster of ``n_workers``."""
    import logging

    from prefect_dask import DaskTaskRunner

    logging.getLogger("distributed").setLevel(logging.WARNING)
    if settings.dask_scheduler_address:
        return DaskTaskRunner(address=settings.dask_scheduler_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": n_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})
