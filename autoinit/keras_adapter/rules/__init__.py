"""Per-layer rules: read a Keras layer's facts, call the pure estimators.

``RULES`` maps a Keras layer class name (or, for a functional op node,
``"<module>.<class>"``, see ``ops``) to a function ``rule(ctx) -> moments`` (one
``SignalMoments`` or a list, one per output). Rules for weighted layers also
draw the layer's weights through ``ctx``.
"""

from __future__ import annotations

from collections.abc import Callable

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

__all__ = ["RULES", "Rule", "rule"]
