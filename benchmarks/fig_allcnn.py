"""Paper Fig. 2: All-CNN-C across activation functions and dropout rates.

For each (activation, dropout rate) the model's own Glorot-uniform
initialization ("default") and AutoInit are probed on the same Gaussian batch
(training mode, batch 32). Printed per configuration and initialization: the
variance of the last weighted layer (conv9, the logits before global pooling
and softmax) and the spread of the nine conv layers' variances (min, max and
log10(max/min); AutoInit aims for 1 everywhere, so a spread near 0).
HTML figures go to ``benchmarks/out/all_cnn_c_<activation>_drop<rate>.html``.

Run: ``.venv/bin/python benchmarks/fig_allcnn.py [--quick] [--embed-plotlyjs]``
"""

from __future__ import annotations

import gc
import math

import _common
from _common import fmt, series_var, table

ACTIVATIONS = ("relu", "selu", "tanh", "gelu", "swish", "sigmoid")
DROPOUT_RATES = (0.0, 0.25, 0.5, 0.75)
BATCH_SIZE = 32


def config_rows(activation: str, rate: float, embed_plotlyjs: bool) -> list[list[str]]:
    import keras

    from autoinit import zoo
    from autoinit.probe import compare

    keras.backend.clear_session()
    gc.collect()
    model = zoo.all_cnn_c(activation=activation, dropout_rate=rate)
    traces = compare(model, baselines=("default",), seed=0, batch_size=BATCH_SIZE)
    _common.save_figure(
        traces,
        f"all_cnn_c_{activation}_drop{rate}.html",
        embed_plotlyjs,
        f"All-CNN-C, {activation}, dropout {rate}",
    )
    weighted = [l for l in traces["layers"] if l["has_weights"]]
    rows = []
    for series, label in (("default", "Glorot uniform (default)"), ("autoinit", "AutoInit")):
        values = [series_var(l, series) for l in weighted]
        finite = [v for v in values if v is not None and v > 0]
        lo, hi = (min(finite), max(finite)) if finite else (None, None)
        spread = math.log10(hi / lo) if finite and len(finite) == len(values) else None
        rows.append(
            [
                activation,
                rate,
                label,
                fmt(values[-1]),
                fmt(lo),
                fmt(hi),
                "overflow" if spread is None else f"{spread:.2f}",
            ]
        )
    return rows


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], _common.add_html_option)
    _common.banner("fig_allcnn" + (" --quick" if args.quick else ""))
    print(f"# probe: training mode, batch {BATCH_SIZE}, seed 0")
    rates = (0.0, 0.5) if args.quick else DROPOUT_RATES
    rows = []
    for activation in ACTIVATIONS:
        for rate in rates:
            elapsed, new_rows = _common.timed(lambda: config_rows(activation, rate, args.embed_plotlyjs))
            print(f"  {activation}, dropout {rate}: {elapsed:.1f}s", flush=True)
            rows += new_rows
    print()
    print(
        table(
            [
                "activation",
                "dropout",
                "initialization",
                "conv9 var",
                "min conv var",
                "max conv var",
                "log10(max/min)",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
