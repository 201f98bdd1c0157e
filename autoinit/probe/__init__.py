"""Gaussian-input probes: measure how signals actually travel through a model.

``probe`` feeds Gaussian data through the model in training mode (dropout
active, batch normalization on batch statistics, as the paper's analysis
assumes) and records each layer's output mean and variance, reduced to
scalars inside the graph: no activation tensor is copied to host memory.
``backward=True`` also records the variance of the gradient of a random
projection loss with respect to each layer's output. ``compare`` runs the
probes for the model's own initialization, named baselines and AutoInit, next
to AutoInit's analytic prediction: the traces payload the service returns.

Modules: ``inputs`` (the probe batch), ``reducers`` (layer output ->
moments, merged across micro-batches), ``forward`` and ``backward`` (the
passes over one micro-batch), ``program`` (those passes traced once per
model; ``rewrites``: run without graph rewrites), ``progress`` (the share
done, and the stage: tracing or running), ``memory`` (the estimate a service refuses jobs by, and the
micro-batch), ``run`` (``probe``), ``baselines``, ``compare``, ``traces``
(the payload).
"""

from autoinit.probe.baselines import BASELINES, apply_baseline
from autoinit.probe.compare import Progress, compare
from autoinit.probe.inputs import gaussian_inputs
from autoinit.probe.memory import DEFAULT_MEMORY_BUDGET, choose_micro_batch, estimate_probe_memory
from autoinit.probe.run import probe

__all__ = [
    "probe",
    "compare",
    "estimate_probe_memory",
    "choose_micro_batch",
    "DEFAULT_MEMORY_BUDGET",
    "BASELINES",
    "apply_baseline",
    "gaussian_inputs",
    "Progress",
]
