"""Level 2 commands for `mlops`: train, tune, and the scheduled training deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from level1_devops.cli import fail

if TYPE_CHECKING:
    from level1_devops.settings import Settings
    from level2_training.params import TrainingParams

P = TypeVar("P", bound="TrainingParams")


def start(params_type: type[P]) -> tuple[Settings, P]:
    """What every command of Levels 2-4 does first: the settings (from the environment) and
    the params (``params_type.load``, from params.yaml), each built once and handed down, and
    the process set up for Prefect and MLflow before either is imported.
    """
    from level1_devops.settings import get_settings
    from level2_training.orchestration import configure_process

    try:
        settings = get_settings()
        params = params_type.load(settings.project_dir)
    except ValueError as err:  # pydantic's message names the variable or key
        raise fail(str(err)) from err
    settings.ensure_dirs()
    configure_process(settings)
    return settings, params


def _report(result: object, ui_hint: str | None = None) -> None:
    from level2_training.flows import TrainResult

    assert isinstance(result, TrainResult)
    if not result.version:
        best = int(result.metrics.get("tuning.best_candidate", -1))
        typer.echo(f"\nBest candidate: {best} (see params.yaml tune.candidates); not registered. "
                   f"Tuning run {result.run_id}.\nTo train it: copy its values into params.yaml "
                   "train.model, then `mlops train`.")
    else:
        state = "registered" if result.created else "already registered (same data, code, params)"
        typer.echo(f"\n{result.model_name} version {result.version} {state}; "
                   f"run {result.run_id}")
    for key in ("holdout_roc_auc", "holdout_pr_auc", "holdout_log_loss", "holdout_brier",
                "holdout_f1", "validation_roc_auc"):
        if key in result.metrics:
            typer.echo(f"  {key:<20} {result.metrics[key]:.4f}")
    if result.candidates:
        _candidates_table(result)
    if ui_hint:
        typer.echo(ui_hint)


def _ui_hint(tracking_uri: str) -> str:
    """Where to look at the run: the tracking server itself, or the embedded store's UI."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"Open the MLflow UI at {tracking_uri}"
    return "Open the MLflow UI with `make mlflow-ui`, then http://127.0.0.1:5000"


def _candidates_table(result: object) -> None:
    """Every tuning candidate: its validation ROC AUC and the Dask worker that fit it."""
    from level2_training.flows import TrainResult

    assert isinstance(result, TrainResult)
    best = max(result.candidates, key=lambda c: c.validation_roc_auc)
    # A worker started without --name is named by its address: say it once.
    wheres = [c.worker if c.worker_address in {"", c.worker} else
              f"{c.worker} ({c.worker_address})" for c in result.candidates]
    width = max(len("worker"), *map(len, wheres))
    typer.echo(f"\n  {'#':>3}  {'validation_roc_auc':>18}  {'worker':<{width}}  candidate")
    for c, where in zip(result.candidates, wheres, strict=True):
        mark = "*" if c is best else " "
        typer.echo(f"{mark} {c.index:>3}  {c.validation_roc_auc:>18.4f}  {where:<{width}}  "
                   f"{c.params}")
    workers = sorted({c.worker for c in result.candidates})
    typer.echo(f"  {len(result.candidates)} candidates on {len(workers)} worker(s): "
               f"{', '.join(workers)} (* best)")


def _run(flow_name: str, register: bool = True) -> None:
    from level2_training.params import TrainingParams

    settings, params = start(TrainingParams)
    from level2_training.data import TrainingDataError
    from level2_training.flows import TrainResult
    from level2_training.tracking import TrackingError

    result: TrainResult
    try:
        if flow_name == "train":
            from level2_training.flows import train as train_flow

            result = train_flow(settings, params)
        else:
            from level2_training.flows import dask_runner, tune
            from level2_training.orchestration import prefect_api

            with prefect_api():  # shared with the Dask workers
                runner = dask_runner(settings)
                result = tune.with_options(task_runner=runner)(settings, params,
                                                               register_best=register)
    except (TrainingDataError, TrackingError, ValueError) as err:
        raise fail(f"{flow_name} failed: {err}\nNothing was registered; no alias moved.") from err
    _report(result, _ui_hint(settings.tracking_uri))


def register(app: typer.Typer) -> None:
    """Add Level 2's commands to the `mlops` app."""

    @app.command()
    def train() -> None:
        """Run the Prefect `train` flow with params.yaml: ingest, fit, evaluate, log, register."""
        _run("train")

    @app.command()
    def tune(
        register: Annotated[bool, typer.Option(
            "--register/--no-register",
            help="Register the best candidate (as @challenger), or only track and report it.",
        )] = True,
    ) -> None:
        """Run the `tune` flow: params.yaml tune.candidates in parallel on Dask, register the best.

        A local Dask cluster by default; MLOPS_DASK_SCHEDULER_ADDRESS points at a real one.
        Each candidate is a nested MLflow run under one `tune` run.
        """
        _run("tune", register)

    @app.command("train-serve")
    def train_serve(
        cron: Annotated[str, typer.Option(help="When to train, as a cron expression.")] =
            "0 6 * * *",
    ) -> None:
        """Serve `train` as a Prefect deployment on a schedule (runs until Ctrl-C).

        With a Prefect server (`make prefect-ui`, PREFECT_API_URL set) the deployment and its
        runs show in the UI; trigger one with
        `prefect deployment run scheduled-train/scheduled-training`.
        """
        from level2_training.params import TrainingParams

        start(TrainingParams)
        from level2_training.deployments import scheduled_train

        scheduled_train.serve(name="scheduled-training", cron=cron)
