"""The real-world corpus (``tests/corpus.py``): keras.applications at small
inputs and evolved CoDeepNEAT-style nets, for seeds 1..5.

Per model and seed: weighted layers with >= 16 output channels in the
[0.5, 2]x band (training-mode probe, batch 64), the worst ratios, and the time
``initialize_model`` takes against the time Keras takes to build the model.

Run: ``.venv/bin/python benchmarks/bench_real_models.py [--quick] [--models A,B] [--seeds 1,2]``
(``--quick``: seed 1 only).
"""

from __future__ import annotations

import functools
import gc
import sys
import warnings
from pathlib import Path

import _common
from _common import fmt, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _options(parser) -> None:
    parser.add_argument("--models", default="", help="comma-separated corpus names (default: all)")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], _options)
    _common.banner("AutoInit on the real-world corpus")
    from band import BAND, ratios_of
    from corpus import CORPUS

    from autoinit import AutoInit

    names = [n for n in args.models.split(",") if n] or list(CORPUS)
    seeds = [1] if args.quick else [int(s) for s in args.seeds.split(",")]
    low, high = BAND
    print(
        f"| model | weighted (>=16 ch) | in band, seeds {','.join(map(str, seeds))} | worst (layer: ratio) "
        "| build s | init s | init / build |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        counts, worst, builds, inits = [], [], [], []
        for seed in seeds:
            build_s, built = timed(CORPUS[name])
            autoinit = AutoInit(seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                init_s, (model, estimates) = timed(
                    functools.partial(autoinit.initialize_model, built, return_estimates=True)
                )
            ratios = ratios_of(model, estimates, seed=seed, batch_size=64, min_channels=16)
            inside = sum(low <= r <= high for r in ratios.values())
            counts.append(f"{inside}/{len(ratios)}")
            far = max(ratios.items(), key=lambda kv: abs(_log(kv[1])), default=("-", 1.0))
            worst.append(f"{far[0]}: {far[1]:.2f}")
            builds.append(build_s)
            inits.append(init_s)
            del model, built
            gc.collect()
        weighted = counts[0].split("/")[1]
        build, init = min(builds), min(inits)
        print(
            f"| {name} | {weighted} | {' '.join(c.split('/')[0] for c in counts)} | {'; '.join(worst)} "
            f"| {fmt(build)} | {fmt(init)} | {init / build:.2f} |",
            flush=True,
        )


def _log(value: float) -> float:
    import math

    return math.log(value) if value > 0 else float("inf")


if __name__ == "__main__":
    main()
