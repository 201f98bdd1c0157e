"""Uploaded bytes -> a config dict, without trusting them."""

from __future__ import annotations

from typing import Any

from autoinit.errors import ModelConfigError
from autoinit.upload.archive import read_keras_archive_config
from autoinit.upload.formats import ASK_FOR, ZIP_MAGICS, is_hdf5
from autoinit.upload.json_text import parse_config_json
from autoinit.upload.limits import UploadLimits, check_size

__all__ = ["drop_compile_config", "parse_upload"]


def drop_compile_config(config: dict[str, Any]) -> dict[str, Any]:
    """Remove ``compile_config`` from every serialized object, in place.

    AutoInit never compiles a model, and Keras would deserialize the
    optimizer, losses and metrics it names. Objects deeper than 256 levels
    are left alone (`validate_model_config` refuses such configs anyway).
    Returns ``config`` for chaining.
    """
    stack: list[tuple[Any, int]] = [(config, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > 256:
            continue
        if isinstance(value, dict):
            if "class_name" in value:
                value.pop("compile_config", None)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return config


def parse_upload(data: bytes, filename: str | None, limits: UploadLimits = UploadLimits()) -> dict[str, Any]:
    """Turn an uploaded file into a config dict, without trusting it.

    Accepted: a JSON model config (``model.to_json()``, Keras 3 or tf.keras 2)
    and a ``.keras`` archive. Refused with a message that says what to upload
    instead: HDF5 (``.h5``) files and TensorFlow SavedModels. The content
    decides the format; ``filename`` only sharpens the messages.

    The returned dict has had its ``compile_config`` entries removed (see
    `drop_compile_config`) and is NOT yet validated: convert tf.keras 2
    configs, then call `validate_model_config`.

    Raises:
        UploadTooLargeError: more than ``limits.max_bytes``.
        ModelConfigError: unsupported format, broken archive, invalid UTF-8
            or JSON (with line and column).
    """
    data = bytes(data)
    check_size(data, limits)
    name = (filename or "").lower()
    if not data:
        raise ModelConfigError(f"The upload is empty. {ASK_FOR}")
    if is_hdf5(data) or name.endswith((".h5", ".hdf5")):
        raise ModelConfigError(
            "HDF5 model files (.h5) are not accepted: reading them runs Keras' "
            f"legacy loader on untrusted bytes. {ASK_FOR}"
        )
    if name.endswith((".pb", ".pbtxt")):
        raise ModelConfigError(f"TensorFlow SavedModels (saved_model.pb) are not accepted. {ASK_FOR}")
    if data.startswith(ZIP_MAGICS):
        config = read_keras_archive_config(data, limits)
    elif name.endswith(".keras"):
        raise ModelConfigError(
            f"{filename!r} is named like a .keras archive but is not a zip file. {ASK_FOR}"
        )
    elif data.startswith(b"\x1f\x8b"):
        raise ModelConfigError(f"Gzip/tar archives are not accepted. {ASK_FOR}")
    else:
        config = parse_config_json(data, "The upload", limits)
    return drop_compile_config(config)
