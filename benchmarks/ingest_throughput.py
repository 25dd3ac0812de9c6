"""Ingestion throughput for the full 2013 year against a floor measured in the same run.

Floor: a plain pandas read of the same files plus a Parquet write of the flights, with no
validation, no join and no partitioning. Target: ingestion within 3x of the floor.

    uv run python benchmarks/ingest_throughput.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from level1_devops.feed import Feed, default_feed_dir
from level1_devops.ingest import count_rows, ingest

TARGET_RATIO = 3.0


def best_of(repeat: int, work: Callable[[Path], None]) -> float:
    """Best wall time of ``repeat`` runs, each in a fresh temporary folder."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            work(Path(tmp))
            times.append(time.perf_counter() - start)
    return min(times)


def floor(out: Path) -> None:
    source = default_feed_dir()
    flights = pd.read_csv(source / "flights.csv.zip")
    pd.read_csv(source / "weather.csv")
    flights.to_parquet(out / "flights.parquet", index=False)


def full_ingest(out: Path) -> None:
    ingest(Feed(), out / "raw", out / "quarantine")
    assert count_rows(out / "raw") + count_rows(out / "quarantine") == 336_776


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_rows = 336_776
    floor_s = best_of(args.repeat, floor)
    ingest_s = best_of(args.repeat, full_ingest)
    ratio = ingest_s / floor_s
    print(f"{'what':<42}{'seconds':>9}{'rows/s':>12}")
    print(f"{'floor: pandas read + Parquet write':<42}{floor_s:>9.2f}{n_rows / floor_s:>12,.0f}")
    print(f"{'mlops ingest (validate, join, partition)':<42}{ingest_s:>9.2f}"
          f"{n_rows / ingest_s:>12,.0f}")
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"ratio {ratio:.2f}x the floor ({verdict} the {TARGET_RATIO:g}x target; "
          f"best of {args.repeat})")


if __name__ == "__main__":
    main()
