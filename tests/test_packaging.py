"""What an install brings: a light library import, and a lock that pins
everything pyproject.toml declares."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return [Requirement(spec) for spec in specs]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_the_lock_pins_every_declared_dependency_within_its_range():
    locked = _locked()
    project = canonicalize_name("autoinit")
    missing, outside = [], []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name == project:  # the `all` extra names the others
            continue
        if name not in locked:
            missing.append(str(requirement))
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            outside.append(f"{requirement} (locked {locked[name]})")
    assert not missing, f"run scripts/lock: not in constraints.txt: {missing}"
    assert not outside, f"run scripts/lock: pins outside pyproject's ranges: {outside}"


def test_the_all_extra_names_every_role_but_gpu():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    (everything,) = project["optional-dependencies"]["all"]
    named = set(Requirement(everything).extras)
    assert named == extras - {"all", "gpu"}, named


def test_importing_the_library_loads_no_backend_and_no_service():
    probe = (
        "import json, sys; import autoinit, autoinit.plot; from autoinit import AutoInit; "
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch', "
        "'fastapi', 'celery', 'uvicorn', 'redis', 'server') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == [], result.stdout
