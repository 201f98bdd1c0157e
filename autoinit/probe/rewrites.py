"""Run traced probe passes without Grappler, TensorFlow's graph rewriter.

Grappler rewrites a function's graph when it is first called (constant
folding, arithmetic simplification, fusions...). On a model's probe graph
(its layers plus two reductions per layer) that took longer than the pass
itself and saved nothing measurable on later calls
(``benchmarks/bench_probe_memory.py``), and a probe runs its graph a handful
of times. The switch is the eager context's function-call options of the
calling thread only, restored on exit: other threads and the rest of the
process keep their rewrites.

Measured on CPU only. Where TensorFlow sees a GPU the rewrites stay on: there
Grappler also picks convolution layouts and fuses kernels for the device,
which may pay for the rewrite; ``scripts/gpu-check`` records the probe's
figures on such a host.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

__all__ = ["without_rewrites"]


@contextlib.contextmanager
def without_rewrites() -> Iterator[None]:
    """Functions first called inside run their graphs as traced (this thread, on CPU)."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        yield
        return
    try:
        from tensorflow.python.eager import context
    except ImportError:  # a TensorFlow without the (private) module: keep the rewrites
        yield
        return
    eager = context.context()
    saved = eager.function_call_options
    options = copy.copy(saved)
    config = tf.compat.v1.ConfigProto()
    config.ParseFromString(saved.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    options.config_proto_serialized = config
    eager.function_call_options = options
    try:
        yield
    finally:
        eager.function_call_options = saved
