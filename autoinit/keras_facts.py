"""Facts about Keras that AutoInit relies on, written once.

Every list of Keras names the library uses is here, and only here: the upload
allow-list (`autoinit.upload`), the tf.keras 2 converter (`autoinit.legacy`)
and the centering rewrite derive their views from these tables, and
``tests/test_keras_facts.py`` checks that they agree with what the adapter
models (``autoinit.keras_adapter.rules.RULES``).

Layers are grouped by the families of ``autoinit/estimators/`` (which mirror
``keras/src/layers/``):

* `MODELLED_LAYERS`: AutoInit has a rule for the class;
* `STRUCTURE_LAYERS`: known-harmless classes that need no estimator of their
  own (the model's inputs, RNN cells that their ``RNN`` layer drives);
* `CONVERTER_ONLY_LAYERS`: Keras classes the tf.keras 2 converter rewrites
  for the library, but that uploads may not use until AutoInit models them.

A class is accepted on upload if and only if it is modelled or structure.

The module is pure Python: it runs in the API process, which has no Keras.

Example:
    >>> from autoinit import keras_facts
    >>> "Dense" in keras_facts.ACCEPTED_LAYERS
    True
    >>> keras_facts.family_of("MaxPooling2D")
    'pooling'
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ACCEPTED_LAYERS",
    "ACTIVATIONS",
    "ACTIVATION_FUNCTION_MODULES",
    "CONSTRAINT_CLASSES",
    "CONVERTER_KNOWN_LAYERS",
    "CONVERTER_ONLY_LAYERS",
    "DTYPE_POLICY_CLASSES",
    "FAMILIES",
    "INITIALIZER_CLASSES",
    "KERAS_MODULES",
    "LEGACY_DTYPE_POLICY_CLASSES",
    "MODELLED_LAYERS",
    "MODEL_CLASSES",
    "APPLICATION_LAYERS",
    "OP_NODES",
    "TRACED_OP_NODES",
    "HUB_LAYERS",
    "HUB_BACKBONES",
    "HUB_PACKAGE",
    "HUB_UPLOAD_LAYERS",
    "hub_registered_name",
    "is_hub_backbone",
    "is_hub_layer",
    "REGULARIZER_CLASSES",
    "STRUCTURE_LAYERS",
    "WRAPPED_LAYER_KEYS",
    "family_of",
    "is_application_layer",
    "is_op_node",
]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


FAMILIES = (
    "core", "convolutional", "activations", "pooling", "normalization",
    "merging", "regularization", "reshaping", "rnn", "attention",
    "preprocessing", "wrappers",
)  # fmt: skip

#: Layer classes AutoInit has a rule for, by family.
MODELLED_LAYERS: Mapping[str, frozenset[str]] = {
    "core": _names("Dense EinsumDense Embedding ReversibleEmbedding Identity Masking"),
    "convolutional": _names(
        """Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose
        DepthwiseConv1D DepthwiseConv2D SeparableConv1D SeparableConv2D"""
    ),
    "activations": _names("Activation ReLU LeakyReLU PReLU ELU Softmax"),
    "pooling": _names(
        """AveragePooling1D AveragePooling2D AveragePooling3D
        MaxPooling1D MaxPooling2D MaxPooling3D
        GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D
        GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D"""
    ),
    "normalization": _names(
        """BatchNormalization LayerNormalization GroupNormalization
        UnitNormalization RMSNormalization SpectralNormalization"""
    ),
    "merging": _names("Add Subtract Multiply Average Maximum Minimum Concatenate"),
    "regularization": _names(
        """Dropout SpatialDropout1D SpatialDropout2D SpatialDropout3D
        GaussianDropout GaussianNoise AlphaDropout ActivityRegularization"""
    ),
    "reshaping": _names(
        """Flatten Reshape Permute RepeatVector
        UpSampling1D UpSampling2D UpSampling3D Cropping1D Cropping2D Cropping3D
        ZeroPadding1D ZeroPadding2D ZeroPadding3D"""
    ),
    "rnn": _names("SimpleRNN GRU LSTM ConvLSTM1D ConvLSTM2D ConvLSTM3D"),
    "attention": _names("MultiHeadAttention"),
    # As they act in training mode (augmentations included).
    "preprocessing": _names(
        """Rescaling Normalization Resizing CenterCrop RandomCrop RandomFlip
        RandomRotation RandomZoom RandomTranslation RandomContrast RandomBrightness"""
    ),
    "wrappers": _names("Bidirectional TimeDistributed"),
}

#: Known-harmless layer classes that need no estimator of their own.
STRUCTURE_LAYERS: Mapping[str, frozenset[str]] = {
    "core": _names("InputLayer"),
    # Cells are driven by their RNN layer, whose rule covers them.
    "rnn": _names("RNN SimpleRNNCell GRUCell LSTMCell StackedRNNCells"),
}

#: Keras classes the tf.keras 2 converter rewrites (the library builds them,
#: treating them as pass-through) but uploads may not use, with the reason.
CONVERTER_ONLY_LAYERS: Mapping[str, str] = {
    "Attention": "AutoInit has no estimator for Attention yet",
    "AdditiveAttention": "AutoInit has no estimator for AdditiveAttention yet",
    "Dot": "AutoInit has no estimator for Dot yet",
}

ACCEPTED_LAYERS: frozenset[str] = frozenset().union(*MODELLED_LAYERS.values(), *STRUCTURE_LAYERS.values())
CONVERTER_KNOWN_LAYERS: frozenset[str] = ACCEPTED_LAYERS | frozenset(CONVERTER_ONLY_LAYERS)

MODEL_CLASSES = _names("Functional Sequential Model")
#: Config keys under which a wrapper holds the layer(s) it wraps
#: (Bidirectional, TimeDistributed, RNN, SpectralNormalization).
WRAPPED_LAYER_KEYS = ("layer", "backward_layer", "cell")

#: Names in ``keras.activations`` that AutoInit models (Keras 3.15). Keras'
#: ``threshold`` is absent: it needs arguments, so it cannot be named alone.
ACTIVATIONS = _names(
    """celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu
    hard_swish hard_tanh leaky_relu linear log_sigmoid log_softmax mish relu
    relu6 selu sigmoid silu soft_shrink softmax softplus softsign sparse_plus
    sparse_sigmoid sparsemax squareplus swish tanh tanh_shrink"""
)
#: Modules Keras writes for an activation given as a function object.
ACTIVATION_FUNCTION_MODULES = _names(
    "keras.activations keras.src.activations keras.src.activations.activations"
)

INITIALIZER_CLASSES = _names(
    """Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity
    IdentityInitializer LecunNormal LecunUniform Ones Orthogonal
    OrthogonalInitializer RandomNormal RandomUniform TruncatedNormal
    VarianceScaling Zeros"""
)
REGULARIZER_CLASSES = _names("L1 L2 L1L2 OrthogonalRegularizer")
CONSTRAINT_CLASSES = _names("MaxNorm MinMaxNorm NonNeg UnitNorm")
DTYPE_POLICY_CLASSES = _names("DTypePolicy FloatDTypePolicy")
#: tf.keras 2's mixed-precision policy, which the converter rewrites.
LEGACY_DTYPE_POLICY_CLASSES = _names("Policy")

#: Functional op nodes Keras writes into configs (``x + y`` on Keras tensors
#: gives ``{"module": "keras.src.ops.numpy", "class_name": "Add", ...}``),
#: ``module -> op class names``. Only ops the adapter models belong here.
OP_NODES: Mapping[str, frozenset[str]] = {
    "keras.src.ops.numpy": _names(
        """Add Subtract Multiply Divide TrueDivide Maximum Minimum
        Negative Tanh Abs Absolute Square Clip"""
    ),
    "keras.src.ops.nn": _names(
        """Relu Relu6 Sigmoid Silu Gelu Elu Selu Celu LeakyRelu HardSigmoid
        HardSilu HardTanh HardShrink SoftShrink Softplus Softsign LogSigmoid
        SparsePlus Squareplus TanhShrink"""
    ),
}

#: ``keras.ops`` operations AutoInit models where they appear inside a
#: composite layer's trace (``keras_adapter.composite``): shape and mask ops,
#: products and softmax. Not accepted in uploaded configs (the upload's
#: parameter bound does not follow their shapes).
TRACED_OP_NODES: Mapping[str, frozenset[str]] = {
    "keras.src.ops.core": _names("Cast Slice StopGradient Unstack"),
    "keras.src.ops.numpy": _names(
        """ExpandDims Squeeze Reshape Transpose GetItem BroadcastTo Tile Repeat
        Split Stack Concatenate Take Tril Triu MoveAxis SwapAxes Einsum Matmul
        Where ZerosLike OnesLike"""
    ),
    "keras.src.ops.nn": _names("Softmax DotProductAttention"),
}

#: Leaf layers (no sublayers with weights) that ``keras_hub`` defines, by module;
#: the adapter registers their rules under ``"<module>.<class>"``.
HUB_LAYERS: Mapping[str, frozenset[str]] = {
    "keras_hub.src.layers.modeling.position_embedding": _names("PositionEmbedding"),
    "keras_hub.src.layers.modeling.alibi_bias": _names("AlibiBias"),
    # Mixtures of experts, one rule per block (their routing by top_k cannot be traced).
    "keras_hub.src.models.qwen3_moe.qwen3_moe_decoder": _names("Qwen3SparseMoeBlock"),
    "keras_hub.src.models.mixtral.mixtral_decoder": _names("MixtralSparseMoeBlock"),
    # RMS norms: ``x / rms(x)`` over the last axis times a learned gain, one copy per model family.
    "keras_hub.src.layers.modeling.rms_normalization": _names("RMSNormalization"),
    "keras_hub.src.models.gemma.rms_normalization": _names("RMSNormalization"),
    "keras_hub.src.models.gemma3.gemma3_layers": _names("RMSNormalization"),
    "keras_hub.src.models.gemma3n.rms_normalization": _names("Gemma3nRMSNorm"),
    "keras_hub.src.models.gpt_oss.gpt_oss_layer_norm": _names("GptOssLayerNormalization"),
    "keras_hub.src.models.llama.llama_layernorm": _names("LlamaLayerNorm"),
    "keras_hub.src.models.mistral.mistral_layer_norm": _names("MistralLayerNormalization"),
    "keras_hub.src.models.mixtral.mixtral_layer_norm": _names("MixtralLayerNormalization"),
    "keras_hub.src.models.phi3.phi3_layernorm": _names("Phi3LayerNorm"),
    "keras_hub.src.models.qwen.qwen_layernorm": _names("QwenLayerNorm"),
    "keras_hub.src.models.qwen3.qwen3_layernorm": _names("Qwen3LayerNorm"),
    "keras_hub.src.models.qwen3_5.qwen3_5_layers": _names("Qwen3_5LayerNorm"),
    "keras_hub.src.models.qwen3_moe.qwen3_moe_layernorm": _names("Qwen3MoeLayerNorm"),
    "keras_hub.src.models.qwen_moe.qwen_moe_layernorm": _names("QwenMoeLayerNorm"),
    "keras_hub.src.models.t5.t5_layer_norm": _names("T5LayerNorm"),
    "keras_hub.src.layers.modeling.rotary_embedding": _names("RotaryEmbedding"),
    "keras_hub.src.models.llama.llama_rotary_embedding": _names("LlamaRotaryEmbedding"),
    "keras_hub.src.models.vit.vit_layers": _names("ViTPatchingAndEmbedding"),
    "keras_hub.src.layers.modeling.sine_position_encoding": _names("SinePositionEncoding"),
    "keras_hub.src.layers.modeling.reversible_embedding": _names("ReversibleEmbedding"),
}

#: Layer classes that ``keras.applications`` models define in their own
#: modules (not ``keras.layers``), by module; modelled, so accepted on upload.
#: The adapter registers their rules under ``"<module>.<class>"``.
APPLICATION_LAYERS: Mapping[str, frozenset[str]] = {
    "keras.src.applications.convnext": _names("LayerScale"),
}

#: ``module -> class names`` exactly as Keras 3 writes them. Keras resolves
#: ``module.class_name`` (and imports ``keras.*`` modules), so only exact
#: pairs are facts, never "anything under ``keras.``".
KERAS_MODULES: Mapping[str, frozenset[str]] = {
    "keras.layers": ACCEPTED_LAYERS,
    "keras": _names("Sequential Model") | DTYPE_POLICY_CLASSES,
    "keras.models": _names("Sequential Model"),
    "keras.src.models.functional": _names("Functional"),
    "keras.src.models.sequential": _names("Sequential"),
    # Written by tf.keras 2.13+; Keras 3 resolves them through the
    # registered name "Functional".
    "keras.src.engine.functional": _names("Functional"),
    "tf_keras.src.engine.functional": _names("Functional"),
    "keras.initializers": INITIALIZER_CLASSES,
    "keras.regularizers": REGULARIZER_CLASSES,
    "keras.constraints": CONSTRAINT_CLASSES,
    "keras.dtype_policies": DTYPE_POLICY_CLASSES,
}


def family_of(class_name: str) -> str | None:
    """The family (``"pooling"``, ...) of an accepted layer class, else None."""
    for table in (MODELLED_LAYERS, STRUCTURE_LAYERS):
        for family, names in table.items():
            if class_name in names:
                return family
    return None


def is_application_layer(module: object, class_name: object) -> bool:
    """Whether ``(module, class_name)`` is an allow-listed ``keras.applications`` layer."""
    return isinstance(module, str) and class_name in APPLICATION_LAYERS.get(module, ())


def is_op_node(module: object, class_name: object) -> bool:
    """Whether ``(module, class_name)`` is an allow-listed functional op node."""
    return isinstance(module, str) and class_name in OP_NODES.get(module, ())


# --- keras_hub classes an upload may name ------------------------------------
#
# Vetted in keras-hub 0.32 (the `hub` extra's range): each builds from its
# arguments alone. A backbone's config holds its constructor's arguments, not a
# layer list, and ``Backbone.from_config`` is ``cls(**config)``; a layer's
# ``from_config`` is Keras' own. None of them reads a file, downloads a preset
# or runs user code from its arguments. Tokenizers, preprocessors (they load
# vocabularies and assets from files), tasks (a preprocessor and a backbone)
# and anything else of keras_hub's stay refused. `autoinit.upload.hub_arguments`
# says which arguments each class may be given, and of what type.

#: The registered-name prefix keras_hub writes (``"keras_hub>BertBackbone"``).
HUB_PACKAGE = "keras_hub"

#: Backbones an upload may be (the uploaded model itself), ``module -> class names``.
HUB_BACKBONES: Mapping[str, frozenset[str]] = {
    "keras_hub.src.models.bert.bert_backbone": _names("BertBackbone"),
    "keras_hub.src.models.gpt2.gpt2_backbone": _names("GPT2Backbone"),
    "keras_hub.src.models.roberta.roberta_backbone": _names("RobertaBackbone"),
    "keras_hub.src.models.distil_bert.distil_bert_backbone": _names("DistilBertBackbone"),
    "keras_hub.src.models.gemma.gemma_backbone": _names("GemmaBackbone"),
    "keras_hub.src.models.llama.llama_backbone": _names("LlamaBackbone"),
    "keras_hub.src.models.mistral.mistral_backbone": _names("MistralBackbone"),
    "keras_hub.src.models.qwen.qwen_backbone": _names("QwenBackbone"),
    "keras_hub.src.models.vit.vit_backbone": _names("ViTBackbone"),
}

#: keras_hub layers an uploaded Functional or Sequential model may use,
#: ``module -> class names``. The composite ones (transformer blocks, the
#: token-and-position embedding) are walked inside (``keras_adapter.composite``).
HUB_UPLOAD_LAYERS: Mapping[str, frozenset[str]] = {
    f"keras_hub.src.layers.modeling.{module}": _names(name)
    for module, name in (
        ("transformer_encoder", "TransformerEncoder"),
        ("transformer_decoder", "TransformerDecoder"),
        ("token_and_position_embedding", "TokenAndPositionEmbedding"),
        ("position_embedding", "PositionEmbedding"),
        ("sine_position_encoding", "SinePositionEncoding"),
        ("rotary_embedding", "RotaryEmbedding"),
        ("reversible_embedding", "ReversibleEmbedding"),
    )
}


def is_hub_backbone(module: object, class_name: object) -> bool:
    """Whether ``(module, class_name)`` is a vetted keras_hub backbone."""
    return isinstance(module, str) and class_name in HUB_BACKBONES.get(module, ())


def is_hub_layer(module: object, class_name: object) -> bool:
    """Whether ``(module, class_name)`` is a vetted keras_hub layer."""
    return isinstance(module, str) and class_name in HUB_UPLOAD_LAYERS.get(module, ())


def hub_registered_name(class_name: str) -> str:
    """The name keras_hub registers a class under: ``"keras_hub>BertBackbone"``."""
    return f"{HUB_PACKAGE}>{class_name}"
