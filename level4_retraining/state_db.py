"""Level 4's shared state in PostgreSQL (the team profile): what every service worker writes
and every runner reads, from any machine.

Why PostgreSQL and not an object store: the team stack already runs it (MLflow's and
Prefect's databases live on the same cluster), so the state costs one more URL and one set of
credentials, not a bucket, its plugin and its keys; a transaction makes a prediction-log chunk
or a history entry all-or-nothing, with no rename to emulate; a history entry per window is an
upsert, and the retrain lock is an advisory lock, which an object store has no equivalent of.
Any machine that can reach the database sees the same state.

Tables (created on first use, ``CREATE ... IF NOT EXISTS``), every row tagged with a *scope*,
the monitoring project (``Settings.monitoring_project``): the project's own loop and a replay
keep apart on one database, as their folders do on a laptop.

- ``prediction_log_chunks``: one row per flush chunk (a day's rows of one flush): who wrote it
  (``host:pid``), when, how many rows, and the same Parquet bytes the file log writes.
- ``monitoring_history``: one JSON line per monitored window (primary key scope + window).
- ``monitoring_alerts``: one JSON line per alert, and whether its webhook delivery succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("mlops.state_db")
_TABLES = """
CREATE TABLE IF NOT EXISTS prediction_log_chunks (
    id bigserial PRIMARY KEY, scope text NOT NULL, writer text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(), day date NOT NULL,
    n_rows integer NOT NULL, data bytea NOT NULL);
CREATE INDEX IF NOT EXISTS prediction_log_chunks_scope ON prediction_log_chunks (scope, id);
CREATE SEQUENCE IF NOT EXISTS monitoring_history_seq;
CREATE TABLE IF NOT EXISTS monitoring_history (
    scope text NOT NULL, window_name text NOT NULL,
    seq bigint NOT NULL DEFAULT nextval('monitoring_history_seq'),
    monitored_at timestamptz NOT NULL DEFAULT now(), line jsonb NOT NULL,
    PRIMARY KEY (scope, window_name));
CREATE TABLE IF NOT EXISTS monitoring_alerts (
    id bigserial PRIMARY KEY, scope text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
    line jsonb NOT NULL, delivered boolean);
"""
_ready: set[str] = set()  # databases whose tables this process has made sure of
_ready_lock = threading.Lock()
Problem = Callable[[dict[str, Any]], str | None]


class StateDBError(RuntimeError):
    """The shared-state database cannot be reached; the message never holds the password."""


def writer_id() -> str:
    """This process, as rows and lock holders name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def where(dsn: str) -> str:
    """``user@host:port/database`` of a connection string, without its password."""
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return (f"{parts.get('user', '')}@{parts.get('host', '')}:{parts.get('port', 5432)}/"
            f"{parts.get('dbname', '')}")


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key derived from a fixed name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def connect(dsn: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection with the tables in place (made once per process and database).

    Raises:
        StateDBError: the database cannot be reached or refuses the credentials.
    """
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=5,
                               application_name=f"mlops {writer_id()}"[:63],
                               keepalives=1, keepalives_idle=30)
    except psycopg.OperationalError as err:
        raise StateDBError(f"the shared-state database {where(dsn)} (MLOPS_STATE_DB_URL) "
                           f"cannot be reached: {str(err).strip()}") from err
    with _ready_lock:
        if dsn not in _ready:
            with conn.transaction():  # two first users at once: one creates, one waits
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("mlops.tables"),))
                conn.execute(_TABLES)
            _ready.add(dsn)
    return conn


# -- the prediction log's chunks --------------------------------------------------------------
def insert_chunk(conn: psycopg.Connection[Any], scope: str, day: str, n_rows: int,
                 data: bytes) -> None:
    """One flush chunk, in one statement: it is there whole or not at all."""
    conn.execute("INSERT INTO prediction_log_chunks (scope, writer, day, n_rows, data) "
                 "VALUES (%s, %s, %s, %s, %s)", (scope, writer_id(), day, n_rows, data))


class ChunkSink:
    """The prediction log's sink (``prediction_log.Sink``): one row per day of a flush, on a
    connection kept between flushes and opened again after a failure."""

    def __init__(self, dsn: str, scope: str) -> None:
        self.dsn, self.scope = dsn, scope
        self._conn: Any = None
        self._lock = threading.Lock()

    def write(self, day: str, part: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self.dsn)
                insert_chunk(self._conn, self.scope, day, len(part), buffer.getvalue())
            except BaseException:
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.close()
                self._conn = None
                raise


def chunks(dsn: str, scope: str) -> Iterator[tuple[str, bytes]]:
    """(name, Parquet bytes) of every chunk of ``scope``, oldest first, one at a time."""
    with connect(dsn, autocommit=False) as conn, conn.cursor(name="chunks") as cursor:
        cursor.execute("SELECT id, writer, written_at, data FROM prediction_log_chunks "
                       "WHERE scope = %s ORDER BY id", (scope,))
        for chunk_id, writer, written_at, data in cursor:
            yield (f"prediction_log_chunks id {chunk_id} (writer {writer}, "
                   f"{written_at:%Y-%m-%d %H:%M:%S})", bytes(data))


def n_logged_rows(dsn: str, scope: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(n_rows), 0) FROM prediction_log_chunks "
                           "WHERE scope = %s", (scope,)).fetchone()
    return int(row[0]) if row else 0


# -- history and alerts -----------------------------------------------------------------------
def upsert_window(dsn: str, scope: str, window: str,
                  merge: Callable[[dict[str, Any] | None], dict[str, Any]]) -> None:
    """Replace ``window``'s entry with ``merge(earlier entry or None)``, in one transaction
    (the entry moves to the end: the history is in the order windows were last monitored)."""
    with connect(dsn) as conn, conn.transaction():
        row = conn.execute("SELECT line FROM monitoring_history WHERE scope = %s AND "
                           "window_name = %s FOR UPDATE", (scope, window)).fetchone()
        earlier = row[0] if row and isinstance(row[0], dict) else None
        conn.execute(
            "INSERT INTO monitoring_history (scope, window_name, line) VALUES (%s, %s, %s) "
            "ON CONFLICT (scope, window_name) DO UPDATE SET line = EXCLUDED.line, "
            "seq = nextval('monitoring_history_seq'), monitored_at = now()",
            (scope, window, Jsonb(merge(earlier))))


def history(dsn: str, scope: str, problem: Problem) -> list[dict[str, Any]]:
    """Every window's entry, in the order last monitored; a row ``problem`` finds fault with
    (or that is not an object) is skipped with a warning naming it."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT window_name, line FROM monitoring_history WHERE scope = %s "
                            "ORDER BY seq", (scope,)).fetchall()
    return _valid([(f"monitoring_history row {window!r} (scope {scope!r})", line)
                   for window, line in rows], problem)


def has_history(dsn: str, scope: str) -> bool:
    with connect(dsn) as conn:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM monitoring_history WHERE scope = %s)",
                            (scope,)).fetchone() == (True,)


def insert_alert(dsn: str, scope: str, line: dict[str, Any]) -> int:
    """Store one alert; returns its id (``set_delivered`` records the webhook's answer)."""
    with connect(dsn) as conn:
        row = conn.execute("INSERT INTO monitoring_alerts (scope, line) VALUES (%s, %s) "
                           "RETURNING id", (scope, Jsonb(line))).fetchone()
    assert row is not None
    return int(row[0])


def set_delivered(dsn: str, alert_id: int, delivered: bool) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE monitoring_alerts SET delivered = %s WHERE id = %s",
                     (delivered, alert_id))


def alerts(dsn: str, scope: str, problem: Problem) -> list[dict[str, Any]]:
    """Every alert, oldest first, with ``delivered`` (None when no webhook was set)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT id, line, delivered FROM monitoring_alerts WHERE scope = %s "
                            "ORDER BY id", (scope,)).fetchall()
    return _valid([(f"monitoring_alerts id {i}",
                    {**line, "delivered": delivered} if isinstance(line, dict) else line)
                   for i, line, delivered in rows], problem)


def _valid(rows: list[tuple[str, Any]], problem: Problem) -> list[dict[str, Any]]:
    found = []
    for name, line in rows:
        why = problem(line) if isinstance(line, dict) else "not a JSON object"
        if why is None:
            found.append(line)
        else:
            log.warning("%s skipped: %s", name, why)
    return found


def forget(dsn: str, scope: str) -> None:
    """Delete every row of ``scope`` (a replay starts afresh)."""
    with connect(dsn) as conn, conn.transaction():
        for table in ("prediction_log_chunks", "monitoring_history", "monitoring_alerts"):
            conn.execute(sql.SQL("DELETE FROM {} WHERE scope = %s").format(sql.Identifier(table)),
                         (scope,))


# -- the retrain lock -------------------------------------------------------------------------
class LockHeld(RuntimeError):
    """Another session holds the advisory lock; the message names its holder."""


@contextmanager
def advisory_lock(dsn: str, name: str) -> Iterator[None]:
    """Hold the session-level advisory lock ``name`` on a connection of its own for the block;
    it is released with the block, or by the server when the holder's connection dies.

    Raises:
        LockHeld: another session (on any machine) holds it.
    """
    key = lock_key(name)
    with connect(dsn) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if row != (True,):
            # A bigint key shows in pg_locks as its high and low 32 bits.
            holder = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND "
                "l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
            raise LockHeld(f"{holder[0] if holder else 'another session'} holds the advisory "
                           f"lock {name!r} in {where(dsn)}")
        try:
            yield
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
