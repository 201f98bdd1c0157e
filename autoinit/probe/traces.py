"""The traces payload (documented in docs/ARCHITECTURE.md): per layer,
AutoInit's estimate next to each measured series."""

from __future__ import annotations

__all__ = ["build_traces"]


def _pre_activation(estimate: dict, by_name: dict[str, dict[str, dict]]) -> dict | None:
    """A weighted layer's fused pre-activation (``W x + b``, what AutoInit
    scales to ``target``): predicted and measured per series; None elsewhere."""
    predicted = estimate.get("pre_activation")
    if not estimate["has_weights"] or predicted is None:
        return None
    measured = {
        series: records.get(estimate["name"], {}).get("pre_activation") for series, records in by_name.items()
    }
    if any(value is None for value in measured.values()):
        return None  # not a fused activation the probe splits off (e.g. a recurrent cell's)
    return {
        "target": estimate["target"],
        "predicted": {"mean": predicted["mean"], "var": predicted["var"]},
        **{series: dict(value) for series, value in measured.items()},
    }


def build_traces(model, estimates, measured, signal_variance, input_mean, input_var) -> dict:
    by_name = {name: {r["name"]: r for r in records} for name, records in measured.items()}
    layers = []
    for index, estimate in enumerate(estimates):
        entry = {
            "index": index,
            "name": estimate["name"],
            "class_name": estimate["class_name"],
            "has_weights": estimate["has_weights"],
            "output_shape": estimate["output_shape"],
            "estimator": estimate["estimator"],
            "scale": estimate["scale"],
            "target": estimate["target"],
            "predicted": {"mean": estimate["mean"], "var": estimate["var"]},
        }
        for series, records in by_name.items():
            record = records.get(estimate["name"], {})
            entry[series] = {k: record.get(k) for k in ("mean", "var", "grad_var") if k in record}
        if estimate.get("signal") is False:
            entry["signal"] = False
        pre_activation = _pre_activation(estimate, by_name)
        if pre_activation is not None:
            entry["pre_activation"] = pre_activation
        layers.append(entry)
    return {
        "model": {
            "name": model.name,
            "num_layers": len(estimates),
            "num_params": int(model.count_params()),
        },
        "signal_variance": signal_variance,
        "input": {"mean": input_mean, "var": input_var},
        "series": ["predicted", *measured.keys()],
        "layers": layers,
    }
