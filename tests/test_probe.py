"""Specifications of the Gaussian probes (`autoinit.probe`): real Keras models, really run."""

from __future__ import annotations

import json
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from autoinit import AutoInit, zoo  # noqa: E402
from autoinit.errors import AutoInitError  # noqa: E402
from autoinit.probe import compare, probe  # noqa: E402


# --------------------------------------------------------------------------- #
# Small models
# --------------------------------------------------------------------------- #
def nested_shared_model() -> keras.Model:
    """x -> shared Dense -> shared Dense again -> nested model (one Dense) -> Dense."""
    inner_input = keras.Input((8,), name="inner_input")
    inner = keras.Model(inner_input, keras.layers.Dense(8, name="inner_dense")(inner_input), name="block")
    inputs = keras.Input((8,), name="x")
    shared = keras.layers.Dense(8, name="shared")
    y = shared(shared(inputs))
    y = inner(y)
    y = keras.layers.Dense(4, name="head")(y)
    return keras.Model(inputs, y, name="outer")


def dropout_model(rate: float = 0.5) -> keras.Model:
    inputs = keras.Input((64,), name="x")
    return keras.Model(inputs, keras.layers.Dropout(rate, name="drop")(inputs))


def batch_norm_model() -> keras.Model:
    inputs = keras.Input((16,), name="x")
    y = keras.layers.Dense(16, name="dense")(inputs)
    y = keras.layers.BatchNormalization(name="bn")(y)
    return keras.Model(inputs, y, name="bn_model")


def plain_mlp(depth: int = 4, width: int = 64, activation: str = "relu") -> keras.Model:
    """Dense and Activation as separate layers, so each Dense's output is ``W x + b``."""
    inputs = keras.Input((32,), name="x")
    y = inputs
    for i in range(1, depth + 1):
        y = keras.layers.Dense(width, name=f"dense{i}")(y)
        y = keras.layers.Activation(activation, name=f"act{i}")(y)
    return keras.Model(inputs, y, name="plain_mlp")


def by_name(records: list[dict]) -> dict[str, dict]:
    return {record["name"]: record for record in records}


# --------------------------------------------------------------------------- #
# Records: one per layer call, in topological order
# --------------------------------------------------------------------------- #
def test_records_follow_topological_order_with_nested_and_shared_layers_named():
    records = probe(nested_shared_model(), batch_size=32)

    assert [r["name"] for r in records] == ["x", "shared", "shared#2", "block/inner_dense", "head"]
    assert [r["class_name"] for r in records] == ["InputLayer", "Dense", "Dense", "Dense", "Dense"]
    assert [r["has_weights"] for r in records] == [False, True, True, True, True]
    assert records[-1]["output_shape"] == [None, 4]


def test_sequential_models_are_probed_like_functional_ones():
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(7, name="d1"), keras.layers.Dense(3, name="d2")], name="seq"
    )
    records = probe(model, batch_size=16)
    assert [r["name"] for r in records][1:] == ["d1", "d2"]
    assert records[-1]["output_shape"] == [None, 3]


def test_unbuilt_sequential_is_refused_with_a_message_that_says_why():
    model = keras.Sequential([keras.layers.Dense(3)], name="unbuilt")
    with pytest.raises(AutoInitError, match="no input shape"):
        probe(model)


# --------------------------------------------------------------------------- #
# Training-mode semantics
# --------------------------------------------------------------------------- #
def test_dropout_is_active_so_inverted_dropout_doubles_a_unit_gaussians_variance():
    records = by_name(probe(dropout_model(0.5), batch_size=256, seed=3))
    assert records["x"]["var"] == pytest.approx(1.0, rel=0.05)
    # x * mask / 0.5 with mask ~ Bernoulli(0.5): variance 0.5 * 1 / 0.25 = 2.
    assert records["drop"]["var"] == pytest.approx(2.0, rel=0.08)


def test_batch_norm_uses_batch_statistics_even_when_its_input_has_variance_100():
    inputs = keras.Input((16,), name="x")
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
    records = by_name(probe(model, batch_size=256, input_var=100.0, input_mean=3.0))
    assert records["x"]["var"] == pytest.approx(100.0, rel=0.1)
    # Inference mode (moving stats 0/1) would give ~100; batch statistics give ~1.
    assert records["bn"]["var"] == pytest.approx(1.0, abs=0.02)
    assert records["bn"]["mean"] == pytest.approx(0.0, abs=1e-3)


def test_probing_leaves_weights_and_batch_norm_moving_statistics_untouched():
    model = batch_norm_model()
    model.get_layer("bn").moving_variance.assign(np.full((16,), 0.5, "float32"))
    before = [w.copy() for w in model.get_weights()]
    probe(model, batch_size=64, input_var=9.0, input_mean=2.0)
    probe(model, batch_size=64, backward=True)
    after = model.get_weights()
    assert len(before) == len(after) == 6  # kernel, bias, gamma, beta, moving mean, moving var
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


# --------------------------------------------------------------------------- #
# Reproducibility
# --------------------------------------------------------------------------- #
def test_same_seed_gives_identical_records_and_another_seed_does_not():
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(32), keras.layers.Dropout(0.3)])
    first = probe(model, batch_size=64, seed=11)
    again = probe(model, batch_size=64, seed=11)
    other = probe(model, batch_size=64, seed=12)
    assert first == again
    assert [r["var"] for r in first] != [r["var"] for r in other]


# --------------------------------------------------------------------------- #
# The traced graph (default on TensorFlow) gives the eager interpreter's records
# --------------------------------------------------------------------------- #
def dropout_batch_norm_model() -> keras.Model:
    """Dense -> Dropout -> BatchNormalization -> nested model (Dense with fused ReLU)."""
    inner_input = keras.Input((32,), name="inner_input")
    inner = keras.Model(
        inner_input, keras.layers.Dense(8, activation="relu", name="inner_dense")(inner_input), name="block"
    )
    inputs = keras.Input((16,), name="x")
    y = keras.layers.Dense(32, name="dense")(inputs)
    y = keras.layers.Dropout(0.5, name="drop")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    return keras.Model(inputs, inner(y), name="mixed")


def test_compiled_probe_gives_the_eager_records_with_dropout_batch_norm_and_nesting():
    model = dropout_batch_norm_model()
    model.get_layer("bn").moving_variance.assign(np.full((32,), 0.5, "float32"))
    before = [w.copy() for w in model.get_weights()]
    eager = probe(model, batch_size=64, seed=4, compiled=False)
    compiled = probe(model, batch_size=64, seed=4, compiled=True)
    again = probe(model, batch_size=64, seed=4, compiled=True)
    other_seed = probe(model, batch_size=64, seed=5, compiled=True)

    assert [r["name"] for r in compiled] == ["x", "dense", "drop", "bn", "block/inner_dense"]
    assert compiled == again
    for e, c in zip(eager, compiled):
        assert {k: v for k, v in e.items() if k not in ("mean", "var")} == {
            k: v for k, v in c.items() if k not in ("mean", "var")
        }
        assert c["mean"] == pytest.approx(e["mean"], rel=1e-5, abs=1e-6)
        assert c["var"] == pytest.approx(e["var"], rel=1e-5)
    assert compiled[2]["var"] != other_seed[2]["var"]  # the seed reaches the dropout masks
    assert compiled[3]["var"] == pytest.approx(1.0, abs=0.02)  # batch statistics, not moving ones
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_compiled_probe_follows_a_new_batch_size_and_new_weights():
    model = plain_mlp(depth=2, width=16)
    first = by_name(probe(model, batch_size=32, compiled=True))
    assert by_name(probe(model, batch_size=48, compiled=True))["act2"]["var"] != first["act2"]["var"]
    model.get_layer("dense1").kernel.assign(2.0 * model.get_layer("dense1").kernel)
    scaled = by_name(probe(model, batch_size=32, compiled=True))
    # Doubling the first kernel doubles every later pre-activation (biases are zero): variance x4.
    assert scaled["dense1"]["var"] == pytest.approx(4 * first["dense1"]["var"], rel=1e-4)
    assert scaled["act2"]["var"] == pytest.approx(4 * first["act2"]["var"], rel=1e-4)


def test_compiled_probe_cache_does_not_keep_the_model_alive():
    import gc
    import weakref

    model = plain_mlp(depth=1, width=8)
    probe(model, batch_size=8, compiled=True)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_compiled_backward_probe_gives_the_eager_gradients():
    model = dropout_batch_norm_model()
    eager = probe(model, batch_size=64, seed=2, backward=True, compiled=False)
    compiled = probe(model, batch_size=64, seed=2, backward=True, compiled=True)
    assert [r["name"] for r in compiled] == [r["name"] for r in eager]
    assert "grad_var" not in compiled[0]
    for e, c in zip(eager[1:], compiled[1:]):
        assert c["grad_var"] == pytest.approx(e["grad_var"], rel=1e-5), c["name"]


# --------------------------------------------------------------------------- #
# Integer inputs
# --------------------------------------------------------------------------- #
def test_integer_inputs_get_valid_token_ids_for_the_smallest_embedding():
    tokens = keras.Input((10,), dtype="int32", name="tokens")
    small = keras.layers.Embedding(7, 4, name="small_vocab")(tokens)
    large = keras.layers.Embedding(1000, 4, name="large_vocab")(tokens)
    y = keras.layers.Concatenate(name="concat")([small, large])
    y = keras.layers.GlobalAveragePooling1D(name="pool")(y)
    model = keras.Model(tokens, y)

    records = by_name(probe(model, batch_size=64))  # an out-of-range id would raise here
    ids = records["tokens"]
    # Uniform ids in [0, 7): mean 3, variance (7**2 - 1) / 12 = 4.
    assert ids["mean"] == pytest.approx(3.0, abs=0.2)
    assert ids["var"] == pytest.approx(4.0, rel=0.1)
    for name in ("small_vocab", "large_vocab", "concat", "pool"):
        assert np.isfinite(records[name]["var"]) and records[name]["var"] > 0


def test_each_input_gets_ids_for_the_embeddings_it_feeds_even_when_it_is_float():
    # keras.Input defaults to float32: a text model written that way still takes ids.
    words = keras.Input((12,), name="words")
    tags = keras.Input((12,), dtype="int32", name="tags")
    w = keras.layers.Embedding(5000, 16, name="word_embedding")(words)
    t = keras.layers.Embedding(9, 16, name="tag_embedding")(tags)
    model = keras.Model([words, tags], keras.layers.Add(name="sum")([w, t]))
    model = AutoInit(seed=0).initialize_model(model)

    records = by_name(probe(model, batch_size=256))
    # Uniform ids over each input's own vocabulary: mean (n - 1) / 2.
    assert records["words"]["mean"] == pytest.approx(2499.5, rel=0.05)
    assert records["tags"]["mean"] == pytest.approx(4.0, rel=0.1)
    # Ids drawn uniformly over every row: the output's variance is the table's.
    for name in ("word_embedding", "tag_embedding"):
        table = model.get_layer(name).embeddings.numpy()
        assert records[name]["var"] == pytest.approx(float(table.var()), rel=0.1), name


def test_index_inputs_are_measured_not_predicted_and_left_out_of_the_figure():
    """Token ids (an int input, or a float one feeding an Embedding) are not a
    signal: AutoInit predicts nothing for them, the probe's measured ids stay in
    the traces, and the figure leaves them out (ids up to the vocabulary would
    set its log axis)."""
    from autoinit.plot import signal_figure
    from autoinit.traces_schema import validate_traces

    words = keras.Input((12,), name="words")
    tags = keras.Input((12,), dtype="int32", name="tags")
    features = keras.Input((12, 16), name="features")
    w = keras.layers.Embedding(5000, 16, name="word_embedding")(words)
    t = keras.layers.Embedding(9, 16, name="tag_embedding")(tags)
    y = keras.layers.Add(name="sum")([w, t, features])
    model = keras.Model([words, tags, features], keras.layers.Dense(8, name="head")(y))

    traces = compare(model, batch_size=32)
    validate_traces(traces)
    layers = {layer["name"]: layer for layer in traces["layers"]}
    for name in ("words", "tags"):
        assert layers[name]["signal"] is False
        assert layers[name]["predicted"] == {"mean": None, "var": None}
        assert layers[name]["autoinit"]["mean"] > 1  # the ids the probe fed
    assert "signal" not in layers["features"] and layers["features"]["predicted"]["var"] == 1.0

    figure = signal_figure(traces)
    autoinit = next(t for t in figure.data if t.meta == {"series": "autoinit", "metric": "var"})
    charted = {layer["index"] for layer in traces["layers"] if layer.get("signal", True)}
    assert set(autoinit.x) == charted and len(charted) == len(layers) - 2
    assert max(autoinit.y) < 100  # the words' ids have variance ~2e6


# --------------------------------------------------------------------------- #
# Backward probe
# --------------------------------------------------------------------------- #
def test_backward_probe_records_finite_gradient_variances_and_unit_variance_at_the_output():
    model = plain_mlp(depth=3, width=64)
    records = probe(model, batch_size=128, backward=True)
    assert "grad_var" not in records[0]  # no gradient taken for the input: a gap, not an overflow
    for record in records[1:]:
        assert record["grad_var"] is not None and np.isfinite(record["grad_var"]) and record["grad_var"] > 0
    # L = sum(output * R), R ~ N(0, 1): dL/d(output) = R.
    assert records[-1]["grad_var"] == pytest.approx(1.0, rel=0.06)


def test_backward_probe_gradient_through_relu_halves_the_variance():
    inputs = keras.Input((64,), name="x")
    y = keras.layers.Activation("relu", name="relu")(keras.layers.Identity(name="pre")(inputs))
    records = by_name(probe(keras.Model(inputs, y), batch_size=256, backward=True))
    # The gradient passes where the (symmetric) pre-activation is positive: half the time.
    assert records["pre"]["grad_var"] == pytest.approx(0.5, rel=0.08)


# --------------------------------------------------------------------------- #
# compare(): the traces payload
# --------------------------------------------------------------------------- #
# Wide enough that one draw of weights behaves like the average over draws:
# at width 64 a single draw strays 30-40% from the expectation by layer 4.
WIDTH = 512


@pytest.fixture(scope="module")
def mlp_traces() -> dict:
    return compare(
        plain_mlp(depth=4, width=WIDTH),
        baselines=("default", "he_normal", "glorot_uniform"),
        seed=0,
        batch_size=512,
        backward=True,
    )


def test_compare_payload_has_the_documented_schema(mlp_traces):
    traces = mlp_traces
    assert set(traces) == {"model", "signal_variance", "input", "series", "layers", "center_activations"}
    assert traces["center_activations"] is False
    assert traces["series"] == ["predicted", "default", "he_normal", "glorot_uniform", "autoinit"]
    assert traces["model"] == {
        "name": "plain_mlp",
        "num_layers": 9,
        "num_params": 32 * WIDTH + 3 * WIDTH * WIDTH + 4 * WIDTH,
    }
    assert traces["input"] == {"mean": 0.0, "var": 1.0}
    assert traces["signal_variance"] == 1.0
    names = [layer["name"] for layer in traces["layers"]]
    assert names == ["x"] + [f"{kind}{i}" for i in range(1, 5) for kind in ("dense", "act")]
    for index, layer in enumerate(traces["layers"]):
        assert layer["index"] == index
        assert {"name", "class_name", "has_weights", "output_shape", "estimator", "scale", "target"} <= set(
            layer
        )
        assert set(layer["predicted"]) == {"mean", "var"}
        for series in ("default", "he_normal", "glorot_uniform", "autoinit"):
            assert set(layer[series]) == ({"mean", "var"} if index == 0 else {"mean", "var", "grad_var"})
        assert (layer["scale"] is not None) == layer["has_weights"]


def test_compare_payload_is_plain_json(mlp_traces):
    text = json.dumps(mlp_traces)  # no default=: every value is a JSON type
    assert json.loads(text) == mlp_traces


def test_autoinit_keeps_the_measured_variance_of_weighted_layers_near_target(mlp_traces):
    weighted = [layer for layer in mlp_traces["layers"] if layer["has_weights"]]
    assert len(weighted) == 4
    for layer in weighted:
        assert layer["target"] == 1.0
        ratio = layer["autoinit"]["var"] / layer["target"]
        assert 0.5 <= ratio <= 2.0, layer["name"]


def test_autoinit_prediction_matches_measurement_within_20_percent(mlp_traces):
    for layer in mlp_traces["layers"][1:]:
        assert layer["autoinit"]["var"] == pytest.approx(layer["predicted"]["var"], rel=0.2), layer["name"]


def test_baselines_really_differ_from_the_default_initialization(mlp_traces):
    last = mlp_traces["layers"][-1]
    # He keeps ReLU signals at order 1; Glorot uniform halves them layer by layer.
    assert last["he_normal"]["var"] > 2 * last["glorot_uniform"]["var"]
    assert last["default"]["var"] == pytest.approx(last["glorot_uniform"]["var"], rel=0.5)


def test_compare_returns_the_autoinit_model_and_leaves_the_given_model_alone():
    model = plain_mlp(depth=2, width=32)
    before = [w.copy() for w in model.get_weights()]
    traces, initialized = compare(model, seed=5, batch_size=64, return_model=True)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    kernel = initialized.get_layer("dense2").kernel.numpy()
    scale = by_name(traces["layers"])["dense2"]["scale"]
    assert float(np.var(kernel)) == pytest.approx(scale, rel=0.15)
    assert by_name(probe(initialized, batch_size=64, seed=5))["dense2"]["var"] == pytest.approx(
        by_name(traces["layers"])["dense2"]["autoinit"]["var"], rel=1e-5
    )


def test_compare_accepts_a_json_config_and_refuses_unknown_baselines():
    config = plain_mlp(depth=1, width=8).to_json()
    traces = compare(config, batch_size=16)
    assert traces["series"] == ["predicted", "default", "autoinit"]
    with pytest.raises(AutoInitError, match="he_uniform"):
        compare(config, baselines=("default", "he_uniform"))


# --------------------------------------------------------------------------- #
# AutoInitVisualizer: compare() drawn with the shared figure spec
# --------------------------------------------------------------------------- #
def test_visualizer_draws_every_series_and_writes_offline_html(tmp_path):
    from autoinit import AutoInitVisualizer

    model = plain_mlp(depth=2, width=32)
    before = [w.copy() for w in model.get_weights()]
    visualizer = AutoInitVisualizer(baselines=("default", "lecun_normal"), batch_size=64, seed=1)
    fig = visualizer.visualize(model, html_path=tmp_path / "signal.html", title="two layers")

    names = {trace.name for trace in fig.data}
    for label in (
        "AutoInit (predicted)",
        "default (measured)",
        "lecun_normal (measured)",
        "AutoInit (measured)",
    ):
        assert label in names
    assert fig.layout.title.text == "two layers"
    assert fig.layout.yaxis.type == "log"
    assert visualizer.traces["series"] == ["predicted", "default", "lecun_normal", "autoinit"]
    assert "plotly.js v" in (tmp_path / "signal.html").read_text()
    for old, new in zip(before, model.get_weights()):  # a copy was initialized, not the user's model
        np.testing.assert_array_equal(old, new)


def test_visualizer_passes_autoinit_settings_to_the_probe():
    from autoinit.visualize import AutoInitVisualizer

    visualizer = AutoInitVisualizer(
        autoinit_kwargs={"signal_variance": 4.0, "input_data_var": 9.0}, batch_size=256
    )
    fig = visualizer.visualize(plain_mlp(depth=1, width=256), log_y=False)
    dense = by_name(visualizer.traces["layers"])["dense1"]
    assert visualizer.traces["input"]["var"] == 9.0
    assert dense["target"] == 4.0
    assert dense["autoinit"]["var"] == pytest.approx(4.0, rel=0.15)
    assert fig.layout.yaxis.type == "linear"
    with pytest.raises(TypeError, match="input_variance"):
        AutoInitVisualizer(autoinit_kwargs={"input_variance": 2.0})


def test_compare_leaves_the_callers_config_untouched_and_can_be_called_again():
    # Keras pops keys out of configs it deserializes; a pipeline reusing its dict must not notice.
    inputs = keras.Input((6,))
    shared = keras.layers.Dense(6, activation="relu", name="shared")
    outputs = keras.layers.Add()([shared(inputs), shared(shared(inputs))])
    config = json.loads(keras.Model(inputs, outputs, name="reused").to_json())
    before = json.dumps(config, sort_keys=True)
    first = compare(config, batch_size=8)
    assert json.dumps(config, sort_keys=True) == before
    second = compare(config, batch_size=8)
    assert [layer["name"] for layer in first["layers"]] == [layer["name"] for layer in second["layers"]]
    assert first["layers"][-1]["autoinit"] == second["layers"][-1]["autoinit"]


# --------------------------------------------------------------------------- #
# Micro-batches: exact merges, bounded memory, progress
# --------------------------------------------------------------------------- #
def fused_mlp(width: int = 64) -> keras.Model:
    """Dense layers with fused activations, no dropout or batch statistics:
    each example's outputs do not depend on the others in its micro-batch."""
    inputs = keras.Input((32,), name="x")
    y = keras.layers.Dense(width, activation="relu", name="dense1")(inputs)
    y = keras.layers.Dense(width, activation="tanh", name="dense2")(y)
    y = keras.layers.Dense(8, name="head")(y)
    return keras.Model(inputs, y, name="fused_mlp")


@pytest.mark.parametrize("backward", [False, True])
def test_moments_merged_over_micro_batches_equal_the_single_batch_moments(backward):
    model = fused_mlp()
    whole = probe(model, batch_size=64, seed=3, backward=backward, micro_batch=64)
    split = probe(model, batch_size=64, seed=3, backward=backward, micro_batch=7)  # 10 parts of 6 or 7
    assert [r["name"] for r in split] == [r["name"] for r in whole]
    for w, s in zip(whole, split):
        for key in ("mean", "var") + (("grad_var",) if backward and "grad_var" in w else ()):
            assert s[key] == pytest.approx(w[key], rel=1e-5, abs=1e-7), (w["name"], key)
        if "pre_activation" in w:
            for key in ("mean", "var"):
                assert s["pre_activation"][key] == pytest.approx(w["pre_activation"][key], rel=1e-5, abs=1e-7)


def test_merging_is_chans_pairwise_update_of_count_mean_and_variance():
    from autoinit.probe.reducers import MomentSums

    rng = np.random.default_rng(0)
    parts = [rng.normal(5.0, 3.0, size=n) for n in (1, 17, 400, 3)]
    sums = MomentSums()
    for part in parts:
        sums.add([part.size], [[part.mean(), part.var()]])
    whole = np.concatenate(parts)
    np.testing.assert_allclose(sums.moments()[0], [whole.mean(), whole.var()], rtol=1e-12)


def test_one_pass_variance_keeps_three_digits_when_the_mean_is_thirty_standard_deviations():
    import tensorflow as tf

    from autoinit.probe.reducers import Reducer

    x = (30.0 + np.random.default_rng(1).standard_normal((64, 32, 32, 16))).astype("float32")
    reducer = Reducer()
    reducer.add(tf.constant(x))
    rows, sizes = reducer.result()
    mean, var = Reducer.moments(rows.numpy(), Reducer.counts(sizes))[0]
    exact = x.astype(np.float64)
    assert mean == pytest.approx(exact.mean(), rel=1e-6)
    assert var == pytest.approx(exact.var(), rel=1e-3)


def test_the_micro_batch_is_the_largest_whose_estimated_memory_fits_the_budget():
    from autoinit.probe import choose_micro_batch, estimate_probe_memory

    model = conv_stack()
    estimates = [estimate_probe_memory(model, 64, m) for m in (1, 8, 64)]
    assert estimates[0] < estimates[1] < estimates[2]
    budget = (estimates[1] + estimate_probe_memory(model, 64, 9)) // 2
    assert choose_micro_batch(model, 64, budget) == 8
    assert choose_micro_batch(model, 64, 1) == 1  # never below one example
    assert choose_micro_batch(model, 64, 1 << 40) == 64
    # The backward probe keeps what the gradient needs: more per example.
    assert estimate_probe_memory(model, 64, 8, backward=True) > estimates[1]


def test_progress_moves_with_the_micro_batches():
    seen: list[float] = []
    probe(fused_mlp(), batch_size=32, micro_batch=8, progress=seen.append)
    assert {0.25, 0.5, 0.75} <= set(seen) and seen[-1] == 1.0
    assert seen == sorted(seen)


@pytest.mark.parametrize("backward", [False, True])
def test_progress_moves_inside_one_compiled_pass(backward):
    """One micro-batch (the default on a deep net at the default budget) still
    moves the bar: the traced graph reports while it runs."""
    model = zoo.build("preact_resnet56_nobn")
    probe(model, batch_size=8, micro_batch=8, backward=backward)  # traced here; the next call only runs
    seen: list[float] = []
    stages: list[str] = []
    probe(model, batch_size=8, micro_batch=8, backward=backward, progress=seen.append, stage=stages.append)
    assert stages == ["running"]
    inside = [f for f in seen if 0.0 < f < 1.0]
    assert len(set(inside)) >= 10, seen
    assert seen == sorted(seen) and seen[-1] == 1.0
    if backward:  # the forward half reports up to 1/2, the end of the pass the rest
        assert max(inside) <= 0.5


@pytest.mark.parametrize("backward", [False, True])
def test_a_probe_reports_tracing_and_moves_while_tracing_before_the_first_measured_layer(backward):
    events: list = []
    probe(
        zoo.build("preact_resnet56_nobn"),
        batch_size=8,
        backward=backward,
        progress=events.append,
        stage=events.append,
    )
    assert [e for e in events if isinstance(e, str)] == ["tracing", "running"]
    tracing, running = events.index("tracing"), events.index("running")
    assert tracing == 0  # before anything is measured
    traced = events[tracing + 1 : running]  # the layers being traced move the bar
    assert len(set(traced)) >= 10 and max(traced) <= 0.5
    measured = events[running + 1 :]
    assert len(set(measured)) >= 10 and min(measured) >= max(traced)
    fractions = [e for e in events if not isinstance(e, str)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_probe_graphs_run_without_rewrites_on_the_calling_thread_only():
    import tensorflow as tf
    from tensorflow.python.eager import context

    from autoinit.probe.rewrites import without_rewrites

    def rewrites_disabled() -> bool:
        config = tf.compat.v1.ConfigProto()
        config.ParseFromString(context.context().function_call_options.config_proto_serialized)
        return config.graph_options.rewrite_options.disable_meta_optimizer

    before = context.context().function_call_options.config_proto_serialized
    on_gpu = bool(tf.config.list_logical_devices("GPU"))  # measured on CPU only: kept there
    assert not rewrites_disabled()
    with without_rewrites():
        assert rewrites_disabled() is not on_gpu
        elsewhere = []
        thread = threading.Thread(target=lambda: elsewhere.append(rewrites_disabled()))
        thread.start()
        thread.join()
        assert elsewhere == [False]
    assert context.context().function_call_options.config_proto_serialized == before


def test_an_eager_probe_has_nothing_to_trace():
    stages: list[str] = []
    probe(fused_mlp(), batch_size=8, compiled=False, stage=stages.append)
    assert stages == ["running"]


def test_compare_traces_the_probe_once_for_every_series_and_reports_rising_progress():
    from autoinit.probe.program import program_for

    stages: list[tuple[float, str]] = []
    _, model = compare(
        fused_mlp(),
        baselines=("default", "he_normal", "lecun_normal"),
        batch_size=32,
        memory_budget_bytes=1,  # one example per micro-batch: 32 passes per series
        return_model=True,
        progress=lambda fraction, stage: stages.append((fraction, stage)),
    )
    functions = program_for(model, compiled=True)._functions
    assert [f.experimental_get_tracing_count() for f in functions.values()] == [1]
    fractions = [fraction for fraction, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(stages) > 4 * 32  # the bar moves within each series
    # The first series traces the graph (its stage says so), before it measures; no other series traces.
    names = [stage for _, stage in stages]
    tracing = [i for i, name in enumerate(names) if "tracing" in name]
    assert tracing and all(
        name == "probing default initialization (tracing the graph)"
        for name in map(names.__getitem__, tracing)
    )
    assert max(tracing) < names.index("probing he_normal")


def conv_stack(size: int = 128, channels: int = 96) -> keras.Model:
    """Cheap layers with large activations (6 MiB per example each): memory
    that follows the batch shows at once, well above the allocator's noise
    (some 25 MB retained or not from one run to the next)."""
    inputs = keras.Input((size, size, 3), name="image")
    wide = keras.layers.Conv2D(channels, 1, name="expand")(inputs)
    y = keras.layers.Activation("relu", name="relu")(wide)
    y = keras.layers.Activation("tanh", name="tanh")(y)
    y = keras.layers.Add(name="skip")([wide, y])
    y = keras.layers.Activation("sigmoid", name="sigmoid")(y)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(y), name="conv_stack")


_MEASURE_PROBE = """
import json, sys
from pathlib import Path
import keras
sys.path.insert(0, {tests!r})
from test_probe import conv_stack
from autoinit.probe import probe

def kib(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return int(line.split()[1])

model = conv_stack()
probe(model, batch_size=2, micro_batch=2)  # traced once: the graph is not what is measured
Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set
before = kib("VmRSS")
probe(model, batch_size={batch}, micro_batch={micro})
print(json.dumps((kib("VmHWM") - before) * 1024))
"""


def _probe_growth(batch: int, micro: int) -> int:
    import subprocess
    import sys
    from pathlib import Path

    code = _MEASURE_PROBE.format(tests=str(Path(__file__).parent), batch=batch, micro=micro)
    # oneDNN's allocator keeps and fragments freed blocks (some 50-100 MB
    # here, more after more passes): without it the measure sees what the
    # probe holds, not what an allocator caches.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300, env=env
    )
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_probe_memory_follows_the_micro_batch_not_the_batch():
    small = _probe_growth(batch=8, micro=8)
    large_in_parts = _probe_growth(batch=64, micro=8)
    at_once = _probe_growth(batch=32, micro=32)
    # The measure sees the batch when it is run at once (the control)...
    assert at_once > 2.5 * small, (small, at_once)
    # ...and not when the same batch runs in micro-batches of 8.
    assert large_in_parts < 1.5 * small, (small, large_in_parts)


# --------------------------------------------------------------------------- #
# Fused activations: the pre-activation, predicted and measured
# --------------------------------------------------------------------------- #
def test_probe_records_the_pre_activation_of_a_fused_layer_only():
    records = by_name(probe(fused_mlp(), batch_size=256))
    dense1 = records["dense1"]
    pre = dense1["pre_activation"]
    # relu of a zero-mean Gaussian pre-activation: E[relu(z)^2] = Var(z) / 2.
    assert dense1["mean"] ** 2 + dense1["var"] == pytest.approx(
        pre["var"] / 2 + pre["mean"] ** 2 / 2, rel=0.15
    )
    assert "pre_activation" in records["dense2"]
    assert "pre_activation" not in records["head"]  # linear: its output is its pre-activation
    assert "pre_activation" not in records["x"]


def test_traces_carry_pre_activation_moments_against_their_target_for_every_series():
    traces = compare(fused_mlp(width=WIDTH), baselines=("default", "he_normal"), batch_size=256)
    layers = by_name(traces["layers"])
    for name in ("dense1", "dense2"):
        pre = layers[name]["pre_activation"]
        assert set(pre) == {"target", "predicted", "default", "he_normal", "autoinit"}
        assert pre["target"] == layers[name]["target"] == 1.0
        for series in ("predicted", "default", "he_normal", "autoinit"):
            assert set(pre[series]) == {"mean", "var"}
        # AutoInit scales the pre-activation (not the activation's output) to the target.
        second_moment = pre["autoinit"]["mean"] ** 2 + pre["autoinit"]["var"]
        assert second_moment == pytest.approx(1.0, rel=0.15), name
        assert pre["autoinit"]["var"] == pytest.approx(pre["predicted"]["var"], rel=0.15), name
    # The ReLU layer's output reads about 1/2 against the same target: why the view exists.
    assert layers["dense1"]["autoinit"]["var"] < 0.5
    assert "pre_activation" not in layers["head"] and "pre_activation" not in layers["x"]
    assert json.loads(json.dumps(traces)) == traces


def test_compare_checks_its_options_against_the_one_options_model():
    import inspect

    from autoinit.options import InitializeOptions

    defaults = InitializeOptions()
    parameters = inspect.signature(compare).parameters
    assert parameters["batch_size"].default == defaults.probe_batch
    assert parameters["seed"].default == defaults.seed
    assert list(parameters["baselines"].default) == defaults.baselines
    config = plain_mlp(depth=1, width=8).to_json()
    with pytest.raises(AutoInitError, match="`input_var`: Input should be greater than 0"):
        compare(config, input_var=0.0)
    with pytest.raises(AutoInitError, match="`probe_batch`"):
        compare(config, batch_size=10**6)


class _TokensAsRows(keras.layers.Layer):
    """A composite that merges the batch with the tokens (``(-1, features)``),
    as a mixture of experts does, and a tensor led by another axis."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8, name="rows")

    def call(self, x):
        rows = self.dense(keras.ops.reshape(x, (-1, 4)))  # (batch * 6, 8)
        stacked = keras.ops.stack([rows, 2.0 * rows])  # (2, batch * 6, 8): led by a non-batch axis
        return keras.ops.reshape(keras.ops.sum(stacked, axis=0), (-1, 6, 8))


@pytest.mark.parametrize("micro_batch", [None, 3])
def test_a_tensor_with_the_batch_merged_into_another_axis_is_measured_over_all_its_elements(micro_batch):
    """Counted per example from the shape, ``(batch * 6, 8)`` read 6x its variance
    (and an expert bank's output ``(experts, batch * tokens, hidden)`` worse)."""
    inputs = keras.Input((6, 4))
    layer = _TokensAsRows()
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(0).standard_normal((10, 6, 4)).astype("float32")
    measured = {r["name"]: r for r in probe(model, batch_size=10, seed=0, micro_batch=micro_batch)}
    from autoinit.probe.inputs import gaussian_inputs

    x = gaussian_inputs(model, 10, 0)[0]
    rows = np.asarray(layer.dense(x.reshape(-1, 4)), np.float64)
    record = measured[f"{layer.name}/rows"]
    assert record["mean"] == pytest.approx(float(rows.mean()), rel=1e-4, abs=1e-6)
    assert record["var"] == pytest.approx(float(rows.var()), rel=1e-4)
    stacked = [r for name, r in measured.items() if name.startswith(f"{layer.name}/stack")]
    assert stacked and stacked[0]["var"] == pytest.approx(float(np.var(np.stack([rows, 2 * rows]))), rel=1e-4)
