"""The probe batch: Gaussian floats, and valid token ids where a model takes ids."""

from __future__ import annotations

import math

import keras
import numpy as np

from autoinit.keras_adapter.composite import closed_shape, open_length
from autoinit.keras_adapter.graph import embedding_vocabularies, is_padding_mask, model_inputs

__all__ = ["gaussian_inputs"]


def _all_layers(model: keras.Model) -> list:
    return list(model._flatten_layers(include_self=False, recursive=True))


def _vocabulary_size(model: keras.Model) -> int:
    sizes = [layer.input_dim for layer in _all_layers(model) if isinstance(layer, keras.layers.Embedding)]
    return int(min(sizes)) if sizes else 2


def gaussian_inputs(
    model: keras.Model, batch_size: int, seed: int, mean: float = 0.0, var: float = 1.0
) -> list[np.ndarray]:
    """One batch per model input: N(mean, var) floats; uniformly random valid
    token ids for integer inputs and for inputs that feed an Embedding; ones
    for an integer input named ``*mask`` (``keras_hub``'s ``padding_mask``)."""
    rng = np.random.default_rng(seed)
    vocabularies = embedding_vocabularies(model)
    batch = []
    inputs = model_inputs(model)
    with open_length(model):  # open dimensions: what the walk traced
        shapes = [closed_shape(shape, batch_size) for _, shape, _ in inputs]
    for (name, _, dtype), dims in zip(inputs, shapes):
        if is_padding_mask(name, dtype):
            batch.append(np.ones(dims, dtype=dtype))  # a padding mask: every token is real
        elif name in vocabularies:
            batch.append(rng.integers(0, vocabularies[name], size=dims).astype(dtype))
        elif "int" in dtype:
            batch.append(rng.integers(0, _vocabulary_size(model), size=dims).astype(dtype))
        else:
            x = rng.standard_normal(
                dims, dtype=np.float32
            )  # float32 throughout: no batch-sized float64 copies
            x *= np.float32(math.sqrt(var))
            x += np.float32(mean)
            batch.append(x)
    return batch
