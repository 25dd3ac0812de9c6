"""Batch scoring from the registry: one period's flights scored by ``@champion``.

Level 1 batch-scores with the model file Level 0 handed off; from Level 3 on, the model comes
from the registry, loaded by the service's own loader (the file's sha256 checked against its
registration, a passed certification of that very file, the release record), so what scores
in batch is what serves. Every row carries the registry version that made it, and so does
the output file's name: scores are never separated from their model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from level1_devops.ingest import ingested_periods
from level1_devops.score import read_flights, score_flights, write_frame
from level1_devops.settings import Settings
from level2_training.registry import CHAMPION
from level2_training.tracking import client as tracking_client
from level3_deployment.loading import (
    LoadedModel,
    ModelLoadError,
    load_version,
    release_problem,
    version_for_alias,
)

VERSION_COLUMN = "model_version"


@dataclass(frozen=True)
class BatchScores:
    """What one batch run wrote: the period, the version that scored it, where."""

    period: str
    model_name: str
    version: str
    n_scored: int
    output_path: Path


def scores_path(settings: Settings, period: str, version: str) -> Path:
    """One period's scores by one version: ``scores-<period>-v<version>.parquet``."""
    return settings.batch_scores_dir / f"scores-{period}-v{version}.parquet"


def period_path(raw_dir: Path, period: str | None) -> tuple[str, Path]:
    """The period to score (default: the newest ingested) and its raw file.

    Raises:
        ValueError: nothing is ingested yet, or ``period`` is not.
    """
    periods = ingested_periods(raw_dir)
    if not periods:
        raise ValueError(f"no ingested period in {raw_dir}: run `mlops ingest` first")
    period = period or periods[-1]
    if period not in periods:
        raise ValueError(f"period {period!r} is not ingested; ingested: {periods[0]} .. "
                         f"{periods[-1]} (`mlops ingest` pulls what the feed published)")
    return period, raw_dir / f"{period}.parquet"


def load_champion(client: Any, model_name: str) -> LoadedModel:
    """``@champion``, exactly as the service would serve it, or ModelLoadError.

    Raises:
        ModelLoadError: no champion, or one the service would refuse (its file is not the
            registered one, it is not certified, the alias moved without `mlops promote`).
    """
    version = version_for_alias(client, model_name, CHAMPION)
    if version is None:
        raise ModelLoadError(f"{model_name} has no @{CHAMPION}: run `mlops promote` first")
    loaded = load_version(client, model_name, version)
    problem = release_problem(client, loaded)
    if problem is not None:
        raise ModelLoadError(problem)
    return loaded


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a registry or artifact store that did not answer, never a deliberate refusal."""
    return bool(getattr(state.result(raise_on_failure=False), "transient", False))


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def load_champion_task(settings: Settings, model_name: str) -> LoadedModel:
    """Load @champion with the service's checks (a registry that did not answer is retried)."""
    return load_champion(tracking_client(settings), model_name)


@flow(name="batch-score", log_prints=True)
def batch_score(settings: Settings, model_name: str, period: str | None = None) -> BatchScores:
    """Score the flights of ``period`` (default: the newest ingested) with @champion and
    write them with the version that made them.

    Raises:
        ValueError: the period is not ingested.
        ModelLoadError: no champion the service would serve.
    """
    period, path = period_path(settings.raw_dir, period)
    flights = read_flights(path)
    loaded = load_champion_task(settings, model_name)
    # data/raw holds validated rows only (ingestion quarantined the rest).
    scores = score_flights(loaded.model, flights).assign(**{VERSION_COLUMN: loaded.version})
    output = scores_path(settings, period, loaded.version)
    write_frame(scores, output)
    get_run_logger().info("Scored %d flights of %s with %s v%s: %s", len(scores), period,
                          model_name, loaded.version, output)
    return BatchScores(period, model_name, loaded.version, len(scores), output)
