"""The residual stream and the per-block views of a transformer's traces
(``autoinit.plot.blocks``), and the signal figure drawn for them.

Hand-built payloads fix the rules (post-norm and pre-norm blocks); the real
keras_hub backbones of the zoo check them on the names the library writes.
"""

from __future__ import annotations

import pytest

from autoinit.plot import TARGET_LABEL, signal_figure
from autoinit.plot.blocks import (
    ALL,
    STREAM,
    band_labels,
    block_names,
    block_of,
    has_blocks,
    label_of,
    view_layers,
)

POST_NORM = [  # BERT: each add is normalized on the stream
    ("token_ids", "InputLayer"),
    ("embeddings_layer_norm", "LayerNormalization"),
    ("block_0/self_attention", "MultiHeadAttention"),
    ("block_0/add", "Add"),
    ("block_0/self_attention_layer_norm", "LayerNormalization"),
    ("block_0/feedforward_dense", "Dense"),
    ("block_0/add_1", "Add"),
    ("block_0/feedforward_layer_norm", "LayerNormalization"),
    ("block_1/self_attention", "MultiHeadAttention"),
    ("block_1/add", "Add"),
    ("block_1/self_attention_layer_norm", "LayerNormalization"),
    ("block_1/feedforward_dense", "Dense"),
    ("block_1/add_1", "Add"),
    ("block_1/feedforward_layer_norm", "LayerNormalization"),
    ("pooled_dense", "Dense"),
]
PRE_NORM = [  # GPT-2: the norms feed the branches, the adds carry the stream
    ("token_ids", "InputLayer"),
    ("block_0/self_attention_layer_norm", "LayerNormalization"),
    ("block_0/self_attention/query", "EinsumDense"),
    ("block_0/self_attention/add", "Add"),
    ("block_0/add", "Add"),
    ("block_0/feedforward_layer_norm", "LayerNormalization"),
    ("block_0/feedforward_dense", "Dense"),
    ("block_0/add_1", "Add"),
    ("layer_norm", "LayerNormalization"),
]
IN_AN_ENCODER = [  # ViT: the blocks sit inside an encoder, whose own records are on the stream
    ("images", "InputLayer"),
    ("encoder/dropout", "Dropout"),
    ("encoder/block_1/ln_1", "LayerNormalization"),
    ("encoder/block_1/mha", "MultiHeadAttention"),
    ("encoder/block_1/add", "Add"),
    ("encoder/block_1/ln_2", "LayerNormalization"),
    ("encoder/block_1/mlp/dense_1", "Dense"),
    ("encoder/block_1/add_1", "Add"),
    ("encoder/block_2/ln_1", "LayerNormalization"),
    ("encoder/block_2/add", "Add"),
    ("encoder/ln", "LayerNormalization"),
]


def _traces(records: list[tuple[str, str]]) -> dict:
    layers = [
        {
            "index": index,
            "name": name,
            "class_name": class_name,
            "has_weights": class_name not in ("InputLayer", "Add"),
            "predicted": {"mean": 0.0, "var": 1.0 + index},
            "autoinit": {"mean": 0.0, "var": 1.0 + index / 2},
        }
        for index, (name, class_name) in enumerate(records)
    ]
    return {"series": ["predicted", "autoinit"], "layers": layers}


def _names(layers) -> list[str]:
    return [layer["name"] for layer in layers]


def test_the_stream_of_post_norm_blocks_is_the_top_level_the_adds_and_the_norms_after_them():
    assert _names(view_layers(_traces(POST_NORM)["layers"], STREAM)) == [
        "token_ids",
        "embeddings_layer_norm",
        "block_0/add",
        "block_0/self_attention_layer_norm",
        "block_0/add_1",
        "block_0/feedforward_layer_norm",
        "block_1/add",
        "block_1/self_attention_layer_norm",
        "block_1/add_1",
        "block_1/feedforward_layer_norm",
        "pooled_dense",
    ]


def test_the_stream_of_pre_norm_blocks_leaves_out_the_norms_and_anything_deeper():
    assert _names(view_layers(_traces(PRE_NORM)["layers"], STREAM)) == [
        "token_ids",
        "block_0/add",
        "block_0/add_1",
        "layer_norm",
    ]


def test_blocks_inside_an_encoder_are_the_paths_holding_the_adds():
    layers = _traces(IN_AN_ENCODER)["layers"]
    blocks = block_names(layers)
    assert blocks == ["encoder/block_1", "encoder/block_2"]
    assert _names(view_layers(layers, STREAM)) == [
        "images",
        "encoder/dropout",
        "encoder/block_1/add",
        "encoder/block_1/add_1",
        "encoder/block_2/add",
        "encoder/ln",
    ]
    assert label_of("encoder/block_1/mlp/dense_1", blocks) == "mlp/dense_1"
    assert label_of("encoder/ln", blocks) == "encoder/ln"
    assert band_labels(blocks) == ["1", "2"]


def test_without_adds_the_top_level_composites_are_the_blocks():
    layers = _traces([("x", "InputLayer"), ("module/dense", "Dense"), ("head", "Dense")])["layers"]
    assert block_names(layers) == ["module"]
    assert _names(view_layers(layers, "block:module")) == ["module/dense"]


def test_a_block_view_is_that_blocks_inside_in_order_and_all_is_everything():
    layers = _traces(POST_NORM)["layers"]
    blocks = block_names(layers)
    assert blocks == ["block_0", "block_1"]
    assert _names(view_layers(layers, "block:block_1")) == [name for name, _ in POST_NORM[8:14]]
    assert view_layers(layers, ALL) == layers
    assert label_of("block_0/self_attention/query", blocks) == "self_attention/query"
    assert label_of("pooled_dense", blocks) == "pooled_dense"


def test_the_bands_are_labelled_by_what_tells_the_blocks_apart():
    assert band_labels(["transformer_layer_0", "transformer_layer_1", "transformer_layer_10"]) == [
        "0",
        "1",
        "10",
    ]
    assert band_labels(["encoder", "decoder"]) == ["encoder", "decoder"]
    assert band_labels(["transformer_layer_3"]) == ["transformer_layer_3"]


@pytest.mark.parametrize("view", ["residual", "block:block_9", "block:"])
def test_an_unknown_view_is_refused_naming_the_views_there_are(view):
    with pytest.raises(ValueError, match="block:block_1") as error:
        view_layers(_traces(POST_NORM)["layers"], view)
    assert repr(view) in str(error.value)


def test_the_stream_figure_plots_only_the_stream_evenly_labelled_by_name_within_each_block():
    traces = _traces(POST_NORM)
    stream = view_layers(traces["layers"], STREAM)
    fig = signal_figure(traces, view=STREAM)
    measured = next(t for t in fig.data if t.meta and t.meta == {"series": "autoinit", "metric": "var"})
    assert list(measured.x) == list(range(len(stream)))
    assert list(measured.y) == [layer["autoinit"]["var"] for layer in stream]
    assert [text.split("</b>")[0] for text in measured.hovertext] == [
        f"<b>{layer['name']}" for layer in stream
    ]
    assert f"layer {stream[2]['index']} ·" in measured.hovertext[2]  # the hover keeps the layer index
    assert list(fig.layout.xaxis.tickvals) == list(measured.x)
    assert list(fig.layout.xaxis.ticktext) == [
        label_of(layer["name"], ["block_0", "block_1"]) for layer in stream
    ]
    bands = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert [(b.name, b.x0, b.x1) for b in bands] == [("block_0", 1.5, 5.5), ("block_1", 5.5, 9.5)]
    notes = [(a.text, a.hovertext) for a in fig.layout.annotations if a.name == "block"]
    assert notes == [("0", "block_0"), ("1", "block_1")]
    target = next(t for t in fig.data if t.name == TARGET_LABEL)
    assert list(target.x) == [-0.5, len(stream) - 0.5]
    assert fig.layout.xaxis2.title.text == "residual stream, in topological order (blocks block_0 … block_1)"
    assert "(15 layers)" in fig.layout.title.text  # the model's, not the view's


def test_the_default_view_is_unchanged_for_a_model_without_blocks():
    flat = _traces([("features", "InputLayer"), ("dense", "Dense"), ("out", "Dense")])
    assert not has_blocks(flat["layers"])
    fig = signal_figure(flat)
    assert fig.layout.xaxis.tickvals is None and fig.layout.xaxis.ticktext is None
    assert not [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert signal_figure(flat, view=ALL).to_json() == fig.to_json()


@pytest.fixture(scope="module")
def hub_traces():
    """compare() of the zoo's keras_hub backbones, two blocks each."""
    pytest.importorskip("keras_hub", reason="keras-hub is not installed")
    from autoinit import zoo
    from autoinit.probe import compare

    return {
        name: compare(zoo.build_hub(name, num_layers=2, hidden_dim=32), seed=0, batch_size=16)
        for name in ("bert_tiny", "gpt2_tiny", "vit_tiny")
    }


def test_bert_tiny_streams_through_its_adds_and_post_norms(hub_traces):
    stream = _names(view_layers(hub_traces["bert_tiny"]["layers"], STREAM))
    blocks = [name for name in stream if "/" in name]
    assert blocks == [
        f"transformer_layer_{i}/{leaf}"
        for i in range(2)
        for leaf in ("add", "self_attention_layer_norm", "add_1", "feedforward_layer_norm")
    ]
    assert stream[-1] == "pooled_dense" and "embeddings_layer_norm" in stream


def test_gpt2_tiny_streams_through_its_adds_only(hub_traces):
    stream = _names(view_layers(hub_traces["gpt2_tiny"]["layers"], STREAM))
    assert [name for name in stream if "/" in name] == [
        f"transformer_layer_{i}/{leaf}" for i in range(2) for leaf in ("add", "add_1")
    ]
    assert stream[-1] == "layer_norm"
    inside = _names(view_layers(hub_traces["gpt2_tiny"]["layers"], "block:transformer_layer_1"))
    assert "transformer_layer_1/self_attention/query" in inside and inside[-1] == "transformer_layer_1/add_1"


def test_vit_tiny_streams_through_the_adds_of_the_blocks_inside_its_encoder(hub_traces):
    layers = hub_traces["vit_tiny"]["layers"]
    blocks = block_names(layers)
    assert len(blocks) == 2 and all(block.startswith("vit_encoder/") for block in blocks)
    stream = _names(view_layers(layers, STREAM))
    assert [name for name in stream if block_of(name, blocks)] == [
        f"{block}/{leaf}" for block in blocks for leaf in ("add", "add_1")
    ]
    assert stream[-1] == "vit_encoder/ln"
