"""Level 4 commands for `mlops`: monitor a window."""

from __future__ import annotations

from typing import Annotated

import typer

from level1_devops.cli import fail


def register(app: typer.Typer) -> None:
    """Add Level 4's commands to the `mlops` app."""

    @app.command()
    def monitor(
        window: Annotated[str, typer.Option(help="Period of the flights to monitor, YYYY-MM.")],
    ) -> None:
        """Monitor one window of logged predictions: drift, performance, the policy's decision.

        When the policy says retrain, the flow retrains, certifies and promotes by itself.
        """
        from level1_devops.settings import get_settings
        from level2_training.orchestration import configure_prefect

        configure_prefect(get_settings())
        from level2_training.data import TrainingDataError
        from level4_retraining.monitoring import monitor as run

        try:
            outcome = run(window)
        except (ValueError, TrainingDataError) as err:
            raise fail(str(err)) from err
        r = outcome.result
        auc = "n/a" if r.roc_auc is None else f"{r.roc_auc:.3f}"
        typer.echo(f"{r.window}: {r.n} predictions, drift share {r.drift_share:.2f}, ROC AUC "
                   f"{auc}; decision: {outcome.decision.action} ({outcome.decision.reason})")
        if outcome.retrain:
            typer.echo(f"retrain: {outcome.retrain.status} {outcome.retrain.detail}")
        typer.echo(f"Report: {outcome.report_path}")
