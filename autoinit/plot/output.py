"""Writing a figure out: JSON for the page, standalone HTML, static images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def _config_of(fig: go.Figure) -> dict[str, Any]:
    meta = fig.layout.meta
    return meta.get("config", PLOTLY_CONFIG) if isinstance(meta, dict) else PLOTLY_CONFIG


def write_html(fig: go.Figure | Sequence[go.Figure], path: str | Path, *, offline: bool = True) -> None:
    """A standalone HTML page; ``offline`` embeds plotly.js (no network needed).

    Several figures (e.g. the signal figure, then the training figure) go one
    below the other on the same page, plotly.js included once.
    """
    plotly_js: bool | str = True if offline else "cdn"
    figures = [fig] if isinstance(fig, go.Figure) else list(fig)
    if len(figures) == 1:
        (only,) = figures
        only.write_html(str(path), include_plotlyjs=plotly_js, full_html=True, config=_config_of(only))
        return
    parts = [
        figure.to_html(
            full_html=False, include_plotlyjs=plotly_js if i == 0 else False, config=_config_of(figure)
        )
        for i, figure in enumerate(figures)
    ]
    body = "\n".join(parts)
    page = f'<html>\n<head><meta charset="utf-8" /></head>\n<body>\n{body}\n</body>\n</html>'
    Path(path).write_text(page, encoding="utf-8")


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
