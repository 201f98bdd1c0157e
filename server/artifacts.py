"""Where job files live: ``<root>/<job id>/<name>``, shared by API and workers.

Files never travel through the broker. The root is a local directory (the
default, under the data directory) or, when ``fsspec`` is installed, any
fsspec URL such as ``s3://bucket/prefix`` for workers on other hosts.

Names used: ``upload.json`` (the validated config, written by the API),
``data.npz`` (the job's training data, if it came with any, written by the API),
``model.keras``, ``config.json`` and ``traces.json`` (written by a worker).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["ArtifactStore", "ARTIFACT_NAMES"]

ARTIFACT_NAMES = frozenset({"upload.json", "data.npz", "model.keras", "config.json", "traces.json"})


class ArtifactStore:
    """Read and write job files under one root (local path or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._local = "://" not in root or root.startswith("file://")
        if self._local:
            self._base = Path(root.removeprefix("file://")).resolve()
            self._base.mkdir(parents=True, exist_ok=True)
        else:
            try:
                import fsspec
            except ImportError as error:
                raise RuntimeError(
                    f"Artifact store {root!r} is a URL; reading it needs the "
                    "`fsspec` package (and its backend, e.g. `s3fs`). Received "
                    f"ImportError: {error}."
                ) from None
            self._fs, self._prefix = fsspec.core.url_to_fs(root)

    def _check(self, job_id: str, name: str) -> None:
        if name not in ARTIFACT_NAMES or not job_id.isalnum():
            raise ValueError(
                f"Expected a job id (letters and digits) and one of "
                f"{sorted(ARTIFACT_NAMES)}. Received: {job_id!r}, {name!r}."
            )

    def local_path(self, job_id: str, name: str) -> Path | None:
        """The file's path when the store is local (for streaming), else None."""
        self._check(job_id, name)
        return self._base / job_id / name if self._local else None

    def put_bytes(self, job_id: str, name: str, data: bytes) -> None:
        """Write atomically: readers see the old file, or the whole new one."""
        self._check(job_id, name)
        if self._local:
            folder = self._base / job_id
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, folder / name)
        else:
            # Object stores have no folders (a no-op there); local-like ones need it.
            self._fs.makedirs(f"{self._prefix}/{job_id}", exist_ok=True)
            self._fs.pipe_file(f"{self._prefix}/{job_id}/{name}", data)

    def put_file(self, job_id: str, name: str, source: Path) -> None:
        self.put_bytes(job_id, name, Path(source).read_bytes())

    def get_bytes(self, job_id: str, name: str) -> bytes | None:
        """The file's content, or None when it does not exist."""
        self._check(job_id, name)
        try:
            if self._local:
                return (self._base / job_id / name).read_bytes()
            return self._fs.cat_file(f"{self._prefix}/{job_id}/{name}")
        except FileNotFoundError:
            return None

    def delete(self, job_id: str) -> None:
        if not job_id.isalnum():
            return
        if self._local:
            shutil.rmtree(self._base / job_id, ignore_errors=True)
        else:
            try:
                self._fs.rm(f"{self._prefix}/{job_id}", recursive=True)
            except FileNotFoundError:
                pass

    def stale_job_ids(self, known: set[str], older_than: float) -> list[str]:
        """Local folders of jobs no longer in the store (deleted mid-run)."""
        if not self._local:
            return []
        cutoff = time.time() - older_than
        return [
            entry.name
            for entry in self._base.iterdir()
            if entry.is_dir() and entry.name not in known and entry.stat().st_mtime < cutoff
        ]
