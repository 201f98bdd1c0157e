"""Reading an upload off the request: a raw body, or a multipart form.

`read_upload` returns the model's bytes, its file name, the ``options``
form field parsed into a dict and the optional ``data`` field's bytes
(training data); it knows HTTP, not models or arrays (`server.intake`
checks what the bytes hold). `UPLOAD_REQUEST_BODY` documents the accepted
bodies in the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from autoinit.errors import ModelConfigError
from autoinit.upload import loads_json
from server.problems import ProblemError

__all__ = [
    "FORM_OVERHEAD",
    "MAX_OPTIONS_CHARS",
    "UPLOAD_REQUEST_BODY",
    "RawUpload",
    "parse_options_field",
    "read_upload",
]

#: Bytes a multipart body may hold beyond the model and the data: boundaries and the options field.
FORM_OVERHEAD = 1 << 20
#: Longest ``options`` field: a flat object of nine options needs far less.
MAX_OPTIONS_CHARS = 16_384
#: Deepest ``options`` field: the object, a list (``baselines``), one spare level.
_OPTIONS_DEPTH = 3

#: The request bodies ``POST /initialize`` accepts, for the OpenAPI schema.
UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {
                        "type": "string",
                        "format": "binary",
                        "description": "JSON config, .keras archive or tf.keras 2 JSON.",
                    },
                    "options": {
                        "type": "string",
                        "description": "JSON object of options (see query parameters).",
                    },
                    "data": {
                        "type": "string",
                        "format": "binary",
                        "description": "Optional training data for train_steps > 0: an .npz archive "
                        "with numeric arrays 'x' (examples of the model's input shape) and 'y' "
                        "(targets: the output's shape, or integer class labels for a softmax "
                        "head) of the same length, read without unpickling (object arrays are "
                        "refused). At most AUTOINIT_MAX_DATA_BYTES (413 beyond); an archive "
                        "that cannot be read is a 422 before any job exists. Without it, "
                        "training runs on a synthetic teacher task.",
                    },
                },
            }
        },
        "application/json": {
            "schema": {"type": "object", "description": "A model config (model.to_json())."}
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary", "description": "A .keras archive or JSON."}
        },
    },
}


@dataclass(frozen=True)
class RawUpload:
    """The model's bytes as sent, its file name, the options sent with it, and
    the ``data`` field's bytes (training data) when there is one."""

    data: bytes
    filename: str | None
    options: dict[str, Any] = field(default_factory=dict)
    training_data: bytes | None = None


async def read_upload(
    request: Request, filename: str | None, max_bytes: int, max_data_bytes: int | None = None
) -> RawUpload:
    """The model bytes, its file name, the ``options`` form field and the
    ``data`` field (training data), each if sent.

    Raises:
        ProblemError: 413 when the model field is over ``max_bytes`` or the
            data field over ``max_data_bytes``; 422 when the form has no
            ``model`` field or its ``options`` are not a JSON object.
    """
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        return RawUpload(await request.body(), filename)
    max_data_bytes = max_bytes if max_data_bytes is None else max_data_bytes
    try:
        form = await request.form(
            max_files=3, max_fields=10, max_part_size=max(max_bytes, max_data_bytes) + 1
        )
    except StarletteHTTPException as error:
        if "exceeded maximum size" in str(error.detail):
            raise ProblemError(
                413,
                "Upload too large",
                f"A form field is larger than this server allows: the 'model' field may hold "
                f"{max_bytes:,} bytes, the 'data' field {max_data_bytes:,}.",
            ) from None
        raise
    model = form.get("model")
    if model is None:
        raise ProblemError(
            422,
            "Missing model",
            "Expected a multipart field named 'model' holding the model file "
            f"(JSON config or .keras archive). Received fields: {sorted(form.keys())}.",
        )
    if isinstance(model, UploadFile):
        data, filename = await model.read(), model.filename or filename
    else:
        data = model.encode()
        if len(data) > max_bytes:
            raise ProblemError(
                413, "Upload too large", f"The 'model' field is larger than {max_bytes:,} bytes."
            )
    training_data = await _training_data(form.get("data"), max_data_bytes)
    raw_options = form.get("options")
    if raw_options is None or raw_options == "":
        return RawUpload(data, filename, training_data=training_data)
    if isinstance(raw_options, UploadFile):
        raw_options = await raw_options.read(MAX_OPTIONS_CHARS * 4 + 1)
    return RawUpload(data, filename, parse_options_field(raw_options), training_data)


async def _training_data(field: UploadFile | str | None, max_data_bytes: int) -> bytes | None:
    """The ``data`` field's bytes (None when absent or empty); 413 over ``max_data_bytes``."""
    if field is None:
        return None
    if isinstance(field, UploadFile):
        data = await field.read(max_data_bytes + 1)
    else:
        data = field.encode("utf-8", "surrogateescape")
    if len(data) > max_data_bytes:
        raise ProblemError(
            413,
            "Training data too large",
            f"The 'data' field is larger than {max_data_bytes:,} bytes, this server's limit "
            "(AUTOINIT_MAX_DATA_BYTES).",
        )
    return data or None


def parse_options_field(text: str | bytes) -> dict[str, Any]:
    """The ``options`` form field as a dict; 422 unless it is a JSON object.

    Parsed within bounds (length, nesting), refusing duplicate keys, integers
    of thousands of digits, ``NaN`` and invalid Unicode, so no value of the
    field costs more than one scan of at most `MAX_OPTIONS_CHARS` characters.
    """
    if len(text) > MAX_OPTIONS_CHARS:
        raise ProblemError(
            422,
            "Invalid options",
            f"The 'options' field is {len(text):,} characters long; at most "
            f"{MAX_OPTIONS_CHARS:,} are accepted.",
        )
    try:
        options = loads_json(
            text, max_depth=_OPTIONS_DEPTH, max_nodes=MAX_OPTIONS_CHARS, source="The 'options' field"
        )
    except ModelConfigError as error:
        raise ProblemError(
            422, "Invalid options", f"{error} It must be a JSON object of options (GET /options lists them)."
        ) from None
    if not isinstance(options, dict):
        raise ProblemError(
            422,
            "Invalid options",
            f"The 'options' field must be a JSON object. Received: {type(options).__name__}.",
        )
    return options
