"""A model's probe passes as functions of one micro-batch, traced once.

On the TensorFlow backend each pass (forward, backward) is one
``tf.function`` with the batch dimension left open, cached (weakly) with the
model: every micro-batch, batch size and weight assignment (the probes of one
``compare``: default, baselines, AutoInit) reuses the same graph, whose
weights are variables read when it runs. Other backends run the same code
eagerly. A pass is traced before its first run, with progress reported as
its layers are (``trace_tick``), and runs as traced, without Grappler's
rewrites (``rewrites``): a probe runs its graph a handful of times, and
rewriting the graph cost more than the rewrites saved (docs/DECISIONS.md).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.keras_adapter.composite import is_batch_bound
from autoinit.probe.backward import backward_pass
from autoinit.probe.forward import PassLayout, forward_pass
from autoinit.probe.memory import ActivationSizes, activation_sizes
from autoinit.probe.progress import RUNNING, TRACING
from autoinit.probe.rewrites import without_rewrites

__all__ = ["ProbeProgram", "program_for"]


def _numpy(values: Any) -> tuple[np.ndarray, ...]:
    return tuple(keras.ops.convert_to_numpy(v) for v in values)


def _signature(arrays: list[np.ndarray]) -> tuple:
    return tuple((tuple(a.shape[1:]), str(a.dtype)) for a in arrays)


class ProbeProgram:
    """The forward and backward passes of one model; ``layouts`` say what
    each pass's rows are (filled when the pass first runs or is traced)."""

    def __init__(self, model: keras.Model, compiled: bool) -> None:
        self._model = weakref.ref(model)
        self.compiled = compiled
        self.layouts = {"forward": PassLayout(), "backward": PassLayout()}
        self._functions: dict[tuple, Any] = {}
        self._traced: set[int] = set()  # ids of the functions in _functions already traced
        self.tick: Callable[[float], None] | None = None
        """Called with the share of the current pass done, while it runs
        (read when the pass reaches each tick, so a traced graph reports to
        whoever set it last)."""
        self.trace_tick: Callable[[float], None] | None = None
        """Called while a pass is traced (its first call) with the share of
        its layers traced."""
        self.on_stage: Callable[[str], None] | None = None
        """Called with ``progress.TRACING`` before a pass is traced and
        ``progress.RUNNING`` before a pass runs."""

    def _report(self, fraction: float) -> None:
        if self.tick is not None:
            self.tick(fraction)

    def _report_trace(self, fraction: float) -> None:
        if self.trace_tick is not None:
            self.trace_tick(fraction)

    def _report_stage(self, stage: str) -> None:
        if self.on_stage is not None:
            self.on_stage(stage)

    @functools.cached_property
    def _walked(self) -> tuple[ActivationSizes, bool]:
        """One walk with placeholders: the model's tensor sizes
        (``memory.activation_sizes``), and, since the walk traces every
        composite layer, whether a pass must fix its batch size
        (``composite.is_batch_bound``)."""
        model = self._model()
        sizes = activation_sizes(model)
        layers = model._flatten_layers(include_self=False, recursive=True)
        return sizes, any(is_batch_bound(layer) for layer in layers)

    @property
    def sizes(self) -> ActivationSizes:
        return self._walked[0]

    @property
    def calls(self) -> int:
        """Layer calls in one pass."""
        return self.sizes.calls

    def forward(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, sizes)`` of one micro-batch (``forward_pass``)."""
        layout = self.layouts["forward"]

        def run(xs: list) -> tuple[Any, Any]:
            rows, sizes, _ = forward_pass(
                self._model(), xs, layout, tick=self._report, calls=self.calls, trace_tick=self._report_trace
            )
            return rows, sizes

        return self._call(self._function("forward", run, [inputs]), [inputs])

    def backward(self, inputs: list[np.ndarray], projections: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """``(rows, sizes, grad_rows, grad_sizes)`` of one micro-batch (``backward_pass``)."""
        if keras.backend.backend() != "tensorflow":
            raise AutoInitError(
                f"The backward probe needs the TensorFlow backend. Received: {keras.backend.backend()!r}"
            )
        layout = self.layouts["backward"]

        def run(xs: list, rs: list) -> tuple[Any, ...]:
            return backward_pass(
                self._model(),
                xs,
                rs,
                layout,
                tick=self._report,
                calls=self.calls,
                trace_tick=self._report_trace,
            )

        return self._call(self._function("backward", run, [inputs, projections]), [inputs, projections])

    def _call(self, function: Any, arguments: list[list[np.ndarray]]) -> tuple[np.ndarray, ...]:
        """Run one pass; a traced pass's first call traces it first, reporting
        through ``trace_tick``, then runs it without graph rewrites (``rewrites``)."""
        if self.compiled and id(function) not in self._traced:
            self._report_stage(TRACING)
            function.get_concrete_function()
            self._traced.add(id(function))
            self._report_trace(1.0)
        self._report_stage(RUNNING)
        if not self.compiled:
            return _numpy(function(*(list(a) for a in arguments)))
        with without_rewrites():
            return _numpy(function(*(list(a) for a in arguments)))

    def _function(self, kind: str, run: Any, arguments: list[list[np.ndarray]]) -> Any:
        if not self.compiled:
            return run
        batch = int(arguments[0][0].shape[0]) if self._walked[1] and arguments[0] else None
        key = (kind, batch, *(_signature(a) for a in arguments))
        function = self._functions.get(key)
        if function is None:
            import tensorflow as tf

            specs = [[tf.TensorSpec((batch, *a.shape[1:]), a.dtype) for a in group] for group in arguments]
            function = self._functions[key] = tf.function(run, input_signature=specs, autograph=False)
        return function


# model -> {compiled: program}. Weak keys, and a program holds its model only
# weakly: the cache never keeps a model alive.
_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def program_for(model: keras.Model, compiled: bool) -> ProbeProgram:
    """The cached program of ``model`` (compiled needs TensorFlow)."""
    if compiled and keras.backend.backend() != "tensorflow":
        raise AutoInitError(
            f"probe(compiled=True) needs the TensorFlow backend. Received: {keras.backend.backend()!r}"
        )
    programs = _PROGRAMS.setdefault(model, {})
    if compiled not in programs:
        programs[compiled] = ProbeProgram(model, compiled)
    return programs[compiled]
