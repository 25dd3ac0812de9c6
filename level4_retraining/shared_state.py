"""Where Level 4's state lives: files under ``local/`` or PostgreSQL, chosen by Settings.

The prediction log, the drift policy's history, the alerts and the retrain lock are what every
service worker writes and every monitor or retrain run reads. On a laptop they are files
(``settings.predictions_dir``, ``history_path``, ``alerts_path``, an ``fcntl`` lock at
``retrain_lock_path``); with ``MLOPS_STATE_DB_URL`` set (the team profile) they are rows in
PostgreSQL (``state_db``), seen alike from every machine, and the lock is an advisory lock.
Callers use the functions here and never ask which it is.

Both read back the same shape: JSON objects, oldest first, a broken one skipped with a
warning naming it. One difference, by design: a file history keeps a line per run (readers
take the latest per window), the database keeps one entry per window (an upsert).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from level1_devops.locks import LockTimeout, exclusive
from level1_devops.settings import Settings
from level4_retraining.json_lines import append_json_line, read_json_lines
from level4_retraining.policy import WindowResult
from level4_retraining.prediction_log import (
    PredictionLog,
    log_files,
    read_chunks,
    read_predictions,
)


def scope(settings: Settings) -> str:
    """The rows of one loop in the database: its monitoring project (a replay has its own)."""
    return settings.monitoring_project


def where(settings: Settings) -> str:
    """Where the state is, for messages (never the database password)."""
    if settings.state_db_dsn is None:
        return str(settings.monitoring_dir)
    from level4_retraining.state_db import where as db_where

    return f"PostgreSQL {db_where(settings.state_db_dsn)} (project {scope(settings)!r})"


# -- the prediction log -----------------------------------------------------------------------
def prediction_log(settings: Settings) -> PredictionLog:
    """The service's prediction log, writing where the settings say."""
    if settings.state_db_dsn is None:
        return PredictionLog(settings.predictions_dir)
    from level4_retraining.state_db import ChunkSink

    return PredictionLog(ChunkSink(settings.state_db_dsn, scope(settings)))


def read_logged(settings: Settings) -> pd.DataFrame:
    """Every logged prediction, oldest first (``read_predictions`` / ``read_chunks``)."""
    if settings.state_db_dsn is None:
        return read_predictions(settings.predictions_dir)
    from level4_retraining import state_db

    return read_chunks(state_db.chunks(settings.state_db_dsn, scope(settings)))


def log_location(settings: Settings) -> str:
    if settings.state_db_dsn is None:
        return str(settings.predictions_dir)
    return f"{where(settings)}, table prediction_log_chunks"


def logged_rows(settings: Settings, seen: dict[Path, int]) -> int:
    """How many rows the log holds (files are written once: each is counted once, in
    ``seen``)."""
    if settings.state_db_dsn is not None:
        from level4_retraining import state_db

        return state_db.n_logged_rows(settings.state_db_dsn, scope(settings))
    import pyarrow.parquet as pq

    for path in log_files(settings.predictions_dir):
        if path not in seen:
            seen[path] = pq.ParquetFile(path).metadata.num_rows
    return sum(seen.values())


# -- the history ------------------------------------------------------------------------------
def history_problem(line: dict[str, Any]) -> str | None:
    """Why a history entry cannot be used, or None."""
    result, decision, retrain = line.get("result"), line.get("decision"), line.get("retrain")
    if not isinstance(result, dict):
        return "no result"
    if not isinstance(decision, dict) or not isinstance(decision.get("action"), str):
        return "no decision"
    if retrain is not None and not isinstance(retrain, dict):
        return "retrain is not an object"
    try:
        WindowResult.from_record(result)
    except ValueError as err:
        return f"result: {err}"
    return None


def history_lines(settings: Settings) -> list[dict[str, Any]]:
    """Every monitored window's result and decision, oldest first (files: a line per run;
    the database: an entry per window)."""
    if settings.state_db_dsn is None:
        return read_json_lines(settings.history_path, history_problem)
    from level4_retraining import state_db

    return state_db.history(settings.state_db_dsn, scope(settings), history_problem)


def has_history(settings: Settings) -> bool:
    if settings.state_db_dsn is None:
        return settings.monitoring_dir.is_dir()
    from level4_retraining import state_db

    return state_db.has_history(settings.state_db_dsn, scope(settings))


def merged_window(earlier: dict[str, Any] | None, line: dict[str, Any]) -> dict[str, Any]:
    """A window's entry monitored again: the new one, except that a retrain which ran after
    the window stays recorded (as ``policy.per_window`` reads a file history)."""
    if earlier is None or history_problem(earlier) is not None:
        return line
    result = dict(line["result"])
    if earlier["result"].get("retrained") and not result.get("retrained"):
        result["retrained"] = True
    retrain = line.get("retrain") or earlier.get("retrain")
    return {**line, "result": result, "retrain": retrain}


def record_window(settings: Settings, line: dict[str, Any]) -> None:
    """Keep a monitored window's entry (``line["result"]["window"]``)."""
    if settings.state_db_dsn is None:
        append_json_line(settings.history_path, line)
        return
    from level4_retraining import state_db

    state_db.upsert_window(settings.state_db_dsn, scope(settings), line["result"]["window"],
                           lambda earlier: merged_window(earlier, line))


# -- alerts -----------------------------------------------------------------------------------
def _alert_problem(line: dict[str, Any]) -> str | None:
    return None if isinstance(line.get("message"), str) else "no message"


def store_alert(settings: Settings, line: dict[str, Any]) -> int | None:
    """Keep one alert; returns its id in the database (None for the file)."""
    if settings.state_db_dsn is None:
        append_json_line(settings.alerts_path, line)
        return None
    from level4_retraining import state_db

    return state_db.insert_alert(settings.state_db_dsn, scope(settings), line)


def mark_delivered(settings: Settings, alert_id: int, delivered: bool) -> None:
    """Record whether the alert ``alert_id`` (a database row) reached the webhook."""
    if settings.state_db_dsn is not None:
        from level4_retraining import state_db

        state_db.set_delivered(settings.state_db_dsn, alert_id, delivered)


def read_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Every alert, oldest first (from the database with ``delivered``: True, False, or None
    when no webhook was set)."""
    if settings.state_db_dsn is None:
        return read_json_lines(settings.alerts_path, _alert_problem)
    from level4_retraining import state_db

    return state_db.alerts(settings.state_db_dsn, scope(settings), _alert_problem)


# -- the retrain lock and a fresh start -------------------------------------------------------
@contextmanager
def retrain_lock(settings: Settings) -> Iterator[None]:
    """Hold the retrain lock for the block: an ``fcntl`` lock on this machine, or a
    PostgreSQL advisory lock across machines.

    Raises:
        LockTimeout: another retrain holds it (the message names the holder).
    """
    if settings.state_db_dsn is None:
        with exclusive(settings.retrain_lock_path, "retrain", timeout_s=0):
            yield
        return
    from level4_retraining import state_db

    with ExitStack() as held:
        try:
            held.enter_context(state_db.advisory_lock(settings.state_db_dsn,
                                                      f"mlops retrain: {scope(settings)}"))
        except state_db.LockHeld as err:
            raise LockTimeout(f"another retrain is running ({err}): wait for it, or stop "
                              "it, then re-run") from err
        yield


def forget(settings: Settings) -> None:
    """Delete the loop's rows in the database (the files go with their folder)."""
    if settings.state_db_dsn is not None:
        from level4_retraining import state_db

        state_db.forget(settings.state_db_dsn, scope(settings))
