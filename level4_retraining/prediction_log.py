"""The prediction log: every prediction the service makes, kept for monitoring and feedback.

Off the request path: the service hands rows over (an append under a lock); a background
task writes them every ``flush_interval_s`` as Parquet, one folder per UTC day
(``date=YYYY-MM-DD/part-<ns>.parquet``), each file written to a temporary name and renamed.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("mlops.prediction_log")


class PredictionLog:
    def __init__(self, folder: Path, flush_interval_s: float = 2.0) -> None:
        self.folder = folder
        self.flush_interval_s = flush_interval_s
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.n_written = 0

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Hand rows over (called on the request path: no I/O here)."""
        with self._lock:
            self._rows.extend(rows)

    def flush(self) -> int:
        """Write what is buffered; returns how many rows were written."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        frame = pd.DataFrame.from_records(rows)
        days = pd.to_datetime(frame["timestamp"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
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


def read_predictions(folder: Path, since: datetime | None = None) -> pd.DataFrame:
    """Every logged prediction (optionally from a UTC day on), oldest first."""
    parts = sorted(folder.glob("date=*/part-*.parquet"))
    if since is not None:
        first = since.astimezone(UTC).strftime("%Y-%m-%d")
        parts = [p for p in parts if p.parent.name.removeprefix("date=") >= first]
    if not parts:
        return pd.DataFrame()
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A column that was all missing in one file is typed null there: unify the types first.
    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
    return table.to_pandas().sort_values("timestamp", kind="stable").reset_index(drop=True)
