"""Does it train? The paper's Figure 4 claim on this machine's budget.

Unnormalized pre-activation ResNet-164 and ResNet-812 (``autoinit.zoo``, no
batch normalization), their default He-normal initialization against AutoInit,
and All-CNN-C across Figure 2's activations (Glorot-uniform default against
AutoInit), each trained with `autoinit.training.train_probe` on the synthetic
linear-teacher task (10 classes, cross-entropy; chance is log 10 = 2.30): the
same data, SGD with momentum 0.9, the same seed. Printed per model and
initialization: the step it diverged at (if it did), the loss at the first
and last step, the lowest loss, and seconds per step.

The task is synthetic and short: it shows whether an initialization lets the
model start training at all, not what accuracy it would reach.

Run: ``.venv/bin/python benchmarks/bench_training.py [--quick] [--steps N]``
"""

from __future__ import annotations

import gc
import time

import _common
from _common import fmt, table

ACTIVATIONS = ("relu", "selu", "tanh", "gelu", "swish", "sigmoid")


def rows_for(label: str, build, steps: int, batch_size: int, learning_rate: float) -> list[list[str]]:
    import keras

    from autoinit.training import train_probe

    keras.backend.clear_session()
    gc.collect()
    start = time.perf_counter()
    run = train_probe(
        build(),
        steps=steps,
        batch_size=batch_size,
        seed=0,
        baselines=("default",),
        learning_rate=learning_rate,
    )
    per_step = (time.perf_counter() - start) / (steps * len(run["series"]))
    rows = []
    for name, series in run["series"].items():
        finite = [v for v in series["loss"] if v is not None]
        rows.append(
            [
                label,
                name,
                "-" if series["diverged_at"] is None else series["diverged_at"],
                fmt(series["loss"][0]),
                fmt(series["loss"][-1]),
                fmt(min(finite)) if finite else "overflow",
                f"{per_step:.2f}",
            ]
        )
    return rows


def main() -> None:
    def extra(parser):
        parser.add_argument("--steps", type=int, default=None, help="steps per run (default 100, --quick 20)")
        parser.add_argument("--learning-rate", type=float, default=0.01)

    args = _common.parse_args(__doc__.splitlines()[0], extra)
    _common.banner("bench_training" + (" --quick" if args.quick else ""))
    from autoinit import zoo

    steps = args.steps or (20 if args.quick else 100)
    print(
        f"# synthetic linear-teacher task, SGD momentum 0.9, lr {args.learning_rate}, seed 0, {steps} steps"
    )
    models = [
        ("ResNet-164 no BN (batch 32)", lambda: zoo.build("preact_resnet164_nobn"), 32),
        ("ResNet-812 no BN (batch 16)", lambda: zoo.build("preact_resnet812_nobn"), 16),
    ]
    activations = ("relu", "tanh") if args.quick else ACTIVATIONS
    models += [
        (f"All-CNN-C {a} (batch 32)", lambda a=a: zoo.all_cnn_c(activation=a), 32) for a in activations
    ]
    rows = []
    for label, build, batch_size in models:
        rows += rows_for(label, build, steps, batch_size, args.learning_rate)
        print(
            table(
                ["model", "init", "diverged at", "loss step 0", f"loss step {steps - 1}", "lowest", "s/step"],
                rows[-2:],
            ),
            flush=True,
        )
    print()
    print(
        table(
            ["model", "init", "diverged at", "loss step 0", f"loss step {steps - 1}", "lowest", "s/step"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
