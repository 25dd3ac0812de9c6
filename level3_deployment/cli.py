"""Level 3 commands for `mlops`: certify, promote, rollback, serve, batch-score."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

import typer

from level1_devops.cli import fail


def _registry_version(value: str | None) -> str | None:
    """A registry version is a positive whole number; anything else is refused before any work."""
    if value is not None and not re.fullmatch(r"[1-9][0-9]{0,8}", value):
        raise typer.BadParameter(f"{value!r} is not a registry version (a number such as 3)")
    return value


VersionOpt = Annotated[str | None, typer.Option(
    help="Registry version (a number); default: the one @challenger points at.",
    callback=_registry_version)]
ReasonOpt = Annotated[str, typer.Option(help="Why, for the audit trail on the version.")]


APP_GROUP = "mlops.service_app"


def _start() -> tuple[Any, Any]:
    from level2_training.cli import start
    from level3_deployment.params import DeploymentParams

    return start(DeploymentParams)


def service_apps() -> dict[str, str]:
    """The app factories `mlops serve --app` can run, by name (the ``mlops.service_app``
    entry points): level3 (scoring) and, from Level 4 on, level4 (scoring + prediction log)."""
    from importlib.metadata import entry_points

    return {e.name: e.value for e in entry_points(group=APP_GROUP)}


def _print_report(report: object) -> None:
    from level3_deployment.certify import CertificationReport

    assert isinstance(report, CertificationReport)
    typer.echo(report.to_markdown())


def register(app: typer.Typer) -> None:
    """Add Level 3's commands to the `mlops` app."""

    @app.command()
    def certify(version: VersionOpt = None) -> None:
        """Run the certification suite on a version against @champion; write the report.

        Quality floor and champion comparison on the frozen holdout, behaviour tests,
        schema compatibility, latency and size budgets, and loading with the service's loader.
        Exits 1 when a check fails.
        """
        from level3_deployment.release import ReleaseError
        from level3_deployment.release import certify as run

        settings, params = _start()
        try:
            report = run(settings, params, version)
        except ReleaseError as err:
            raise fail(str(err)) from err
        _print_report(report)
        typer.echo(f"Report: {settings.certification_dir}")
        if not report.passed:
            raise fail(f"v{report.version} failed: {', '.join(c.name for c in report.failed)}")

    @app.command()
    def promote(version: VersionOpt = None, reason: ReasonOpt = "certified") -> None:
        """Certify a version, then move @champion to it (who/when/why recorded as tags)."""
        from level3_deployment.release import ReleaseError
        from level3_deployment.release import promote as run

        settings, params = _start()
        try:
            report, previous = run(settings, params, version, reason)
        except ReleaseError as err:
            raise fail(f"{err}\nThe champion is unchanged.") from err
        _print_report(report)
        if previous == report.version:
            typer.echo(f"v{report.version} is already @champion: nothing moved.")
            return
        typer.echo(f"@champion -> v{report.version} (was {previous or 'none'}). A running "
                   "service picks it up by itself; `mlops rollback` undoes it.")

    @app.command()
    def rollback(reason: ReasonOpt = "rollback") -> None:
        """Move @champion back to the champion before it, in one command."""
        from level3_deployment.release import ReleaseError
        from level3_deployment.release import rollback as run

        settings, params = _start()
        try:
            current, previous = run(settings, params, reason)
        except ReleaseError as err:
            raise fail(str(err)) from err
        typer.echo(f"@champion -> v{previous} (rolled back from v{current}).")

    @app.command("batch-score")
    def batch_score(
        period: Annotated[str | None, typer.Option(
            help="The ingested period to score (YYYY-MM, a file in data/raw); "
                 "default: the newest.")] = None,
    ) -> None:
        """Batch-score one period's flights with @champion from the registry.

        The model is loaded as the service loads it (the file's sha256 and its certification
        checked); the scores carry the version that made them, in a column and in the file
        name (local/reports/level3/batch/scores-PERIOD-vVERSION.parquet).
        """
        from level3_deployment.batch import batch_score as run
        from level3_deployment.loading import ModelLoadError

        settings, params = _start()
        try:
            result = run(settings, params.model_name, period)
        except (ValueError, ModelLoadError) as err:
            raise fail(f"batch-score failed: {err}\nNothing was written.") from err
        typer.echo(f"{result.period}: {result.n_scored:,} flights scored by "
                   f"{result.model_name} v{result.version}\nScores: {result.output_path}")

    @app.command()
    def serve(
        app_name: Annotated[str | None, typer.Option(
            "--app", help="Which app: level3 (scoring) or level4 (scoring + every prediction "
            "logged for monitoring). Default: the highest level installed.")] = None,
        host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
        workers: Annotated[int | None, typer.Option(help="Worker processes (default 1).")] = None,
    ) -> None:
        """Serve @champion with FastAPI + uvicorn; docs at /docs. Ctrl-C shuts down gracefully."""
        import uvicorn

        apps = service_apps()
        name = app_name or max(apps, default="level3")
        if name not in apps:
            raise fail(f"--app {name}: no such app; installed: {', '.join(sorted(apps))}")

        if host:
            os.environ["MLOPS_SERVICE_HOST"] = host  # validated: an exposed host needs a key
        from level1_devops.settings import load_settings
        from level2_training.orchestration import configure_process
        from level3_deployment.params import load_serve_params

        try:
            settings = load_settings()
        except ValueError as err:
            raise fail(str(err)) from err
        configure_process(settings)  # the workers inherit the environment
        # One OpenMP thread per worker process, set before scikit-learn loads.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        serve_params = load_serve_params(settings.project_dir)
        typer.echo(f"Serving the {name} app ({apps[name]}) on http://{settings.service_host}:"
                   f"{port or settings.service_port} (docs at /docs)")
        uvicorn.run(apps[name], factory=True,
                    host=settings.service_host, port=port or settings.service_port,
                    workers=workers or settings.service_workers,
                    timeout_graceful_shutdown=int(serve_params.shutdown_timeout_s),
                    limit_concurrency=serve_params.max_connections,
                    log_level="info",
                    access_log=False)  # a log line per request costs throughput; see /metrics
