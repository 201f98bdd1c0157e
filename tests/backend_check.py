"""Run by tests/test_backends.py in a fresh process with KERAS_BACKEND set:
the public API and the acceptance band on a non-TensorFlow Keras backend.

Prints one JSON object on its last line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from band import out_of_band, weighted_ratios  # noqa: E402
from composites import functional_with_blocks  # noqa: E402

from autoinit import AutoInit, zoo  # noqa: E402

BAND_MODELS = ("mlp", "all_cnn_c", "preact_resnet56_nobn", "text_rnn", "transformer_encoder", "codeepneat")


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def main() -> None:
    report: dict = {
        "backend": keras.backend.backend(),
        "modules": sorted(name for name in ("tensorflow", "jax", "torch") if name in sys.modules),
    }
    config = json.loads(zoo.build("mlp").to_json())
    from_model, estimates = AutoInit(seed=3).initialize_model(zoo.build("mlp"), return_estimates=True)
    from_dict = AutoInit(seed=3).initialize_model(config)
    from_json = AutoInit(seed=3).initialize_model(json.dumps(config))
    report["api"] = {
        "types": sorted({type(m).__name__ for m in (from_model, from_dict, from_json)}),
        "estimates": len(estimates),
        "scaled": sum(1 for record in estimates if record["target"] is not None),
        "same_seed_identical": all(
            np.array_equal(a, b) for a, b in zip(_weights(from_dict), _weights(from_json))
        ),
        "other_seed_differs": not all(
            np.array_equal(a, b)
            for a, b in zip(_weights(from_dict), _weights(AutoInit(seed=4).initialize_model(config)))
        ),
    }
    rebuilt = keras.saving.deserialize_keras_object(AutoInit(seed=3).initialized_config(config))
    report["api"]["initialized_config_builds"] = len(rebuilt.layers) == len(from_dict.layers)
    report["band"] = {}
    for name in BAND_MODELS:
        ratios = weighted_ratios(zoo.build(name), seed=1)
        report["band"][name] = {"scaled": len(ratios), "out_of_band": out_of_band(ratios)}
    composite = functional_with_blocks()
    ratios = weighted_ratios(composite, seed=1)
    report["band"]["composite_blocks"] = {
        "scaled": sum(1 for name in ratios if "/" in name),  # sublayers inside the blocks
        "out_of_band": out_of_band(ratios),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
