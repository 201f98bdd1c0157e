"""Generate genuine tf.keras 2 model configs for the legacy-converter tests.

Run with the `tf-keras` package installed (a test-only dependency)::

    TF_USE_LEGACY_KERAS=1 python tests/legacy_fixtures.py tests/fixtures/legacy

Each model is written as ``<name>.json``::

    {"config": <model.to_json() parsed>,
     "expected": {"num_params": int,
                  "layers": {"outer/inner": {"class_name": str,
                                             "inbound": [[parent names per node]]}}}}

`expected` is measured on the live tf.keras model, so the tests can check
that the Keras 3 model built from the converted config has the same graph
and the same parameter count. The second mode rebuilds a legacy config
written by `autoinit.legacy.to_legacy_config` and prints what tf.keras made
of it, proving that the mapping back is loadable by Keras 2 users::

    python tests/legacy_fixtures.py --rebuild config.json

This file must never import Keras 3: it runs in its own process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_keras as tfk  # noqa: E402  (environment must be set first)
from tf_keras import layers as L  # noqa: E402


class ScaleByTwo(L.Layer):
    """A user-defined layer: its config names a module outside Keras."""

    def call(self, inputs):
        return inputs * 2.0


def codeepneat_model() -> tfk.Model:
    """CoDeepNEAT-style: a Functional module used twice inside another
    module, itself used twice, plus a nested Sequential called twice."""
    cell_in = tfk.Input((8, 8, 4), name="cell_in")
    x = L.Conv2D(
        4, 3, padding="same", groups=2, name="cell_conv", kernel_regularizer=tfk.regularizers.L2(1e-4)
    )(cell_in)
    x = L.BatchNormalization(name="cell_bn", renorm=True)(x)
    x = L.ReLU(name="cell_relu")(x)
    cell = tfk.Model(cell_in, x, name="cell")

    block_in = tfk.Input((8, 8, 4), name="block_in")
    y = cell(block_in)
    y = cell(y)
    y = L.Add(name="block_add")([y, block_in])
    y = L.SeparableConv2D(4, 3, padding="same", name="block_sep")(y)
    y = L.DepthwiseConv2D(3, padding="same", name="block_dw")(y)
    y = L.LeakyReLU(alpha=0.2, name="block_leaky")(y)
    block = tfk.Model(block_in, y, name="block")

    head = tfk.Sequential(
        [tfk.Input((4,), name="head_in"), L.Dense(4, name="head_dense"), L.ELU(name="head_elu")],
        name="head",
    )

    inp = tfk.Input((8, 8, 3), name="image")
    z = L.Conv2D(4, 1, name="stem")(inp)
    z = L.SpatialDropout2D(0.1, name="stem_sdrop")(z)
    z = block(z)
    z = block(z)
    z = L.ZeroPadding2D(1, name="pad")(z)
    z = L.Cropping2D(1, name="crop")(z)
    z = L.Conv2DTranspose(4, 3, strides=2, padding="same", name="up_conv")(z)
    z = L.MaxPooling2D(name="max_pool")(z)
    z = L.UpSampling2D(name="upsample")(z)
    z = L.AveragePooling2D(name="avg_pool")(z)
    z = L.GaussianNoise(0.1, name="noise")(z)
    z = L.GlobalAveragePooling2D(name="gap")(z)
    z = head(z)
    z = head(z)
    out = L.Dense(10, activation="softmax", name="logits")(z)
    return tfk.Model(inp, out, name="codeepneat")


def text_model() -> tfk.Model:
    """Embedding, SpatialDropout1D, Conv1D, recurrent layers and attention."""
    tokens = tfk.Input((20,), dtype="int32", name="tokens")
    x = L.Embedding(100, 8, input_length=20, name="embed")(tokens)
    x = L.SpatialDropout1D(0.2, name="sdrop")(x)
    x = L.Conv1D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = L.MaxPooling1D(2, name="pool")(x)
    x = L.Bidirectional(L.GRU(8, return_sequences=True, name="gru"), name="bigru")(x)
    x = L.LSTM(8, return_sequences=True, name="lstm", recurrent_initializer="orthogonal")(x)
    att = L.MultiHeadAttention(2, 4, name="mha")(x, x, key=x)
    x = L.Add(name="residual")([x, att])
    x = L.LayerNormalization(name="ln")(x)
    x = L.Dropout(0.1, noise_shape=(None, 1, 8), name="drop")(x, training=False)
    seq = L.SimpleRNN(4, name="rnn")(x)
    pooled = L.GlobalMaxPooling1D(name="gmp")(x)
    x = L.Concatenate(name="concat")([seq, pooled])
    out = L.Dense(1, activation="sigmoid", name="out")(x)
    return tfk.Model(tokens, out, name="text")


def gated_model() -> tfk.Model:
    """Two inputs, a shared layer, gates and every merge layer, two outputs."""
    a = tfk.Input((16,), name="a")
    b = tfk.Input((16,), name="b")
    shared = L.Dense(
        16,
        name="shared",
        kernel_initializer="he_normal",
        kernel_constraint=tfk.constraints.MaxNorm(3.0),
        bias_regularizer=tfk.regularizers.L1L2(1e-5, 1e-4),
    )
    sa, sb = shared(a), shared(b)
    gate = L.Dense(
        16, activation="sigmoid", name="gate", kernel_initializer=tfk.initializers.RandomNormal(0.0, 0.05)
    )(sa)
    branch = L.Dense(
        16,
        activation="tanh",
        name="branch",
        kernel_initializer=tfk.initializers.VarianceScaling(2.0, "fan_avg", "uniform"),
    )(sb)
    gated = L.Multiply(name="gated")([gate, branch])
    both = L.Concatenate(name="both")([a, b])
    both = L.Dense(
        16,
        name="squeeze",
        kernel_initializer="lecun_uniform",
        bias_initializer=tfk.initializers.Constant(0.1),
        kernel_constraint=tfk.constraints.NonNeg(),
    )(both)
    total = L.Add(name="total")([gated, both, sa])
    diff = L.Subtract(name="diff")([sa, sb])
    mean = L.Average(name="mean")([total, diff])
    hi = L.Maximum(name="hi")([mean, gated])
    lo = L.Minimum(name="lo")([mean, gated])
    x = L.Concatenate(name="hilo")([hi, lo])
    x = L.BatchNormalization(name="bn")(x)
    x = L.Activation("swish", name="act")(x)
    x = L.AlphaDropout(0.1, name="alpha_drop")(x)
    x = L.GaussianDropout(0.1, name="gauss_drop")(x)
    y1 = L.Dense(1, name="score", kernel_constraint=tfk.constraints.UnitNorm())(x)
    y2 = L.Dense(3, name="probs", kernel_initializer="orthogonal")(x)
    y2 = L.Softmax(name="softmax")(y2)
    return tfk.Model([a, b], [y1, y2], name="gated")


def shapes_model() -> tfk.Model:
    """1D and 3D variants of convolution, pooling and reshaping layers."""
    seq_in = tfk.Input((16, 4), name="seq_in")
    s = L.Conv1DTranspose(4, 3, padding="same", name="tconv1d")(seq_in)
    s = L.SeparableConv1D(4, 3, padding="same", name="sep1d")(s)
    s = L.DepthwiseConv1D(3, padding="same", name="dw1d")(s)
    s = L.ZeroPadding1D(1, name="pad1d")(s)
    s = L.Cropping1D(1, name="crop1d")(s)
    s = L.UpSampling1D(2, name="up1d")(s)
    s = L.AveragePooling1D(2, name="avg1d")(s)
    s = L.GlobalAveragePooling1D(name="gap1d")(s)
    s = L.RepeatVector(3, name="repeat")(s)
    s = L.Permute((2, 1), name="permute")(s)
    s = L.Flatten(name="flat1d")(s)

    vol_in = tfk.Input((4, 4, 4, 2), name="vol_in")
    v = L.Conv3D(2, 3, padding="same", name="conv3d")(vol_in)
    v = L.Conv3DTranspose(2, 3, padding="same", name="tconv3d")(v)
    v = L.ZeroPadding3D(1, name="pad3d")(v)
    v = L.Cropping3D(1, name="crop3d")(v)
    v = L.UpSampling3D(2, name="up3d")(v)
    v = L.MaxPooling3D(2, name="max3d")(v)
    v = L.AveragePooling3D(2, name="avg3d")(v)
    v = L.SpatialDropout3D(0.1, name="sdrop3d")(v)
    v = L.GlobalMaxPooling3D(name="gmp3d")(v)
    v = L.Reshape((1, 2), name="reshape")(v)
    v = L.Flatten(name="flat3d")(v)
    v = L.ThresholdedReLU(0.5, name="thresh")(v)
    x = L.Concatenate(name="join")([s, v])
    x = L.PReLU(name="prelu")(x)
    return tfk.Model([seq_in, vol_in], x, name="shapes")


def sequential_model() -> tfk.Sequential:
    """A Sequential model whose first layer carries `input_shape`."""
    return tfk.Sequential(
        [
            L.Conv2D(8, 3, activation="relu", input_shape=(12, 12, 1), name="conv"),
            L.MaxPooling2D(name="pool"),
            L.Dropout(0.25, name="drop"),
            L.Flatten(name="flat"),
            L.Dense(16, activation="relu", name="hidden"),
            L.Dense(10, activation="softmax", name="probs"),
        ],
        name="mnist_like",
    )


def lambda_model() -> tfk.Model:
    """Holds Python bytecode: the converter must refuse it."""
    inp = tfk.Input((4,), name="x")
    doubled = L.Lambda(lambda t: t * 2.0, name="double")(inp)
    return tfk.Model(inp, L.Dense(2, name="dense")(doubled), name="with_lambda")


def custom_layer_model() -> tfk.Model:
    """Holds a class from outside Keras: refused unless custom_objects has it."""
    inp = tfk.Input((4,), name="x")
    scaled = ScaleByTwo(name="scale")(inp)
    return tfk.Model(inp, L.Dense(2, name="dense")(scaled), name="with_custom")


MODELS: dict[str, Callable[[], tfk.Model]] = {
    "codeepneat": codeepneat_model,
    "text": text_model,
    "gated": gated_model,
    "shapes": shapes_model,
    "sequential": sequential_model,
    "lambda": lambda_model,
    "custom_layer": custom_layer_model,
}


def graph_summary(model: tfk.Model, prefix: str = "") -> dict[str, Any]:
    """For each layer (nested ones as "outer/inner"): class name and, per
    node of this model, the sorted names of the layers feeding it."""
    summary: dict[str, Any] = {}
    own_nodes = getattr(model, "_network_nodes", set())
    for layer in model.layers:
        inbound = []
        for index, node in enumerate(layer._inbound_nodes):
            if f"{layer.name}_ib-{index}" not in own_nodes:
                continue
            parents = sorted(parent.layer.name for parent in node.parent_nodes)
            if parents:
                inbound.append(parents)
        summary[prefix + layer.name] = {
            "class_name": type(layer).__name__,
            "inbound": inbound,
        }
        if isinstance(layer, tfk.Model):
            summary.update(graph_summary(layer, f"{prefix}{layer.name}/"))
    return summary


def generate(out_dir: Path) -> list[Path]:
    """Write one fixture per model in MODELS; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in MODELS.items():
        tfk.backend.clear_session()
        model = build()
        payload = {
            "config": json.loads(model.to_json()),
            "expected": {
                "num_params": int(model.count_params()),
                "layers": graph_summary(model),
            },
        }
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def initializer_classes(model: tfk.Model, prefix: str = "") -> dict[str, str]:
    """Map "layer/attribute" to the class name of every built initializer."""
    weights = {
        "kernel_initializer": "kernel",
        "bias_initializer": "bias",
        "embeddings_initializer": "embeddings",
        "depthwise_initializer": "depthwise_kernel",
        "pointwise_initializer": "pointwise_kernel",
    }
    found = {}
    for layer in model.layers:
        owners = [layer]
        if isinstance(layer, L.Bidirectional):
            owners = [layer.forward_layer, layer.backward_layer]
        for owner in owners:
            cell = getattr(owner, "cell", owner)  # RNN weights live in the cell
            for attr, weight in weights.items():
                init = getattr(cell, attr, None)
                # SeparableConv inherits an unused kernel_initializer: skip
                # initializers of weights the layer does not have.
                if init is not None and getattr(cell, weight, None) is not None:
                    found[f"{prefix}{owner.name}.{attr}"] = type(init).__name__
        if isinstance(layer, tfk.Model):
            found.update(initializer_classes(layer, f"{prefix}{layer.name}/"))
    return found


def rebuild(config_path: Path) -> dict[str, Any]:
    """Rebuild a legacy config with tf.keras and describe the result."""
    text = config_path.read_text()
    model = tfk.models.model_from_json(text)
    return {
        "num_params": int(model.count_params()),
        "initializers": initializer_classes(model),
        "first_kernel_config": next(
            (
                layer.kernel_initializer.get_config()
                for layer in model.layers
                if getattr(layer, "kernel_initializer", None) is not None
            ),
            None,
        ),
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rebuild":
        print(json.dumps(rebuild(Path(sys.argv[2]))))
    elif len(sys.argv) == 2:
        for written_path in generate(Path(sys.argv[1])):
            print(written_path)
    else:
        sys.exit(__doc__)
