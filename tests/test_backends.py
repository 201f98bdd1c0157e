"""The library on every Keras backend: JAX and PyTorch, each in a fresh process
(Keras picks its backend once per process, from KERAS_BACKEND).

The worker stays on TensorFlow; these check the library's public API and the
acceptance band (every weighted layer within [0.5, 2]x its target) elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

pytestmark = pytest.mark.slow


def _run_on(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, str(HERE / "backend_check.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_library_works_on_backend(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(
            f"{backend} is not installed (pip install 'autoinit[{backend}]'); ./scripts/test installs it"
        )
    report = _run_on(backend)
    assert report["backend"] == backend
    assert "tensorflow" not in report["modules"], "the library imported TensorFlow on " + backend
    api = report["api"]
    assert api["types"] == ["Functional"], api
    assert api["scaled"] >= 8 and api["estimates"] >= api["scaled"], api
    assert api["same_seed_identical"] and api["other_seed_differs"], api
    assert api["initialized_config_builds"], api
    for name, result in report["band"].items():
        assert result["scaled"] > 0, (name, result)
        assert result["out_of_band"] == {}, (backend, name, result)
