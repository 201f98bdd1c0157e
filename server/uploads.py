"""Reading an upload off the request: a raw body, or a multipart form.

`read_upload` returns the model's bytes, its file name and the ``options``
form field parsed into a dict; it knows HTTP, not models (`server.intake`
checks what the bytes hold). `UPLOAD_REQUEST_BODY` documents the accepted
bodies in the OpenAPI schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.problems import ProblemError

__all__ = ["FORM_OVERHEAD", "UPLOAD_REQUEST_BODY", "RawUpload", "read_upload"]

#: Bytes a multipart body may hold beyond the model: boundaries and the options field.
FORM_OVERHEAD = 1 << 20

#: The request bodies ``POST /initialize`` accepts, for the OpenAPI schema.
UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {"type": "string", "format": "binary",
                              "description": "JSON config, .keras archive or tf.keras 2 JSON."},
                    "options": {"type": "string",
                                "description": "JSON object of options (see query parameters)."},
                },
            }
        },
        "application/json": {"schema": {"type": "object",
                                        "description": "A model config (model.to_json())."}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary",
                                                "description": "A .keras archive or JSON."}},
    },
}


@dataclass(frozen=True)
class RawUpload:
    """The model's bytes as sent, its file name, and the options sent with it."""

    data: bytes
    filename: str | None
    options: dict[str, Any] = field(default_factory=dict)


async def read_upload(request: Request, filename: str | None, max_bytes: int) -> RawUpload:
    """The model bytes, its file name and the ``options`` form field, if any.

    Raises:
        ProblemError: 413 when the model field is over ``max_bytes``; 422 when
            the form has no ``model`` field or its ``options`` are not a JSON object.
    """
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        return RawUpload(await request.body(), filename)
    try:
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_bytes + 1)
    except StarletteHTTPException as error:
        if "exceeded maximum size" in str(error.detail):
            raise ProblemError(413, "Upload too large",
                               f"The 'model' field is larger than {max_bytes:,} bytes.") from None
        raise
    model = form.get("model")
    if model is None:
        raise ProblemError(422, "Missing model",
                           "Expected a multipart field named 'model' holding the model file "
                           f"(JSON config or .keras archive). Received fields: {sorted(form.keys())}.")
    if isinstance(model, UploadFile):
        data, filename = await model.read(), model.filename or filename
    else:
        data = model.encode()
    raw_options = form.get("options")
    if raw_options is None or raw_options == "":
        return RawUpload(data, filename)
    if isinstance(raw_options, UploadFile):
        raw_options = (await raw_options.read()).decode("utf-8", errors="replace")
    return RawUpload(data, filename, parse_options_field(raw_options))


def parse_options_field(text: str) -> dict[str, Any]:
    """The ``options`` form field as a dict; 422 unless it is a JSON object."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProblemError(422, "Invalid options",
                           f"The 'options' field must be a JSON object; it is not valid JSON "
                           f"({error.msg} at line {error.lineno}, column {error.colno}).") from None
    if not isinstance(options, dict):
        raise ProblemError(422, "Invalid options",
                           f"The 'options' field must be a JSON object. Received: "
                           f"{type(options).__name__}.")
    return options
