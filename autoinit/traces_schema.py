"""The traces payload's schema: what ``compare()`` returns, what the service
stores and serves (``GET /jobs/{id}/traces``), and what the figures, the CSV
export and the page read (documented with an example in docs/ARCHITECTURE.md).

Pydantic models, so the payload can be checked (`validate_traces`) and its JSON
Schema published (`traces_json_schema`). Keras-free: the API process and the
figure code use it too.

Every name in ``series`` other than ``"predicted"`` is a measured series (the
model's own initialization ``"default"``, AutoInit ``"autoinit"``, each
baseline), and every layer carries it as a key holding `Moments`.

Example:
    >>> from autoinit.probe import compare
    >>> validate_traces(compare(model)).series
    ['predicted', 'default', 'autoinit']
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "LayerTrace",
    "Moments",
    "PreActivation",
    "Traces",
    "TrainingRun",
    "TrainingSeries",
    "traces_json_schema",
    "validate_traces",
]

#: A value that overflowed is null: JSON has no inf or NaN.
Number = float | None


class Moments(BaseModel):
    """One tensor's statistics under one series."""

    model_config = ConfigDict(extra="forbid")

    mean: Number
    var: Number
    grad_var: Number = Field(None, description="Backward probe only: the gradient's variance.")


class PreActivation(BaseModel):
    """A weighted layer's fused pre-activation ``W x + b``: predicted and each
    measured series (extra keys, `Moments` each), and the target they refer to."""

    model_config = ConfigDict(extra="allow")

    target: Number
    predicted: Moments


class LayerTrace(BaseModel):
    """One layer call: AutoInit's estimate and each measured series (extra keys)."""

    model_config = ConfigDict(extra="allow")

    index: int = Field(ge=0)
    name: str = Field(description="Unique; nested layers are 'outer/inner'.")
    class_name: str
    has_weights: bool
    output_shape: Any
    estimator: Literal["builtin", "custom", "pass-through"]
    scale: Number = Field(description="The weight variance AutoInit chose; null without weights.")
    target: Number = Field(description="AutoInit's target for this layer's output (pre-activation).")
    predicted: Moments
    pre_activation: PreActivation | None = None
    signal: bool = Field(
        True,
        description="False for an integer input (token ids, a padding mask): measured, not "
        "predicted, and left out of the figures, whose log axis a signal's scale sets.",
    )


class TrainingSeries(BaseModel):
    """One initialization's short training run (`autoinit.training.train_probe`)."""

    model_config = ConfigDict(extra="forbid")

    loss: list[Number]
    grad_norm: list[Number]
    diverged_at: int | None = Field(description="First step whose loss or gradient norm is not finite.")


class TrainingRun(BaseModel):
    """``traces["training"]``: present when the job asked for ``train_steps``."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["teacher", "data"]
    synthetic: bool
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    seed: int
    optimizer: dict[str, Any]
    loss: list[str]
    series: dict[str, TrainingSeries]

    @model_validator(mode="after")
    def _one_value_per_step(self) -> TrainingRun:
        for name, run in self.series.items():
            if len(run.loss) != self.steps or len(run.grad_norm) != self.steps:
                raise ValueError(f"training series {name!r} must hold {self.steps} values per curve")
        return self


class Traces(BaseModel):
    """The whole payload."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(description="name, num_layers, num_params")
    signal_variance: float
    input: dict[str, float] = Field(description="The input data's mean and var.")
    center_activations: bool = False
    series: list[str]
    layers: list[LayerTrace]
    training: TrainingRun | None = None

    @model_validator(mode="after")
    def _every_layer_holds_every_series(self) -> Traces:
        if not self.series or self.series[0] != "predicted":
            raise ValueError("series must start with 'predicted'")
        measured = self.series[1:]
        for layer in self.layers:
            extra = layer.model_extra or {}
            for name in measured:
                if name not in extra:
                    raise ValueError(f"layer {layer.name!r} has no {name!r} series")
                Moments.model_validate(extra[name])
            unknown = sorted(set(extra) - set(measured))
            if unknown:
                raise ValueError(f"layer {layer.name!r} holds keys that are no series: {unknown}")
            if layer.pre_activation is not None:
                for name in measured:
                    Moments.model_validate((layer.pre_activation.model_extra or {}).get(name))
        return self


def validate_traces(payload: dict[str, Any]) -> Traces:
    """The payload as `Traces`; raises pydantic's ``ValidationError`` naming
    the first place that does not fit."""
    return Traces.model_validate(payload)


def traces_json_schema() -> dict[str, Any]:
    """The payload's JSON Schema (draft 2020-12, as pydantic writes it)."""
    return Traces.model_json_schema()
