"""The cost of monitoring: one month's window through Evidently, and prediction logging.

(1) One monitoring window as the monitor flow runs it: the @champion's reference sample
    (kept with its training run) against July's flights (about 29,000) with the champion's
    probabilities and the labels: Evidently's feature drift, prediction drift, data quality
    and classification performance in one report. Floor, same frames, same run: scipy
    two-sample tests per column (Kolmogorov-Smirnov for numbers, chi-squared for categories)
    and sklearn's ROC AUC. Targets: under 5 s and under 1 GB peak, with its ratio to the floor.
(2) The service's throughput with and without the prediction log: the Level 3 app (no log)
    against the Level 4 app (`mlops serve`, every prediction logged), wrk with 32 connections
    on /predict, alternated A B A B. Target: logging costs under 10% of throughput.

Needs @champion in the project's store (`make level3`) and wrk (`apt-get install wrk`).

    uv run python benchmarks/monitoring_cost.py [--seconds 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.settings import Settings

os.environ.setdefault("OMP_NUM_THREADS", "1")


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scipy_floor(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                categorical: list[str]) -> float:
    """Share of columns whose two-sample test rejects at 5%, and the ROC AUC: the floor."""
    from scipy.stats import chi2_contingency, ks_2samp
    from sklearn.metrics import roc_auc_score

    drifted = 0
    for column in numeric:
        a, b = reference[column].dropna(), current[column].dropna()
        drifted += bool(len(a) and len(b) and ks_2samp(a, b).pvalue < 0.05)
    for column in categorical:
        table = pd.crosstab(pd.concat([reference[column], current[column]]),
                            np.r_[np.zeros(len(reference)), np.ones(len(current))])
        with np.errstate(divide="ignore", invalid="ignore"):
            drifted += bool(chi2_contingency(table).pvalue < 0.05)
    roc_auc_score(current["is_late"], current["probability"])
    return drifted / (len(numeric) + len(categorical))


def window_frames(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The champion's reference sample and July scored by the champion, as monitoring sees."""
    from mlflow import MlflowClient

    from level1_devops.features import build_features, build_label
    from level2_training.data import load_periods
    from level3_deployment.client import as_requests
    from level3_deployment.loading import load_version, version_for_alias
    from level4_retraining.monitor_flow import load_reference

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    version = version_for_alias(client, "flight-delay", "champion")
    if version is None:
        raise SystemExit("no @champion: run `make level3` first")
    reference, _, _ = load_reference.fn(client, "flight-delay")
    if "probability" not in reference.columns:
        raise SystemExit(f"v{version}'s reference has no probabilities: train it again")
    model = load_version(client, "flight-delay", version)
    flights = load_periods(settings.raw_dir, ["2013-07"])
    current = build_features(flights).assign(
        probability=model.predict_records(as_requests(flights)),
        is_late=build_label(flights).to_numpy())
    return reference, current, version


def monitoring_window(repeat: int) -> None:
    from level1_devops.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    from level4_retraining.drift_report import feature_drift
    from level4_retraining.params import RetrainingParams

    settings = Settings()
    reference, current, version = window_frames(settings)
    ignore = RetrainingParams.load(settings.project_dir).monitor.ignore_columns
    numeric = [c for c in NUMERIC_FEATURES if c not in ignore] + ["probability"]
    categorical = [c for c in CATEGORICAL_FEATURES if c not in ignore]
    import evidently  # noqa: F401  (its import, ~10 s here, is not the window's cost)

    feature_drift(reference.head(500), current.head(500), ignore)  # warm up
    ours, drift = timed(lambda: feature_drift(reference, current, ignore), repeat)
    # Memory in a run of its own: tracing allocations slows them (15 s instead of 4.5 s here).
    tracemalloc.start()
    feature_drift(reference, current, ignore)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor, floor_share = timed(lambda: scipy_floor(reference, current, numeric, categorical),
                               repeat)
    print(f"\n(1) One window: v{version}'s reference ({len(reference):,} rows) against July "
          f"({len(current):,} flights), median of {repeat}")
    print(f"  Evidently report (drift, prediction drift, quality, classification): {ours:.2f} s"
          f" (target < 5 s); drift share {drift.share:.2f}")
    print(f"  scipy floor (KS / chi-squared per column + ROC AUC):                 {floor:.2f} s"
          f"; drift share {floor_share:.2f}")
    print(f"  ratio to the floor: {ours / floor:.0f}x")
    print(f"  peak memory: {peak / 2**20:.0f} MB traced during the report; process peak RSS "
          f"{rss:.0f} MB (target < 1 GB)")


def service_throughput(seconds: float) -> None:
    from service_latency import load, start, stop

    from level2_training.params import TrainingParams
    from level3_deployment.client import free_port, real_records

    settings = Settings()
    one = real_records(settings, TrainingParams.load(settings.project_dir).train, 1)[0]
    log_dir = tempfile.mkdtemp(prefix="bench-predictions-")
    apps = {
        "without the log (Level 3 app)": [sys.executable, "-m", "uvicorn", "--factory",
                                          "level3_deployment.service.app:create_app",
                                          "--log-level", "warning", "--port"],
        "with the log (Level 4 app, mlops serve)": [sys.executable, "-m", "level1_devops.cli",
                                                    "serve", "--app", "level4", "--port"],
    }
    rates: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(2):
        for name, cmd in apps.items():
            port = free_port()
            server = start([*cmd, str(port)], port, "/health/ready",
                           {"MLOPS_PREDICTIONS_DIR": log_dir})
            try:
                result = load(f"http://127.0.0.1:{port}/predict", one, 32, seconds)
                rates[name].append(result["rps"])
            finally:
                stop(server)
    print(f"\n(2) /predict, 32 connections (wrk), {seconds:.0f} s each, alternated twice")
    for name, values in rates.items():
        print(f"  {name:<42} {' / '.join(f'{v:.0f}' for v in values)} req/s")
    without, with_log = (statistics.mean(v) for v in rates.values())
    print(f"  cost of logging: {100 * (1 - with_log / without):.1f}% of throughput "
          "(target < 10%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    monitoring_window(args.repeat)
    service_throughput(args.seconds)


if __name__ == "__main__":
    main()
