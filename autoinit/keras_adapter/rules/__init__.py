"""Per-layer rules: read a Keras layer's facts, call the pure estimators.

``RULES`` maps a Keras layer class name (or, for a functional op node,
``"<module>.<class>"``, see ``ops``) to a function ``rule(ctx) -> moments`` (one
``SignalMoments`` or a list, one per output). Rules for weighted layers also
draw the layer's weights through ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from autoinit.errors import EstimationError
from autoinit.keras_adapter.context import LayerContext
from autoinit.moments import SignalMoments

Rule = Callable[[LayerContext], "SignalMoments | list[SignalMoments]"]
KernelOf = Callable[[Any], Any]
"""A function of a layer giving one of its kernels (None where it has none)."""

RULES: dict[str, Rule] = {}
KERNELS: dict[str, tuple[tuple[str, KernelOf], ...]] = {}
"""Per layer key: the ``(role, kernel)`` pairs its rule draws, in its order."""
KEEPS_WEIGHTS_AXIS: set[Rule] = set()
"""Rules whose output may carry ``SignalMoments.weights_overlap`` (attention
weights along the last axis): a softmax's, and those that keep that axis
and its sums (a cast, dropout). Every other rule's output is unmarked
(``propagate``): a transpose or a reshape of the weights is no longer rows
summing to one."""


def keeps_weights_axis(fn: Rule) -> Rule:
    """Mark ``fn`` (a registered rule) as one of ``KEEPS_WEIGHTS_AXIS``."""
    KEEPS_WEIGHTS_AXIS.add(fn)
    return fn


def rule(*class_names: str, kernels: Sequence[tuple[str, str | KernelOf]] = ()) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the rule for Keras layers named ``class_names``.

    ``kernels``: the kernels the rule draws, in its order, as ``(role,
    variable)``: the role it seeds them by (``LayerContext.seed_place``), the
    variable an attribute name or a function of the layer. The draw made
    ahead (``keras_adapter.ahead``) reads them (``kernels_of``).
    """
    declared = tuple((role, _attribute(v) if isinstance(v, str) else v) for role, v in kernels)

    def register(fn: Rule) -> Rule:
        for name in class_names:
            RULES[name] = fn
            if declared:
                KERNELS[name] = declared
        return fn

    return register


def _attribute(name: str) -> KernelOf:
    return lambda layer: getattr(layer, name, None)


def kernels_of(layer: Any) -> list[tuple[str, Any]]:
    """``(role, variable)`` of the kernels ``layer``'s rule draws, in its
    order, as the rule declared them (``rule(..., kernels=...)``)."""
    from autoinit.keras_adapter.composite import layer_key

    found = ((role, kernel_of(layer)) for role, kernel_of in KERNELS.get(layer_key(layer), ()))
    return [(role, variable) for role, variable in found if variable is not None]


def rule_for(layer: Any) -> Rule | None:
    """The rule registered for ``layer``'s class (``composite.layer_key``), or None."""
    from autoinit.keras_adapter.composite import layer_key

    return RULES.get(layer_key(layer))


def wrapped_rule(ctx: LayerContext, expected: str) -> tuple[Any, Rule]:
    """``(inner, its rule)`` of a wrapper layer (``ctx.layer.layer``); an
    ``EstimationError`` saying ``expected`` when the inner layer has none."""
    inner = ctx.layer.layer
    found = rule_for(inner)
    if found is None:
        raise EstimationError(
            f"{type(ctx.layer).__name__} layer '{ctx.layer.name}' wraps {type(inner).__name__}, which has "
            f"no estimator; {expected}."
        )
    return inner, found


# One module per Keras layer family, as in ``autoinit.estimators``.
from autoinit.keras_adapter.rules import (  # noqa: E402,F401  (registration)
    activations,
    applications,
    attention,
    convolutional,
    core,
    hub,
    merging,
    normalization,
    ops,
    pooling,
    preprocessing,
    regularization,
    reshaping,
    rnn,
    traced,
    wrappers,
)

__all__ = ["KERNELS", "RULES", "Rule", "kernels_of", "rule", "rule_for", "wrapped_rule"]
