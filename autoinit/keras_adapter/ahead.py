"""Unit draws made ahead, on a background thread, while the walk runs.

A kernel's unit draw (``weights._unit_draw``) depends only on its kind, seed,
shape and dtype, never on the scale the walk chooses, and Keras' seeded draws
are stateless: the same key gives the same tensor whichever thread makes it
and in whatever order. So every draw the walk will ask for can be started at
the beginning of ``initialize_model`` (``plan``: a walk of the graph that
computes nothing, listing each weighted layer's first call), and the
analytic walk in the main thread takes them as it reaches each layer; the
wall time is then about the larger of the two, not their sum (TensorFlow's
kernels run without the GIL). A draw the plan did not foresee, or one that
failed, is made in the main thread as before; a planned draw the walk skips
is dropped once the walk asks for a later one.

At most ``BUDGET_ELEMENTS`` floats wait ahead (one draw larger than that is
still made, alone), so the thread never holds much more than a copy of the
largest kernels.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from typing import Any

import keras

from autoinit.keras_adapter.graph import LayerCall, model_inputs, run_graph
from autoinit.keras_adapter.rules import kernels_of

__all__ = ["BUDGET_ELEMENTS", "DrawAhead", "plan"]

BUDGET_ELEMENTS = 1 << 25
"""Most floats (128 MiB of float32) drawn ahead and not yet taken."""

Key = tuple[str, int, tuple[int, ...], str]
"""``(kind, seed, shape, dtype)``: what a unit draw depends on."""


class DrawAhead:
    """Draws ``keys`` in order on a daemon thread with ``draw(key)``;
    ``take(key)`` hands one over (waiting for it if need be).

    Use as a context manager: leaving it stops the thread (after the draw in
    progress) and drops what was not taken.
    """

    def __init__(self, keys: list[Key], draw: Callable[[Key], Any], budget: int = BUDGET_ELEMENTS) -> None:
        self._keys = keys
        self._draw = draw
        self._budget = budget
        self._index: dict[Hashable, int] = {}
        for i, key in enumerate(keys):
            self._index.setdefault(key, i)
        self._ready: dict[int, Any] = {}  # plan index -> unit draw (None: the draw failed)
        self._next = 0  # the next index the thread draws
        self._wanted_from = 0  # indices below this are no longer wanted
        self._held = 0  # elements drawn and not taken
        self._closed = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="autoinit-draw-ahead", daemon=True)

    def __enter__(self) -> DrawAhead:
        if self._keys:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._ready.clear()
            self._held = 0
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def take(self, key: Key) -> Any | None:
        """The unit draw for ``key`` if planned (earlier planned draws not yet
        taken are dropped: the walk has passed them); None otherwise."""
        i = self._index.get(key)
        if i is None:
            return None
        with self._lock:
            if i < self._wanted_from or self._closed:
                return None
            for j in [j for j in self._ready if j < i]:
                self._drop(j)
            self._wanted_from = i
            self._lock.notify_all()
            while i not in self._ready and not self._closed:
                self._lock.wait()
            unit = self._drop(i) if i in self._ready else None
            self._wanted_from = i + 1
            self._lock.notify_all()
            return unit

    def _drop(self, i: int) -> Any:
        self._held -= _size(self._keys[i])
        return self._ready.pop(i)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._next = max(self._next, self._wanted_from)
                while not self._closed and self._next < len(self._keys) and self._over_budget():
                    self._lock.wait()
                    self._next = max(self._next, self._wanted_from)
                if self._closed or self._next >= len(self._keys):
                    return
                i = self._next
                self._next += 1
            try:
                unit = self._draw(self._keys[i])
            except Exception:  # noqa: BLE001 - the walk draws it itself and sees the error
                unit = None
            with self._lock:
                if self._closed:
                    return
                if i >= self._wanted_from:
                    self._ready[i] = unit
                    self._held += _size(self._keys[i])
                    self._lock.notify_all()

    def _over_budget(self) -> bool:
        return self._held > 0 and self._held + _size(self._keys[self._next]) > self._budget


def _size(key: Key) -> int:
    return math.prod(key[2])


def plan(model: keras.Model, key_of: Callable[[tuple[int, ...], str, str], Key | None]) -> list[Key]:
    """The unit draws the walk will ask for, in its order: for each weighted
    layer's first call, each kernel's ``key_of(shape, place, dtype)`` (None:
    not drawn ahead), ``place`` as ``LayerContext.seed_place`` spells it.

    A walk of the graph that computes nothing (composites are traced, and
    cached for the walk that follows); layers whose kernels it does not know
    are left out and drawn by the walk itself.
    """
    keys: list[Key] = []
    seen: set[int] = set()

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> list:
        if call.is_signal and id(call.layer) not in seen:
            seen.add(id(call.layer))
            for role, variable in kernels_of(call.layer):
                shape = tuple(int(d) for d in variable.shape)
                key = key_of(shape, f"{call.position}:{role}", str(variable.dtype))
                if key is not None:
                    keys.append(key)
        return [None] * max(len(call.output_shapes), 1)

    run_graph(model, [None] * len(model_inputs(model)), visit)
    return keys
