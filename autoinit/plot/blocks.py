"""Blocks of a model whose records have nested names (``outer/inner``): the
residual stream, one block's inside, and the x axis labelled by block.

A transformer's traces name the layers inside each block by path
(``transformer_layer_0/self_attention/query``). A block is a path that holds
a residual add (``<block>/add``, ``<block>/add_1``), the outermost such path
(``vit_encoder/transformer_block_1`` in a ViT, whose blocks sit inside an
encoder); a model with nested names but no add has its top-level composites
as blocks. The residual stream is what the blocks hand on to each other: the
records outside every block (embeddings, head, an encoder's final norm) and,
per block, its own adds and, in a post-norm block, the normalization right
after each add. A block whose first record is a normalization normalizes
first (pre-norm, GPT-2): its normalizations feed the branches, not the
stream, and are left out.

``frontend/js/blocks.js`` is the same selection for the page; a page test
checks that the two agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from autoinit.plot.payload import x_of
from autoinit.plot.style import TARGET_LABEL

__all__ = [
    "ALL",
    "BLOCK_PREFIX",
    "STREAM",
    "add_block_axis",
    "band_labels",
    "block_names",
    "block_of",
    "has_blocks",
    "label_of",
    "view_layers",
    "view_title",
]

#: Every record (the default view).
ALL = "all"
#: The residual stream: records outside the blocks, each block's adds and its post-norms.
STREAM = "stream"
#: ``"block:<name>"``: the records inside one block.
BLOCK_PREFIX = "block:"

_ADD = re.compile(r"add(_\d+)?")
# Every other block a shade darker, so neighbouring blocks stay apart.
_BAND_FILLS = ("rgba(128, 128, 128, 0.16)", "rgba(128, 128, 128, 0.06)")

Layer = Mapping[str, Any]


def _name(layer: Layer) -> str:
    return str(layer.get("name", ""))


def _is_add(layer: Layer) -> bool:
    return _ADD.fullmatch(_name(layer).rsplit("/", 1)[-1]) is not None or layer.get("class_name") == "Add"


def block_names(layers: Sequence[Layer]) -> list[str]:
    """The blocks, in the order their first record appears."""
    names = [_name(layer) for layer in layers]
    holders = {
        _name(layer).rsplit("/", 1)[0]: None for layer in layers if "/" in _name(layer) and _is_add(layer)
    }
    if not holders:
        holders = {name.split("/", 1)[0]: None for name in names if "/" in name}
    blocks = [b for b in holders if not any(b.startswith(outer + "/") for outer in holders)]
    first = {b: next(i for i, name in enumerate(names) if name.startswith(b + "/")) for b in blocks}
    return sorted(blocks, key=first.__getitem__)


def block_of(name: str, blocks: Sequence[str]) -> str | None:
    """The block (of ``blocks``) a record is inside, None if it is outside all."""
    return next((block for block in blocks if name.startswith(block + "/")), None)


def label_of(name: str, blocks: Sequence[str]) -> str:
    """A record's name within its block (the whole name outside every block)."""
    block = block_of(name, blocks)
    return name if block is None else name[len(block) + 1 :]


def has_blocks(layers: Sequence[Layer]) -> bool:
    """Some record has a nested name: the views other than ``ALL`` apply."""
    return bool(block_names(layers))


def _is_norm(layer: Layer) -> bool:
    return "Norm" in str(layer.get("class_name", ""))


def _stream(layers: Sequence[Layer]) -> list[Layer]:
    blocks = block_names(layers)
    first_of_block: dict[str, Layer] = {}
    for layer in layers:
        block = block_of(_name(layer), blocks)
        if block is not None:
            first_of_block.setdefault(block, layer)
    kept: list[Layer] = []
    previous_block, previous_add = None, False
    for layer in layers:
        block = block_of(_name(layer), blocks)
        own = block is not None and "/" not in label_of(_name(layer), blocks)  # not deeper
        residual_add = own and _is_add(layer)
        post_norm = (
            own
            and _is_norm(layer)
            and not _is_norm(first_of_block[block])
            and previous_block == block
            and previous_add
        )
        if block is None or residual_add or post_norm:
            kept.append(layer)
        previous_block, previous_add = block, residual_add
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
            return [layer for layer in layers if _name(layer).startswith(block + "/")]
    choices = [ALL, STREAM, *(BLOCK_PREFIX + b for b in block_names(layers))]
    raise ValueError(f"`view` should be one of {choices}. Received: view={view!r}")


def band_labels(blocks: Sequence[str]) -> list[str]:
    """The shaded spans' labels: what tells the blocks apart (``0``, ``1``, ... of
    ``transformer_layer_0``, ...), or their whole names where they share no prefix."""
    prefix = os.path.commonprefix(list(blocks)) if len(blocks) > 1 else ""
    return [block[len(prefix) :] or block for block in blocks] if prefix else list(blocks)


def view_title(view: str, blocks: Sequence[str] = ()) -> str:
    """The x axis title of a view; ``blocks``, the stream's, are named first to last."""
    if view == STREAM:
        through = f" (blocks {blocks[0]} … {blocks[-1]})" if len(blocks) > 1 else ""
        return f"residual stream, in topological order{through}"
    if view.startswith(BLOCK_PREFIX):
        return f"inside {view[len(BLOCK_PREFIX) :]}, in topological order"
    return "layer index (topological order)"


def add_block_axis(
    fig: go.Figure, layers: Sequence[Layer], blocks: Sequence[str], view: str, bottom_row: int
) -> None:
    """Space the records of ``layers`` (the figure's points) evenly, label the x
    axis with their names within their ``blocks`` (the whole model's), and shade
    and name each block's span; the axis title goes on ``bottom_row``. Hover
    texts keep the layer index."""
    position = {x_of(layer, p): p for p, layer in enumerate(layers)}
    for trace in fig.data:
        if trace.name == TARGET_LABEL:
            trace.x = [-0.5, len(layers) - 0.5]
        elif trace.x is not None and len(trace.x) and all(x in position for x in trace.x):
            trace.x = [position[x] for x in trace.x]
    for note in fig.layout.annotations:
        if note.xref == "x" and note.x in position:
            note.x = position[note.x]
    labels = [label_of(_name(layer), blocks) for layer in layers]
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(layers))), ticktext=labels)
    spans: dict[str, list[int]] = {}
    for p, layer in enumerate(layers):
        block = block_of(_name(layer), blocks)
        if block is not None:
            spans.setdefault(block, []).append(p)
    fig.update_xaxes(title_text=view_title(view, list(spans)), row=bottom_row, col=1)
    for number, (block, label) in enumerate(zip(spans, band_labels(list(spans)), strict=True)):
        positions = spans[block]
        fig.add_shape(
            type="rect",
            xref="x",
            yref="paper",
            x0=min(positions) - 0.5,
            x1=max(positions) + 0.5,
            y0=0,
            y1=1,
            fillcolor=_BAND_FILLS[number % 2],
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
            text=label,
            hovertext=block,
            showarrow=False,
            font={"size": 10},
            name="block",
        )
