"""The steps of training as Prefect tasks: each small, named after what it does.

Tasks that take data frames opt out of Prefect's input-hash cache: hashing a frame costs
more than the step, and a training run must not be skipped by a cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from level1_devops.feed import Feed
from level1_devops.ingest import ingest, ingest_lock, ingested_periods
from level1_devops.settings import Settings
from level1_devops.versioning import commit_and_push, is_dvc_repo
from level2_training.data import Split, load_periods, require_periods, split_by_time
from level2_training.metrics import (
    classification_metrics,
    evaluation_plots,
    feature_importance,
    per_period_auc,
)
from level2_training.model import fit_model
from level2_training.params import ModelParams, TrainParams


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass (I/O against the feed), never a bad feed or a missing window."""
    return isinstance(state.result(raise_on_failure=False), OSError)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def ensure_ingested(settings: Settings, periods: list[str]) -> list[str]:
    """Pull the window's periods from the feed when they are not ingested yet (Level 1)."""
    missing = sorted(set(periods) - set(ingested_periods(settings.raw_dir)))
    if not missing:
        return []
    with ingest_lock(settings.data_dir):  # one ingestion at a time, `mlops ingest` included
        results = ingest(Feed(settings.feed_dir), settings.raw_dir, settings.quarantine_dir,
                         until=missing[-1])
        if results and is_dvc_repo(settings.project_dir):
            commit_and_push(settings.project_dir)
    require_periods(settings.raw_dir, periods)
    return [r.period for r in results]


@task(cache_policy=NO_CACHE)
def load_window(settings: Settings, periods: list[str], params: TrainParams) -> pd.DataFrame:
    """Validated flights of the window from data/raw (quarantine never enters training)."""
    return load_periods(settings.raw_dir, periods, params.max_rows_per_period, params.seed)


@task(cache_policy=NO_CACHE)
def split_window(flights: pd.DataFrame, params: TrainParams) -> dict[str, Split]:
    """Train / validation / holdout by time, features from the Level 1 builder."""
    return split_by_time(flights, params)


@task(cache_policy=NO_CACHE)
def fit(train: Split, model_params: ModelParams, seed: int) -> Any:
    """Fit the pipeline on the train side."""
    return fit_model(train.X, train.y, model_params, seed)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    figures: dict[str, Any]


def score_sides(model: Any, splits: dict[str, Split], threshold: float) -> dict[str, float]:
    """Metrics of every side, prefixed (``validation_roc_auc``), plus per-month holdout AUC."""
    metrics: dict[str, float] = {}
    for side, split in splits.items():
        p = model.predict_proba(split.X)[:, 1]
        metrics.update({f"{side}_{k}": v
                        for k, v in classification_metrics(split.y, p, threshold).items()})
        if side == "holdout":
            metrics.update({f"holdout_roc_auc.{period}": v
                            for period, v in per_period_auc(split.y, p, split.period).items()})
    return metrics


@task(cache_policy=NO_CACHE)
def evaluate(model: Any, splits: dict[str, Split], params: TrainParams) -> Evaluation:
    """Metrics on every side and the plots a data scientist looks at."""
    holdout, validation = splits["holdout"], splits["validation"]
    importance = feature_importance(model, validation.X, validation.y, params.seed)
    figures = evaluation_plots(holdout.y, model.predict_proba(holdout.X)[:, 1], importance)
    return Evaluation(score_sides(model, splits, params.decision_threshold), figures)


@dataclass
class Candidate:
    """One fitted tuning candidate: the model, its validation metrics, the worker that ran it."""

    model: Any
    metrics: dict[str, float]
    worker: str            # the Dask worker's name, or "local" outside a Dask worker
    worker_address: str    # its address ("" when local)


def running_worker() -> tuple[str, str]:
    """The name and address of the Dask worker running the caller, or ("local", "")."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker (a thread or process pool)
        return "local", ""
    return str(worker.name), str(worker.address)


@task(cache_policy=NO_CACHE)
def fit_and_validate(splits: dict[str, Split], model_params: ModelParams, seed: int,
                     threshold: float) -> Candidate:
    """One tuning candidate: fit on train, score on validation (runs on a Dask worker)."""
    model = fit_model(splits["train"].X, splits["train"].y, model_params, seed)
    validation = splits["validation"]
    p = model.predict_proba(validation.X)[:, 1]
    metrics = classification_metrics(validation.y, p, threshold)
    return Candidate(model, {f"validation_{k}": v for k, v in metrics.items()},
                     *running_worker())
