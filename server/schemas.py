"""Request and response models: the OpenAPI schema is the contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.problems import PROBLEM_MEDIA_TYPE
from server.protocol import JobState

__all__ = [
    "BASELINE_NAMES",
    "DISTRIBUTIONS",
    "Health",
    "InitializeOptions",
    "JobError",
    "JobLinks",
    "JobResource",
    "PROBLEM_RESPONSE",
    "Problem",
    "Readiness",
]

#: ``"default"`` is the model's own initialization; the others are applied to all kernels.
BASELINE_NAMES = ("default", "he_normal", "glorot_uniform", "lecun_normal")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "orthogonal")

Baseline = Literal["default", "he_normal", "glorot_uniform", "lecun_normal"]
Distribution = Literal["truncated_normal", "untruncated_normal", "uniform", "orthogonal"]


class InitializeOptions(BaseModel):
    """How to initialize and probe; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    input_mean: float = Field(0.0, allow_inf_nan=False, description="Mean of the model's input data.")
    input_var: float = Field(1.0, gt=0, allow_inf_nan=False, description="Variance of the input data.")
    signal_variance: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="Variance AutoInit keeps each layer's output at.")
    distribution: Distribution = Field("truncated_normal", description="How weights are drawn.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for weights and probe inputs.")
    probe_batch: int = Field(256, ge=1, le=4096, description="Gaussian samples per probe.")
    baselines: list[Baseline] = Field(
        default_factory=lambda: ["default"], max_length=4,
        description="Initializations probed next to AutoInit.")
    backward: bool = Field(False, description="Also probe gradient variances (slower).")
    center_activations: bool = Field(
        False, description="AutoInit++: subtract each activation's Gaussian mean (paper Sec. 7); "
        "all series are then measured on the centred model.")

    @field_validator("baselines", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("baselines")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class JobError(BaseModel):
    title: str
    detail: str


class JobLinks(BaseModel):
    self: str
    model: str
    config: str
    traces: str
    traces_csv: str
    figure: str


class JobResource(BaseModel):
    """One initialization job."""

    id: str
    status: JobState
    progress: float = Field(ge=0, le=1)
    stage: str
    error: JobError | None = None
    warnings: list[str] = []
    options: dict = {}
    model: dict = Field({}, description="What the upload holds: name, layer count, class counts.")
    attempts: int = Field(0, description="Worker runs so far (more than 1 after a worker died).")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float
    links: JobLinks


class Health(BaseModel):
    status: Literal["ok"]
    pid: int
    rss_bytes: int | None = Field(None, description="Resident memory of the API process.")
    tensorflow_imported: bool = Field(description="Always false: TensorFlow lives in workers.")


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    workers: list[str]
    mode: Literal["embedded", "distributed"]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


#: OpenAPI ``responses`` entry of an error answered as problem+json.
PROBLEM_RESPONSE = {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
