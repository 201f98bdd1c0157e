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
``initialize_model`` that follows it (``VmHWM`` reset just before each), in a
fresh process per model warmed up on a small one, the first seed.

Run: ``.venv/bin/python benchmarks/bench_real_models.py [--quick] [--models A,B] [--seeds 1,2] [--speed-only]
[--distribution uniform]`` (``--quick``: seed 1 only; ``--speed-only``: no probe, only the times;
``--distribution``: another weight distribution than the paper's truncated normal, to see the walk's
share where the draw dominates).
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import _common
from _common import fmt, peak_growth, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _options(parser) -> None:
    parser.add_argument("--models", default="", help="comma-separated corpus names (default: all)")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    parser.add_argument("--speed-only", action="store_true", help="skip the probe: times only")
    parser.add_argument(
        "--distribution",
        default="truncated_normal",
        help="AutoInit's weight distribution (default: the paper's truncated normal); the draw "
        "column is always the truncated normal's",
    )
    parser.add_argument("--memory-child", default="", help=argparse.SUPPRESS)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], _options)
    if args.memory_child:
        _memory_child(args.memory_child, int(args.seeds.split(",")[0]), args.distribution)
        return
    _common.banner(f"AutoInit on the real-world corpus, distribution {args.distribution}")
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
        for seed in seeds:
            cpu = time.process_time()
            build_s, built = timed(CORPUS[name])
            cpu_builds.append(time.process_time() - cpu)
            autoinit = AutoInit(seed=seed, weight_init_config={"distribution": args.distribution})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cpu = time.process_time()
                init_s, (model, estimates) = timed(
                    functools.partial(autoinit.initialize_model, built, return_estimates=True)
                )
                cpu_inits.append(time.process_time() - cpu)
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
        build_mib, init_mib = _memory_in_fresh_process(name, seeds[0], args.distribution)
        memory = "| - | - | - |"
        if build_mib is not None and init_mib is not None:
            memory = f"| {build_mib:.0f} | {init_mib:.0f} | {init_mib / max(build_mib, 1.0):.2f} |"
        print(
            f"| {name} | {weighted} | {' '.join(c.split('/')[0] for c in counts)} | {'; '.join(worst)} "
            f"| {fmt(build)} | {fmt(init)} | {init / build:.2f} | {paired:.2f} "
            f"| {fmt(cpu_build)} | {fmt(cpu_init)} | {cpu_init / cpu_build:.2f} | {fmt(draw)} | {draw / build:.2f} "
            + memory,
            flush=True,
        )


def _memory_in_fresh_process(name: str, seed: int, distribution: str) -> tuple[float | None, float | None]:
    """Peak-RSS growth (MiB) of the build and of ``initialize_model`` after
    it, in a fresh process (in this one, the build would reuse the pages an
    earlier model freed): ``(None, None)`` where it cannot be measured."""
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            name,
            "--seeds",
            str(seed),
            "--distribution",
            distribution,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = [line.split()[1:] for line in child.stdout.splitlines() if line.startswith("memory ")]
    if child.returncode != 0 or not found or "None" in found[-1]:
        return None, None
    return float(found[-1][0]), float(found[-1][1])


def _memory_child(name: str, seed: int, distribution: str) -> None:
    from corpus import CORPUS

    from autoinit import AutoInit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # First-call work (Keras' first build, AutoInit's imports and caches) outside both figures.
        AutoInit(seed=seed).initialize_model(CORPUS["evolved_branches"]())
        _, model, build_mib = peak_growth(CORPUS[name])
        autoinit = AutoInit(seed=seed, weight_init_config={"distribution": distribution})
        _, _, init_mib = peak_growth(lambda: autoinit.initialize_model(model))
    print("memory", build_mib, init_mib)


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
