"""Benchmark upload intake on hostile and real configs: time and peak memory.

Each case runs in a fresh Python process (peak RSS is per process), through
``parse_upload -> (tf.keras 2 conversion) -> validate_model_config``, the
work the API does before a job exists. ``--before REV`` also runs the same
cases against ``autoinit/untrusted.py`` and ``autoinit/legacy.py`` as they
were at git revision ``REV``
(e.g. ``2b12773``, the last commit that had it), for a before/after table.

Cases: ``relu_bomb`` (50 MB of ``{"class_name":"ReLU"}`` layers, issue 13),
``deep_list`` (a 500-deep list), ``wide_dense`` (InputLayer [null, 15000] +
Dense(15000) without build_config), and ``resnet164`` (a real 0.5 MB config,
for scale).

Example:
    python benchmarks/bench_intake.py --before 2b12773
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CASE = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
data = Path(sys.argv[1]).read_bytes()
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == "before":
    import untrusted_before as upload
    from legacy_before import convert_legacy_config, is_legacy_config
else:
    import autoinit.upload as upload
    from autoinit.legacy import convert_legacy_config, is_legacy_config
start = time.perf_counter()
try:
    config = upload.parse_upload(data, "model.json")
    if is_legacy_config(config):
        config = convert_legacy_config(config)
    summary = upload.validate_model_config(config)
    outcome = f"accepted, {summary.num_layers} layers, {summary.estimated_params:,} parameters"
except Exception as error:  # the figure to report is what happened
    outcome = f"{type(error).__name__}: {str(error)[:90]}"
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "extra_mb": (peak - baseline) / 1024, "outcome": outcome}))
"""


def relu_bomb() -> bytes:
    layer = b'{"class_name":"ReLU"}'
    count = (49_900_000 - 60) // (len(layer) + 1)
    return b'{"class_name":"Sequential","config":{"layers":[' + b",".join([layer] * count) + b"]}}"


def deep_list() -> bytes:
    return b'{"class_name":"Sequential","config":{"layers":' + b"[" * 500 + b"]" * 500 + b"}}"


def wide_dense() -> bytes:
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, 15000], "name": "x"},
        },
        {"module": "keras.layers", "class_name": "Dense", "config": {"units": 15000, "name": "wide"}},
    ]
    return json.dumps(
        {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": layers}}
    ).encode()


def resnet164() -> bytes:
    code = "from autoinit import zoo; print(zoo.build('preact_resnet164').to_json())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1].encode()


CASES = {"relu_bomb": relu_bomb, "deep_list": deep_list, "wide_dense": wide_dense, "resnet164": resnet164}


def write_before(rev: str, folder: Path) -> None:
    for name in ("untrusted", "legacy"):
        source = subprocess.run(
            ["git", "show", f"{rev}:autoinit/{name}.py"], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
        (folder / f"{name}_before.py").write_text(source)


def run_case(path: Path, which: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CASE, str(path), which, str(folder)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    if out.returncode or not lines:
        return {"seconds": float("nan"), "extra_mb": float("nan"), "outcome": f"crashed: {out.stderr[-200:]}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also run autoinit/untrusted.py at this git revision")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        versions = ["now"]
        if args.before:
            write_before(args.before, folder)
            versions.insert(0, "before")
        print("| case | size | code | seconds | extra peak MB | outcome |\n|---|---|---|---|---|---|")
        for name in args.cases:
            path = folder / f"{name}.json"
            path.write_bytes(CASES[name]())
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            for which in versions:
                row = run_case(path, which, folder)
                print(
                    f"| {name} | {size} | {which} | {row['seconds']:.2f} | {row['extra_mb']:.0f} | {row['outcome']} |"
                )


if __name__ == "__main__":
    main()
