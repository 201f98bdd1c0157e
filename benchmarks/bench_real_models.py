"""The real-world corpus (``tests/corpus.py``): keras.applications at small
inputs and evolved CoDeepNEAT-style nets, for seeds 1..5.

Per model and seed: weighted layers with >= 16 output channels in the
[0.5, 2]x band (training-mode probe, batch 64), the worst ratios, and the time
``initialize_model`` takes against the time Keras takes to build the model
(side by side per seed: build, then initialize that model; wall and CPU
seconds, the fastest of the seeds, and the median of the per-seed ratios),
and the floor under the init time: one seeded truncated-normal draw of every
kernel the model has (every weight of rank >= 2) at its scale, which
``initialize_model`` cannot skip with its default distribution. Memory: the
growth of the peak resident set during the build and during
``initialize_model`` (``VmHWM`` reset just before each; median over seeds).

Run: ``.venv/bin/python benchmarks/bench_real_models.py [--quick] [--models A,B] [--seeds 1,2] [--speed-only]``
(``--quick``: seed 1 only; ``--speed-only``: no probe, only the times).
"""

from __future__ import annotations

import functools
import gc
import statistics
import sys
import time
import warnings
from pathlib import Path

import _common
from _common import fmt, peak_growth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _options(parser) -> None:
    parser.add_argument("--models", default="", help="comma-separated corpus names (default: all)")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    parser.add_argument("--speed-only", action="store_true", help="skip the probe: times only")


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
        "| build s | init s | init / build | median init / build | build CPU s | init CPU s | init / build CPU "
        "| draw s | draw / build | build peak MiB | init peak MiB | init / build peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        counts, worst, builds, inits, cpu_builds, cpu_inits, draws = [], [], [], [], [], [], []
        build_peaks, init_peaks = [], []
        for seed in seeds:
            cpu = time.process_time()
            build_s, built, build_mib = peak_growth(CORPUS[name])
            cpu_builds.append(time.process_time() - cpu)
            autoinit = AutoInit(seed=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cpu = time.process_time()
                init_s, (model, estimates), init_mib = peak_growth(
                    functools.partial(autoinit.initialize_model, built, return_estimates=True)
                )
                cpu_inits.append(time.process_time() - cpu)
            build_peaks.append(build_mib)
            init_peaks.append(init_mib)
            builds.append(build_s)
            inits.append(init_s)
            draws.append(_draw_seconds(model))
            if not args.speed_only:
                ratios = ratios_of(model, estimates, seed=seed, batch_size=64, min_channels=16)
                inside = sum(low <= r <= high for r in ratios.values())
                counts.append(f"{inside}/{len(ratios)}")
                far = max(ratios.items(), key=lambda kv: abs(_log(kv[1])), default=("-", 1.0))
                worst.append(f"{far[0]}: {far[1]:.2f}")
            else:
                counts.append("-/-")
                worst.append("-")
            del model, built
            gc.collect()
        weighted = counts[0].split("/")[1]
        build, init = min(builds), min(inits)
        paired = statistics.median(i / b for i, b in zip(inits, builds))
        cpu_build, cpu_init, draw = min(cpu_builds), min(cpu_inits), min(draws)
        memory = "| - | - | - |"
        if None not in build_peaks + init_peaks:
            build_peak, init_peak = statistics.median(build_peaks), statistics.median(init_peaks)
            memory = f"| {build_peak:.0f} | {init_peak:.0f} | {init_peak / max(build_peak, 1.0):.2f} |"
        print(
            f"| {name} | {weighted} | {' '.join(c.split('/')[0] for c in counts)} | {'; '.join(worst)} "
            f"| {fmt(build)} | {fmt(init)} | {init / build:.2f} | {paired:.2f} "
            f"| {fmt(cpu_build)} | {fmt(cpu_init)} | {cpu_init / cpu_build:.2f} | {fmt(draw)} | {draw / build:.2f} "
            + memory,
            flush=True,
        )


def _draw_seconds(model) -> float:
    """Seconds the default draw of every weight of rank >= 2 takes: the seeded
    unit truncated normal ``initialize_model`` draws (TensorFlow's raw kernel,
    ``weights._unit_draw``) times its scale, one multiply per kernel."""
    import keras

    from autoinit.keras_adapter.weights import _unit_draw

    shapes = [tuple(w.shape) for w in model.weights if len(w.shape) >= 2]
    start = time.perf_counter()
    for i, shape in enumerate(shapes):
        keras.ops.multiply(_unit_draw("truncated_normal", i, shape, "float32"), 0.5)
    return time.perf_counter() - start


def _log(value: float) -> float:
    import math

    return math.log(value) if value > 0 else float("inf")


if __name__ == "__main__":
    main()
