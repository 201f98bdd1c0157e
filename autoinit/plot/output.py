"""Writing a figure out: JSON for the page, standalone HTML, static images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from autoinit.plot.signal import signal_figure
from autoinit.plot.style import PLOTLY_CONFIG

_IMAGE_FORMATS = ("png", "svg", "pdf", "jpeg", "jpg", "webp")


def figure_json(traces: Mapping[str, Any], **kwargs: Any) -> str:
    """The figure spec as JSON, for ``Plotly.newPlot`` on the page.

    ``kwargs`` go to :func:`signal_figure`. The plotly.js config (PNG export
    button options) is in ``layout.meta.config``.
    """
    return signal_figure(traces, **kwargs).to_json()


def write_html(fig: go.Figure, path: str | Path, *, offline: bool = True) -> None:
    """A standalone HTML page; ``offline`` embeds plotly.js (no network needed)."""
    meta = fig.layout.meta
    config = meta.get("config", PLOTLY_CONFIG) if isinstance(meta, dict) else PLOTLY_CONFIG
    fig.write_html(str(path), include_plotlyjs=True if offline else "cdn", full_html=True, config=config)


def write_image(fig: go.Figure, path: str | Path) -> None:
    """A static image; the format comes from the suffix (.png, .svg, ...).

    Needs the optional ``kaleido`` package.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in _IMAGE_FORMATS:
        expected = ["." + f for f in _IMAGE_FORMATS]
        raise ValueError(f"`path` should end in one of {expected}. Received: {str(path)!r}")
    try:
        import kaleido  # noqa: F401  (only checking it is there)
    except ImportError as error:
        raise RuntimeError(
            f"Writing a .{suffix} image needs the optional 'kaleido' package, which is not installed. "
            "Install it with `pip install kaleido`, or use write_html(), which needs nothing extra."
        ) from error
    fig.write_image(str(path))
