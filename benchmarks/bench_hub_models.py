"""keras_hub backbones (``tests/hub_corpus.py``, issue 17), seeds 1..5, with and
without AutoInit's descent into composite layers.

Per backbone and seed, each run on a fresh build, twice: ``after`` (AutoInit
as it is: a composite layer's ``call`` traced on Keras tensors and walked) and
``before`` (the descent disabled: ``is_composite`` patched to return False in
this process only, so a transformer block is one opaque node and passed
through, as before commit 94e1e68; the leaf rules added since, e.g. ViT's
patching layer, still apply):

* weighted leaves scaled / total: a leaf (a layer at any depth owning a kernel
  or embedding table, no weighted sublayer; norms excluded, AutoInit keeps
  them) counts as scaled when an estimate record with a target covers it and
  its kernels/tables (not biases) differ from the backbone's own draw;
* records passed through (``estimator == "pass-through"``);
* measured / target over the records with a target: the training-mode probe
  (batch 64, seeded) measures ``mean^2 + var`` (of the pre-activation where
  the record has one); how many lie in [0.5, 2], the min and the max;
* ``initialize_model`` time against the backbone's build time, side by side
  in one process (the minimum over seeds of each), and the growth of the peak
  resident set during each call (``VmHWM`` reset just before; median over
  seeds and modes for the build, over seeds for ``after``'s init; a rough
  figure once the allocator has warmed up);
* the seconds of ``initialize_model`` spent getting composites' graphs
  (``composite_graph``: the symbolic trace of their ``call``), and the
  init / build ratio without them: the most that per-block rules (no trace,
  the same weights to draw and scale) could save;
* the composite classes the descent walked into: what per-block rules would
  have to cover one by one.

Run: ``.venv/bin/python benchmarks/bench_hub_models.py [--quick] [--models A,B] [--seeds 1,2] [--more]``
(``--quick``: seed 1 only; ``--more``: the backbones outside the corpus, ``hub_corpus.MORE_HUB``, at 4
blocks).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import statistics
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import _common
from _common import fmt, peak_growth, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

BATCH = 64
MORE_BLOCKS = 4
"""Transformer blocks of the ``--more`` backbones."""


def _options(parser) -> None:
    parser.add_argument("--models", default="", help="comma-separated backbone names (default: all)")
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    parser.add_argument(
        "--more",
        action="store_true",
        help="the backbones outside the corpus (hub_corpus.MORE_HUB) at 4 blocks, instead of the corpus",
    )


@contextlib.contextmanager
def descent(enabled: bool, seen: set[str], tracing: list[float]) -> Iterator[None]:
    """AutoInit with or without its descent into composite layers; with it,
    the composite classes met go to ``seen`` and the seconds spent getting
    their graphs (the trace, cached per layer call) to ``tracing``."""
    from autoinit.keras_adapter import composite, graph

    original, original_graph = composite.is_composite, graph.composite_graph

    def is_composite(op) -> bool:
        if not enabled:
            return False
        found = original(op)
        if found:
            seen.add(type(op).__name__)
        return found

    def composite_graph(*args, **kwargs):
        seconds, result = timed(lambda: original_graph(*args, **kwargs))
        tracing.append(seconds)
        return result

    composite.is_composite = graph.is_composite = is_composite
    graph.composite_graph = composite_graph
    try:
        yield
    finally:
        composite.is_composite = graph.is_composite = original
        graph.composite_graph = original_graph


def run(name: str, seed: int, enabled: bool, seen: set[str]) -> dict:
    """One fresh build, AutoInit and probe of backbone ``name``."""
    import numpy as np
    from hub_corpus import HUB, band_ratios, leaf_path, scaling_record, small_backbone, weighted_leaves

    from autoinit import AutoInit
    from autoinit.probe import probe

    build = HUB[name] if name in HUB else functools.partial(small_backbone, name, MORE_BLOCKS)
    build_s, model, build_mib = peak_growth(build)
    before = {v.path: np.array(v.numpy()) for v in model.weights}
    tracing: list[float] = []
    with descent(enabled, seen, tracing), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        init = functools.partial(AutoInit(seed=seed).initialize_model, model, return_estimates=True)
        init_s, (model, estimates), init_mib = peak_growth(init)
        trace_s = sum(tracing)
        ratios = band_ratios(estimates, probe(model, batch_size=BATCH, seed=seed))
    leaves = weighted_leaves(model)
    scaled = [
        leaf
        for leaf in leaves
        if scaling_record(leaf_path(leaf), estimates) is not None
        and all(
            not np.array_equal(before[v.path], v.numpy()) for v in leaf.weights if not v.path.endswith("bias")
        )
    ]
    low, high = 0.5, 2.0
    result = {
        "leaves": len(leaves),
        "scaled": len(scaled),
        "passed": sum(r["estimator"] == "pass-through" for r in estimates),
        "records": len(ratios),
        "in_band": sum(low <= r <= high for r in ratios.values()),
        "ratios": ratios,
        "build_s": build_s,
        "init_s": init_s,
        "trace_s": trace_s,
        "build_mib": build_mib,
        "init_mib": init_mib,
    }
    del model
    gc.collect()
    return result


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def _extremes(runs: list[dict]) -> str:
    ratios = [(r, layer) for run in runs for layer, r in run["ratios"].items()]
    if not ratios:
        return "-"
    (low, low_at), (high, high_at) = min(ratios), max(ratios)
    return f"{low:.2f} ({low_at}) - {high:.2f} ({high_at})"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0], _options)
    _common.banner("AutoInit on keras_hub backbones, with and without the composite descent")
    import keras_hub
    from hub_corpus import HUB, MORE_HUB

    print(f"# keras_hub {keras_hub.__version__}; probe batch {BATCH}, training mode")
    if args.more:
        print(f"# backbones outside the corpus, {MORE_BLOCKS} blocks each (hub_corpus.small_backbone)")
    names = [n for n in args.models.split(",") if n] or list(MORE_HUB if args.more else HUB)
    seeds = [1] if args.quick else [int(s) for s in args.seeds.split(",")]
    rows, composites = [], {}
    for mode in (False, True):  # warm-up, not counted: Keras' and TensorFlow's first calls
        run(names[0], 0, mode, set())
    for name in names:
        seen: set[str] = set()
        runs = {mode: [] for mode in ("before", "after")}
        for seed in seeds:
            for mode in ("before", "after"):
                runs[mode].append(run(name, seed, mode == "after", seen))
        rows.append((name, runs))
        composites[name] = sorted(seen)
        before, after = runs["before"], runs["after"]
        build = min(r["build_s"] for r in after + before)
        init_before, init_after = min(r["init_s"] for r in before), min(r["init_s"] for r in after)
        trace = min(r["trace_s"] for r in after)
        untraced = min(r["init_s"] - r["trace_s"] for r in after)
        mib_build = _median([r["build_mib"] for r in after + before])
        mib_init = _median([r["init_mib"] for r in after])
        if not rows[1:]:
            print(
                f"\nSeeds {','.join(map(str, seeds))}. Counts are per seed (a range where seeds differ); "
                "times are the minimum over seeds, peak-RSS growth the median.\n"
            )
            print(
                "| backbone | weighted leaves | scaled before / after | passed through before / after "
                "| records in band before / after | measured/target before | measured/target after "
                "| build s | init s before / after | tracing s (in init after) | init / build after "
                "| (init - tracing) / build | peak MiB build / init |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(
            f"| {name} | {_span([r['leaves'] for r in after])} "
            f"| {_span([r['scaled'] for r in before])} / {_span([r['scaled'] for r in after])} "
            f"| {_span([r['passed'] for r in before])} / {_span([r['passed'] for r in after])} "
            f"| {_span([r['in_band'] for r in before])}/{_span([r['records'] for r in before])} "
            f"/ {_span([r['in_band'] for r in after])}/{_span([r['records'] for r in after])} "
            f"| {_extremes(before)} | {_extremes(after)} "
            f"| {fmt(build)} | {fmt(init_before)} / {fmt(init_after)} | {fmt(trace)} | {init_after / build:.1f} "
            f"| {untraced / build:.1f} "
            f"| {fmt(mib_build)} / {fmt(mib_init)} |",
            flush=True,
        )
    print("\nComposite classes the descent walked into (each would need its own rule without it):\n")
    for name, classes in composites.items():
        print(f"- {name}: {', '.join(classes) or '-'}")
    distinct = sorted({c for classes in composites.values() for c in classes})
    print(
        f"\n{len(distinct)} distinct composite classes over {len(composites)} backbones: {', '.join(distinct)}"
    )
    after_runs = [r for _, runs in rows for r in runs["after"]]
    before_runs = [r for _, runs in rows for r in runs["before"]]
    for label, runs_ in (("before", before_runs), ("after", after_runs)):
        scaled, leaves = sum(r["scaled"] for r in runs_), sum(r["leaves"] for r in runs_)
        inside, records = sum(r["in_band"] for r in runs_), sum(r["records"] for r in runs_)
        print(
            f"\nAll backbones and seeds, {label}: weighted leaves scaled {scaled}/{leaves}; "
            f"records in band {inside}/{records}; measured/target {_extremes(runs_)}"
        )


if __name__ == "__main__":
    main()
