"""Typed view of the ``monitor`` section of params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from level1_devops.params import load_section
from level4_retraining.windows import WindowKind

Severity = Literal["warn", "retrain"]


class MonitorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: WindowKind = "month"
    ignore_columns: list[str] = Field(default_factory=lambda: ["month"])
    drift_share_threshold: float = Field(0.6, gt=0, le=1)
    performance_drop_threshold: float = Field(0.03, gt=0, lt=1)
    k_consecutive: int = Field(2, ge=1)
    cooldown_windows: int = Field(2, ge=0)
    min_samples: int = Field(1000, ge=1)
    drift_severity: Severity = "retrain"
    performance_severity: Severity = "retrain"
    retrain_train_periods: int = Field(4, ge=1)


def load_monitor_params(project_dir: Path) -> MonitorParams:
    return load_section(project_dir, "monitor", MonitorParams)
