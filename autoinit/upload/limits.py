"""Bounds on what one upload may ask of the service, and the error for too much."""

from __future__ import annotations

from dataclasses import dataclass

from autoinit.errors import UploadTooLargeError

__all__ = ["UploadLimits", "UploadTooLargeError", "check_size"]


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on what one upload may ask of the service.

    Args:
        max_bytes: size of the raw upload.
        max_layers: layers in the config, counting those inside nested models
            and wrappers (``Bidirectional``, ``TimeDistributed``, RNN cells).
        max_params: bound on the model's parameters (the upper bound
            `ConfigSummary.estimated_params`).
        max_depth: nesting depth of JSON objects and arrays.
        max_json_nodes: JSON objects plus arrays in the config, counted
            before it is parsed.
        max_archive_member_bytes: uncompressed size of ``config.json`` inside
            a ``.keras`` archive.
        max_compression_ratio: uncompressed / compressed size of
            ``config.json`` inside a ``.keras`` archive (zip-bomb guard).
        max_archive_members: number of files in a ``.keras`` archive.
    """

    max_bytes: int = 50_000_000
    max_layers: int = 5000
    max_params: int = 200_000_000
    max_depth: int = 64
    max_json_nodes: int = 1_000_000
    max_archive_member_bytes: int = 20_000_000
    max_compression_ratio: float = 200.0
    max_archive_members: int = 1000


def check_size(data: bytes, limits: UploadLimits) -> None:
    """Refuse ``data`` longer than ``limits.max_bytes``."""
    if len(data) > limits.max_bytes:
        raise UploadTooLargeError(
            f"The upload is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes."
        )
