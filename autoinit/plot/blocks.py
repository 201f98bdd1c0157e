"""Blocks of a model whose records have nested names (``block/inner``): the
residual stream, one block's inside, and the x axis labelled by block.

A transformer's traces name the layers inside each block by path
(``transformer_layer_0/self_attention/query``). The residual stream is what
the blocks hand on to each other: the top-level records (embeddings, head)
and, per block, its residual adds (``<block>/add``, ``<block>/add_1``) and,
in a post-norm block, the normalization right after each add. A block whose
first record is a normalization normalizes first (pre-norm, GPT-2): its
normalizations feed the branches, not the stream, and are left out.

``frontend/js/blocks.js`` is the same selection for the page; a page test
checks that the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from autoinit.plot.payload import x_of

__all__ = [
    "ALL",
    "BLOCK_PREFIX",
    "STREAM",
    "add_block_axis",
    "block_names",
    "block_of",
    "has_blocks",
    "label_of",
    "view_layers",
    "view_title",
]

#: Every record (the default view).
ALL = "all"
#: The residual stream: top-level records, each block's adds and its post-norms.
STREAM = "stream"
#: ``"block:<name>"``: the records inside one block.
BLOCK_PREFIX = "block:"

_ADD = re.compile(r"add(_\d+)?")
_BAND_FILL = "rgba(128, 128, 128, 0.10)"

Layer = Mapping[str, Any]


def block_of(name: str) -> str | None:
    """The block a record belongs to (its name's first part), None at the top level."""
    return name.split("/", 1)[0] if "/" in name else None


def label_of(name: str) -> str:
    """A record's name within its block (the whole name at the top level)."""
    return name.split("/", 1)[1] if "/" in name else name


def block_names(layers: Sequence[Layer]) -> list[str]:
    """The blocks in the order their first record appears."""
    seen: dict[str, None] = {}
    for layer in layers:
        block = block_of(str(layer.get("name", "")))
        if block is not None:
            seen.setdefault(block, None)
    return list(seen)


def has_blocks(layers: Sequence[Layer]) -> bool:
    """Some record has a nested name: the views other than ``ALL`` apply."""
    return bool(block_names(layers))


def _is_norm(layer: Layer) -> bool:
    return "Norm" in str(layer.get("class_name", ""))


def _is_residual_add(layer: Layer) -> bool:
    name = str(layer.get("name", ""))
    if name.count("/") != 1:
        return False
    return _ADD.fullmatch(label_of(name)) is not None or layer.get("class_name") == "Add"


def _stream(layers: Sequence[Layer]) -> list[Layer]:
    first_of_block: dict[str, Layer] = {}
    for layer in layers:
        block = block_of(str(layer.get("name", "")))
        if block is not None:
            first_of_block.setdefault(block, layer)
    kept: list[Layer] = []
    previous: Layer | None = None
    for layer in layers:
        name = str(layer.get("name", ""))
        block = block_of(name)
        post_norm = (
            block is not None
            and name.count("/") == 1
            and _is_norm(layer)
            and not _is_norm(first_of_block[block])
            and previous is not None
            and block_of(str(previous.get("name", ""))) == block
            and _is_residual_add(previous)
        )
        if block is None or _is_residual_add(layer) or post_norm:
            kept.append(layer)
        previous = layer
    return kept


def view_layers(layers: Sequence[Layer], view: str = ALL) -> list[Layer]:
    """The records a view shows, in their order.

    Args:
        layers: ``traces["layers"]``.
        view: ``ALL``, ``STREAM``, or ``BLOCK_PREFIX + <block name>``.

    Raises:
        ValueError: an unknown view, or a block the layers do not have.
    """
    if view == ALL:
        return list(layers)
    if view == STREAM:
        return _stream(layers)
    if view.startswith(BLOCK_PREFIX):
        block = view[len(BLOCK_PREFIX) :]
        if block in block_names(layers):
            return [layer for layer in layers if block_of(str(layer.get("name", ""))) == block]
    choices = [ALL, STREAM, *(BLOCK_PREFIX + b for b in block_names(layers))]
    raise ValueError(f"`view` should be one of {choices}. Received: view={view!r}")


def view_title(view: str) -> str:
    """The x axis title of a view."""
    if view == STREAM:
        return "residual stream (layer index)"
    if view.startswith(BLOCK_PREFIX):
        return f"inside {view[len(BLOCK_PREFIX) :]} (layer index)"
    return "layer index (topological order)"


def add_block_axis(fig: go.Figure, layers: Sequence[Layer], view: str, bottom_row: int) -> None:
    """Label the x axis with the records' names within their blocks, and shade
    and name each block's span (the records of ``layers`` only; the axis title
    goes on ``bottom_row``)."""
    xs = [x_of(layer, position) for position, layer in enumerate(layers)]
    labels = [label_of(str(layer.get("name", ""))) for layer in layers]
    fig.update_xaxes(tickmode="array", tickvals=xs, ticktext=labels, tickangle=-45)
    fig.update_xaxes(title_text=view_title(view), row=bottom_row, col=1)
    spans: dict[str, list[int]] = {}
    for x, layer in zip(xs, layers, strict=True):
        block = block_of(str(layer.get("name", "")))
        if block is not None:
            spans.setdefault(block, []).append(x)
    for block, positions in spans.items():
        fig.add_shape(
            type="rect",
            xref="x",
            yref="paper",
            x0=min(positions) - 0.5,
            x1=max(positions) + 0.5,
            y0=0,
            y1=1,
            fillcolor=_BAND_FILL,
            line={"width": 0},
            layer="below",
            name=block,
        )
        fig.add_annotation(
            x=(min(positions) + max(positions)) / 2,
            xref="x",
            y=1.0,
            yref="paper",
            yanchor="top",
            text=block,
            showarrow=False,
            font={"size": 10},
            name="block",
        )
