"""The prediction log: every prediction the service makes, kept for monitoring and feedback.

Off the request path: the service hands each prediction over (``record``, the Level 3
service's ``PredictionSink``: an append under a lock); a background task writes them every
``flush_interval_s`` as Parquet, one folder per UTC day (``date=YYYY-MM-DD/part-<ns>.parquet``,
``log_files`` finds them), each file written to a temporary name and renamed.
A row is the request's record plus the columns below.
A graceful shutdown flushes everything. A crash loses at most what was appended since the
last flush: ``flush_interval_s`` seconds of predictions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from level2_training.tracking import PROBABILITY_COLUMN
from level3_deployment.loading import LoadedModel

log = logging.getLogger("mlops.prediction_log")
# What the log adds to each record (PROBABILITY_COLUMN too).
REQUEST_ID_COLUMN, ROW_COLUMN, TIMESTAMP_COLUMN = "request_id", "row", "timestamp"
MODEL_NAME_COLUMN, MODEL_VERSION_COLUMN = "model_name", "model_version"
FILES = "date=*/part-*.parquet"


def log_files(folder: Path) -> list[Path]:
    """The log's files, oldest day first (each written once, renamed into place)."""
    return sorted(folder.glob(FILES))


class PredictionLog:
    def __init__(self, folder: Path, flush_interval_s: float = 2.0) -> None:
        self.folder = folder
        self.flush_interval_s = flush_interval_s
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.n_written = 0

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
            self._rows.extend(rows)

    def flush(self) -> int:
        """Write what is buffered; returns how many rows were written."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        frame = pd.DataFrame.from_records(rows)
        days = pd.to_datetime(frame[TIMESTAMP_COLUMN], unit="s", utc=True).dt.strftime("%Y-%m-%d")
        for day, part in frame.groupby(days):
            folder = self.folder / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{time.time_ns()}.parquet"
            tmp = path.with_suffix(".tmp")
            part.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        self.n_written += len(rows)
        return len(rows)

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


def read_predictions(folder: Path) -> pd.DataFrame:
    """Every logged prediction, oldest first."""
    parts = log_files(folder)
    if not parts:
        return pd.DataFrame()
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A column that was all missing in one file is typed null there: unify the types first.
    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
    return table.to_pandas().sort_values(TIMESTAMP_COLUMN, kind="stable").reset_index(drop=True)
