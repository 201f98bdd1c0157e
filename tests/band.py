"""The acceptance check shared by tests: after AutoInit, each weighted layer's
measured output (Gaussian-input probe) is within [0.5, 2]x what AutoInit aimed for."""

from __future__ import annotations

from typing import Any

from autoinit import AutoInit
from autoinit.probe import probe

BAND = (0.5, 2.0)


def expected_second_moment(record: dict[str, Any]) -> float:
    """AutoInit's target at a weighted layer's output: target for a linear
    output, E[f(z)^2] at z ~ N(0, target) with a fused activation f."""
    if "pre_activation" in record:
        return record["mean"] ** 2 + record["var"]
    return record["target"]


def weighted_ratios(
    model: Any, seed: int = 0, batch_size: int = 64, min_channels: int = 0, **autoinit_kwargs: Any
) -> dict[str, float]:
    """Measured / targeted second moment of every weighted layer AutoInit
    scaled (with at least ``min_channels`` output channels)."""
    model, estimates = AutoInit(seed=seed, **autoinit_kwargs).initialize_model(model, return_estimates=True)
    return ratios_of(model, estimates, seed, batch_size, min_channels)


def ratios_of(
    model: Any, estimates: list[dict], seed: int = 0, batch_size: int = 64, min_channels: int = 0
) -> dict[str, float]:
    """``weighted_ratios`` for a model AutoInit has initialized (``estimates``
    its records), measured by the training-mode probe."""
    measured = {r["name"]: r for r in probe(model, batch_size=batch_size, seed=seed)}
    ratios = {}
    for record in estimates:
        if record["target"] is None or (record["output_shape"][-1] or 0) < min_channels:
            continue
        m = measured[record["name"]]
        ratios[record["name"]] = (m["mean"] ** 2 + m["var"]) / expected_second_moment(record)
    return ratios


def out_of_band(ratios: dict[str, float]) -> dict[str, float]:
    low, high = BAND
    return {k: round(v, 3) for k, v in ratios.items() if not low <= v <= high}
