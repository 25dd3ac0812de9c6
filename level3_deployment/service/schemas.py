"""Request and response models of the scoring service, built from the adapter's schema.

Strict: a number is a JSON number (not a string, not a boolean), NaN and infinities are
refused, a closed category accepts only its values, and unknown fields are errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from level1_devops.features import PREDICTION_DESCRIPTION
from level1_devops.schema import (
    COLUMNS_BY_NAME,
    EXAMPLE_RECORD,
    OPTIONAL_REQUEST_COLUMNS,
    RECORDS_NAME,
    REQUEST_COLUMNS,
    record_problems,
)
from level1_devops.validation import Column


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 2033.0: accept a whole float as an int (never a bool)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field(column: Column) -> tuple[Any, Any]:
    """The pydantic type and Field of one schema column (bounds on the type, so that they
    also hold, and show in the OpenAPI schema, when the field is optional)."""
    annotation: Any
    if column.allowed is not None:
        annotation = Literal[tuple(sorted(column.allowed))]
    elif column.kind == "str":
        annotation = Annotated[str, StringConstraints(pattern=column.pattern or r".+")]
    elif column.kind == "int":
        # Bounds before the validator, or they vanish from the JSON schema.
        annotation = Annotated[int, Field(ge=column.min, le=column.max),
                               BeforeValidator(_whole_number)]
    else:
        annotation = Annotated[float, Field(ge=column.min, le=column.max, allow_inf_nan=False)]
    required = column.required and column.name not in OPTIONAL_REQUEST_COLUMNS
    if not required:
        annotation = annotation | None
    return annotation, Field(... if required else None, description=column.description)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _RecordBase(_Strict):
    @model_validator(mode="after")
    def _consistent(self) -> _RecordBase:
        problems = record_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self


RecordRequest: type[BaseModel] = create_model(
    "RecordRequest",
    __base__=_RecordBase,
    __doc__="One record as the scoring service takes it (the adapter's REQUEST_COLUMNS).",
    **{name: _field(COLUMNS_BY_NAME[name]) for name in REQUEST_COLUMNS},  # type: ignore[call-overload]
)
RecordRequest.model_config["json_schema_extra"] = {"examples": [EXAMPLE_RECORD]}
RecordRequest.model_rebuild(force=True)


def batch_request_model(max_rows: int) -> type[BaseModel]:
    """``{RECORDS_NAME: [...]}`` with 1 to ``max_rows`` records."""
    field = (list[RecordRequest], Field(..., min_length=1, max_length=max_rows,
                                        description=f"1 to {max_rows} {RECORDS_NAME}"))
    return create_model("BatchRequest", __base__=_Strict, **{RECORDS_NAME: field})  # type: ignore[call-overload]


class Prediction(BaseModel):
    probability: float = Field(description=PREDICTION_DESCRIPTION)
    late: bool = Field(description="probability >= the model's decision threshold")


class PredictionResponse(Prediction):
    request_id: str
    model_name: str
    model_version: str
    threshold: float


class BatchResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    threshold: float
    certification: str
    tags: dict[str, str]


class ErrorBody(BaseModel):
    detail: Any
