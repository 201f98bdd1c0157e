"""keras_hub over HTTP: a vetted backbone's config becomes a job that completes on
the worker (which imports keras_hub); what is not vetted, or not a valid
argument, is refused by the API (which never imports Keras) before a job exists."""

from __future__ import annotations

import copy
import io
import json
import re

import pytest

keras_hub = pytest.importorskip("keras_hub")

import keras  # noqa: E402

PROBLEM = "application/problem+json"


def _config(obj) -> dict:
    return json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))


@pytest.fixture(scope="module")
def bert() -> dict:
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=1000,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=64,
    )
    return _config(backbone)


def _jobs_in_store(client) -> int:
    text = client.get("/metrics").text
    return int(sum(float(v) for v in re.findall(r'^autoinit_jobs\{status="\w+"\} (\S+)$', text, re.M)))


def test_a_small_bert_backbone_config_becomes_a_job_that_completes(client, bert):
    answer = client.post("/initialize", params={"wait": 240}, json=bert)
    job = answer.json()
    assert answer.status_code == 200 and job["status"] == "succeeded", job
    names = [layer["name"] for layer in client.get(job["links"]["traces"]).json()["layers"]]
    assert any(name.startswith("transformer_layer_0/") for name in names), names  # inside the blocks
    model = client.get(job["links"]["model"])
    assert model.status_code == 200 and model.content[:2] == b"PK"  # a .keras archive
    assert client.get("/healthz").json()["tensorflow_imported"] is False  # nor keras_hub, which imports both
    # The figure of the residual stream, server-side (what the page's Show select draws).
    stream = client.get(f"/jobs/{job['id']}/figure", params={"view": "stream"})
    assert stream.status_code == 200, stream.text
    plotted = {
        str(x) for trace in stream.json()["data"] for x in (trace.get("customdata") or trace.get("x") or [])
    }
    everything = client.get(f"/jobs/{job['id']}/figure").json()
    assert len(stream.json()["data"][0]["x"]) < len(everything["data"][0]["x"]), plotted
    block = client.get(f"/jobs/{job['id']}/figure", params={"view": "block:transformer_layer_1"})
    assert block.status_code == 200 and "inside transformer_layer_1" in block.text
    unknown = client.get(f"/jobs/{job['id']}/figure", params={"view": "block:nope"})
    assert unknown.status_code == 422 and "block:transformer_layer_0" in unknown.json()["detail"]


def test_a_functional_model_with_a_transformer_encoder_completes(client):
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size=100, sequence_length=64, embedding_dim=32)(
        ids
    )
    x = keras_hub.layers.TransformerEncoder(intermediate_dim=64, num_heads=4)(x)
    config = _config(keras.Model(ids, keras.layers.Dense(4)(x), name="with_encoder"))
    job = client.post("/initialize", params={"wait": 240}, json=config).json()
    assert job["status"] == "succeeded", job


def _refused(answer, title: str, phrase: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["title"] == title, problem
    assert phrase in problem["detail"], problem


def test_a_tokenizer_is_refused_as_unsafe(client):
    tokenizer = keras_hub.tokenizers.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    )
    before = _jobs_in_store(client)
    answer = client.post("/initialize", files={"model": ("tokenizer.json", json.dumps(_config(tokenizer)))})
    _refused(answer, "Unsafe model config refused", "tokenizers load their vocabulary from files")
    assert _jobs_in_store(client) == before


@pytest.mark.parametrize(
    ("argument", "value", "title", "phrase"),
    [
        (
            "preset",
            "bert_base_en",
            "Unsafe model config refused",
            "'preset' is not one keras_hub's BertBackbone",
        ),
        ("vocabulary_size", 10**9, "Invalid model config", "The config asks for more than"),
        ("hidden_dim", 10**6, "Invalid model config", "The config asks for more than"),
        ("intermediate_dim", "/etc/passwd", "Invalid model config", "to be a positive integer"),
    ],
)
def test_a_bad_backbone_argument_is_refused_before_a_job_exists(client, bert, argument, value, title, phrase):
    config = copy.deepcopy(bert)
    config["config"][argument] = value
    before = _jobs_in_store(client)
    body = io.BytesIO(json.dumps(config).encode())
    _refused(client.post("/initialize", files={"model": ("bert.json", body)}), title, phrase)
    assert _jobs_in_store(client) == before


def test_autoinit_plus_plus_on_a_backbone_is_refused_before_a_job_exists(client, bert):
    before = _jobs_in_store(client)
    answer = client.post("/initialize", params={"center_activations": "true"}, json=bert)
    _refused(answer, "Option not available for this model", "holds its arguments, not layers")
    assert _jobs_in_store(client) == before
