"""How long AutoInit and the probe take, relative to what Keras needs anyway.

Requirements measured here:

* ``AutoInit().initialize_model(model)`` <= 1.5x the time Keras takes to build
  the same model (pre-activation ResNet-164 without BN), both timed side by
  side in each repetition; the median ratio is reported. The same for a
  config dict: ``initialize_model(config)`` (deserialize + init) against
  ``keras.saving.deserialize_keras_object(config)`` alone.
* ``probe(model)`` <= 1.5x one plain forward pass at the same batch (32), on
  All-CNN-C and ResNet-56/164 (no BN). The forward pass is timed both ways a
  user runs it, in training mode like the probe: eager ``model(x,
  training=True)`` and that call under ``tf.function``; both ratios are
  printed, for ``probe(model)`` (the default: one traced graph per model) and
  ``probe(model, compiled=False)`` (the eager interpreter other backends use).
  Time and memory at the paper's depths are in ``bench_probe_memory.py``.

Also times ResNet-812 (no BN) ``initialize_model`` once (skipped with --quick).

Run: ``.venv/bin/python benchmarks/bench_speed.py [--quick] [--probe-only]``
"""

from __future__ import annotations

import gc
import json

import _common
from _common import median, table, timed


def _fresh() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()


def time_init_vs_build(repetitions: int) -> dict[str, list[float]]:
    """Per repetition: build ResNet-164 (no BN), AutoInit it; deserialize its config, AutoInit the config."""
    import keras

    from autoinit import zoo
    from autoinit.autoinit import AutoInit

    # Keras' deserializer consumes the dict it is given, so every timed call gets its own copy.
    config_json = json.dumps(keras.saving.serialize_keras_object(zoo.preact_resnet(164, batch_norm=False)))
    times: dict[str, list[float]] = {"build": [], "init": [], "config_build": [], "config_build_init": []}
    for rep in range(repetitions + 1):  # repetition 0 warms up TensorFlow and is dropped
        _fresh()
        build, model = timed(lambda: zoo.preact_resnet(164, batch_norm=False))
        init, _ = timed(lambda: AutoInit(seed=rep).initialize_model(model))
        model = None  # the build is dropped before the next measure
        _fresh()
        config = json.loads(config_json)
        config_build, _ = timed(lambda: keras.saving.deserialize_keras_object(config))
        _fresh()
        config = json.loads(config_json)
        config_build_init, _ = timed(lambda: AutoInit(seed=rep).initialize_model(config))
        if rep == 0:
            continue
        for key, value in zip(times, (build, init, config_build, config_build_init)):
            times[key].append(value)
        print(
            f"  rep {rep}: build {build:.2f}s  init {init:.2f}s  |  "
            f"config build {config_build:.2f}s  config build+init {config_build_init:.2f}s",
            flush=True,
        )
    return times


def time_resnet812_init() -> tuple[float, float]:
    from autoinit import zoo
    from autoinit.autoinit import AutoInit

    _fresh()
    build, model = timed(lambda: zoo.preact_resnet(812, batch_norm=False))
    init, _ = timed(lambda: AutoInit(seed=0).initialize_model(model))
    return build, init


PROBE_MODELS = ("All-CNN-C", "ResNet-56 no BN", "ResNet-164 no BN")


def _probe_model(label: str):
    from autoinit import zoo

    if label == "All-CNN-C":
        return zoo.all_cnn_c()
    return zoo.preact_resnet(int(label.split()[0].split("-")[1]), batch_norm=False)


def time_probe_vs_forward(label: str, batch_size: int, repetitions: int) -> dict[str, float]:
    """Seconds (median over interleaved repetitions) of the probe and of a plain forward pass.

    Plain forward, both ways a user runs it, training mode (dropout active)
    like the probe: eager ``model(x, training=True)`` and the same call
    wrapped in ``tf.function`` (Keras' compiled path). Probes: ``probe``
    (``compiled=False``: the eager interpreter) and ``probe`` as it runs by
    default (one traced graph, cached with the model: "compiled").
    ``*_cold`` are first calls, tracing included; every repeated row is warm.
    Each measure ends with the result on the host.
    """
    import keras
    import tensorflow as tf

    from autoinit.probe import gaussian_inputs, probe

    _fresh()
    model = _probe_model(label)
    x = keras.ops.convert_to_tensor(gaussian_inputs(model, batch_size, seed=0)[0])
    compiled_forward = tf.function(lambda t: model(t, training=True), autograph=False)
    out = {
        "probe_cold": timed(lambda: probe(model, batch_size=batch_size, seed=0, compiled=False))[0],
        "compiled_forward_cold": timed(lambda: keras.ops.convert_to_numpy(compiled_forward(x)))[0],
        "compiled_probe_cold": timed(lambda: probe(model, batch_size=batch_size, seed=0, compiled=True))[0],
    }
    model(x, training=True)  # warm-up of the eager path
    runs: dict[str, list[float]] = {"forward": [], "compiled_forward": [], "probe": [], "compiled_probe": []}
    for rep in range(repetitions):
        runs["forward"].append(timed(lambda: keras.ops.convert_to_numpy(model(x, training=True)))[0])
        runs["probe"].append(timed(lambda: probe(model, batch_size=batch_size, seed=rep, compiled=False))[0])
        runs["compiled_forward"].append(timed(lambda: keras.ops.convert_to_numpy(compiled_forward(x)))[0])
        runs["compiled_probe"].append(
            timed(lambda: probe(model, batch_size=batch_size, seed=rep, compiled=True))[0]
        )
    out.update({key: median(values) for key, values in runs.items()})
    return out


def _verdict(ratio: float) -> str:
    return f"{ratio:.2f}x " + ("PASS" if ratio <= 1.5 else "FAIL")


def report_probe(batch_size: int, repetitions: int) -> None:
    print(
        f"\n## probe vs one plain forward pass (training mode), batch {batch_size} "
        f"({repetitions} repetitions, median; requirement <= 1.5x)"
    )
    print(
        "#   eager fwd = model(x, training=True); compiled fwd = tf.function of the same call (warm);\n"
        "#   probe = probe(model, compiled=False) (eager); compiled probe = probe(model) (default, warm, trace cached)"
    )
    seconds, ratios, cold = [], [], []
    for label in PROBE_MODELS:
        t = time_probe_vs_forward(label, batch_size, repetitions)
        seconds.append(
            [label] + [f"{t[k]:.3f}" for k in ("forward", "compiled_forward", "probe", "compiled_probe")]
        )
        ratios.append(
            [
                label,
                _verdict(t["probe"] / t["forward"]),
                _verdict(t["probe"] / t["compiled_forward"]),
                _verdict(t["compiled_probe"] / t["compiled_forward"]),
                _verdict(t["compiled_probe"] / t["forward"]),
            ]
        )
        cold.append(
            [label] + [f"{t[k]:.2f}" for k in ("probe_cold", "compiled_forward_cold", "compiled_probe_cold")]
        )
        print(f"  {label}: done", flush=True)
    print(table(["model", "eager fwd s", "compiled fwd s", "probe s", "compiled probe s"], seconds))
    print()
    header = [
        "model",
        "probe / eager fwd",
        "probe / compiled fwd",
        "compiled probe / compiled fwd",
        "compiled probe / eager fwd",
    ]
    print(table(header, ratios))
    print("\nfirst calls (tracing included), seconds:")
    print(table(["model", "probe", "compiled fwd", "compiled probe"], cold))


def main() -> None:
    args = _common.parse_args(
        __doc__.splitlines()[0],
        lambda parser: parser.add_argument(
            "--probe-only", action="store_true", help="run only the probe section"
        ),
    )
    _common.banner(
        "bench_speed" + (" --quick" if args.quick else "") + (" --probe-only" if args.probe_only else "")
    )
    if args.probe_only:
        report_probe(batch_size=32, repetitions=3 if args.quick else 5)
        return
    repetitions = 3 if args.quick else 7

    print(
        f"\n## initialize_model vs Keras build, preact ResNet-164 no BN ({repetitions} repetitions, median)"
    )
    times = time_init_vs_build(repetitions)
    med = {key: median(values) for key, values in times.items()}
    model_ratio = med["init"] / med["build"]
    config_ratio = med["config_build_init"] / med["config_build"]
    print(
        table(
            ["measure", "median s", "ratio", "requirement"],
            [
                ["build (zoo.preact_resnet)", f"{med['build']:.3f}", "", ""],
                [
                    "initialize_model(model)",
                    f"{med['init']:.3f}",
                    f"{model_ratio:.2f}x build",
                    "<= 1.5x: " + ("PASS" if model_ratio <= 1.5 else "FAIL"),
                ],
                ["deserialize_keras_object(config)", f"{med['config_build']:.3f}", "", ""],
                [
                    "initialize_model(config) (build+init)",
                    f"{med['config_build_init']:.3f}",
                    f"{config_ratio:.2f}x deserialize",
                    "<= 1.5x: " + ("PASS" if config_ratio <= 1.5 else "FAIL"),
                ],
            ],
        )
    )

    if not args.quick:
        print("\n## preact ResNet-812 no BN, once")
        build, init = time_resnet812_init()
        print(f"  build {build:.2f}s  initialize_model {init:.2f}s  ratio {init / build:.2f}x")

    report_probe(batch_size=32, repetitions=3 if args.quick else 5)


if __name__ == "__main__":
    main()
