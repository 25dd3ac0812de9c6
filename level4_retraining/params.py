"""Typed view of the ``monitor`` section of params.yaml.

``RetrainingParams``: every section of params.yaml, loaded once by an entry point.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from level3_deployment.params import DeploymentParams
from level4_retraining.windows import WindowKind

Severity = Literal["warn", "retrain"]


class MonitorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: WindowKind = "monthly"
    ignore_columns: list[str] = Field(default_factory=list)  # params.yaml: calendar features
    drift_share_threshold: float = Field(0.6, gt=0, le=1)
    performance_drop_threshold: float = Field(0.03, gt=0, lt=1)
    k_consecutive: int = Field(2, ge=1)
    cooldown_windows: int = Field(2, ge=0)
    min_samples: int = Field(1000, ge=1)
    drift_severity: Severity = "retrain"
    performance_severity: Severity = "retrain"
    retrain_train_periods: int = Field(4, ge=1)


class RetrainingParams(DeploymentParams):
    """The sections Levels 2, 3 and 4 use, loaded once (``load``) and passed down."""

    monitor: MonitorParams = MonitorParams()

    def with_policy(self, policy: MonitorParams) -> RetrainingParams:
        return self.model_copy(update={"monitor": policy})
