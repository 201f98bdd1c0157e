"""Untrusted upload -> validated Keras 3 config, in the API process (no TF).

Order matters: parse (bounded, no Keras) -> convert tf.keras 2 configs ->
walk the result against the allow-list. Anything refused becomes a 4xx
`ProblemError` before a job exists, so workers only ever see configs that
passed `autoinit.upload.validate_model_config`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from autoinit.errors import ModelConfigError, UnsafeConfigError
from autoinit.legacy import convert_legacy_config, is_legacy_config
from autoinit.upload import (
    UploadLimits,
    UploadTooLargeError,
    is_hdf5,
    parse_upload,
    validate_model_config,
)
from server.problems import ProblemError
from server.text import has_lone_surrogate, lone_surrogate_path

__all__ = ["ValidatedUpload", "validate_upload"]

log = logging.getLogger("autoinit.server")


@dataclass(frozen=True)
class ValidatedUpload:
    config: dict[str, Any]
    summary: dict[str, Any]


def _unsupported_format(data: bytes, filename: str | None) -> bool:
    name = (filename or "").lower()
    return is_hdf5(data) or name.endswith((".h5", ".hdf5", ".pb", ".pbtxt"))


def validate_upload(data: bytes, filename: str | None, limits: UploadLimits) -> ValidatedUpload:
    """Parse, convert and validate; raise `ProblemError` (413/415/422) if refused.

    Whatever the bytes hold, the answer is a `ValidatedUpload` or a 4xx: an
    unexpected error of the parser or the converter (a bug met with hostile
    input) is a 422 too, never a 500, and no job exists yet either way.
    """
    if filename is not None and has_lone_surrogate(filename):
        raise ProblemError(
            422,
            "Invalid file name",
            f"The file name {filename!r} is not valid Unicode (an unpaired surrogate).",
        )
    try:
        config = parse_upload(data, filename, limits)
        legacy = is_legacy_config(config)
        if legacy:
            config = convert_legacy_config(config)
        summary = validate_model_config(config, limits)
    except UploadTooLargeError as error:
        raise ProblemError(413, "Upload too large", str(error)) from None
    except UnsafeConfigError as error:
        raise ProblemError(422, "Unsafe model config refused", str(error)) from None
    except ModelConfigError as error:
        if _unsupported_format(data, filename):
            raise ProblemError(415, "Unsupported model format", str(error)) from None
        raise ProblemError(422, "Invalid model config", str(error)) from None
    except Exception as error:  # hostile input met a bug: still a 4xx, never a 500
        log.warning("upload refused after an unexpected %s", type(error).__name__, exc_info=True)
        raise ProblemError(
            422,
            "Invalid model config",
            f"The config could not be read as a Keras model config ({type(error).__name__}: "
            f"{str(error)[:300]}). Expected the JSON of model.to_json() or a .keras archive.",
        ) from None
    where = lone_surrogate_path(config)
    if where is not None:
        raise ProblemError(
            422,
            "Invalid model config",
            f"The config holds invalid Unicode (an unpaired surrogate, \\ud800-\\udfff) at {where}.",
        )
    name = config.get("config", {}).get("name") if isinstance(config.get("config"), dict) else None
    return ValidatedUpload(
        config=config,
        summary={
            "name": name,
            "class_name": config.get("class_name"),
            "num_layers": summary.num_layers,
            "estimated_params": summary.estimated_params,
            "class_counts": dict(summary.class_counts),
            "converted_from_tf_keras_2": legacy,
        },
    )
