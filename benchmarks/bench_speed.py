"""How long AutoInit and the probe take, relative to what Keras needs anyway.

Requirements measured here:

* ``AutoInit().initialize_model(model)`` <= 1.5x the time Keras takes to build
  the same model (pre-activation ResNet-164 without BN), both timed side by
  side in each repetition; the median ratio is reported. The same for a
  config dict: ``initialize_model(config)`` (deserialize + init) against
  ``keras.saving.deserialize_keras_object(config)`` alone.
* ``probe(model)`` <= 1.5x one plain ``model(x, training=True)`` at the same
  batch, on ResNet-56 and ResNet-164 (no BN).

Also times ResNet-812 (no BN) ``initialize_model`` once (skipped with --quick).

Run: ``.venv/bin/python benchmarks/bench_speed.py [--quick]``
"""

from __future__ import annotations

import gc
import json

import _common
from _common import fmt, median, table, timed


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
        del model
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


def time_probe_vs_forward(depth: int, batch_size: int, repetitions: int) -> tuple[float, float]:
    """Median seconds of ``probe`` and of one ``model(x, training=True)``, interleaved."""
    import keras

    from autoinit import zoo
    from autoinit.probe import gaussian_inputs, probe

    _fresh()
    model = zoo.preact_resnet(depth, batch_norm=False)
    x = keras.ops.convert_to_tensor(gaussian_inputs(model, batch_size, seed=0)[0])
    model(x, training=True)  # warm-up: first calls trace and allocate
    probe(model, batch_size=batch_size, seed=0)
    forward_times, probe_times = [], []
    for rep in range(repetitions):
        forward_times.append(timed(lambda: keras.ops.convert_to_numpy(model(x, training=True)))[0])
        probe_times.append(timed(lambda: probe(model, batch_size=batch_size, seed=rep))[0])
    return median(probe_times), median(forward_times)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    _common.banner("bench_speed" + (" --quick" if args.quick else ""))
    repetitions = 3 if args.quick else 7

    print(f"\n## initialize_model vs Keras build, preact ResNet-164 no BN ({repetitions} repetitions, median)")
    times = time_init_vs_build(repetitions)
    med = {key: median(values) for key, values in times.items()}
    model_ratio = med["init"] / med["build"]
    config_ratio = med["config_build_init"] / med["config_build"]
    print(
        table(
            ["measure", "median s", "ratio", "requirement"],
            [
                ["build (zoo.preact_resnet)", f"{med['build']:.3f}", "", ""],
                ["initialize_model(model)", f"{med['init']:.3f}", f"{model_ratio:.2f}x build", "<= 1.5x: " + ("PASS" if model_ratio <= 1.5 else "FAIL")],
                ["deserialize_keras_object(config)", f"{med['config_build']:.3f}", "", ""],
                ["initialize_model(config) (build+init)", f"{med['config_build_init']:.3f}", f"{config_ratio:.2f}x deserialize", "<= 1.5x: " + ("PASS" if config_ratio <= 1.5 else "FAIL")],
            ],
        )
    )

    if not args.quick:
        print("\n## preact ResNet-812 no BN, once")
        build, init = time_resnet812_init()
        print(f"  build {build:.2f}s  initialize_model {init:.2f}s  ratio {init / build:.2f}x")

    batch_size = 32
    probe_reps = 3 if args.quick else 5
    print(f"\n## probe vs one forward pass model(x, training=True), batch {batch_size} ({probe_reps} repetitions, median)")
    rows = []
    for depth in (56, 164):
        probe_s, forward_s = time_probe_vs_forward(depth, batch_size, probe_reps)
        ratio = probe_s / forward_s
        rows.append([f"ResNet-{depth} no BN", f"{forward_s:.3f}", f"{probe_s:.3f}", f"{ratio:.2f}x", "PASS" if ratio <= 1.5 else "FAIL"])
    print(table(["model", "forward s", "probe s", "probe/forward", "<= 1.5x"], rows))


if __name__ == "__main__":
    main()
