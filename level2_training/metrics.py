"""Evaluation: the metrics and plots a data scientist looks at. Pure: returns, never writes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def classification_metrics(y: pd.Series, p: np.ndarray, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC, log loss, Brier score and F1/precision/recall at ``threshold``."""
    label = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "f1": float(f1_score(y, label, zero_division=0)),
        "precision": float(precision_score(y, label, zero_division=0)),
        "recall": float(recall_score(y, label, zero_division=0)),
        "late_rate": float(np.mean(y)),
        "n": float(len(y)),
    }


def per_period_auc(y: pd.Series, p: np.ndarray, period: pd.Series) -> dict[str, float]:
    """ROC AUC of each period (where both classes occur)."""
    frame = pd.DataFrame({"y": y.to_numpy(), "p": p, "period": period.to_numpy()})
    return {str(k): float(roc_auc_score(g["y"], g["p"])) for k, g in frame.groupby("period")
            if g["y"].nunique() == 2}


def evaluation_plots(y: pd.Series, p: np.ndarray, importance: pd.Series) -> dict[str, Any]:
    """ROC, precision-recall, calibration and feature importance figures, by file name."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, p):.3f}")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend()
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    precision, recall, _ = precision_recall_curve(y, p)
    ax.plot(recall, precision, label=f"AP {average_precision_score(y, p):.3f}")
    ax.axhline(float(np.mean(y)), color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax.legend()
    figures["precision_recall.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, "o-")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="mean predicted P(late)", ylabel="observed late rate",
           title="Calibration (holdout)")
    figures["calibration.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 5))
    importance.sort_values().plot.barh(ax=ax)
    ax.set(xlabel="drop in ROC AUC when shuffled", title="Permutation importance (validation)")
    fig.tight_layout()
    figures["feature_importance.png"] = fig
    return figures


def feature_importance(model: Any, X: pd.DataFrame, y: pd.Series, seed: int,
                       max_rows: int = 4000) -> pd.Series:
    """Permutation importance (drop in ROC AUC) on a sample: model-agnostic and honest."""
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=seed)
        y = y.loc[X.index]
    result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=3,
                                    random_state=seed, n_jobs=1)
    return pd.Series(result.importances_mean, index=X.columns)
