"""What `import autoinit` costs: wall time and resident memory of a fresh
process importing it, side by side with importing Keras on its TensorFlow
backend (what the library used to pull in) and NumPy alone.

Each figure is the median of ``--repeats`` fresh processes (machines are
noisy); ratios are against ``import numpy``, the floor any user pays.

    .venv/bin/python benchmarks/bench_import.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_MEASURE = """
import json, resource, sys, time
start = time.perf_counter()
{statement}
seconds = time.perf_counter() - start
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
heavy = sorted(m for m in ("tensorflow", "keras", "jax", "torch", "fastapi", "celery") if m in sys.modules)
print(json.dumps({{"seconds": seconds, "rss_mib": rss_kib / 1024, "loaded": heavy}}))
"""

CASES = {
    "numpy": "import numpy",
    "autoinit": "import autoinit; from autoinit import AutoInit",
    "autoinit.plot": "import autoinit.plot",
    "keras (tensorflow backend)": "import keras",
}


def measure(statement: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE.format(statement=statement)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = {}
    for name, statement in CASES.items():
        runs = [measure(statement) for _ in range(args.repeats)]
        rows[name] = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "rss_mib": statistics.median(r["rss_mib"] for r in runs),
            "loaded": runs[0]["loaded"],
        }
    base = rows["numpy"]
    print(f"{'import':28} {'seconds':>8} {'x numpy':>8} {'RSS MiB':>8} {'x numpy':>8}  heavy modules loaded")
    for name, row in rows.items():
        print(
            f"{name:28} {row['seconds']:8.3f} {row['seconds'] / base['seconds']:8.1f} "
            f"{row['rss_mib']:8.0f} {row['rss_mib'] / base['rss_mib']:8.1f}  "
            f"{', '.join(row['loaded']) or '-'}"
        )


if __name__ == "__main__":
    main()
