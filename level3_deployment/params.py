"""Typed views of the ``certify`` and ``serve`` sections of params.yaml.

``DeploymentParams``: Level 2's sections plus these, loaded once by an entry point.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from level1_devops.params import load_section
from level2_training.params import TrainingParams


class CertifyParams(BaseModel):
    """Thresholds of the certification gate."""

    model_config = ConfigDict(extra="forbid")
    min_roc_auc: float = 0.65
    max_log_loss: float = 0.65
    max_auc_drop: float = 0.01
    max_log_loss_increase: float = 0.01
    invariance_tolerance: float = 1e-9
    min_directional_shift: float = 0.0  # each behaviour scenario moves P this far its way
    slice_min_roc_auc: float = 0.6
    slices: dict[str, str] = Field(default_factory=dict)
    max_p95_latency_ms: float = 50
    max_model_mb: float = 20


class ServeParams(BaseModel):
    """Limits and timings of the scoring service."""

    model_config = ConfigDict(extra="forbid")
    max_batch_rows: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    predict_timeout_s: float = Field(2.0, gt=0)
    microbatch_max_rows: int = Field(64, ge=1)
    microbatch_wait_ms: float = Field(0, ge=0)
    poll_interval_s: float = Field(5, gt=0)
    shutdown_timeout_s: float = Field(10, gt=0)
    max_queued_requests: int = Field(256, ge=1)
    max_concurrent_batches: int = Field(2, ge=1)
    max_connections: int = Field(1024, ge=1)
    retry_after_s: int = Field(1, ge=1)


class DeploymentParams(TrainingParams):
    """The sections Levels 2 and 3 use, loaded once (``load``) and passed down."""

    certify: CertifyParams = CertifyParams()
    serve: ServeParams = ServeParams()


def load_serve_params(project_dir: Path) -> ServeParams:
    """The ``serve`` section alone (what `mlops serve` reads before the app starts)."""
    return load_section(project_dir, "serve", ServeParams)
