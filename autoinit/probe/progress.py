"""What a probe reports while it runs: the share done, and its stage.

A probe's first pass over a model is traced before it runs (``program``):
seconds on a deep model, during which the graph does not run yet. The stage
says so (``TRACING``, then ``RUNNING``), and the share moves as the layers are
traced, over the first ``TRACE_SHARE`` of that micro-batch's part of the bar.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TRACING", "RUNNING", "TRACE_SHARE", "ProbeProgress"]

TRACING = "tracing"
RUNNING = "running"
TRACE_SHARE = 0.5
"""Share of a micro-batch's part that its tracing takes, when it traces
(on ResNet-812, tracing and the first run take about as long)."""


class ProbeProgress:
    """Turns a program's ticks (``ProbeProgram.tick``, ``trace_tick``,
    ``on_stage``) into the probe's ``progress(fraction)`` over ``parts``
    micro-batches and ``stage(name)`` on each change of stage."""

    def __init__(
        self,
        parts: int,
        progress: Callable[[float], None] | None,
        stage: Callable[[str], None] | None,
    ) -> None:
        self.parts = parts
        self.progress = progress
        self.stage = stage
        self.part = 0
        self._run_from = 0.0  # share of the current part before its run (its tracing)
        self._stage = ""

    def start(self, part: int) -> None:
        self.part, self._run_from = part, 0.0

    def on_stage(self, name: str) -> None:
        if name == RUNNING and self._stage == TRACING:
            self._run_from = TRACE_SHARE
        if name != self._stage and self.stage is not None:
            self.stage(name)
        self._stage = name

    def trace_tick(self, fraction: float) -> None:
        self._emit(TRACE_SHARE * min(fraction, 1.0))

    def tick(self, fraction: float) -> None:
        self._emit(self._run_from + (1.0 - self._run_from) * min(fraction, 1.0))

    def done(self) -> None:
        """The current part is merged."""
        self._emit(1.0)

    def _emit(self, within: float) -> None:
        if self.progress is not None:
            self.progress((self.part + within) / self.parts)
