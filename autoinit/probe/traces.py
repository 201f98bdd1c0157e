"""The traces payload (documented in docs/ARCHITECTURE.md): per layer,
AutoInit's estimate next to each measured series."""

from __future__ import annotations

__all__ = ["build_traces"]


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
