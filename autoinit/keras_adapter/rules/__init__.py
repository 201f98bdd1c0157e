"""Per-layer rules: read a Keras layer's facts, call the pure estimators.

``RULES`` maps a Keras layer class name (or, for a functional op node,
``"<module>.<class>"``, see ``ops``) to a function ``rule(ctx) -> moments`` (one
``SignalMoments`` or a list, one per output). Rules for weighted layers also
draw the layer's weights through ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autoinit.errors import EstimationError
from autoinit.keras_adapter.context import LayerContext
from autoinit.moments import SignalMoments

Rule = Callable[[LayerContext], "SignalMoments | list[SignalMoments]"]
RULES: dict[str, Rule] = {}


def rule(*class_names: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the rule for Keras layers named ``class_names``."""

    def register(fn: Rule) -> Rule:
        for name in class_names:
            RULES[name] = fn
        return fn

    return register


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

__all__ = ["RULES", "Rule", "rule", "rule_for", "wrapped_rule"]
