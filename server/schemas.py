"""Request and response models: the OpenAPI schema is the contract.

The options model itself is the library's (`autoinit.options`), re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autoinit.options import BASELINE_NAMES, DISTRIBUTIONS, InitializeOptions
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
    "OptionsInfo",
    "PROBLEM_RESPONSE",
    "Problem",
    "Readiness",
]


class OptionsInfo(BaseModel):
    """The options ``POST /initialize`` takes: their defaults and JSON schema."""

    model_config = ConfigDict(populate_by_name=True)

    defaults: InitializeOptions
    json_schema: dict = Field(alias="schema", description="JSON schema of the options object.")


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
    training_csv: str | None = Field(
        None, description="The training curves as CSV; only on a job asked to train (train_steps > 0)."
    )


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
