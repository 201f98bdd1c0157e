"""Specifications for composite layers and subclassed models
(`autoinit.keras_adapter.composite`): AutoInit reaches every weighted
sublayer, whatever layer or model holds it, and the probes measure inside.

Plain Keras only (the keras_hub backbones are in `test_hub_models.py`).
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from band import out_of_band, ratios_of  # noqa: E402
from composites import Net, functional_with_blocks  # noqa: E402

from autoinit import AutoInit, ModelConfigError, UnsupportedLayerWarning  # noqa: E402
from autoinit.probe import probe  # noqa: E402

L = keras.layers


def _weighted_leaves(model: keras.Model) -> set[str]:
    return {
        layer.name
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, (L.Dense,))
    }


def test_every_dense_inside_a_composite_layer_is_scaled_and_named_by_its_path():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        model, estimates = AutoInit(seed=1).initialize_model(functional_with_blocks(), return_estimates=True)
    scaled = {r["name"] for r in estimates if r["target"] is not None}
    assert {"block_0/up", "block_0/down", "block_2/down", "gated/gate", "gated/value"} <= scaled
    assert {r["layer_name"] for r in estimates if r["target"] is not None} >= _weighted_leaves(model)
    assert "block_1/add" in {r["name"] for r in estimates}  # the residual add is an op node inside


@pytest.mark.parametrize("seed", [1, 2])
def test_composite_layers_are_in_band_measured_inside(seed):
    model, estimates = AutoInit(seed=seed).initialize_model(functional_with_blocks(), return_estimates=True)
    ratios = ratios_of(model, estimates, seed=seed)
    assert {"block_0/up", "gated/value"} <= set(ratios)
    assert not out_of_band(ratios), out_of_band(ratios)


def test_a_built_subclassed_model_is_traced_initialized_and_probed():
    net = Net()
    net(np.zeros((2, 32), "float32"))  # built by a first call
    before = {v.path: v.numpy().copy() for v in net.weights}
    model, estimates = AutoInit(seed=3).initialize_model(net, return_estimates=True)
    assert model is net
    scaled = {r["name"] for r in estimates if r["target"] is not None}
    assert {"stem", "block_0/up", "block_2/down", "gated/gate", "head"} <= scaled
    changed = [
        v.path for v in net.weights if "kernel" in v.path and not np.allclose(before[v.path], v.numpy())
    ]
    assert len(changed) == len([v for v in net.weights if "kernel" in v.path])
    ratios = ratios_of(model, estimates, seed=3)
    assert not out_of_band(ratios), out_of_band(ratios)
    measured = {r["name"] for r in probe(model, batch_size=32, seed=0)}
    assert "block_1/up" in measured


def test_the_same_architecture_and_seed_give_identical_weights_through_composites():
    a = AutoInit(seed=5).initialize_model(functional_with_blocks())
    b = AutoInit(seed=5).initialize_model(functional_with_blocks())
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_a_subclassed_model_never_built_is_refused_clearly():
    with pytest.raises(ModelConfigError, match="not built"):
        AutoInit().initialize_model(Net())


def test_a_layer_whose_call_cannot_be_traced_stays_one_node_and_says_so():
    class Opaque(L.Layer):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.inner = L.Dense(8)

        def build(self, input_shape):
            self.inner.build(input_shape)

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], 8)

        def call(self, x):
            if isinstance(x, keras.KerasTensor):
                raise TypeError("runs on concrete tensors only")
            return self.inner(x)

    x = keras.Input((8,))
    model = keras.Model(x, Opaque(name="opaque")(x))
    with pytest.warns(UnsupportedLayerWarning, match="opaque"):
        estimates = AutoInit(seed=0).estimate(model)
    assert [r["estimator"] for r in estimates[1:]] == ["pass-through"]


def test_weights_a_composite_uses_as_constants_are_named_in_a_warning():
    class WithTable(L.Layer):
        """Adds a learned per-position table looked up on fixed ids (as ViT does)."""

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.proj = L.Dense(8, name="proj")
            self.table = L.Embedding(4, 8, name="table")

        def build(self, input_shape):
            self.proj.build(input_shape)
            self.table.build((4,))

        def call(self, x):
            return self.proj(x) + self.table(keras.ops.arange(4))

    x = keras.Input((4, 8))
    model = keras.Model(x, WithTable(name="with_table")(x))
    with pytest.warns(UnsupportedLayerWarning, match=r"with_table.*\['table'\] run on constants"):
        estimates = AutoInit(seed=0).estimate(model)
    assert "with_table/proj" in {r["name"] for r in estimates}


def test_names_inside_a_composite_do_not_depend_on_what_the_process_built_before():
    class Block(L.Layer):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.dense = L.Dense(8, name="proj")
            self.drop = L.Dropout(0.1)  # named by Keras' process-wide counter

        def call(self, x):
            return x + self.drop(self.dense(x))

    def names() -> list[str]:
        x = keras.Input((8,))
        return [r["name"] for r in AutoInit(seed=0).estimate(keras.Model(x, Block(name="blk")(x)))][1:]

    first = names()
    L.Dropout(0.5), L.Dropout(0.5)  # moves Keras' counter
    assert names() == first
    assert {"blk/proj", "blk/dropout", "blk/add"} <= set(first)


def test_blocks_alike_are_traced_at_an_open_batch_once(monkeypatch):
    """A block whose call reads the batch size cannot be traced with an open
    batch; once one block of a kind failed so, the others alike go straight to
    a trace at a fixed batch (each attempt is a whole symbolic trace)."""
    from autoinit.keras_adapter import composite

    class BatchReader(L.Layer):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.dense = L.Dense(8, name="proj")

        def call(self, x):
            h = self.dense(x)
            return x + keras.ops.reshape(h, (keras.ops.shape(x)[0], 8))

    traced, trace = [], composite._trace
    monkeypatch.setattr(composite, "_trace", lambda *a: traced.append(a[2]) or trace(*a))
    x = keras.Input((8,))
    model = keras.Model(x, BatchReader(name="b1")(BatchReader(name="b0")(x)))
    estimates = AutoInit(seed=0).estimate(model)
    assert {"b0/proj", "b1/proj"} <= {r["name"] for r in estimates if r["target"] is not None}
    assert traced == [None, 1, 1], traced  # b0: open (fails), fixed; b1: fixed only


def test_trailing_none_outputs_are_dropped_and_others_kept():
    from autoinit.keras_adapter.composite import without_trailing_none

    x, y = keras.KerasTensor((2, 3)), keras.KerasTensor((2, 4))
    assert without_trailing_none((x, None)) is x
    assert without_trailing_none((x, y, None, None)) == [x, y]
    assert without_trailing_none((x, y)) == (x, y)  # as it was
    assert without_trailing_none((None, x)) == (None, x)  # a leading None stays: Keras refuses it
    assert without_trailing_none(None) is None


def test_a_trace_that_raises_leaves_keras_as_it_found_it():
    from keras.src.ops.node import Node

    from autoinit.keras_adapter.composite import _tracing_specs

    before = (Node.__init__, keras.layers.MultiHeadAttention.compute_output_spec)
    einsum_own = "compute_output_spec" in keras.layers.EinsumDense.__dict__
    with pytest.raises(RuntimeError), _tracing_specs():
        assert Node.__init__ is not before[0]  # patched while tracing
        raise RuntimeError("user code failed")
    assert (Node.__init__, keras.layers.MultiHeadAttention.compute_output_spec) == before
    assert ("compute_output_spec" in keras.layers.EinsumDense.__dict__) == einsum_own
