"""Shared helpers for the benchmark scripts: quiet TensorFlow, argument parsing, timing, tables.

Scripts in this folder print figures; they are not tests. Run them from the
repository root, e.g. ``.venv/bin/python benchmarks/bench_speed.py --quick``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras/TensorFlow internals emit NumPy-2 DeprecationWarnings that say nothing about AutoInit.
warnings.filterwarnings("ignore", category=DeprecationWarning)

OUT_DIR = Path(__file__).resolve().parent / "out"


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """``--quick`` (smaller run) plus any script-specific options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller run (fewer repetitions / models)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def banner(title: str) -> None:
    """Print what ran where: the figures mean little without the machine."""
    import keras
    import tensorflow as tf

    print(f"# {title}")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')} | {platform.machine()} | {os.cpu_count()} cores | "
        f"python {platform.python_version()} | tensorflow {tf.__version__} | keras {keras.__version__}"
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of ``fn`` took, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_growth(fn: Callable[[], Any]) -> tuple[float, Any, float | None]:
    """``fn()``'s seconds, result, and peak-RSS growth in MiB (None where
    ``/proc/self/clear_refs`` cannot reset the peak)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        start = _status_kib("VmRSS")
    except OSError:
        start = None
    seconds, result = timed(fn)
    growth = None if start is None else max(0, _status_kib("VmHWM") - start) / 1024
    return seconds, result, growth


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt(value: float | None, digits: int = 3) -> str:
    """Compact number: None/inf/nan become 'overflow'."""
    if value is None or not math.isfinite(value):
        return "overflow"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_html_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embed-plotlyjs",
        action="store_true",
        help="embed plotly.js in each HTML file (~3.5 MB each, viewable offline); default loads it from the CDN",
    )


def save_figure(traces: dict, filename: str, embed_plotlyjs: bool, title: str | None = None) -> Path:
    """Write ``autoinit.plot.signal_figure(traces)`` to ``benchmarks/out/<filename>``."""
    from autoinit.plot import signal_figure, write_html

    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / filename
    write_html(signal_figure(traces, title=title), path, offline=embed_plotlyjs)
    return path


def series_var(layer: dict, series: str) -> float | None:
    """A traces layer's variance under one series (None: overflowed or absent)."""
    value = (layer.get(series) or {}).get("var")
    return None if value is None or not math.isfinite(value) else float(value)
