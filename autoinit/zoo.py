"""The paper's models as Keras 3 builders: the zoo.

Every builder returns a built, *uninitialized* Functional ``keras.Model``
(its weights are whatever the layers' own initializers drew: Keras defaults
unless the paper says otherwise) whose ``name`` is its registry name. Only
stock Keras layers are used (no ``Lambda``, no custom classes), so every
config round-trips through ``model.to_json()`` and the service's allow-list.
Layers get explicit, stable names, so traces of two builds line up.

Example:

    from autoinit import zoo
    model = zoo.build("preact_resnet56_nobn")
    [entry["name"] for entry in zoo.list_models()]
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import keras
from keras import layers

from autoinit.errors import ModelConfigError

__all__ = [
    "all_cnn_c",
    "preact_resnet",
    "preact_resnet56",
    "preact_resnet164",
    "preact_resnet812",
    "resnet_stage_blocks",
    "transformer_encoder",
    "text_cnn",
    "text_rnn",
    "codeepneat_net",
    "mlp",
    "ZOO",
    "list_models",
    "build",
    "bert_tiny",
    "gpt2_tiny",
    "vit_tiny",
    "HUB_ZOO",
    "hub_available",
    "list_hub_models",
    "build_hub",
]


# --------------------------------------------------------------------------
# All-CNN-C (Springenberg et al. 2015), the paper's Section 4 network.
# --------------------------------------------------------------------------


def all_cnn_c(
    activation: str = "relu",
    dropout_rate: float = 0.5,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    input_dropout: float = 0.2,
) -> keras.Model:
    """All-CNN-C: nine convolutions, no pooling layers, global average at the end.

    Activations are separate ``Activation`` layers (the paper's Fig. 2 plots
    them as layers of their own); the last 1x1 convolution feeds the global
    average pool and softmax directly. Weights use Keras' default Glorot
    uniform, the paper's baseline.

    Args:
        activation: any Keras activation name (``"relu"``, ``"selu"``, ...).
        dropout_rate: rate of the two Dropout layers after each stride-2 conv.
        input_shape: image shape ``(height, width, channels)``.
        num_classes: classes of the softmax output.
        input_dropout: rate of the Dropout applied to the input image.
    """
    # (filters, kernel, strides, padding) of conv1..conv9.
    convs = [
        (96, 3, 1, "same"), (96, 3, 1, "same"), (96, 3, 2, "same"),
        (192, 3, 1, "same"), (192, 3, 1, "same"), (192, 3, 2, "same"),
        (192, 3, 1, "valid"), (192, 1, 1, "valid"), (num_classes, 1, 1, "valid"),
    ]  # fmt: skip
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Dropout(input_dropout, name="input_dropout")(inputs)
    for i, (filters, kernel, strides, padding) in enumerate(convs, start=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, name=f"conv{i}")(x)
        if i < len(convs):
            x = layers.Activation(activation, name=f"activation{i}")(x)
        if i in (3, 6):
            x = layers.Dropout(dropout_rate, name=f"dropout{i // 3}")(x)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="all_cnn_c")


# --------------------------------------------------------------------------
# Pre-activation ResNets for CIFAR (He et al. 2016b, "Identity mappings").
# --------------------------------------------------------------------------

_STAGE_WIDTHS = (16, 32, 64)
_BOTTLENECK_EXPANSION = 4


def resnet_stage_blocks(depth: int, block: str = "auto") -> tuple[str, int]:
    """Return ``(block, n)``: the block type and the number of blocks per stage.

    A CIFAR ResNet has one stem conv, three stages of ``n`` blocks and one
    Dense layer: ``depth = 6n + 2`` with basic blocks (two 3x3 convs) and
    ``depth = 9n + 2`` with bottleneck blocks (1x1, 3x3, 1x1). Depths such as
    56, 164 and 812 fit both formulas, so ``block="auto"`` follows He et al.:
    basic blocks below depth 164, bottleneck blocks from 164 on
    (ResNet-56: basic, n=9; ResNet-164: bottleneck, n=18; ResNet-812: n=90).

    Raises:
        ValueError: unknown ``block``, or ``depth`` not of the block's form.
    """
    if block not in ("auto", "basic", "bottleneck"):
        raise ValueError(f"`block` should be one of 'auto', 'basic', 'bottleneck'. Received: block={block!r}")
    if block == "auto":
        block = "bottleneck" if depth >= 164 else "basic"
    convs_per_block = 2 if block == "basic" else 3
    per_stage_unit = 3 * convs_per_block  # 6 for basic, 9 for bottleneck
    if not isinstance(depth, int) or depth < per_stage_unit + 2 or (depth - 2) % per_stage_unit:
        raise ValueError(
            f"A pre-activation ResNet with {block} blocks needs depth = "
            f"{per_stage_unit}n + 2 with n >= 1 (e.g. "
            f"{'20, 56, 110' if block == 'basic' else '164, 812, 1001'}). "
            f"Received: depth={depth!r}"
        )
    return block, (depth - 2) // per_stage_unit


def _bn_relu(x: Any, name: str, batch_norm: bool) -> Any:
    """Pre-activation: BatchNormalization (unless disabled) then ReLU."""
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _preact_block(
    x: Any,
    filters: int,
    strides: int,
    bottleneck: bool,
    batch_norm: bool,
    initializer: str,
    name: str,
) -> Any:
    """One residual unit: ``x + F(x)`` with F = (BN -> ReLU -> conv) repeated.

    The shortcut is the identity when shapes match; otherwise a 1x1 conv of
    the pre-activated input (as in He et al. 2016b).
    """

    def conv(h: Any, out: int, kernel: int, stride: int, suffix: str) -> Any:
        return layers.Conv2D(
            out, kernel, strides=stride, padding="same",
            kernel_initializer=initializer, name=f"{name}_{suffix}",
        )(h)  # fmt: skip

    out_filters = filters * _BOTTLENECK_EXPANSION if bottleneck else filters
    pre = _bn_relu(x, f"{name}_preact", batch_norm)
    if bottleneck:
        h = conv(pre, filters, 1, 1, "conv1")
        h = conv(_bn_relu(h, f"{name}_act2", batch_norm), filters, 3, strides, "conv2")
        h = conv(_bn_relu(h, f"{name}_act3", batch_norm), out_filters, 1, 1, "conv3")
    else:
        h = conv(pre, filters, 3, strides, "conv1")
        h = conv(_bn_relu(h, f"{name}_act2", batch_norm), filters, 3, 1, "conv2")
    if strides == 1 and x.shape[-1] == out_filters:
        shortcut = x
    else:
        shortcut = conv(pre, out_filters, 1, strides, "shortcut")
    return layers.Add(name=f"{name}_add")([shortcut, h])


def preact_resnet(
    depth: int = 56,
    batch_norm: bool = True,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    initializer: str = "he_normal",
    block: str = "auto",
) -> keras.Model:
    """Pre-activation ResNet for CIFAR (He et al. 2016b), widths 16/32/64.

    Stem 3x3 conv, three stages of residual units (stride 2 at the first unit
    of stages 2 and 3), then BN -> ReLU -> global average pool -> softmax
    Dense. Bottleneck units output 4x their width (64/128/256).

    Args:
        depth: ``6n + 2`` (basic) or ``9n + 2`` (bottleneck); see
            :func:`resnet_stage_blocks` for how ``block="auto"`` chooses.
        batch_norm: ``False`` removes every BatchNormalization layer (the
            paper's unnormalized variant); the model name gains ``_nobn``.
        input_shape: image shape ``(height, width, channels)``.
        num_classes: classes of the softmax output.
        initializer: kernel initializer of every conv and the Dense layer
            (the paper's default: He normal).
        block: ``"auto"``, ``"basic"`` or ``"bottleneck"``.

    Raises:
        ValueError: ``depth`` does not fit the block type.
    """
    block, n = resnet_stage_blocks(depth, block)
    bottleneck = block == "bottleneck"
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(_STAGE_WIDTHS[0], 3, padding="same", kernel_initializer=initializer, name="stem_conv")(
        inputs
    )
    for stage, filters in enumerate(_STAGE_WIDTHS, start=1):
        for unit in range(1, n + 1):
            strides = 2 if stage > 1 and unit == 1 else 1
            x = _preact_block(
                x, filters, strides, bottleneck, batch_norm, initializer,
                name=f"stage{stage}_unit{unit}",
            )  # fmt: skip
    x = _bn_relu(x, "final", batch_norm)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
    outputs = layers.Dense(
        num_classes, activation="softmax", kernel_initializer=initializer, name="predictions"
    )(x)
    name = f"preact_resnet{depth}" + ("" if batch_norm else "_nobn")
    return keras.Model(inputs, outputs, name=name)


def preact_resnet56(**kwargs: Any) -> keras.Model:
    """ResNet-56: basic blocks, n = 9 (55 convs + 2 projections + Dense)."""
    return preact_resnet(depth=56, **kwargs)


def preact_resnet164(**kwargs: Any) -> keras.Model:
    """ResNet-164: bottleneck blocks, n = 18 (163 convs + 3 projections + Dense)."""
    return preact_resnet(depth=164, **kwargs)


def preact_resnet812(**kwargs: Any) -> keras.Model:
    """ResNet-812: bottleneck blocks, n = 90 (811 convs + 3 projections + Dense)."""
    return preact_resnet(depth=812, **kwargs)


# --------------------------------------------------------------------------
# Language models (CoDeepNEAT's Wikipedia Toxicity task used Embedding,
# SpatialDropout1D, Conv1D and recurrent layers; Table 1 of the paper).
# --------------------------------------------------------------------------


def transformer_encoder(
    seq_len: int = 32,
    vocab_size: int = 1000,
    d_model: int = 64,
    num_heads: int = 4,
    ff_dim: int = 128,
    num_blocks: int = 2,
    num_classes: int = 2,
    use_positions: bool = False,
) -> keras.Model:
    """Post-norm Transformer encoder classifier over token ids.

    Each block: self-attention -> Add -> LayerNorm -> Dense(ff_dim, gelu)
    -> Dense(d_model) -> Add -> LayerNorm. Then mean over positions and a
    softmax Dense.

    Positions: stock Keras has no position-embedding layer and the zoo
    refuses ``Lambda``, so by default the model has no positional encoding
    (attention is then permutation-equivariant). With
    ``use_positions=True`` the model takes a second integer input
    ``positions`` (pass ``0..seq_len-1``), embedded and added to the tokens.

    Raises:
        ValueError: ``d_model`` is not divisible by ``num_heads``.
    """
    if d_model % num_heads:
        raise ValueError(
            "`d_model` should be divisible by `num_heads`. "
            f"Received: d_model={d_model}, num_heads={num_heads}"
        )
    tokens = keras.Input(shape=(seq_len,), dtype="int32", name="tokens")
    inputs = [tokens]
    x = layers.Embedding(vocab_size, d_model, name="token_embedding")(tokens)
    if use_positions:
        positions = keras.Input(shape=(seq_len,), dtype="int32", name="positions")
        inputs.append(positions)
        p = layers.Embedding(seq_len, d_model, name="position_embedding")(positions)
        x = layers.Add(name="embedding_add")([x, p])
    for i in range(1, num_blocks + 1):
        attention = layers.MultiHeadAttention(
            num_heads, key_dim=d_model // num_heads, name=f"block{i}_attention"
        )(x, x)
        x = layers.Add(name=f"block{i}_attention_add")([x, attention])
        x = layers.LayerNormalization(name=f"block{i}_attention_norm")(x)
        h = layers.Dense(ff_dim, activation="gelu", name=f"block{i}_ff1")(x)
        h = layers.Dense(d_model, name=f"block{i}_ff2")(h)
        x = layers.Add(name=f"block{i}_ff_add")([x, h])
        x = layers.LayerNormalization(name=f"block{i}_ff_norm")(x)
    x = layers.GlobalAveragePooling1D(name="global_average_pooling")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs if use_positions else tokens, outputs, name="transformer_encoder")


def text_cnn(
    seq_len: int = 64,
    vocab_size: int = 2000,
    embed_dim: int = 64,
    filters: int = 64,
    num_classes: int = 2,
    spatial_dropout: float = 0.2,
    dropout: float = 0.5,
) -> keras.Model:
    """Kim-style text CNN: parallel Conv1D branches (kernels 3, 4, 5), each
    max-pooled over time, concatenated, dropped out, softmax Dense."""
    tokens = keras.Input(shape=(seq_len,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embed_dim, name="embedding")(tokens)
    x = layers.SpatialDropout1D(spatial_dropout, name="spatial_dropout")(x)
    branches = []
    for kernel in (3, 4, 5):
        h = layers.Conv1D(filters, kernel, activation="relu", name=f"conv_k{kernel}")(x)
        branches.append(layers.GlobalMaxPooling1D(name=f"max_pool_k{kernel}")(h))
    x = layers.Concatenate(name="concatenate")(branches)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(tokens, outputs, name="text_cnn")


def text_rnn(
    seq_len: int = 64,
    vocab_size: int = 2000,
    embed_dim: int = 64,
    units: int = 64,
    num_classes: int = 2,
    spatial_dropout: float = 0.2,
) -> keras.Model:
    """Recurrent text classifier: Embedding -> SpatialDropout1D ->
    bidirectional GRU (full sequence) -> LSTM (last state) -> softmax Dense."""
    tokens = keras.Input(shape=(seq_len,), dtype="int32", name="tokens")
    x = layers.Embedding(vocab_size, embed_dim, name="embedding")(tokens)
    x = layers.SpatialDropout1D(spatial_dropout, name="spatial_dropout")(x)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True, name="gru"), name="bidirectional_gru")(
        x
    )
    x = layers.LSTM(units, name="lstm")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(tokens, outputs, name="text_rnn")


# --------------------------------------------------------------------------
# A CoDeepNEAT-style network (Section 6): a blueprint whose nodes are modules.
# --------------------------------------------------------------------------

# (module activation, module dropout, hidden Dense width), picked by `seed`.
_CODEEPNEAT_VARIANTS = (("relu", 0.25, 64), ("elu", 0.1, 128), ("swish", 0.4, 32))


def _residual_module(shape: tuple[int, ...], activation: str, dropout: float, name: str) -> keras.Model:
    """A CoDeepNEAT module: Conv2D -> Dropout -> Conv2D, plus a skip Add.

    Output shape equals input shape, so one module can be chained with itself.
    """
    inputs = keras.Input(shape=shape, name=f"{name}_input")
    h = layers.Conv2D(shape[-1], 3, padding="same", activation=activation, name="conv1")(inputs)
    h = layers.Dropout(dropout, name="dropout")(h)
    h = layers.Conv2D(shape[-1], 3, padding="same", activation=activation, name="conv2")(h)
    outputs = layers.Add(name="skip_add")([inputs, h])
    return keras.Model(inputs, outputs, name=name)


def codeepneat_net(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    seed: int = 0,
    channels: int = 16,
) -> keras.Model:
    """A multi-branch network of the kind CoDeepNEAT evolves for MNIST.

    Blueprint: stem conv -> module -> the *same* module again (a nested
    Model called twice, sharing weights); beside it a gated branch
    sigmoid-conv * tanh-conv (Multiply); the second module output and the
    gate are summed (Add), concatenated with the first module output
    (Concatenate), max-pooled, flattened, and classified by two Dense layers.

    ``seed`` picks one of three fixed variants (module activation, dropout,
    hidden width); the topology is the same for every seed.
    """
    activation, dropout, hidden = _CODEEPNEAT_VARIANTS[seed % len(_CODEEPNEAT_VARIANTS)]
    inputs = keras.Input(shape=input_shape, name="image")
    stem = layers.Conv2D(channels, 3, padding="same", activation="relu", name="stem_conv")(inputs)
    module = _residual_module(tuple(stem.shape[1:]), activation, dropout, name="module")
    first = module(stem)
    second = module(first)
    gate = layers.Conv2D(channels, 1, activation="sigmoid", name="gate_conv")(stem)
    value = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="value_conv")(stem)
    gated = layers.Multiply(name="gate_multiply")([gate, value])
    x = layers.Add(name="merge_add")([second, gated])
    x = layers.Concatenate(name="merge_concatenate")([x, first])
    x = layers.MaxPooling2D(2, name="max_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden, activation=activation, name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="codeepneat")


# --------------------------------------------------------------------------
# A plain MLP, for sweeping activation functions (Section 7's use case).
# --------------------------------------------------------------------------


def mlp(activation: str = "relu", depth: int = 8, width: int = 256, input_dim: int = 64) -> keras.Model:
    """``depth`` Dense layers of ``width`` units, each with a fused activation.

    Output shape is ``(batch, width)``: there is no classifier head, so every
    layer is the same kind and the signal can be followed through all of them.
    """
    inputs = keras.Input(shape=(input_dim,), name="features")
    x = inputs
    for i in range(1, depth + 1):
        x = layers.Dense(width, activation=activation, name=f"dense{i}")(x)
    return keras.Model(inputs, x, name="mlp")


# --------------------------------------------------------------------------
# The registry.
# --------------------------------------------------------------------------

ZOO: dict[str, Callable[..., keras.Model]] = {
    "all_cnn_c": all_cnn_c,
    "preact_resnet56": preact_resnet56,
    "preact_resnet56_nobn": functools.partial(preact_resnet56, batch_norm=False),
    "preact_resnet164": preact_resnet164,
    "preact_resnet164_nobn": functools.partial(preact_resnet164, batch_norm=False),
    "preact_resnet812": preact_resnet812,
    "preact_resnet812_nobn": functools.partial(preact_resnet812, batch_norm=False),
    "transformer_encoder": transformer_encoder,
    "text_cnn": text_cnn,
    "text_rnn": text_rnn,
    "codeepneat": codeepneat_net,
    "mlp": mlp,
}

# name -> (description, len(model.layers), model.count_params()) for the
# default arguments. Counted once from built models; tests check them for
# every model but ResNet-812 (too slow to build in the test suite).
_CATALOGUE: dict[str, tuple[str, int, int]] = {
    "all_cnn_c": ("All-CNN-C for CIFAR-10 (Springenberg et al. 2015)", 23, 1_369_738),
    "preact_resnet56": ("Pre-activation ResNet-56, basic blocks, BatchNorm", 197, 861_770),
    "preact_resnet56_nobn": ("Pre-activation ResNet-56, basic blocks, no BatchNorm", 142, 853_642),
    "preact_resnet164": ("Pre-activation ResNet-164, bottleneck, BatchNorm", 549, 1_740_042),
    "preact_resnet164_nobn": ("Pre-activation ResNet-164, no BatchNorm", 386, 1_691_594),
    "preact_resnet812": ("Pre-activation ResNet-812, bottleneck, BatchNorm", 2709, 8_562_186),
    "preact_resnet812_nobn": ("Pre-activation ResNet-812, no BatchNorm", 1898, 8_320_202),
    "transformer_encoder": ("Two-block Transformer encoder text classifier", 18, 131_074),
    "text_cnn": ("Text CNN: Conv1D kernels 3/4/5, max-pooled, concatenated", 12, 177_730),
    "text_rnn": ("Text RNN: bidirectional GRU then LSTM", 6, 227_458),
    "codeepneat": ("CoDeepNEAT-style net: shared nested module, gated branch", 13, 409_514),
    "mlp": ("Plain 8-layer ReLU MLP, width 256", 9, 477_184),
}


def list_models() -> list[dict[str, Any]]:
    """Describe every zoo model without building any.

    Returns:
        One dict per model: ``name``, ``description``, and for the default
        arguments ``num_layers`` (``len(model.layers)``, Input included) and
        ``num_params``.
    """
    return [
        {"name": name, "description": text, "num_layers": num_layers, "num_params": num_params}
        for name, (text, num_layers, num_params) in _CATALOGUE.items()
    ]


def build(name: str, **kwargs: Any) -> keras.Model:
    """Build the zoo model registered as ``name``, passing ``kwargs`` to its builder.

    Raises:
        ModelConfigError: (a ``ValueError``) ``name`` is not in the zoo; the
            message lists the valid names.
    """
    if name not in ZOO:
        raise ModelConfigError(
            f"Unknown zoo model. Expected one of: {', '.join(sorted(ZOO))}. Received: name={name!r}"
        )
    return ZOO[name](**kwargs)


# --------------------------------------------------------------------------
# Small keras_hub transformer backbones (issue #17): the residual-stream view.
# keras_hub is imported only when one is built (in the worker, never the API),
# so these live in their own registry: the stock-Keras zoo above needs nothing.
# --------------------------------------------------------------------------


def hub_available() -> bool:
    """Whether ``keras_hub`` is installed (the examples below need it)."""
    return importlib.util.find_spec("keras_hub") is not None


def _keras_hub() -> Any:
    try:
        import keras_hub
    except ImportError as error:
        raise ModelConfigError(
            "The keras_hub examples need keras_hub, which is not installed here. "
            "Install it with the `hub` extra: pip install 'autoinit[hub]'."
        ) from error
    return keras_hub


def _text_backbone(
    cls: str, name: str, num_layers: int, hidden_dim: int, max_sequence_length: int
) -> keras.Model:
    """A keras_hub text backbone of ``cls``: vocabulary 1000, 4 heads, FFN twice as wide."""
    return getattr(_keras_hub().models, cls)(
        vocabulary_size=1000,
        num_layers=num_layers,
        num_heads=4,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=max_sequence_length,
        name=name,
    )


def bert_tiny(num_layers: int = 4, hidden_dim: int = 128, max_sequence_length: int = 64) -> keras.Model:
    """keras_hub's ``BertBackbone`` (post-norm encoder blocks), 4 heads, FFN twice as wide."""
    return _text_backbone("BertBackbone", "bert_tiny", num_layers, hidden_dim, max_sequence_length)


def gpt2_tiny(num_layers: int = 4, hidden_dim: int = 128, max_sequence_length: int = 64) -> keras.Model:
    """keras_hub's ``GPT2Backbone`` (pre-norm decoder blocks), 4 heads, FFN twice as wide."""
    return _text_backbone("GPT2Backbone", "gpt2_tiny", num_layers, hidden_dim, max_sequence_length)


def vit_tiny(num_layers: int = 4, hidden_dim: int = 128, image_size: int = 32) -> keras.Model:
    """keras_hub's ``ViTBackbone`` (pre-norm blocks inside an encoder), 8x8 patches, 4 heads."""
    return _keras_hub().models.ViTBackbone(
        image_shape=(image_size, image_size, 3),
        patch_size=8,
        num_layers=num_layers,
        num_heads=4,
        hidden_dim=hidden_dim,
        mlp_dim=2 * hidden_dim,
        name="vit_tiny",
    )


HUB_ZOO: dict[str, Callable[..., keras.Model]] = {
    "bert_tiny": bert_tiny,
    "gpt2_tiny": gpt2_tiny,
    "vit_tiny": vit_tiny,
}

# name -> (description, len(model.layers), model.count_params()), as _CATALOGUE.
_HUB_CATALOGUE: dict[str, tuple[str, int, int]] = {
    "bert_tiny": ("keras_hub BERT backbone: 4 post-norm blocks, width 128", 14, 683_136),
    "gpt2_tiny": ("keras_hub GPT-2 backbone: 4 pre-norm blocks, width 128", 11, 666_368),
    "vit_tiny": ("keras_hub ViT backbone: 32x32 images, 4 pre-norm blocks, width 128", 3, 557_184),
}


def list_hub_models() -> list[dict[str, Any]]:
    """Describe the keras_hub examples as `list_models` does; none without keras_hub."""
    if not hub_available():
        return []
    return [
        {"name": name, "description": text, "num_layers": num_layers, "num_params": num_params}
        for name, (text, num_layers, num_params) in _HUB_CATALOGUE.items()
    ]


def build_hub(name: str, **kwargs: Any) -> keras.Model:
    """Build the keras_hub example registered as ``name``.

    Raises:
        ModelConfigError: ``name`` is not a keras_hub example, or keras_hub is
            not installed; the message says which.
    """
    if name not in HUB_ZOO:
        raise ModelConfigError(
            f"Unknown keras_hub example. Expected one of: {', '.join(sorted(HUB_ZOO))}. Received: name={name!r}"
        )
    return HUB_ZOO[name](**kwargs)
