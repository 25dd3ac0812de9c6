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

import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from level1_devops.features import build_label
from level1_devops.schema import RECORDS_NAME
from level1_devops.settings import Settings
from level2_training.data import load_periods, periods_between, require_periods
from level2_training.params import windows_ending
from level2_training.tracking import client as tracking_client
from level3_deployment.client import as_requests, running_service
from level4_retraining.params import RetrainingParams
from level4_retraining.replay_report import (
    ReplayResult,
    TimelineRow,
    describe,
    write_outputs,
)
from level4_retraining.shared_state import forget, logged_rows

Progress = Callable[[Iterable[Any], str], Iterable[Any]]
Transform = Callable[[pd.DataFrame], pd.DataFrame]


def initial_windows(first: str) -> dict[str, str]:
    """The initial champion: trained from January of ``first``'s year to three months before
    it, validated two months before, held out on the month before."""
    month = pd.Period(first, freq="M").month
    if month < 4:
        raise ValueError(f"the replay must start at least three months into a year: {first}")
    return windows_ending(str(pd.Period(first, freq="M") - 1), n_train=month - 3)


def reset_state(settings: Settings, state_dir: Path) -> None:
    """A replay starts afresh: its own state folder, its Evidently project and (in the team
    profile) its rows of the shared state go."""
    shutil.rmtree(state_dir, ignore_errors=True)
    forget(settings)
    if settings.evidently_dir.exists():
        from evidently.ui.workspace import Workspace

        space = Workspace.create(str(settings.evidently_dir))
        for project in space.search_project(settings.monitoring_project):
            space.delete_project(project.id)


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
    for chunk in progress(chunks, f"{period}: {len(records):,} {RECORDS_NAME} to the service"):
        if http.post("/predict/batch", json={RECORDS_NAME: chunk}).status_code != 200:
            failed += 1
    return failed


def baseline_auc(settings: Settings, params: RetrainingParams, version: str,
                 periods: list[str], rows: int | None,
                 inject: Transform | None = None) -> dict[str, float]:
    """ROC AUC per period of the initial champion, never retrained (scored in process)."""
    from sklearn.metrics import roc_auc_score

    from level3_deployment.loading import load_version

    model = load_version(tracking_client(settings), params.model_name, version)
    features = params.train.features
    out = {}
    for period in periods:
        flights = load_periods(settings.raw_dir, [period], rows)
        p = model.predict_records(as_requests(inject(flights) if inject else flights))
        out[period] = float(roc_auc_score(build_label(flights, features), p))
    return out


def initial_champion(settings: Settings, params: RetrainingParams, first: str, rows: int | None,
                     say: Callable[[str], None]) -> str:
    """Train the champion the replay starts from (Level 2), certify and promote it (Level 3)."""
    from level2_training.flows import train
    from level3_deployment.release import promote

    windows = initial_windows(first)
    say(f"Initial champion: trained on {windows['train_from']}..{windows['train_to']}, "
        f"validated on {windows['validation_from']}, held out {windows['holdout_from']}")
    initial = params.with_train(**windows, max_rows_per_period=rows)
    trained = train(settings, initial)
    promote(settings, initial, trained.version, reason="replay: the initial champion",
            holdout_periods=[windows["holdout_from"]])
    return str(trained.version)


@dataclass
class LiveLoop:
    """The running service, its heartbeat, and what the replay has sent through it."""

    settings: Settings
    params: RetrainingParams
    http: httpx.Client
    heartbeat: Heartbeat
    champion: str
    sent: int = 0
    failed: int = 0
    seen: dict[Path, int] = field(default_factory=dict)

    def send(self, flights: pd.DataFrame, progress: Progress, period: str) -> None:
        """Score the period's flights through the service; wait until all are logged."""
        batch_rows = self.params.serve.max_batch_rows
        self.failed += send_period(self.http, flights, batch_rows, progress, period)
        self.sent += len(flights)
        expected = self.sent + self.heartbeat.ok
        wait_for(lambda: logged_rows(self.settings, self.seen) >= expected,
                 f"{period}: the prediction log")

    def monitor(self, period: str) -> TimelineRow:
        """The monitor flow on the period; a promotion is followed until the service serves it."""
        from level4_retraining.monitor_flow import monitor

        outcome = monitor(self.settings, self.params, period)
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
        wait_for(lambda: version in self.heartbeat.first_seen,
                 f"the service picking up v{version}")
        tags = tracking_client(self.settings).get_model_version(
            self.params.model_name, version).tags
        return self.heartbeat.first_seen[version] - datetime.fromisoformat(
            tags["promoted.at"]).timestamp()


def run_replay(settings: Settings, params: RetrainingParams, first: str, last: str,
               rows: int | None, progress: Progress, say: Callable[[str], None],
               inject: Transform | None = None) -> ReplayResult:
    """Replay ``first``..``last`` (see the module's text); ``settings`` is the replay's state
    (``Settings.for_state``), and the caller runs it inside a Prefect API.

    ``inject`` changes the records sent to the service (injected drift); their labels, and
    what retraining learns from, stay the real ones.
    """
    periods = periods_between(first, last)
    require_periods(settings.raw_dir, periods_between(initial_windows(first)["train_from"], last))
    initial = initial_champion(settings, params, first, rows, say)
    first_record = as_requests(load_periods(settings.raw_dir, [f"{first[:4]}-01"]).head(1))
    with running_service(settings, "level4", settings.service_log_path) as base, \
            Heartbeat(base, first_record[0]) as heartbeat, \
            httpx.Client(base_url=base, timeout=60) as http:
        say(f"Service up at {base}, serving v{initial}; heartbeat started")
        loop = LiveLoop(settings, params, http, heartbeat, initial)
        timeline = []
        for period in periods:
            records = load_periods(settings.raw_dir, [period], rows)
            loop.send(inject(records) if inject else records, progress, period)
            timeline.append(loop.monitor(period))
            say(describe(timeline[-1]))
    say("Never-retrained baseline: the initial champion scores every period ...")
    for period, auc in baseline_auc(settings, params, initial, periods, rows, inject).items():
        next(row for row in timeline if row.period == period).baseline_auc = auc
    result = ReplayResult(timeline, initial,
                          {"requests": heartbeat.ok + heartbeat.failed, "failed": heartbeat.failed},
                          loop.failed)
    result.files = write_outputs(settings.replay_reports_dir, result)
    return result


