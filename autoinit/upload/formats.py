"""Which file format an upload is, from its bytes."""

from __future__ import annotations

__all__ = ["ASK_FOR", "ZIP_MAGICS", "is_hdf5"]

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: What to upload instead, appended to refusals.
ASK_FOR = (
    "Upload the model's JSON config (json of model.to_json()) or a .keras "
    "archive (model.save('model.keras'))."
)


def is_hdf5(data: bytes) -> bool:
    """HDF5's signature sits at offset 0, 512, 1024, 2048, ... (user block)."""
    offset = 0
    while offset + len(_HDF5_MAGIC) <= len(data):
        if data[offset : offset + len(_HDF5_MAGIC)] == _HDF5_MAGIC:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False
