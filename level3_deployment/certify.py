"""The certification gate: every check a candidate must pass before it may serve.

Checks run on the frozen holdout of ``train`` with the service's own loader. Each check has
its threshold in params.yaml (``certify``); the report says which check failed and by how much.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from level1_devops.adapter import Scenario
from level1_devops.features import (
    FEATURE_COLUMNS,
    INVARIANT_COLUMNS,
    SCENARIOS,
    FeatureParams,
    build_features,
    build_label,
)
from level1_devops.schema import RECORDS_NAME
from level3_deployment.loading import LoadedModel
from level3_deployment.params import CertifyParams


@dataclass(frozen=True)
class Check:
    """One check: passed or not, the measured value against its threshold."""

    name: str
    passed: bool
    value: float | str
    threshold: float | str
    detail: str = ""


@dataclass
class CertificationReport:
    model_name: str
    version: str
    champion_version: str | None
    checks: list[Check] = field(default_factory=list)
    sha256: str = ""  # the model file certified (verified against its registration)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"# Certification of {self.model_name} v{self.version}: {verdict}", "",
                 f"Champion compared: {self.champion_version or 'none'}; {self.created_at}", "",
                 "| check | result | value | threshold | detail |",
                 "| --- | --- | --- | --- | --- |"]
        for c in self.checks:
            value = f"{c.value:.4f}" if isinstance(c.value, float) else c.value
            lines.append(f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {value} | "
                         f"{c.threshold} | {c.detail} |")
        return "\n".join(lines) + "\n"


def _at_least(name: str, value: float, floor: float, detail: str = "") -> Check:
    short = "" if value >= floor else f"short by {floor - value:.4f}"
    return Check(name, value >= floor, value, f">= {floor:g}",
                 "; ".join(filter(None, [detail, short])))


def _at_most(name: str, value: float, ceiling: float, detail: str = "") -> Check:
    over = "" if value <= ceiling else f"over by {value - ceiling:.4f}"
    return Check(name, value <= ceiling, value, f"<= {ceiling:g}",
                 "; ".join(filter(None, [detail, over])))


def quality_checks(candidate: LoadedModel, X: pd.DataFrame, y: pd.Series,
                   champion: LoadedModel | None, params: CertifyParams) -> list[Check]:
    """Quality floor on the holdout, and no worse than the champion on the same holdout."""
    p = candidate.predict_proba(X)
    auc, loss = float(roc_auc_score(y, p)), float(log_loss(y, p, labels=[0, 1]))
    checks = [_at_least("holdout_roc_auc", auc, params.min_roc_auc),
              _at_most("holdout_log_loss", loss, params.max_log_loss)]
    if champion is not None:
        q = champion.predict_proba(X)
        champion_auc = float(roc_auc_score(y, q))
        champion_loss = float(log_loss(y, q, labels=[0, 1]))
        checks += [
            _at_least("vs_champion_roc_auc", auc, champion_auc - params.max_auc_drop,
                      f"champion v{champion.version}: {champion_auc:.4f}"),
            _at_most("vs_champion_log_loss", loss, champion_loss + params.max_log_loss_increase,
                     f"champion v{champion.version}: {champion_loss:.4f}"),
        ]
    return checks


def scenario_check(candidate: LoadedModel, records: pd.DataFrame, base: np.ndarray,
                   scenario: Scenario, params: CertifyParams) -> Check:
    """The scenario moves mean P its way (``direction``) by at least the configured shift."""
    changed = candidate.predict_proba(build_features(scenario.transform(records)))
    shift = float(np.mean(changed - base)) * scenario.direction
    way = "rise" if scenario.direction > 0 else "fall"
    return _at_least(f"directional_{scenario.name}", shift, params.min_directional_shift,
                     f"mean {way} of P with {scenario.description}")


def behaviour_checks(candidate: LoadedModel, records: pd.DataFrame, y: pd.Series,
                     params: CertifyParams) -> list[Check]:
    """Invariance, direction (the adapter's scenarios) and minimum functionality (slices),
    through the feature builder."""
    base = candidate.predict_proba(build_features(records))
    shuffled = records.copy()
    rng = np.random.default_rng(0)
    for column in INVARIANT_COLUMNS:
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    drift = float(np.max(np.abs(candidate.predict_proba(build_features(shuffled)) - base)))
    checks = [
        _at_most("invariance", drift, params.invariance_tolerance,
                 f"shuffled: {', '.join(INVARIANT_COLUMNS)}"),
        *(scenario_check(candidate, records, base, s, params) for s in SCENARIOS),
    ]
    for name, query in params.slices.items():
        rows = np.asarray(records.eval(query), dtype=bool)
        if y[rows].nunique() < 2:
            checks.append(Check(f"slice_{name}", False, "n/a", params.slice_min_roc_auc,
                                f"slice has {rows.sum()} rows and one class"))
            continue
        auc = float(roc_auc_score(y[rows], base[rows]))
        checks.append(_at_least(f"slice_{name}", auc, params.slice_min_roc_auc,
                                f"{int(rows.sum())} {RECORDS_NAME}"))
    return checks


def schema_check(signature_inputs: list[str] | None) -> Check:
    """The model's MLflow signature takes exactly what the service's request schema yields."""
    if signature_inputs is None:
        return Check("schema_compatibility", False, "no signature", "feature columns")
    missing = sorted(set(FEATURE_COLUMNS) - set(signature_inputs))
    extra = sorted(set(signature_inputs) - set(FEATURE_COLUMNS))
    detail = "; ".join(filter(None, [f"not used: {', '.join(missing)}" if missing else "",
                                     f"unknown: {', '.join(extra)}" if extra else ""]))
    return Check("schema_compatibility", not missing and not extra,
                 f"{len(signature_inputs)} inputs", f"{len(FEATURE_COLUMNS)} feature columns",
                 detail)


def budget_checks(candidate: LoadedModel, X: pd.DataFrame, params: CertifyParams,
                  n_calls: int = 200) -> list[Check]:
    """p95 single-row predict latency and model size.

    Timed as the service runs it, on one OpenMP thread: with a thread per core, a busy
    machine (measured here: another job on the second core) made p95 130-570 ms instead of
    a few ms, from threads waiting on each other, not from the model.
    """
    from threadpoolctl import threadpool_limits

    rows = X.sample(min(n_calls, len(X)), random_state=0)
    timings = []
    with threadpool_limits(1):
        for i in range(len(rows)):
            start = time.perf_counter()
            candidate.predict_proba(rows.iloc[i:i + 1])
            timings.append((time.perf_counter() - start) * 1000)
    p95 = float(np.percentile(timings, 95))
    size_mb = candidate.size_bytes / 1e6
    return [_at_most("p95_single_row_latency_ms", p95, params.max_p95_latency_ms),
            _at_most("model_size_mb", size_mb, params.max_model_mb)]


def run_checks(candidate: LoadedModel, champion: LoadedModel | None, records: pd.DataFrame,
               params: CertifyParams, label_params: FeatureParams | None = None) -> list[Check]:
    """Every check of a candidate that loaded, on the holdout ``records``."""
    records = records.reset_index(drop=True)
    y = build_label(records, label_params)
    X = build_features(records)
    return [
        Check("loads_with_service_loader", True, "ok", "loads + smoke prediction"),
        schema_check(candidate.signature_inputs),
        *quality_checks(candidate, X, y, champion, params),
        *behaviour_checks(candidate, records, y, params),
        *budget_checks(candidate, X, params),
    ]
