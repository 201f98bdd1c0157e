"""How well AutoInit's analytic predictions match what the model really does.

For every model of a varied suite, AutoInit initializes the model and predicts
each layer's output mean and variance; ``probe`` then measures them on
Gaussian input in training mode (2 seeds, averaged). Printed:

* accuracy: per-model median of |log10(predicted var / measured var)| over all
  layers, the suite-wide median (requirement: <= 0.05) and the worst layers;
* correctness: the fraction of weighted layers (``target`` not None) whose
  measured E[y^2] = mean^2 + var lies within [0.5, 2] x expected, where
  expected = target (no fused activation) or the predicted E[f(z)^2] =
  predicted mean^2 + predicted var (fused activation f, the estimate carries
  ``pre_activation``); under AutoInit and under the model's own (Keras
  default) initializers. Every failing layer under AutoInit is listed;
* the pooling trap: ReLU -> Conv2D -> GlobalAveragePooling2D(16x16) -> Dense,
  predicted vs measured variance at the pooling and Dense outputs.

Run: ``.venv/bin/python benchmarks/bench_accuracy.py [--quick]``
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import _common
from _common import fmt, median, table

SEEDS = (0, 1)
PASS_BAND = (0.5, 2.0)


# -- the suite -----------------------------------------------------------------


def layer_mix_conv():
    """Small conv net touching the pooling, separable/depthwise/transposed conv,
    merging, padding, noise and normalization estimators."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(16, 16, 8), name="image")
    x = layers.ZeroPadding2D(1, name="zero_padding")(inputs)
    x = layers.Conv2D(16, 3, name="conv_stem")(x)
    x = layers.GaussianNoise(0.3, name="gaussian_noise")(x)
    a = layers.ReLU(name="relu")(x)
    a = layers.MaxPooling2D(2, name="max_pool_after_relu")(a)
    b = layers.SeparableConv2D(16, 3, padding="same", activation="relu", name="separable_conv")(x)
    b = layers.AveragePooling2D(2, name="average_pool")(b)
    c = layers.Concatenate(name="concatenate")([a, b])
    c = layers.GroupNormalization(groups=4, name="group_norm")(c)
    d = layers.DepthwiseConv2D(3, padding="same", activation="tanh", name="depthwise_conv")(c)
    g = layers.Conv2D(32, 1, activation="sigmoid", name="gate_conv")(c)
    m = layers.Multiply(name="gate_multiply")([d, g])
    t = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu", name="conv_transpose")(m)
    t = layers.LayerNormalization(name="layer_norm")(t)
    outputs = layers.Conv2D(8, 1, name="conv_out")(t)
    return keras.Model(inputs, outputs, name="layer_mix_conv")


def layer_mix_dense():
    """Small SELU MLP with AlphaDropout, GaussianNoise, UnitNormalization and LayerNormalization."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(64,), name="features")
    x = layers.Dense(128, activation="selu", name="dense1_selu")(inputs)
    x = layers.AlphaDropout(0.1, name="alpha_dropout1")(x)
    x = layers.Dense(128, activation="selu", name="dense2_selu")(x)
    x = layers.AlphaDropout(0.2, name="alpha_dropout2")(x)
    x = layers.GaussianNoise(0.5, name="gaussian_noise")(x)
    x = layers.Dense(128, name="dense3_linear")(x)
    x = layers.UnitNormalization(name="unit_norm")(x)
    x = layers.Dense(64, activation="gelu", name="dense4_gelu")(x)
    x = layers.LayerNormalization(name="layer_norm")(x)
    outputs = layers.Dense(10, name="dense_out")(x)
    return keras.Model(inputs, outputs, name="layer_mix_dense")


def suite(quick: bool) -> list[tuple[str, Callable]]:
    from autoinit import zoo

    activations = ("relu", "selu") if quick else ("relu", "tanh", "selu", "gelu", "swish")
    dropouts = (0.5,) if quick else (0.0, 0.5)
    models: list[tuple[str, Callable]] = [
        (
            f"all_cnn_c[{act},drop={rate}]",
            lambda act=act, rate=rate: zoo.all_cnn_c(activation=act, dropout_rate=rate),
        )
        for act in activations
        for rate in dropouts
    ]
    models += [
        ("preact_resnet56 (BN)", lambda: zoo.preact_resnet(56, batch_norm=True)),
        ("preact_resnet56 (no BN)", lambda: zoo.preact_resnet(56, batch_norm=False)),
        ("text_cnn", zoo.text_cnn),
        ("text_rnn", zoo.text_rnn),
        ("transformer_encoder", zoo.transformer_encoder),
        ("codeepneat", zoo.codeepneat_net),
    ]
    for act in ("relu", "tanh") if quick else ("relu", "tanh", "selu", "gelu", "sigmoid", "elu"):
        models.append((f"mlp[{act}]", lambda act=act: zoo.mlp(activation=act)))
    models += [("layer_mix_conv", layer_mix_conv), ("layer_mix_dense", layer_mix_dense)]
    return models


# -- measuring -----------------------------------------------------------------


@dataclass
class LayerResult:
    model: str
    name: str
    class_name: str
    predicted_var: float | None
    measured_var: float | None
    log_error: float | None  # |log10(pred / measured)|; None when not comparable
    expected_sq: float | None = None  # weighted layers only: expected E[y^2]
    autoinit_sq: float | None = None  # measured E[y^2] under AutoInit
    default_sq: float | None = None  # measured E[y^2] under the model's own initializers


@dataclass
class ModelResult:
    label: str
    layers: list[LayerResult] = field(default_factory=list)


def _mean_over_seeds(runs: list[list[dict]]) -> dict[str, tuple[float | None, float | None]]:
    """name -> (mean, var) averaged over the probe runs; None if any run overflowed."""
    out = {}
    for record in runs[0]:
        name = record["name"]
        values = [next(r for r in run if r["name"] == name) for run in runs]
        means = [v["mean"] for v in values]
        variances = [v["var"] for v in values]
        ok = all(m is not None for m in means) and all(v is not None for v in variances)
        out[name] = (sum(means) / len(means), sum(variances) / len(variances)) if ok else (None, None)
    return out


def _second_moment(mean: float | None, var: float | None) -> float | None:
    return None if mean is None or var is None else mean * mean + var


def evaluate(label: str, build: Callable, batch_size: int) -> ModelResult:
    import keras

    from autoinit.autoinit import AutoInit
    from autoinit.probe import probe

    keras.backend.clear_session()
    gc.collect()
    model = build()
    default = _mean_over_seeds([probe(model, batch_size=batch_size, seed=s) for s in SEEDS])
    model, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    measured = _mean_over_seeds([probe(model, batch_size=batch_size, seed=s) for s in SEEDS])
    result = ModelResult(label)
    for estimate in estimates:
        if estimate["class_name"] == "InputLayer":
            continue
        name = estimate["name"]
        mean, var = measured.get(name, (None, None))
        predicted = estimate["var"]
        log_error = None
        if predicted is not None and var is not None and predicted > 0 and var > 0:
            log_error = abs(math.log10(predicted / var))
        layer = LayerResult(label, name, estimate["class_name"], predicted, var, log_error)
        if estimate["target"] is not None:
            if estimate.get("pre_activation") is not None:
                layer.expected_sq = _second_moment(estimate["mean"], estimate["var"])
            else:
                layer.expected_sq = float(estimate["target"])
            layer.autoinit_sq = _second_moment(mean, var)
            layer.default_sq = _second_moment(*default.get(name, (None, None)))
        result.layers.append(layer)
    return result


def _in_band(measured: float | None, expected: float | None) -> bool:
    if measured is None or not expected:
        return False
    return PASS_BAND[0] <= measured / expected <= PASS_BAND[1]


def _ratio(measured: float | None, expected: float | None) -> str:
    return "overflow" if measured is None else fmt(measured / expected) if expected else "n/a"


# -- the pooling trap ------------------------------------------------------------


def pooling_trap(batch_size: int) -> None:
    """ReLU -> Conv2D -> GlobalAveragePooling2D over 16x16 -> Dense.

    The ReLU output has a non-zero mean; each conv channel turns it into a
    per-channel offset mu * sum(w) that is the same at all 256 positions, so
    averaging over positions does not shrink it. A naive independence
    assumption divides the conv output variance by 256.
    """
    import keras
    from keras import layers

    from autoinit.autoinit import AutoInit
    from autoinit.probe import probe

    keras.backend.clear_session()
    inputs = keras.Input(shape=(16, 16, 32), name="image")
    x = layers.ReLU(name="relu")(inputs)
    x = layers.Conv2D(64, 3, padding="same", name="conv")(x)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    outputs = layers.Dense(64, name="dense")(x)
    model = keras.Model(inputs, outputs, name="pooling_trap")
    model, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    runs = [probe(model, batch_size=batch_size, seed=s) for s in SEEDS]
    measured = _mean_over_seeds(runs)
    predicted = {e["name"]: e for e in estimates}
    naive = predicted["conv"]["var"] / (16 * 16)
    rows = []
    for name in ("conv", "global_average_pooling", "dense"):
        p, m = predicted[name]["var"], measured[name][1]
        rows.append(
            [
                name,
                fmt(p),
                fmt(m),
                f"{100 * (p / m - 1):+.1f}%",
                fmt(naive) if name == "global_average_pooling" else "",
            ]
        )
    print(table(["layer", "predicted var", "measured var", "pred/meas - 1", "naive (var/256)"], rows))


# -- report ----------------------------------------------------------------------


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    _common.banner("bench_accuracy" + (" --quick" if args.quick else ""))
    batch_size = 64 if args.quick else 128
    print(f"# probe: training mode, batch {batch_size}, seeds {SEEDS} averaged; AutoInit seed 0")
    results = []
    for label, build in suite(args.quick):
        elapsed, result = _common.timed(lambda: evaluate(label, build, batch_size))
        print(f"  {label}: {elapsed:.1f}s", flush=True)
        results.append(result)

    print("\n## accuracy: |log10(predicted var / measured var)| per layer")
    rows, pooled = [], []
    for r in results:
        errors = [l.log_error for l in r.layers if l.log_error is not None]
        skipped = len(r.layers) - len(errors)
        pooled += errors
        worst_layer = max((l for l in r.layers if l.log_error is not None), key=lambda l: l.log_error)
        rows.append([r.label, len(errors), skipped, fmt(median(errors)), fmt(max(errors)), worst_layer.name])
    print(table(["model", "layers", "skipped", "median", "max", "worst layer"], rows))
    per_model = [median([l.log_error for l in r.layers if l.log_error is not None]) for r in results]
    suite_median = median(pooled)
    print(
        f"suite-wide median over {len(pooled)} layers: {suite_median:.4f} "
        f"(requirement <= 0.05: {'PASS' if suite_median <= 0.05 else 'FAIL'}); "
        f"median of per-model medians: {median(per_model):.4f}"
    )
    worst = sorted(
        (l for r in results for l in r.layers if l.log_error is not None), key=lambda l: -l.log_error
    )[:15]
    print("\nworst layers:")
    print(
        table(
            ["model", "layer", "class", "predicted var", "measured var", "|log10|"],
            [
                [l.model, l.name, l.class_name, fmt(l.predicted_var), fmt(l.measured_var), fmt(l.log_error)]
                for l in worst
            ],
        )
    )

    print(f"\n## correctness: weighted layers with measured E[y^2] within {PASS_BAND} x expected")
    rows, totals, failures = [], [0, 0, 0], []
    for r in results:
        weighted = [l for l in r.layers if l.expected_sq is not None]
        ok_ai = sum(_in_band(l.autoinit_sq, l.expected_sq) for l in weighted)
        ok_default = sum(_in_band(l.default_sq, l.expected_sq) for l in weighted)
        totals = [totals[0] + len(weighted), totals[1] + ok_ai, totals[2] + ok_default]
        rows.append([r.label, len(weighted), f"{ok_ai}/{len(weighted)}", f"{ok_default}/{len(weighted)}"])
        failures += [l for l in weighted if not _in_band(l.autoinit_sq, l.expected_sq)]
    print(table(["model", "weighted", "AutoInit", "default init"], rows))
    n, ok_ai, ok_default = totals
    print(f"suite: AutoInit {ok_ai}/{n} = {ok_ai / n:.3f}; default {ok_default}/{n} = {ok_default / n:.3f}")
    print(f"\nweighted layers failing under AutoInit ({len(failures)}):")
    if failures:
        print(
            table(
                ["model", "layer", "class", "expected E[y^2]", "measured E[y^2]", "ratio"],
                [
                    [
                        l.model,
                        l.name,
                        l.class_name,
                        fmt(l.expected_sq),
                        fmt(l.autoinit_sq),
                        _ratio(l.autoinit_sq, l.expected_sq),
                    ]
                    for l in failures
                ],
            )
        )

    print("\n## pooling trap: ReLU -> Conv2D -> GlobalAveragePooling2D(16x16) -> Dense")
    pooling_trap(256)


if __name__ == "__main__":
    main()
