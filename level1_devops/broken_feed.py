"""A broken copy of the feed, for the workshop's quarantine exercise (`make quarantine`).

    uv run python -m level1_devops.broken_feed OUTPUT_DIR [--period 2013-01] [--every 3]

Copies one period of the real feed with every ``every``-th row broken in one of six ways
(wrong type, unknown airport, month 13, missing carrier, negative hour, "5:15" as a time)
plus two exact duplicate rows; the weather is copied as it is.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from level1_devops.feed import FLIGHTS_FILES, WEATHER_FILE, default_feed_dir


def corrupt(flights: pd.DataFrame, every: int = 3) -> tuple[pd.DataFrame, int]:
    """Break every ``every``-th row in one of several ways; returns the frame and how many
    rows are bad (the broken ones and two appended exact duplicates)."""
    bad = flights.astype(object).copy()
    rows = bad.index[::every]
    for n, i in enumerate(rows):
        kind = n % 6
        if kind == 0:
            bad.loc[i, "distance"] = "far"                 # wrong type
        elif kind == 1:
            bad.loc[i, "origin"] = "XYZ"                   # outside a closed category
        elif kind == 2:
            bad.loc[i, "month"] = 13                       # out of range
        elif kind == 3:
            bad.loc[i, "carrier"] = None                   # required value missing
        elif kind == 4:
            bad.loc[i, "hour"] = -5                        # out of range
        else:
            bad.loc[i, "sched_dep_time"] = "5:15"          # wrong type
    duplicated = bad.iloc[[1, 2]]                          # exact duplicate rows
    return pd.concat([bad, duplicated], ignore_index=True), len(rows) + len(duplicated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="folder for the broken feed (emptied first)")
    parser.add_argument("--period", default="2013-01", help="the period copied (YYYY-MM)")
    parser.add_argument("--every", type=int, default=3, help="break every N-th row")
    args = parser.parse_args()
    source = default_feed_dir()
    name = next(n for n in FLIGHTS_FILES if (source / n).is_file())
    flights = pd.read_csv(source / name)
    year, month = (int(x) for x in args.period.split("-"))
    flights = flights[(flights["year"] == year) & (flights["month"] == month)]
    broken, n_bad = corrupt(flights, args.every)
    shutil.rmtree(args.output, ignore_errors=True)
    args.output.mkdir(parents=True)
    broken.to_csv(args.output / "flights.csv", index=False)
    shutil.copy(source / WEATHER_FILE, args.output / WEATHER_FILE)
    print(f"Wrote {args.output / 'flights.csv'}: {len(broken):,} rows of {args.period}, "
          f"{n_bad:,} of them bad; now ingest it and look at the quarantine.")


if __name__ == "__main__":
    main()
