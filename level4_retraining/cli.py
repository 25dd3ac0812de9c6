"""Level 4 commands for `mlops`: monitor a window, replay 2013 through the live service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from level1_devops.cli import fail


def _start() -> tuple[Any, Any]:
    from level2_training.cli import start
    from level4_retraining.params import RetrainingParams

    return start(RetrainingParams)


def register(app: typer.Typer) -> None:
    """Add Level 4's commands to the `mlops` app."""

    @app.command()
    def monitor(
        window: Annotated[str | None, typer.Option(
            help="The flights to monitor: a month (YYYY-MM) or an ISO week (YYYY-Www); "
                 "default: the newest window (params.yaml monitor.window) in the log.")] = None,
    ) -> None:
        """Monitor one window of logged predictions: drift, performance, the policy's decision.

        When the policy says retrain, the flow retrains, certifies and promotes by itself;
        the running service picks the new champion up; a retrain refused by certification
        or unable to run exits with status 1. The decision and its reason go to the
        monitoring history (local/reports/level4/history.jsonl, or PostgreSQL when
        MLOPS_STATE_DB_URL is set), the MLflow experiment
        flight-delay-monitoring and
        the window's Evidently report (also in `make evidently-ui`).
        """
        from level4_retraining.windows import window_kind

        if window is not None:
            try:
                window_kind(window)  # refused before anything starts
            except ValueError as err:
                raise fail(str(err)) from err
        settings, params = _start()
        from level2_training.data import TrainingDataError
        from level4_retraining.monitor_flow import latest_window, retrain_problem
        from level4_retraining.monitor_flow import monitor as run
        from level4_retraining.state_db import StateDBError

        try:
            outcome = run(settings, params,
                          window or latest_window(settings, params.monitor.window))
        except (ValueError, TrainingDataError, StateDBError) as err:
            raise fail(f"monitor failed: {err}") from err
        r = outcome.result
        auc = "n/a" if r.roc_auc is None else f"{r.roc_auc:.3f}"
        typer.echo(f"{r.window}: {r.n} predictions, drift share {r.drift_share:.2f}, ROC AUC "
                   f"{auc}; decision: {outcome.decision.action} ({outcome.decision.reason})")
        if outcome.retrain:
            typer.echo(f"retrain: {outcome.retrain.status} {outcome.retrain.detail}")
        typer.echo(f"Report: {outcome.report_path}")
        # A refused or impossible retrain fails the job (retrain.yml, a Prefect run) visibly.
        if problem := retrain_problem(outcome):
            raise fail(problem)

    @app.command("monitor-serve")
    def monitor_serve(
        cron: Annotated[str, typer.Option(help="When to monitor, as a cron expression.")] =
            "0 7 * * *",
    ) -> None:
        """Serve `monitor` as a Prefect deployment on a schedule (runs until Ctrl-C).

        Each run monitors the newest window of the prediction log; a retrain follows by itself
        when the policy says so. With a Prefect server (`make prefect-ui`) the runs show in
        the UI; trigger one with `prefect deployment run monitor-latest/scheduled-monitoring`.
        """
        _start()
        from level4_retraining.deployments import monitor_latest

        monitor_latest.serve(name="scheduled-monitoring", cron=cron)

    @app.command()
    def replay(
        first: Annotated[str, typer.Option(help="First period replayed (YYYY-MM); the initial "
                                                 "champion trains on the months before it.")]
        = "2013-06",
        last: Annotated[str, typer.Option(help="Last period replayed (YYYY-MM).")] = "2013-12",
        rows_per_period: Annotated[int | None, typer.Option(
            help="Sample each period down to this many flights (default: all of them).")] = None,
        state_dir: Annotated[Path | None, typer.Option(
            help="The replay's own state (MLflow store, prediction log, reports); "
                 "emptied first. Default: local/replay.")] = None,
        inject_drift: Annotated[bool, typer.Option(
            help="Send every record changed by the example's first behaviour scenario "
                 "(features.SCENARIOS; for the flights: a storm at the origin); labels stay "
                 "real. `make drift` does this.")] = False,
    ) -> None:
        """Replay 2013 period by period through the live service, the retraining loop closed.

        For each period: its flights are scored by the running service (every prediction
        logged), their labels land, the monitor flow measures drift and ROC AUC, and the drift
        policy (params.yaml `monitor`) decides; a retrain is certified, promoted and
        hot-swapped into the running service by itself. Prints the timeline and writes it,
        with a plot of ROC AUC over time next to a never-retrained baseline, under
        STATE_DIR/reports/level4/replay. Takes 3-5 minutes on the full months.
        """
        from level1_devops.cli import progress_bar
        from level1_devops.settings import PROJ_ROOT

        base, params = _start()
        state = state_dir or base.replay_dir
        state = (state if state.is_absolute() else base.project_dir / state).resolve()
        local = base.local_dir.resolve()
        # The folder is emptied first: only a subfolder of the project's state folder will do.
        if not state.is_relative_to(local) or state == local or PROJ_ROOT.is_relative_to(state):
            harm = ("would empty the project's own state" if local.is_relative_to(state)
                    or PROJ_ROOT.is_relative_to(state) else f"is outside {local}")
            raise fail(f"--state-dir {state_dir} {harm}: the replay empties its state folder "
                       f"first, so it must be a folder inside {local} (e.g. {base.replay_dir})")
        # The replay's own settings, handed down: its service and flows use these, and this
        # process's environment is left as it was.
        settings = base.for_state(state)
        from level1_devops.features import SCENARIOS
        from level2_training.data import TrainingDataError
        from level2_training.orchestration import prefect_api
        from level3_deployment.release import ReleaseError
        from level4_retraining.replay import reset_state, run_replay
        from level4_retraining.replay_report import later_months_gain, markdown_table

        reset_state(settings, state)
        settings.ensure_dirs()

        def progress(items: Any, what: str) -> Any:
            return progress_bar(what)(items)

        try:
            with prefect_api():
                result = run_replay(settings, params, first, last, rows_per_period, progress,
                                    typer.echo, SCENARIOS[0].transform if inject_drift else None)
        except (ValueError, TrainingDataError, ReleaseError, TimeoutError) as err:
            raise fail(str(err)) from err
        typer.echo("\nTimeline\n" + markdown_table(result))
        promoted = result.promotions
        typer.echo(f"Retrains promoted and hot-swapped: {len(promoted)} "
                   f"({', '.join(f'v{r.new_version} at {r.period}' for r in promoted) or 'none'})"
                   f"; refused: {sum(r.retrain == 'refused' for r in result.timeline)}")
        typer.echo(f"Requests: {sum(r.flights for r in result.timeline):,} flights scored, "
                   f"{result.failed_requests} failed batches; heartbeat "
                   f"{result.heartbeat['requests']:,} requests, {result.heartbeat['failed']} "
                   "failed")
        gain = later_months_gain(result)
        if gain:
            typer.echo(f"After the first retrain ({gain[2]} periods): mean ROC AUC {gain[0]:.3f} "
                       f"with the loop vs {gain[1]:.3f} never retrained")
        for what, path in result.files.items():
            typer.echo(f"  {what:<13} {path}")
        typer.echo(f"MLflow: make mlflow-ui MLFLOW_DIR={settings.mlflow_dir}; Evidently: make "
                   f"evidently-ui (project '{settings.monitoring_project}')")
