"""`mlops replay`: 2013 replayed period by period through the live service, loop closed.

Starting from a champion trained on the first months, each period goes: its flights are sent
to the running scoring service (which logs every prediction), their labels land (the feed's
arr_delay), the monitoring flow measures the window and the drift policy decides; when it
says retrain, the flow retrains, certifies and promotes by itself, and the replay waits until
the live service has hot-swapped to the new champion. A heartbeat client keeps calling the
service all along, so a failed request during a swap would show.

The replay has its own state (``local/replay``: MLflow store, prediction log, reports), so it
never moves the champion that `make level3` released; it starts afresh on each run.
"""

from __future__ import annotations

import csv
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from level1_devops.features import build_label
from level1_devops.settings import Settings
from level2_training.data import load_periods, periods_between, require_periods
from level2_training.params import load_registry_params, load_train_params
from level3_deployment.demo import as_requests, running_service
from level3_deployment.params import load_serve_params

Progress = Callable[[Iterable[Any], str], Iterable[Any]]
Transform = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass
class TimelineRow:
    period: str
    flights: int
    champion: str             # the version that served the period
    drift_share: float
    prediction_drift: float | None
    champion_auc: float | None
    decision: str
    reason: str
    new_version: str = ""     # the retrained version, promoted or refused
    retrain: str = ""         # promoted, refused, skipped
    new_auc: float | None = None    # the retrained version's ROC AUC on the period
    auc_after: float | None = None  # ROC AUC on the period of the champion after the decision
    baseline_auc: float | None = None  # the never-retrained initial champion
    swap_s: float | None = None     # promotion -> the live service's first answer with it


@dataclass
class ReplayResult:
    timeline: list[TimelineRow]
    initial_version: str
    heartbeat: dict[str, int] = field(default_factory=dict)  # requests, failed
    failed_requests: int = 0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def promotions(self) -> list[TimelineRow]:
        return [row for row in self.timeline if row.retrain == "promoted"]


def replay_env(state_dir: Path) -> dict[str, str]:
    """The settings of the replay's own state (every other folder is the project's)."""
    return {"MLOPS_MLFLOW_DIR": str(state_dir / "mlflow"),
            "MLOPS_REPORTS_DIR": str(state_dir / "reports"),
            "MLOPS_PREDICTIONS_DIR": str(state_dir / "predictions"),
            "MLOPS_MONITORING_PROJECT": project_name(state_dir)}


def project_name(state_dir: Path) -> str:
    """The Evidently project of a replay: one per state folder (replay, drift)."""
    return f"flight-delay {state_dir.name}"


def initial_windows(first: str) -> dict[str, str]:
    """The initial champion: trained on the months before ``first`` but the last two, which
    are its validation and holdout periods."""
    before = periods_between("2000-01", first)[:-1]
    if len(before) < 3 or not before[0].endswith("-01"):
        raise ValueError(f"the replay must start at least three months into a year: {first}")
    before = [p for p in before if p[:4] == first[:4]]
    return {"train_from": before[0], "train_to": before[-3], "validation_from": before[-2],
            "validation_to": before[-2], "holdout_from": before[-1], "holdout_to": before[-1]}


class Heartbeat:
    """One request at a time to the live service, all along the replay: counts the failures."""

    def __init__(self, base_url: str, flight: dict[str, Any], interval_s: float = 0.1) -> None:
        self.base_url, self.flight, self.interval_s = base_url, flight, interval_s
        self.ok = self.failed = 0
        self.first_seen: dict[str, float] = {}  # model version -> when it first answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self._stop.is_set():
                try:
                    reply = http.post("/predict", json=self.flight)
                    if reply.status_code == 200:
                        self.ok += 1
                        self.first_seen.setdefault(reply.json()["model_version"], time.time())
                    else:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                self._stop.wait(self.interval_s)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def logged_rows(folder: Path, seen: dict[Path, int]) -> int:
    """Rows in the prediction log (files are written once, renamed into place: counted once)."""
    import pyarrow.parquet as pq

    for path in folder.glob("date=*/part-*.parquet"):
        if path not in seen:
            seen[path] = pq.ParquetFile(path).metadata.num_rows
    return sum(seen.values())


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> float:
    """Seconds until ``condition`` holds; TimeoutError naming ``what`` otherwise."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def send_period(http: httpx.Client, flights: pd.DataFrame, batch_rows: int,
                progress: Progress, period: str) -> int:
    """Every flight of the period, in batches; returns how many requests failed."""
    records = as_requests(flights)
    chunks = [records[i:i + batch_rows] for i in range(0, len(records), batch_rows)]
    failed = 0
    for chunk in progress(chunks, f"{period}: {len(records):,} flights to the service"):
        if http.post("/predict/batch", json={"flights": chunk}).status_code != 200:
            failed += 1
    return failed


def baseline_auc(settings: Settings, version: str, periods: list[str], rows: int | None,
                 inject: Transform | None = None) -> dict[str, float]:
    """ROC AUC per period of the initial champion, never retrained (scored in process)."""
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score

    from level3_deployment.loading import load_version

    model = load_version(MlflowClient(tracking_uri=settings.tracking_uri),
                         load_registry_params(settings.project_dir).model_name, version)
    features = load_train_params(settings.project_dir).features
    out = {}
    for period in periods:
        flights = load_periods(settings.raw_dir, [period], rows)
        p = model.predict_records(as_requests(inject(flights) if inject else flights))
        out[period] = float(roc_auc_score(build_label(flights, features), p))
    return out


def initial_champion(settings: Settings, first: str, rows: int | None,
                     say: Callable[[str], None]) -> str:
    """Train the champion the replay starts from (Level 2), certify and promote it (Level 3)."""
    from level2_training.flows import train
    from level3_deployment.release import promote

    windows = initial_windows(first)
    say(f"Initial champion: trained on {windows['train_from']}..{windows['train_to']}, "
        f"validated on {windows['validation_from']}, held out {windows['holdout_from']}")
    params = load_train_params(settings.project_dir)
    trained = train(params=params.model_copy(update={**windows, "max_rows_per_period": rows}))
    promote(settings, trained.version, reason="replay: the initial champion",
            holdout_periods=[windows["holdout_from"]])
    return str(trained.version)


@dataclass
class LiveLoop:
    """The running service, its heartbeat, and what the replay has sent through it."""

    settings: Settings
    http: httpx.Client
    heartbeat: Heartbeat
    champion: str
    sent: int = 0
    failed: int = 0
    seen: dict[Path, int] = field(default_factory=dict)

    def send(self, flights: pd.DataFrame, progress: Progress, period: str) -> None:
        """Score the period's flights through the service; wait until all are logged."""
        batch_rows = load_serve_params(self.settings.project_dir).max_batch_rows
        self.failed += send_period(self.http, flights, batch_rows, progress, period)
        self.sent += len(flights)
        expected = self.sent + self.heartbeat.ok
        wait_for(lambda: logged_rows(self.settings.predictions_dir, self.seen) >= expected,
                 f"{period}: the prediction log")

    def monitor(self, period: str) -> TimelineRow:
        """The monitor flow on the period; a promotion is followed until the service serves it."""
        from level4_retraining.monitoring import monitor

        outcome = monitor(period)
        r, retrain = outcome.result, outcome.retrain
        row = TimelineRow(period, r.n, self.champion, r.drift_share, r.prediction_drift,
                          r.roc_auc, outcome.decision.action, outcome.decision.reason,
                          auc_after=r.roc_auc)
        if retrain is None or retrain.status == "skipped":
            return row
        row.new_version, row.retrain, row.new_auc = retrain.version or "", retrain.status, \
            retrain.roc_auc
        if retrain.status == "promoted":
            self.champion, row.auc_after = str(retrain.version), retrain.roc_auc
            row.swap_s = self.wait_for_swap(self.champion)
        return row

    def wait_for_swap(self, version: str) -> float:
        """Seconds from the promotion to the live service's first answer with ``version``."""
        from mlflow import MlflowClient

        wait_for(lambda: version in self.heartbeat.first_seen,
                 f"the service picking up v{version}")
        name = load_registry_params(self.settings.project_dir).model_name
        tags = MlflowClient(tracking_uri=self.settings.tracking_uri).get_model_version(
            name, version).tags
        return self.heartbeat.first_seen[version] - datetime.fromisoformat(
            tags["promoted.at"]).timestamp()


def run_replay(settings: Settings, first: str, last: str, rows: int | None,
               progress: Progress, say: Callable[[str], None],
               inject: Transform | None = None) -> ReplayResult:
    """Replay ``first``..``last`` (see the module's text); ``settings`` is the replay's state.

    ``inject`` changes the flights sent to the service (injected drift); their labels, and
    what retraining learns from, stay the real ones.
    """
    from level2_training.orchestration import prefect_api

    periods = periods_between(first, last)
    require_periods(settings.raw_dir, periods_between(initial_windows(first)["train_from"], last))
    with prefect_api():
        initial = initial_champion(settings, first, rows, say)
        first_flight = as_requests(load_periods(settings.raw_dir, [f"{first[:4]}-01"]).head(1))
        with running_service(settings.reports_dir / "level4" / "service.log") as base, \
                Heartbeat(base, first_flight[0]) as heartbeat, \
                httpx.Client(base_url=base, timeout=60) as http:
            say(f"Service up at {base}, serving v{initial}; heartbeat started")
            loop = LiveLoop(settings, http, heartbeat, initial)
            timeline = []
            for period in periods:
                flights = load_periods(settings.raw_dir, [period], rows)
                loop.send(inject(flights) if inject else flights, progress, period)
                timeline.append(loop.monitor(period))
                say(describe(timeline[-1]))
        say("Never-retrained baseline: the initial champion scores every period ...")
        for period, auc in baseline_auc(settings, initial, periods, rows, inject).items():
            next(row for row in timeline if row.period == period).baseline_auc = auc
    result = ReplayResult(timeline, initial,
                          {"requests": heartbeat.ok + heartbeat.failed, "failed": heartbeat.failed},
                          loop.failed)
    result.files = write_outputs(settings.reports_dir / "level4" / "replay", result)
    return result


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def describe(row: TimelineRow) -> str:
    text = (f"{row.period}: {row.flights:,} flights, drift share {row.drift_share:.2f}, "
            f"v{row.champion} ROC AUC {fmt(row.champion_auc)} -> {row.decision}")
    if row.retrain:
        text += f"; retrained v{row.new_version} {row.retrain} (ROC AUC {fmt(row.new_auc)})"
    if row.swap_s is not None:
        text += (f"; the live service answered with v{row.new_version} {row.swap_s:.0f} s "
                 "after its promotion")
    return text


COLUMNS = ("period", "drift share", "prediction drift", "champion", "champion AUC", "decision",
           "new version", "AUC after", "never retrained")


def table_rows(result: ReplayResult) -> list[list[str]]:
    return [[r.period, fmt(r.drift_share, 2), fmt(r.prediction_drift, 2), f"v{r.champion}",
             fmt(r.champion_auc),
             r.decision,
             (f"v{r.new_version} " if r.new_version else "") + r.retrain
             + (f" ({fmt(r.new_auc)})" if r.new_auc is not None else ""),
             fmt(r.auc_after), fmt(r.baseline_auc)] for r in result.timeline]


def markdown_table(result: ReplayResult) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(result)]
    return "\n".join(lines) + "\n"


def write_outputs(folder: Path, result: ReplayResult) -> dict[str, Path]:
    """The timeline (CSV and markdown) and the plot of ROC AUC over time."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"timeline_csv": folder / "timeline.csv", "timeline_md": folder / "timeline.md",
             "plot": folder / "auc_over_time.png"}
    with files["timeline_csv"].open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(asdict(result.timeline[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in result.timeline)
    files["timeline_md"].write_text(markdown_table(result))
    plot(result, files["plot"])
    return files


def plot(result: ReplayResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    periods = [r.period for r in result.timeline]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    def values(name: str) -> list[float]:
        return [float("nan") if getattr(r, name) is None else getattr(r, name)
                for r in result.timeline]

    ax.plot(periods, values("champion_auc"), "o-", color="tab:blue",
            label="served champion (with the retraining loop)")
    ax.plot(periods, values("baseline_auc"), "s--", color="tab:gray",
            label=f"never retrained (v{result.initial_version})")
    for i, row in enumerate(result.timeline):
        if row.new_auc is not None:
            ax.plot(i, row.new_auc, "*" if row.retrain == "promoted" else "x", markersize=10,
                    color="tab:green" if row.retrain == "promoted" else "tab:red")
        if row.retrain == "promoted":
            ax.axvline(i, color="tab:green", alpha=0.4)
            ax.annotate(f"v{row.new_version} promoted", (i, row.auc_after or 0), color="tab:green",
                        xytext=(4, 6), textcoords="offset points", fontsize=8)
        elif row.retrain == "refused":
            ax.axvline(i, color="tab:red", alpha=0.3, linestyle=":")
            ax.annotate(f"v{row.new_version} refused", (i, row.champion_auc or 0),
                        color="tab:red", xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel("period (window of flights)")
    ax.set_ylabel("ROC AUC of the logged predictions")
    ax.set_title("2013 replayed through the live service: retraining loop vs never retrained")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reset_state(state_dir: Path, evidently_dir: Path) -> None:
    """A replay starts afresh: its own state folder and its Evidently project go."""
    shutil.rmtree(state_dir, ignore_errors=True)
    if evidently_dir.exists():
        from evidently.ui.workspace import Workspace

        space = Workspace.create(str(evidently_dir))
        for project in space.search_project(project_name(state_dir)):
            space.delete_project(project.id)


def later_months_gain(result: ReplayResult) -> tuple[float, float, int] | None:
    """Mean ROC AUC after the first promotion: served champion vs never retrained."""
    first = next((i for i, r in enumerate(result.timeline) if r.retrain == "promoted"), None)
    if first is None:
        return None
    later = [r for r in result.timeline[first + 1:]
             if r.champion_auc is not None and r.baseline_auc is not None]
    if not later:
        return None
    served = sum(r.champion_auc or 0 for r in later) / len(later)
    baseline = sum(r.baseline_auc or 0 for r in later) / len(later)
    return served, baseline, len(later)
