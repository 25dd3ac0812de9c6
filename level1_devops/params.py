"""ML parameters: one ``params.yaml`` with a section per stage, read through typed models.

Each level declares the model of its own sections and reads them with ``load_section``;
``dvc.yaml`` lists which keys each stage uses, so DVC knows when a stage is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

PARAMS_FILE = "params.yaml"
Section = TypeVar("Section", bound=BaseModel)


class IngestParams(BaseModel):
    """``ingest:`` how much of the feed to pull."""

    model_config = ConfigDict(extra="forbid")
    until: str | None = Field(None, pattern=r"^\d{4}-\d{2}$",
                              description="last period to pull (YYYY-MM); null pulls all")


def load_section(project_dir: Path, name: str, model: type[Section]) -> Section:
    """Read section ``name`` of the project's params.yaml into ``model`` (defaults if absent).

    Raises:
        ValueError: the file or section does not fit the model; the message names the key.
    """
    path = project_dir / PARAMS_FILE
    data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    try:
        return model.model_validate((data or {}).get(name) or {})
    except ValueError as err:
        raise ValueError(f"{path}: section '{name}': {err}") from err
