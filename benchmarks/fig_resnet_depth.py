"""Paper Fig. 3: signal variance through deep pre-activation ResNets without BatchNorm.

For ResNet-56, -164 and -812 (no BN; 812 skipped with --quick) the model's
own He-normal initialization ("default") and AutoInit are probed on the same
Gaussian batch (training mode, batch 32) next to AutoInit's prediction.
Printed per model and series: the largest layer variance, the variance at the
global average pool (the head's input) and at the final layer (the softmax
Dense). HTML figures go to ``benchmarks/out/resnet<depth>_nobn.html``.

Run: ``.venv/bin/python benchmarks/fig_resnet_depth.py [--quick] [--embed-plotlyjs]``
"""

from __future__ import annotations

import gc

import _common
from _common import fmt, series_var, table

BATCH_SIZE = 32


def depth_rows(depth: int, embed_plotlyjs: bool) -> list[list[str]]:
    import keras

    from autoinit import zoo
    from autoinit.probe import compare

    keras.backend.clear_session()
    gc.collect()
    model = zoo.preact_resnet(depth, batch_norm=False)
    elapsed, traces = _common.timed(
        lambda: compare(model, baselines=("default",), seed=0, batch_size=BATCH_SIZE)
    )
    path = _common.save_figure(
        traces, f"resnet{depth}_nobn.html", embed_plotlyjs, f"Pre-activation ResNet-{depth}, no BN"
    )
    print(f"  ResNet-{depth}: {elapsed:.1f}s -> {path.relative_to(path.parents[2])}", flush=True)
    layers = traces["layers"]
    pool = next(l for l in layers if l["name"] == "global_average_pooling")
    rows = []
    for series, label in (
        ("default", "He normal (default)"),
        ("autoinit", "AutoInit"),
        ("predicted", "AutoInit predicted"),
    ):
        values = [series_var(l, series) for l in layers if l["class_name"] != "InputLayer"]
        overflowed = sum(v is None for v in values)
        finite = [v for v in values if v is not None]
        rows.append(
            [
                f"ResNet-{depth}",
                label,
                fmt(max(finite)) + (f" ({overflowed} overflow)" if overflowed else ""),
                fmt(series_var(pool, series)),
                fmt(series_var(layers[-1], series)),
            ]
        )
    return rows


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], _common.add_html_option)
    _common.banner("fig_resnet_depth" + (" --quick" if args.quick else ""))
    print(f"# probe: training mode, batch {BATCH_SIZE}, seed 0")
    rows = []
    for depth in (56, 164) if args.quick else (56, 164, 812):
        rows += depth_rows(depth, args.embed_plotlyjs)
    print()
    print(
        table(
            ["model", "initialization", "max layer var", "global avg pool var", "final layer var (softmax)"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
