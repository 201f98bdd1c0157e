"""Read ``config.json`` out of a ``.keras`` archive, and nothing else."""

from __future__ import annotations

import io
import math
import re
import struct
import zipfile
import zlib
from typing import Any

from autoinit.errors import ModelConfigError, UnsafeConfigError
from autoinit.upload.formats import ASK_FOR
from autoinit.upload.json_text import parse_config_json
from autoinit.upload.limits import UploadLimits, UploadTooLargeError, check_size
from autoinit.upload.paths import short

__all__ = ["read_keras_archive_config"]

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def _check_member_name(name: str) -> None:
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise UnsafeConfigError(
            f"The archive holds a file named {name!r}, which points outside the archive; refusing it."
        )


def read_keras_archive_config(data: bytes, limits: UploadLimits = UploadLimits()) -> dict[str, Any]:
    """Read ``config.json`` out of a ``.keras`` archive, and nothing else.

    A ``.keras`` file is a zip holding ``config.json``, ``metadata.json`` and
    ``model.weights.h5``. The member names are checked, ``config.json``'s
    declared size and compression ratio are bounded, and at most
    ``max_archive_member_bytes + 1`` bytes are decompressed. Nothing is
    extracted and the weights file is never opened.

    Raises:
        UploadTooLargeError: the archive or its ``config.json`` is too large.
        UnsafeConfigError: a member name escapes the archive, or
            ``config.json`` is a likely zip bomb.
        ModelConfigError: not a readable zip, no ``config.json``, not JSON.
    """
    check_size(data, limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as error:
        raise ModelConfigError(
            f"The upload is not a readable zip archive ({error}); it may be truncated. {ASK_FOR}"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_members:
            raise ModelConfigError(
                f"The archive holds {len(infos)} files; a .keras archive holds "
                f"a few (at most {limits.max_archive_members} accepted)."
            )
        for info in infos:
            _check_member_name(info.filename)
        names = [info.filename for info in infos]
        if any(n.rsplit("/", 1)[-1].startswith("saved_model.pb") for n in names):
            raise ModelConfigError(
                f"The archive holds a TensorFlow SavedModel, which is not accepted. {ASK_FOR}"
            )
        configs = [info for info in infos if info.filename == "config.json"]
        if len(configs) != 1:
            found = "no" if not configs else f"{len(configs)}"
            raise ModelConfigError(
                f"Expected one config.json in the .keras archive; found "
                f"{found}. Files present: {short(names[:10], 200)}. "
                f"{ASK_FOR}"
            )
        return _read_config_member(archive, configs[0], limits)


def _read_config_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits
) -> dict[str, Any]:
    limit = limits.max_archive_member_bytes
    if info.flag_bits & 0x1:
        raise ModelConfigError("config.json in the archive is encrypted.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelConfigError(
            "config.json in the archive uses compression method "
            f"{info.compress_type}; expected stored (0) or deflated (8)."
        )
    if info.file_size > limit:
        raise UploadTooLargeError(
            f"config.json in the archive is {info.file_size:,} bytes "
            f"uncompressed; the limit is {limit:,} bytes."
        )
    ratio = (
        info.file_size / info.compress_size if info.compress_size else (math.inf if info.file_size else 1.0)
    )
    if ratio > limits.max_compression_ratio:
        raise UnsafeConfigError(
            f"config.json in the archive expands {ratio:,.0f} times when "
            f"decompressed (limit {limits.max_compression_ratio:g}); refusing "
            "a likely zip bomb."
        )
    try:
        with archive.open(info) as member:
            raw = member.read(limit + 1)
    except _ZIP_ERRORS as error:
        raise ModelConfigError(
            f"config.json in the archive cannot be read ({error}); the archive is damaged or truncated."
        ) from None
    if len(raw) > limit:
        raise UploadTooLargeError(f"config.json in the archive is larger than {limit:,} bytes.")
    return parse_config_json(raw, "config.json in the archive", limits)
