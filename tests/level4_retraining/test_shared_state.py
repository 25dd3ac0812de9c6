"""Level 4's shared state on a real PostgreSQL (the team profile): the prediction log from two
writers, the history per window, the alerts and their webhook, the retrain lock across
processes; and the laptop's files, unchanged. One throwaway cluster for the module; each test
its own monitoring project (the rows' scope)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from level1_devops.locks import LockTimeout
from level1_devops.settings import PROJ_ROOT, Settings
from level3_deployment.loading import LoadedModel
from level4_retraining import shared_state, state_db
from level4_retraining.alerts import DELIVERY, alert

# Imported before any test: Prefect sets up logging on import, which must not happen while
# pytest's log capture is installed.
from level4_retraining.logged_service import MonitoringCollector
from level4_retraining.monitor_flow import MonitorOutcome, read_history, retrain_problem
from level4_retraining.policy import Decision, WindowResult
from level4_retraining.retrain import RetrainOutcome, single_retrain
from level4_retraining.status import history_lines, monitoring_status
from team.postgres import Cluster
from team.processes import free_port

MODEL = LoadedModel(None, "flight-delay", "1", "", 0.3, 0)
DAY_ONE, DAY_TWO = 1_372_636_800.0, 1_372_723_200.0  # 2013-07-01 and 07-02, UTC


@pytest.fixture(scope="module")
def state_url() -> Iterator[str]:
    # Its own folder, not pytest's: concurrent sessions prune each other's old tmp_path roots.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="mlops-state-db-")) / "pg")
    cluster.start()
    try:
        yield cluster.create_database("mlops", "mlops", "state-pw-1")
    finally:
        cluster.remove()
        shutil.rmtree(cluster.folder.parent, ignore_errors=True)


@pytest.fixture
def team(tmp_path: Path, state_url: str, request: pytest.FixtureRequest) -> Settings:
    """Settings on the shared database, in a monitoring project of this test's own."""
    return Settings(project_dir=tmp_path, state_db_url=state_url,
                    monitoring_project=f"test {request.node.name}"[:120])


def run_python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=PROJ_ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


# -- the prediction log -----------------------------------------------------------------------
WRITER = """
    import sys
    from level1_devops.settings import Settings
    from level3_deployment.loading import LoadedModel
    from level4_retraining.shared_state import prediction_log
    log = prediction_log(Settings(state_db_url=sys.argv[1], monitoring_project=sys.argv[2]))
    model = LoadedModel(None, "flight-delay", "1", "", 0.3, 0)
    log.record("second-writer", model, [{"hour": 7}, {"hour": 8}], [0.1, 0.2], at=1_372_723_200.0)
    print(log.flush())
"""


def test_the_log_round_trips_through_postgres_from_two_writers(team: Settings) -> None:
    log = shared_state.prediction_log(team)
    log.record("first-writer", MODEL, [{"hour": 5}, {"hour": 6}, {"hour": None}],
               [0.5, 0.6, 0.7], at=DAY_ONE)
    log.record("first-writer", MODEL, [{"hour": 9}], [0.9], at=DAY_TWO)
    assert log.flush() == 4 and log.n_written == 4 and log.n_buffered == 0
    assert run_python(WRITER, team.state_db_dsn or "", team.monitoring_project).strip() == "2"
    logged = shared_state.read_logged(team)
    assert logged.groupby("request_id").size().to_dict() == {"first-writer": 4,
                                                             "second-writer": 2}
    assert list(logged["timestamp"]) == sorted(logged["timestamp"])  # oldest first
    assert logged["model_version"].eq("1").all() and logged["hour"].isna().sum() == 1
    with psycopg.connect(team.state_db_dsn or "") as conn:
        rows = conn.execute("SELECT writer, day::text, n_rows FROM prediction_log_chunks "
                            "WHERE scope = %s ORDER BY id", (team.monitoring_project,)).fetchall()
    assert [(day, n) for _, day, n in rows] == [("2013-07-01", 3), ("2013-07-02", 1),
                                                ("2013-07-02", 2)]  # a chunk per day a flush
    assert len({writer for writer, _, _ in rows}) == 2  # two processes: host:pid each
    assert shared_state.logged_rows(team, {}) == 6
    assert shared_state.read_logged(team.model_copy(
        update={"monitoring_project": "another loop"})).empty  # a replay keeps apart


def test_a_chunk_that_cannot_be_decoded_is_skipped_with_a_warning_naming_it(
        team: Settings, caplog: pytest.LogCaptureFixture) -> None:
    log = shared_state.prediction_log(team)
    log.record("good", MODEL, [{"hour": 5}], [0.5], at=DAY_ONE)
    log.flush()
    with state_db.connect(team.state_db_dsn or "") as conn:
        state_db.insert_chunk(conn, team.monitoring_project, "2013-07-02", 3, b"PAR1 garbage")
        bad_id = conn.execute("SELECT max(id) FROM prediction_log_chunks").fetchone()
    with caplog.at_level(logging.WARNING, logger="mlops.prediction_log"):
        logged = shared_state.read_logged(team)
    assert logged["request_id"].tolist() == ["good"]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert bad_id and f"prediction_log_chunks id {bad_id[0]}" in warned, warned


def test_an_unreachable_database_keeps_the_rows_for_the_next_flush(team: Settings) -> None:
    dead = f"postgresql://mlops:secret-pw@127.0.0.1:{free_port()}/mlops"
    log = shared_state.prediction_log(team.model_copy(update={"state_db_url": SecretStr(dead)}))
    log.record("kept", MODEL, [{"hour": 5}, {"hour": 6}], [0.5, 0.6], at=DAY_ONE)
    with pytest.raises(state_db.StateDBError, match="cannot be reached") as failed:
        log.flush()
    assert "secret-pw" not in str(failed.value)
    assert log.n_failed_flushes == 1 and log.n_buffered == 2 and log.n_written == 0
    log.sink = state_db.ChunkSink(team.state_db_dsn or "", team.monitoring_project)  # back
    assert log.flush() == 2
    assert shared_state.read_logged(team)["request_id"].tolist() == ["kept", "kept"]
    down = team.model_copy(update={"state_db_url": SecretStr(dead)})
    assert list(MonitoringCollector(down).collect()) == []  # /metrics still answers


# -- the history ------------------------------------------------------------------------------
def entry(window: str, drift: float, action: str = "warn", retrained: bool = False,
          retrain: dict[str, Any] | None = None) -> dict[str, Any]:
    result = WindowResult(window, 1000, drift, 0.7, 0.72, retrained=retrained)
    return {"result": asdict(result), "decision": asdict(Decision(action, "why")),  # type: ignore[arg-type]
            "champion": "1", "retrain": retrain}


def test_the_history_keeps_one_entry_per_window_and_status_reads_it(
        team: Settings, caplog: pytest.LogCaptureFixture) -> None:
    promoted = {"status": "promoted", "version": "2", "detail": "ok", "roc_auc": 0.74}
    shared_state.record_window(team, entry("2013-06", 0.4))
    shared_state.record_window(team, entry("2013-07", 0.6, "retrain", True, promoted))
    shared_state.record_window(team, entry("2013-07", 0.5))  # July monitored again
    lines = history_lines(team)
    assert [line["result"]["window"] for line in lines] == ["2013-06", "2013-07"]
    july = lines[-1]
    assert july["result"]["drift_share"] == 0.5  # the latest run replaced the first
    assert july["result"]["retrained"] and july["retrain"] == promoted  # the retrain stays
    assert [w.window for w in read_history(team)] == ["2013-06", "2013-07"]
    state = monitoring_status(team)
    assert (state["windows"], state["last_window"], state["retrains"], state["promoted"]) == (
        2, "2013-07", 1, 1)
    with psycopg.connect(team.state_db_dsn or "") as conn:  # one row a crash or hand left bad
        conn.execute("INSERT INTO monitoring_history (scope, window_name, line) VALUES "
                     "(%s, 'broken', '{\"decision\": {}}')", (team.monitoring_project,))
    with caplog.at_level(logging.WARNING):
        assert len(history_lines(team)) == 2
    assert any("monitoring_history row 'broken'" in r.getMessage() for r in caplog.records)
    gauges = {m.name: m.samples[0].value for m in MonitoringCollector(team).collect()}
    assert gauges["mlops_monitor_drift_share"] == 0.5 and gauges["mlops_monitor_retrains"] == 1
    assert "replay" not in state  # the replay's project has no rows on this database


# -- alerts and their webhook -----------------------------------------------------------------
class Listener:
    """A real HTTP listener on loopback that answers every POST with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(size)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mlops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_alert_is_stored_and_posted_to_the_webhook(team: Settings) -> None:
    with Listener() as hook:
        stored = alert(team.model_copy(update={"alert_webhook_url": hook.url}),
                       "retrained v3 refused: worse than the champion")
    assert hook.bodies == [{**stored, "project": team.monitoring_project,
                            "text": "mlops: retrained v3 refused: worse than the champion"}]
    assert shared_state.read_alerts(team) == [{**stored, "delivered": True}]


def test_a_dead_webhook_keeps_the_stored_alert_and_counts_the_failure(
        team: Settings, caplog: pytest.LogCaptureFixture) -> None:
    failed = DELIVERY.failed
    with Listener(status=503) as hook, caplog.at_level(logging.ERROR, logger="mlops.alerts"):
        alert(team.model_copy(update={"alert_webhook_url": hook.url}), "first")
    assert len(hook.bodies) == 3  # one try and two retries
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    alert(team.model_copy(update={"alert_webhook_url": dead}), "second")
    alert(team, "third, no webhook set")
    assert DELIVERY.failed == failed + 2
    assert [(a["message"], a["delivered"]) for a in shared_state.read_alerts(team)] == [
        ("first", False), ("second", False), ("third, no webhook set", None)]
    assert any("not delivered" in r.getMessage() and "HTTP 503" in r.getMessage()
               for r in caplog.records)


# -- the retrain lock -------------------------------------------------------------------------
TRY_LOCK = """
    import sys
    from level1_devops.settings import Settings
    from level4_retraining.retrain import single_retrain
    with single_retrain(Settings(state_db_url=sys.argv[1], monitoring_project=sys.argv[2])) as mine:
        print("held" if mine else "refused")
"""


def test_the_advisory_lock_refuses_a_second_holder_and_frees_on_release(team: Settings) -> None:
    args = (team.state_db_dsn or "", team.monitoring_project)
    with single_retrain(team) as mine:
        assert mine
        assert run_python(TRY_LOCK, *args).strip() == "refused"  # another process
        held = r"another retrain is running \(mlops .+:\d+ holds the advisory lock"
        with pytest.raises(LockTimeout, match=held), shared_state.retrain_lock(team):
            pass  # another connection of this process
        assert run_python(TRY_LOCK, args[0], "another loop").strip() == "held"
        assert not (team.retrain_lock_path).exists()  # no file lock in the team profile
    assert run_python(TRY_LOCK, *args).strip() == "held"  # released with the block


# -- the laptop profile: files, as before -----------------------------------------------------
def test_without_a_database_the_state_stays_in_files(tmp_path: Path) -> None:
    laptop = Settings(project_dir=tmp_path)
    assert laptop.state_db_dsn is None
    log = shared_state.prediction_log(laptop)
    log.record("a", MODEL, [{"hour": 5}], [0.5], at=DAY_ONE)
    log.flush()
    assert len(list(laptop.predictions_dir.glob("date=2013-07-01/part-*.parquet"))) == 1
    shared_state.record_window(laptop, entry("2013-07", 0.6))
    shared_state.record_window(laptop, entry("2013-07", 0.5))
    assert len(laptop.history_path.read_text().splitlines()) == 2  # a line per run, as before
    log.record("b", MODEL, [{"hour": 6}], [0.6], at=DAY_TWO)  # one row: its own day's folder
    log.flush()
    assert shared_state.read_logged(laptop)["request_id"].tolist() == ["a", "b"]
    assert sorted(p.parent.name for p in laptop.predictions_dir.glob("*/*.parquet")) == [
        "date=2013-07-01", "date=2013-07-02"]
    alert(laptop, "on disk")
    assert json.loads(laptop.alerts_path.read_text())["message"] == "on disk"
    with single_retrain(laptop) as mine:
        assert mine and laptop.retrain_lock_path.exists()
        with single_retrain(laptop) as second:
            assert not second


# -- `mlops monitor` fails visibly ------------------------------------------------------------
def test_a_refused_or_impossible_retrain_is_a_failure_of_the_run(tmp_path: Path) -> None:
    def outcome(retrain: RetrainOutcome | None) -> MonitorOutcome:
        return MonitorOutcome(WindowResult("2013-07", 1000, 0.6), Decision("retrain", "why"),
                              tmp_path / "report.html", retrain)

    refused = retrain_problem(outcome(RetrainOutcome("refused", "3", "worse than v2")))
    assert refused and "v3 was refused by certification: worse than v2" in refused
    assert "could not run" in (retrain_problem(outcome(RetrainOutcome(
        "failed", None, "periods not ingested"))) or "")
    for fine in (None, RetrainOutcome("promoted", "3", "ok"),
                 RetrainOutcome("skipped", None, "another retrain is running")):
        assert retrain_problem(outcome(fine)) is None


def test_mlops_monitor_exits_1_when_the_state_database_cannot_be_reached(
        tmp_path: Path, state_url: str) -> None:
    from tests.helpers import run

    def monitor(url: str) -> subprocess.CompletedProcess[str]:
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith("MLOPS_")},
               "MLOPS_PROJECT_DIR": str(tmp_path), "MLOPS_STATE_DB_URL": url}
        return run([sys.executable, "-m", "level1_devops.cli", "monitor"], cwd=tmp_path,
                   env=env, check=False)

    dead = monitor(f"postgresql://mlops:secret-pw@127.0.0.1:{free_port()}/mlops")
    assert dead.returncode == 1 and "Traceback" not in dead.stderr, dead.stderr
    assert "monitor failed: the shared-state database" in dead.stderr
    assert "secret-pw" not in dead.stderr + dead.stdout
    empty = monitor(state_url)  # reachable, nothing logged in this project yet
    assert empty.returncode == 1 and "no logged predictions in PostgreSQL" in empty.stderr
