"""The prediction log: every prediction the service makes, kept for monitoring and feedback.

Off the request path: the service hands each prediction over (``record``, the Level 3
service's ``PredictionSink``: an append under a lock); a background task writes them every
``flush_interval_s`` as Parquet, one folder per UTC day
(``date=YYYY-MM-DD/part-<pid>-<ns>.parquet``: several workers share a folder without ever
writing the same name; ``log_files`` finds them, and the older ``part-<ns>.parquet`` too), each
file written to a temporary name and renamed. A row is the request's record plus the columns
below.
A write that fails (a full disk, a folder that cannot be written) keeps its rows for the next
flush; past ``max_buffered_rows`` the oldest are dropped, counted in ``n_dropped``
(``n_failed_flushes`` counts the failures; both are on the service's ``/metrics``).
A graceful shutdown flushes everything. A crash loses at most what was appended since the
last flush: ``flush_interval_s`` seconds of predictions.
A file that cannot be read back (cut short, empty, not Parquet) is skipped with a warning.

Where the rows go is the log's sink: ``FolderSink`` (the files above, the laptop profile) or
``state_db.ChunkSink`` (the team profile: one row of ``prediction_log_chunks`` per day of a flush,
the same Parquet bytes, in PostgreSQL; ``state_db`` says why). ``shared_state`` picks one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from level2_training.tracking import PROBABILITY_COLUMN
from level3_deployment.loading import LoadedModel

log = logging.getLogger("mlops.prediction_log")
# What the log adds to each record (PROBABILITY_COLUMN too).
REQUEST_ID_COLUMN, ROW_COLUMN, TIMESTAMP_COLUMN = "request_id", "row", "timestamp"
MODEL_NAME_COLUMN, MODEL_VERSION_COLUMN = "model_name", "model_version"
FILES = "date=*/part-*.parquet"
# Measured: a buffered row of the example costs about 2.5 kB, so 100,000 rows are ~250 MB, what
# a 1 GiB pod (level3_deployment/k8s) can hold beside the model; at 1,000 req/s, 100 s of rows.
DEFAULT_MAX_BUFFERED_ROWS = 100_000

_ns_lock = threading.Lock()
_last_ns = 0


def _unique_ns() -> int:
    """The time in ns, strictly increasing within the process (two files never share it)."""
    global _last_ns
    with _ns_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def log_files(folder: Path) -> list[Path]:
    """The log's files, oldest day first (each written once, renamed into place)."""
    return sorted(folder.glob(FILES))


class Sink(Protocol):
    def write(self, day: str, part: pd.DataFrame) -> None:
        """Write one day's rows of a flush, whole or not at all (raise when not)."""


class FolderSink:
    """One Parquet file per day of a flush, ``date=<day>/part-<pid>-<ns>.parquet``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, day: str, part: pd.DataFrame) -> None:
        folder = self.folder / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{os.getpid()}-{_unique_ns()}.parquet"
        tmp = path.with_suffix(".tmp")
        try:
            part.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise


class PredictionLog:
    def __init__(self, destination: Path | Sink, flush_interval_s: float = 2.0,
                 max_buffered_rows: int = DEFAULT_MAX_BUFFERED_ROWS) -> None:
        """``destination``: a folder (``FolderSink``) or any ``Sink``."""
        if max_buffered_rows < 1:
            raise ValueError(f"max_buffered_rows must be at least 1, not {max_buffered_rows}")
        self.sink = FolderSink(destination) if isinstance(destination, Path) else destination
        self.flush_interval_s = flush_interval_s
        self.max_buffered_rows = max_buffered_rows
        self._rows: deque[dict[str, Any]] = deque(maxlen=max_buffered_rows)
        self._lock = threading.Lock()
        self.n_written = 0
        self.n_dropped = 0         # rows dropped, oldest first, while the buffer was full
        self.n_failed_flushes = 0  # flushes that could not write all their rows
        self._n_dropped_logged = 0

    @property
    def n_buffered(self) -> int:
        """Rows waiting for the next flush."""
        return len(self._rows)

    def _keep(self, rows: Iterable[dict[str, Any]], n: int) -> None:
        """Buffer ``n`` rows after those buffered, dropping the oldest past the bound
        (the caller holds the lock)."""
        self.n_dropped += max(0, len(self._rows) + n - self.max_buffered_rows)
        self._rows.extend(rows)

    def record(self, request_id: str, model: LoadedModel, records: Sequence[dict[str, Any]],
               probabilities: Sequence[float], at: float | None = None) -> None:
        """Keep one request's predictions (called on the request path: no I/O here);
        ``at``: when they were made (default: now)."""
        now = time.time() if at is None else at
        rows = [{**r, REQUEST_ID_COLUMN: request_id, ROW_COLUMN: i, TIMESTAMP_COLUMN: now,
                 MODEL_NAME_COLUMN: model.name, MODEL_VERSION_COLUMN: model.version,
                 PROBABILITY_COLUMN: p}
                for i, (r, p) in enumerate(zip(records, probabilities, strict=True))]
        with self._lock:
            self._keep(rows, len(rows))

    def flush(self) -> int:
        """Write what is buffered; returns how many rows were written.

        Raises:
            Whatever writing raised (``OSError`` for a full disk or a folder that cannot be
            written): the rows not written are buffered again, before any recorded since,
            for the next flush.
        """
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        written_days: set[str] = set()
        days: list[str] | None = None
        try:
            if rows:
                frame = pd.DataFrame.from_records(rows)
                days = list(pd.to_datetime(frame[TIMESTAMP_COLUMN], unit="s", utc=True)
                            .dt.strftime("%Y-%m-%d"))
                # A Series, not the list: a one-row list would be read as a list of keys.
                for day, part in frame.groupby(pd.Series(days, index=frame.index)):
                    self.sink.write(str(day), part)
                    written_days.add(str(day))
                    with self._lock:
                        self.n_written += len(part)
        except Exception:
            kept = rows if days is None else [
                row for row, day in zip(rows, days, strict=True) if day not in written_days]
            with self._lock:
                newer = list(self._rows)
                self._rows.clear()
                self._keep(kept, len(kept))
                self._keep(newer, len(newer))
                self.n_failed_flushes += 1
            raise
        finally:
            self._log_drops()
        return len(rows)

    def _log_drops(self) -> None:
        with self._lock:
            dropped, self._n_dropped_logged = (self.n_dropped - self._n_dropped_logged,
                                               self.n_dropped)
        if dropped:
            log.error("prediction log buffer full (%d rows): %d oldest rows dropped",
                      self.max_buffered_rows, dropped)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_interval_s`` until ``stop`` is set, then flush what is left.

        Stopping is cooperative, never a cancel: a cancelled flush would leave its rows to a
        thread that the process may not wait for.
        """
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):  # the interval passed: flush, go on
                await asyncio.wait_for(stop.wait(), self.flush_interval_s)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:  # a full disk must not take the service down
                log.exception("prediction log flush failed; will retry")


    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """The writer, for the service's life (a ``Lifespan``): on the way out, after the
        service answered its last request, everything still buffered is written."""
        stop = asyncio.Event()
        writer = asyncio.create_task(self.run(stop))
        try:
            yield
        finally:
            stop.set()
            await writer
            if self.n_buffered:
                log.error("prediction log: %d rows could not be written before shutdown",
                          self.n_buffered)


def read_predictions(folder: Path) -> pd.DataFrame:
    """Every logged prediction in ``folder``, oldest first; a file that cannot be read is
    skipped, with a warning naming it."""
    return _decoded((f"file {path}", path) for path in log_files(folder))


def read_chunks(chunks: Iterable[tuple[str, bytes]]) -> pd.DataFrame:
    """Every logged prediction of (name, Parquet bytes) chunks (``state_db.chunks``), oldest
    first; a chunk that cannot be decoded is skipped, with a warning naming it."""
    return _decoded((name, io.BytesIO(data)) for name, data in chunks)


def _decoded(parts: Iterable[tuple[str, Path | io.BytesIO]]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for name, source in parts:
        try:
            tables.append(pq.read_table(source))
        except (OSError, pa.ArrowException) as err:  # cut short, empty, not Parquet, gone
            log.warning("prediction log %s skipped: cannot be read (%s)", name, err)
    if not tables:
        return pd.DataFrame()
    # A column that was all missing in one part is typed null there: unify the types first.
    table = pa.concat_tables(tables, promote_options="permissive")
    return table.to_pandas().sort_values(TIMESTAMP_COLUMN, kind="stable").reset_index(drop=True)
