"""keras_hub on upload: vetted backbones and layers are accepted through the
path the API takes (JSON -> parse_upload -> validate_model_config -> AutoInit),
with every argument checked and an honest parameter bound; tokenizers,
preprocessors, tasks and anything unvetted are refused with a reason."""

from __future__ import annotations

import copy
import inspect
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

keras_hub = pytest.importorskip("keras_hub")

import keras  # noqa: E402

from autoinit import AutoInit, keras_facts  # noqa: E402
from autoinit.errors import ModelConfigError, ParameterBoundError, UnsafeConfigError  # noqa: E402
from autoinit.keras_adapter.loading import load_model  # noqa: E402
from autoinit.probe.memory import activation_sizes  # noqa: E402
from autoinit.upload import ALLOWED_CLASSES, UploadLimits, parse_upload, validate_model_config  # noqa: E402
from autoinit.upload.hub_arguments import HUB_ARGUMENTS, OPEN_LENGTH, REQUIRED  # noqa: E402
from autoinit.upload.params import activation_elements  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

_DECODER = dict(  # Llama-like: grouped-query attention
    vocabulary_size=1000,
    num_layers=2,
    num_query_heads=4,
    num_key_value_heads=2,
    hidden_dim=64,
    intermediate_dim=128,
)

#: Tiny instances of every vetted backbone (hidden 32-64, 2 blocks, vocabulary 1000).
BACKBONES = {
    "BertBackbone": dict(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=64,
    ),
    "GPT2Backbone": dict(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=64,
    ),
    "RobertaBackbone": dict(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=64,
    ),
    "DistilBertBackbone": dict(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=64,
    ),
    "GemmaBackbone": dict(
        vocabulary_size=1000,
        num_layers=2,
        num_query_heads=4,
        num_key_value_heads=1,
        hidden_dim=64,
        intermediate_dim=128,
        head_dim=16,
    ),
    "LlamaBackbone": _DECODER,
    "MistralBackbone": _DECODER,
    "QwenBackbone": _DECODER,
    "ViTBackbone": dict(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128
    ),
}
VETTED_LAYERS = sorted(frozenset().union(*keras_facts.HUB_UPLOAD_LAYERS.values()))


def _upload(obj) -> dict:
    """What the API holds after parsing an upload of ``obj``'s JSON config."""
    return parse_upload(json.dumps(keras.saving.serialize_keras_object(obj)).encode(), "model.json")


def _backbone(name: str, **changes):
    return getattr(keras_hub.models, name)(**{**BACKBONES[name], **changes})


@pytest.fixture(scope="module")
def bert_config() -> dict:
    return _upload(_backbone("BertBackbone"))


def _functional_with_hub_layers() -> keras.Model:
    layers = keras_hub.layers
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    context = keras.Input((None, 48), name="context")
    x = layers.TokenAndPositionEmbedding(
        vocabulary_size=100, sequence_length=64, embedding_dim=32, tie_weights=False
    )(ids)
    x = x + layers.ReversibleEmbedding(input_dim=100, output_dim=32, tie_weights=False)(ids)
    x = layers.TransformerEncoder(intermediate_dim=64, num_heads=4, normalize_first=True)(x)
    x = x + layers.SinePositionEncoding()(x)
    x = x + layers.PositionEmbedding(sequence_length=64)(x)
    x = layers.TransformerDecoder(intermediate_dim=64, num_heads=4)(x, encoder_sequence=context)
    x = layers.RotaryEmbedding()(x)
    x = keras.layers.Dense(8)(x)
    return keras.Model([ids, context], x, name="hub_layers")


# --- The registry -------------------------------------------------------------


def _vetted() -> list[tuple[str, str]]:
    return [
        (module, name)
        for table in (keras_facts.HUB_BACKBONES, keras_facts.HUB_UPLOAD_LAYERS)
        for module, names in table.items()
        for name in sorted(names)
    ]


@pytest.mark.parametrize(("module", "name"), _vetted())
def test_each_vetted_class_is_the_keras_hub_class_its_module_and_registered_name_say(module, name):
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert keras.saving.get_registered_object(keras_facts.hub_registered_name(name)) is cls
    assert name in ALLOWED_CLASSES[module]
    assert keras_facts.is_hub_backbone(module, name) == issubclass(cls, keras_hub.models.Backbone)


def _init_arguments(cls) -> tuple[set[str], set[str]]:
    """(every argument an ``__init__`` along the class's bases names, those
    the class's own ``__init__`` needs)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)

    def parameters(klass) -> list[inspect.Parameter]:
        found = inspect.signature(klass.__init__).parameters.values()
        return [p for p in found if p.name != "self" and p.kind in named]

    takes = {p.name for klass in cls.__mro__[:-1] if "__init__" in vars(klass) for p in parameters(klass)}
    return takes, {p.name for p in parameters(cls) if p.default is p.empty}


def _small_instance(module: str, name: str):
    if keras_facts.is_hub_backbone(module, name):
        return _backbone(name)
    cls = getattr(keras_hub.layers, name)
    required = {
        "TransformerEncoder": dict(intermediate_dim=8, num_heads=2),
        "TransformerDecoder": dict(intermediate_dim=8, num_heads=2),
        "TokenAndPositionEmbedding": dict(vocabulary_size=10, sequence_length=4, embedding_dim=4),
        "PositionEmbedding": dict(sequence_length=4),
        "ReversibleEmbedding": dict(input_dim=10, output_dim=4),
    }.get(name, {})
    return cls(**required)


@pytest.mark.parametrize(("module", "name"), _vetted())
def test_each_vetted_class_has_an_argument_table_matching_its_constructor(module, name):
    """Every argument its config writes is in the table; every argument the table
    takes is one its constructor (or Keras' Layer) accepts; the required ones agree."""
    assert set(HUB_ARGUMENTS) == {n for _, n in _vetted()}
    cls = getattr(__import__(module, fromlist=[name]), name)
    takes, required = _init_arguments(cls)
    written = set(_small_instance(module, name).get_config())
    table = set(HUB_ARGUMENTS[name]) | {"name", "trainable", "dtype"}
    assert written <= table, f"{name} writes arguments the table lacks: {sorted(written - table)}"
    popped = {"decoder_sequence_shape", "encoder_sequence_shape"} if name == "TransformerDecoder" else set()
    assert table <= takes | popped, sorted(table - takes - popped)
    assert REQUIRED[name] == required, (name, sorted(required))


def test_the_open_length_is_the_one_the_probe_feeds():
    from autoinit.keras_adapter.composite import OPEN_DIM

    assert OPEN_LENGTH == OPEN_DIM


# --- Accepted: the API's path, then AutoInit -------------------------------------


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_each_vetted_backbone_is_accepted_and_initialized(name):
    built = _backbone(name)
    config = _upload(built)
    summary = validate_model_config(config)
    assert summary.estimated_params == built.count_params()  # the count is exact
    assert summary.num_layers >= len(list(built._flatten_layers(include_self=False, recursive=True)))
    model, estimates = AutoInit(seed=0).initialize_model(config, return_estimates=True)
    assert type(model).__name__ == name
    weighted = [e for e in estimates if e["has_weights"] and e["target"] is not None]
    assert weighted and all(e["scale"] is not None for e in weighted), weighted


def _random_arguments(name: str, rng: random.Random) -> dict:
    h_heads = rng.choice([(32, 2), (48, 3), (64, 4), (64, 8), (96, 6)])
    common = dict(
        num_layers=rng.choice([1, 2, 3]), hidden_dim=h_heads[0], intermediate_dim=rng.choice([40, 64, 200])
    )
    text = dict(vocabulary_size=rng.choice([50, 777]), max_sequence_length=rng.choice([32, 100]))
    if name == "BertBackbone":
        return {**common, **text, "num_heads": h_heads[1], "num_segments": rng.choice([1, 3])}
    if name in ("GPT2Backbone", "RobertaBackbone", "DistilBertBackbone"):
        return {**common, **text, "num_heads": h_heads[1]}
    if name == "GemmaBackbone":
        return {
            **common,
            "vocabulary_size": 321,
            "num_query_heads": 4,
            "num_key_value_heads": rng.choice([1, 2, 4]),
            "head_dim": rng.choice([8, 24]),
            "use_post_ffw_norm": rng.choice([True, False]),
            "use_post_attention_norm": rng.choice([True, False]),
        }
    decoder = {**common, "vocabulary_size": 321, "num_query_heads": h_heads[1], "num_key_value_heads": 1}
    if name in ("LlamaBackbone", "QwenBackbone"):
        return {**decoder, "tie_word_embeddings": rng.choice([True, False])}
    if name == "MistralBackbone":
        return {**decoder, "head_dim": rng.choice([None, 8]), "sliding_window": rng.choice([4, 512])}
    mlp = common.pop("intermediate_dim")
    return {
        **common,
        "num_heads": h_heads[1],
        "mlp_dim": mlp,
        "image_shape": rng.choice([(24, 40, 3), (32, 32, 1)]),
        "patch_size": rng.choice([4, 8, (8, 4)]),
        "use_class_token": rng.choice([True, False]),
        "use_mha_bias": rng.choice([True, False]),
        "use_mlp_bias": rng.choice([True, False]),
        "use_patch_bias": rng.choice([True, False]),
    }


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_the_bound_is_exact_and_the_probe_sizes_an_upper_estimate_for_other_arguments(name):
    """Arguments the coefficients were not fitted to: the parameter count stays
    exact, the tensor sizes stay above what the probe's own walk measures (and
    within a small factor of it), the layer calls exact."""
    rng = random.Random(f"{name}-held-out")  # the coefficients were fitted on other draws
    for _ in range(3):
        arguments = _random_arguments(name, rng)
        config = _upload(getattr(keras_hub.models, name)(**arguments))
        # What the worker builds from the config (keras-hub 0.32's Llama config omits tie_word_embeddings).
        built = load_model(config)
        assert validate_model_config(config).estimated_params == built.count_params(), arguments
        estimate, measured = activation_elements(config), activation_sizes(built)
        assert measured.calls <= estimate.calls <= 1.3 * measured.calls, arguments
        assert (estimate.inputs, estimate.outputs) == (measured.inputs // 4, measured.outputs // 4), arguments
        for field, factor in (("total", 2.0), ("live_peak", 3.0)):
            ratio = getattr(estimate, field) / (getattr(measured, field) / 4)
            assert 1.0 <= ratio <= factor, (field, ratio, arguments)


def test_a_functional_model_of_keras_hub_layers_is_accepted_bounded_and_initialized():
    built = _functional_with_hub_layers()
    config = _upload(built)
    summary = validate_model_config(config)
    assert summary.estimated_params == built.count_params()
    assert summary.num_layers >= len(list(built._flatten_layers(include_self=False, recursive=True)))
    estimate, measured = activation_elements(config), activation_sizes(built)
    assert estimate.calls >= measured.calls * 0.8 and estimate.total >= measured.total // 4
    model, estimates = AutoInit(seed=0).initialize_model(config, return_estimates=True)
    names = {e["name"] for e in estimates if e["has_weights"]}
    for block in ("transformer_encoder", "transformer_decoder"):  # walked inside
        assert any(n.startswith(block) and "/" in n for n in names), names


@pytest.mark.parametrize(("name", "length"), [("BertBackbone", 16), ("GPT2Backbone", 8)])
def test_a_text_backbone_with_a_table_shorter_than_the_open_length_is_accepted_and_probed(name, length):
    """Its open sequence axis is fed as many tokens as its position table holds
    (``composite.open_length_of``), on upload as in the library."""
    from band import out_of_band, ratios_of

    from autoinit.keras_adapter.composite import open_length_of

    built = _backbone(name, max_sequence_length=length)
    config = _upload(built)
    assert validate_model_config(config).estimated_params == built.count_params()
    estimate, measured = activation_elements(config), activation_sizes(load_model(config))
    assert (estimate.inputs, estimate.outputs) == (measured.inputs // 4, measured.outputs // 4)
    assert 1.0 <= estimate.total / (measured.total / 4) <= 2.0
    model, estimates = AutoInit(seed=0).initialize_model(config, return_estimates=True)
    assert open_length_of(model) == length  # 32 tokens would index past the table
    ratios = ratios_of(model, estimates, batch_size=16)  # the probe at the table's length
    assert len(ratios) >= 8 and not out_of_band(ratios), out_of_band(ratios)


def _position_table_model(sequence: int | None, table: int) -> keras.Model:
    x_in = keras.Input((sequence, 16), name="x")
    x = keras.layers.Add()([x_in, keras_hub.layers.PositionEmbedding(sequence_length=table)(x_in)])
    return keras.Model(x_in, keras.layers.Dense(4)(x))


def test_a_position_table_must_cover_a_fixed_input_but_an_open_axis_follows_the_table():
    validate_model_config(_upload(_position_table_model(None, 8)))  # the probe feeds 8 positions
    validate_model_config(_upload(_position_table_model(8, 8)))
    with pytest.raises(ModelConfigError, match="has sequence_length=8, but its input has 64 positions"):
        validate_model_config(_upload(_position_table_model(64, 8)))


def test_compare_copies_backbones_whose_inner_layers_keras_cannot_clone():
    """ViT's patching layer and Llama's blocks do not round-trip their own
    configs in keras-hub 0.32; the probe's copy rebuilds the backbone instead."""
    from autoinit.probe import compare

    for name in ("ViTBackbone", "LlamaBackbone"):
        traces = compare(_backbone(name), baselines=("default",), batch_size=4)
        assert traces["layers"], name


# --- Refused ------------------------------------------------------------------


def test_a_tokenizer_is_refused_because_it_loads_a_vocabulary():
    tokenizer = keras_hub.tokenizers.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    )
    with pytest.raises(UnsafeConfigError, match="tokenizers load their vocabulary from files"):
        validate_model_config(_upload(tokenizer))


def test_a_task_with_its_preprocessor_is_refused_and_the_backbone_suggested():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=32,
    )
    task = keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2, preprocessor=None)
    with pytest.raises(UnsafeConfigError, match="upload the backbone's config instead"):
        validate_model_config(_upload(task))


def test_a_preprocessor_inside_a_model_is_refused_by_module():
    config = _upload(_functional_with_hub_layers())
    layer = config["config"]["layers"][2]
    layer["module"] = "keras_hub.src.models.bert.bert_text_classifier_preprocessor"
    layer["class_name"] = layer["registered_name"] = "BertTextClassifierPreprocessor"
    with pytest.raises(UnsafeConfigError, match="preprocessors hold tokenizers"):
        validate_model_config(config)


def test_an_unvetted_keras_hub_layer_is_refused_naming_what_is_accepted():
    layer = keras_hub.layers.MaskedLMHead(vocabulary_size=10, activation="softmax")
    tokens, positions = keras.Input((8, 16)), keras.Input((2,), dtype="int32")
    config = _upload(keras.Model([tokens, positions], layer(tokens, mask_positions=positions)))
    with pytest.raises(UnsafeConfigError, match="MaskedLMHead .* not on the list .* TransformerEncoder"):
        validate_model_config(config)


@pytest.mark.parametrize(
    ("argument", "value", "error", "phrase"),
    [
        ("preset", "bert_base_en", UnsafeConfigError, "'preset' is not one keras_hub's BertBackbone takes"),
        ("load_weights", True, UnsafeConfigError, "'load_weights' is not one"),
        (
            "hidden_dim",
            "/etc/passwd",
            ModelConfigError,
            "Expected 'hidden_dim' of BertBackbone to be a positive integer",
        ),
        (
            "name",
            "../../models/bert_base_en",
            ModelConfigError,
            "Expected 'name' of BertBackbone to be a name",
        ),
        (
            "dtype",
            "hf://google/bert",
            ModelConfigError,
            "Expected 'dtype' of BertBackbone to be a dtype policy",
        ),
        ("num_layers", 0, ModelConfigError, "Expected 'num_layers' of BertBackbone to be a positive integer"),
        ("num_layers", True, ModelConfigError, "Expected 'num_layers'"),
        ("dropout", 1.5, ModelConfigError, "Expected 'dropout' of BertBackbone to be a number from 0"),
        ("num_heads", 128, ModelConfigError, "it can be at most hidden_dim (64)"),
    ],
)
def test_a_backbone_argument_that_is_unknown_or_of_the_wrong_kind_is_refused(
    bert_config, argument, value, error, phrase
):
    config = copy.deepcopy(bert_config)
    config["config"][argument] = value
    with pytest.raises(error) as caught:
        validate_model_config(config)
    assert phrase in str(caught.value)
    assert f"config.{argument}" in str(caught.value)  # the JSON path


def test_a_missing_required_argument_is_named(bert_config):
    config = copy.deepcopy(bert_config)
    del config["config"]["hidden_dim"]
    with pytest.raises(ModelConfigError, match="BertBackbone needs 'hidden_dim'"):
        validate_model_config(config)


@pytest.mark.parametrize(("argument", "value"), [("vocabulary_size", 10**9), ("hidden_dim", 10**6)])
def test_a_huge_backbone_is_refused_by_the_parameter_bound_before_anything_is_built(
    bert_config, argument, value
):
    config = copy.deepcopy(bert_config)
    config["config"][argument] = value
    with pytest.raises(ParameterBoundError) as caught:
        validate_model_config(config)
    message = str(caught.value)
    assert message.startswith("The config asks for more than 200,000,000 parameters (at least ")
    assert "token embedding (vocabulary_size x hidden_dim)" in message and message.endswith("refusing it.")


def test_many_blocks_are_refused_by_the_layer_limit(bert_config):
    config = copy.deepcopy(bert_config)
    config["config"]["num_layers"] = 400
    with pytest.raises(ModelConfigError, match=r"more than 5000 layers .* BertBackbone builds 6,425"):
        validate_model_config(config)
    assert validate_model_config(config, UploadLimits(max_layers=10_000)).num_layers > 6_000


def test_other_objects_inside_a_backbone_stay_on_the_allow_list(bert_config):
    config = copy.deepcopy(bert_config)
    config["config"]["dtype"] = {
        "module": "keras",
        "class_name": "DTypePolicyMap",
        "config": {},
        "registered_name": None,
    }
    with pytest.raises(UnsafeConfigError, match="DTypePolicyMap"):
        validate_model_config(config)
    config = copy.deepcopy(bert_config)
    config["registered_name"] = "keras_hub>GPT2Backbone"
    with pytest.raises(UnsafeConfigError, match="registered_name"):
        validate_model_config(config)


def test_a_backbone_inside_another_model_is_refused():
    backbone = _backbone("ViTBackbone")
    image = keras.Input((32, 32, 3))
    config = _upload(keras.Model(image, backbone(image)))
    with pytest.raises(UnsafeConfigError, match="accepted only as the uploaded model itself"):
        validate_model_config(config)


def test_a_keras_hub_layer_argument_is_checked_like_a_backbone_one():
    config = _upload(_functional_with_hub_layers())
    encoder = next(
        layer for layer in config["config"]["layers"] if layer["class_name"] == "TransformerEncoder"
    )
    encoder["config"]["preset"] = "bert_base_en"
    with pytest.raises(UnsafeConfigError, match="'preset' is not one keras_hub's TransformerEncoder takes"):
        validate_model_config(config)
    del encoder["config"]["preset"]
    encoder["config"]["num_heads"] = -4
    with pytest.raises(ModelConfigError, match="'num_heads'"):
        validate_model_config(config)


def test_a_quantized_reversible_embedding_is_refused():
    config = _upload(_functional_with_hub_layers())
    table = next(
        layer for layer in config["config"]["layers"] if layer["class_name"] == "ReversibleEmbedding"
    )
    table["config"]["quantization_config"] = {"mode": "int8"}
    with pytest.raises(ModelConfigError, match="'quantization_config' of ReversibleEmbedding to be null"):
        validate_model_config(config)


# --- Loading, install, isolation ----------------------------------------------------


def test_loading_without_keras_hub_says_what_to_install(bert_config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "keras_hub" else real(name, *a)
    )
    with pytest.raises(ModelConfigError, match=r"keras_hub's BertBackbone.*pip install 'autoinit\[hub\]'"):
        load_model(bert_config)


def test_validation_loads_neither_keras_nor_keras_hub(bert_config, tmp_path):
    """The API process validates keras_hub configs with the standard library alone."""
    path = tmp_path / "bert.json"
    path.write_text(json.dumps(bert_config))
    code = (
        "import json, sys; from autoinit.upload import validate_model_config; "
        "from autoinit.upload.params import activation_elements; "
        f"c = json.load(open({str(path)!r})); validate_model_config(c); activation_elements(c); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'keras_hub', 'tensorflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=REPO
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_service_installs_keras_hub_and_the_image_gets_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert any(spec.startswith("keras-hub") for spec in extras["hub"])
    assert "autoinit[hub]" in extras["service"]
    dockerfile = (REPO / "Dockerfile").read_text()
    step = next(
        line for line in dockerfile.splitlines() if line.startswith("RUN python -c") and "tomllib" in line
    )
    command = step[len("RUN ") :].split(">", 1)[0]
    out = subprocess.run(
        ["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    requirements = out.stdout.split()
    assert "keras-hub>=0.32,<0.33" in requirements, requirements
    assert not [r for r in requirements if r.startswith("autoinit")], requirements  # expanded, never fetched
