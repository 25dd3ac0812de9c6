"""The replay's reporting: the timeline as a table (markdown, CSV), a plot of ROC AUC over time
against the never-retrained baseline, and the gain after the first retrain. Pure but for the
files it is asked to write.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class TimelineRow:
    period: str
    flights: int
    champion: str             # the version that served the period
    drift_share: float
    prediction_drift: float | None
    champion_auc: float | None
    decision: str
    reason: str
    new_version: str = ""     # the retrained version, promoted or refused
    retrain: str = ""         # promoted, refused, skipped
    new_auc: float | None = None    # the retrained version's ROC AUC on the period
    auc_after: float | None = None  # ROC AUC on the period of the champion after the decision
    baseline_auc: float | None = None  # the never-retrained initial champion
    swap_s: float | None = None     # promotion -> the live service's first answer with it


@dataclass
class ReplayResult:
    timeline: list[TimelineRow]
    initial_version: str
    heartbeat: dict[str, int] = field(default_factory=dict)  # requests, failed
    failed_requests: int = 0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def promotions(self) -> list[TimelineRow]:
        return [row for row in self.timeline if row.retrain == "promoted"]


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def describe(row: TimelineRow) -> str:
    text = (f"{row.period}: {row.flights:,} flights, drift share {row.drift_share:.2f}, "
            f"v{row.champion} ROC AUC {fmt(row.champion_auc)} -> {row.decision}")
    if row.retrain:
        text += f"; retrained v{row.new_version} {row.retrain} (ROC AUC {fmt(row.new_auc)})"
    if row.swap_s is not None:
        text += (f"; the live service answered with v{row.new_version} {row.swap_s:.0f} s "
                 "after its promotion")
    return text


COLUMNS = ("period", "drift share", "prediction drift", "champion", "champion AUC", "decision",
           "new version", "AUC after", "never retrained")


def table_rows(result: ReplayResult) -> list[list[str]]:
    return [[r.period, fmt(r.drift_share, 2), fmt(r.prediction_drift, 2), f"v{r.champion}",
             fmt(r.champion_auc),
             r.decision,
             (f"v{r.new_version} " if r.new_version else "") + r.retrain
             + (f" ({fmt(r.new_auc)})" if r.new_auc is not None else ""),
             fmt(r.auc_after), fmt(r.baseline_auc)] for r in result.timeline]


def markdown_table(result: ReplayResult) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(result)]
    return "\n".join(lines) + "\n"


def write_outputs(folder: Path, result: ReplayResult) -> dict[str, Path]:
    """The timeline (CSV and markdown) and the plot of ROC AUC over time."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"timeline_csv": folder / "timeline.csv", "timeline_md": folder / "timeline.md",
             "plot": folder / "auc_over_time.png"}
    with files["timeline_csv"].open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(asdict(result.timeline[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in result.timeline)
    files["timeline_md"].write_text(markdown_table(result))
    plot(result, files["plot"])
    return files


def plot(result: ReplayResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    periods = [r.period for r in result.timeline]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    def values(name: str) -> list[float]:
        return [float("nan") if getattr(r, name) is None else getattr(r, name)
                for r in result.timeline]

    ax.plot(periods, values("champion_auc"), "o-", color="tab:blue",
            label="served champion (with the retraining loop)")
    ax.plot(periods, values("baseline_auc"), "s--", color="tab:gray",
            label=f"never retrained (v{result.initial_version})")
    for i, row in enumerate(result.timeline):
        if row.new_auc is not None:
            ax.plot(i, row.new_auc, "*" if row.retrain == "promoted" else "x", markersize=10,
                    color="tab:green" if row.retrain == "promoted" else "tab:red")
        if row.retrain == "promoted":
            ax.axvline(i, color="tab:green", alpha=0.4)
            ax.annotate(f"v{row.new_version} promoted", (i, row.auc_after or 0), color="tab:green",
                        xytext=(4, 6), textcoords="offset points", fontsize=8)
        elif row.retrain == "refused":
            ax.axvline(i, color="tab:red", alpha=0.3, linestyle=":")
            ax.annotate(f"v{row.new_version} refused", (i, row.champion_auc or 0),
                        color="tab:red", xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.set_xlabel("period (window of flights)")
    ax.set_ylabel("ROC AUC of the logged predictions")
    ax.set_title("2013 replayed through the live service: retraining loop vs never retrained")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def later_months_gain(result: ReplayResult) -> tuple[float, float, int] | None:
    """Mean ROC AUC after the first promotion: served champion vs never retrained."""
    first = next((i for i, r in enumerate(result.timeline) if r.retrain == "promoted"), None)
    if first is None:
        return None
    later = [r for r in result.timeline[first + 1:]
             if r.champion_auc is not None and r.baseline_auc is not None]
    if not later:
        return None
    served = sum(r.champion_auc or 0 for r in later) / len(later)
    baseline = sum(r.baseline_auc or 0 for r in later) / len(later)
    return served, baseline, len(later)
