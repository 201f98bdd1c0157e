"""How to initialize and probe a model: one options model for every entry point.

`InitializeOptions` is the single source of the option names, their defaults
and their bounds. The service's API schema, its query parameters, its worker
and the page's defaults (``GET /options``) all derive from it.

The names are the service's (``input_mean``, ``probe_batch``, ...);
`AUTOINIT_ARGUMENT_NAMES` maps them to the seed-001 `autoinit.AutoInit`
keyword arguments (`InitializeOptions.autoinit_arguments` applies it), and
`InitializeOptions.compare_arguments` gives the keyword arguments of
`autoinit.probe.compare`. The CLI's flags are derived from the fields too.

Example:
    >>> options = InitializeOptions(seed=3, baselines="default,he_normal")
    >>> options.baselines, options.probe_batch
    (['default', 'he_normal'], 256)
    >>> options.compare_arguments()["batch_size"]
    256
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "AUTOINIT_ARGUMENT_NAMES",
    "BASELINE_NAMES",
    "DISTRIBUTIONS",
    "MAX_PROBE_BATCH",
    "MAX_SEED",
    "MAX_TRAIN_STEPS",
    "InitializeOptions",
    "check_options",
]

#: ``"default"`` is the model's own initialization; the others are applied to all kernels.
BASELINE_NAMES = ("default", "he_normal", "glorot_uniform", "lecun_normal")
#: How AutoInit draws weights once it knows their variance.
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "orthogonal")
#: Largest seed: seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
#: Most Gaussian samples per probe (memory grows with it).
MAX_PROBE_BATCH = 4096
#: Most training steps per initialization (``train_steps``); a service may set a lower bound.
MAX_TRAIN_STEPS = 1000

Baseline = Literal["default", "he_normal", "glorot_uniform", "lecun_normal"]
Distribution = Literal["truncated_normal", "untruncated_normal", "uniform", "orthogonal"]

#: Option name -> the seed-001 `autoinit.AutoInit` argument it sets. ``distribution``
#: goes into ``weight_init_config``; the probe options (``probe_batch``,
#: ``baselines``, ``backward``) are not AutoInit's.
AUTOINIT_ARGUMENT_NAMES = {
    "input_mean": "input_data_mean",
    "input_var": "input_data_var",
    "signal_variance": "signal_variance",
    "distribution": "weight_init_config['distribution']",
    "seed": "seed",
    "center_activations": "center_activations",
}


class InitializeOptions(BaseModel):
    """How to initialize and probe; every field has a default and bounds.

    Unknown names are refused, numbers must be finite, and ``baselines`` may
    be a list or a comma-separated string (as in a query string).
    """

    model_config = ConfigDict(extra="forbid")

    input_mean: float = Field(0.0, allow_inf_nan=False, description="Mean of the model's input data.")
    input_var: float = Field(1.0, gt=0, allow_inf_nan=False, description="Variance of the input data.")
    signal_variance: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="Variance AutoInit keeps each layer's output at."
    )
    distribution: Distribution = Field("truncated_normal", description="How weights are drawn.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for weights and probe inputs.")
    probe_batch: int = Field(256, ge=1, le=MAX_PROBE_BATCH, description="Gaussian samples per probe.")
    baselines: list[Baseline] = Field(
        default_factory=lambda: ["default"],
        max_length=len(BASELINE_NAMES),
        description="Initializations probed next to AutoInit.",
    )
    backward: bool = Field(False, description="Also probe gradient variances (slower).")
    center_activations: bool = Field(
        False,
        description="AutoInit++: subtract each activation's Gaussian mean (paper Sec. 7); "
        "all series are then measured on the centred model.",
    )
    train_steps: int = Field(
        0,
        ge=0,
        le=MAX_TRAIN_STEPS,
        description="Also train a copy per initialization for this "
        "many SGD steps on a synthetic teacher task (0: off); see autoinit.training.",
    )

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

    def autoinit_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `autoinit.AutoInit`, through `AUTOINIT_ARGUMENT_NAMES`."""
        arguments: dict[str, Any] = {}
        for option, argument in AUTOINIT_ARGUMENT_NAMES.items():
            outer, _, inner = argument.partition("[")
            value = getattr(self, option)
            if inner:
                arguments.setdefault(outer, {})[inner.strip("[]'\"")] = value
            else:
                arguments[outer] = value
        return arguments

    def train_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `autoinit.training.train_probe` (``train_steps`` is its ``steps``)."""
        return {
            "steps": self.train_steps,
            "seed": self.seed,
            "baselines": tuple(self.baselines),
            "input_mean": self.input_mean,
            "input_var": self.input_var,
            "signal_variance": self.signal_variance,
            "distribution": self.distribution,
            "center_activations": self.center_activations,
        }

    def compare_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `autoinit.probe.compare` (``probe_batch`` is its ``batch_size``)."""
        return {
            "baselines": tuple(self.baselines),
            "seed": self.seed,
            "input_mean": self.input_mean,
            "input_var": self.input_var,
            "signal_variance": self.signal_variance,
            "distribution": self.distribution,
            "batch_size": self.probe_batch,
            "backward": self.backward,
            "center_activations": self.center_activations,
        }


def check_options(**values: Any) -> InitializeOptions:
    """`InitializeOptions` from keyword values, or an `AutoInitError` naming the
    first option out of bounds (what was expected and what was received)."""
    from pydantic import ValidationError

    from autoinit.errors import AutoInitError

    try:
        return InitializeOptions(**values)
    except ValidationError as error:
        first = error.errors()[0]
        option = ".".join(str(part) for part in first["loc"]) or "options"
        raise AutoInitError(f"`{option}`: {first['msg']}. Received: {first.get('input')!r}") from None
