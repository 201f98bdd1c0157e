"""Specifications for `autoinit.keras_facts`: one registry, views that agree.

The upload allow-list, the tf.keras 2 converter and the adapter's rules all
speak about Keras classes; these tests fail when one of them drifts from the
registry (a class accepted here, refused there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras.src.activations import ALL_OBJECTS_DICT  # noqa: E402

from autoinit import keras_facts  # noqa: E402
from autoinit.estimators.activations import Activation  # noqa: E402
from autoinit.keras_adapter.activations import resolve_activation  # noqa: E402
from autoinit.keras_adapter.rules import RULES  # noqa: E402
from autoinit.upload import ALLOWED_CLASSES, KERAS_ACTIVATIONS, LEGACY_CLASSES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _accepted_on_upload(class_name: str) -> bool:
    return class_name in ALLOWED_CLASSES["keras.layers"] and class_name in LEGACY_CLASSES


def _rules() -> tuple[set[str], set[tuple[str, str]]]:
    """The adapter's layer rules, and its op-node rules as (module, op) pairs
    (registered as ``"<module>.<op>"``, e.g. ``"keras.src.ops.numpy.Add"``)."""
    layers = {name for name in RULES if "." not in name}
    ops = {tuple(name.rsplit(".", 1)) for name in RULES if "." in name}
    return layers, ops


def test_a_class_is_accepted_on_upload_iff_modelled_or_structure() -> None:
    layer_rules, _ = _rules()
    structure = frozenset().union(*keras_facts.STRUCTURE_LAYERS.values())
    candidates = layer_rules | structure | set(keras_facts.CONVERTER_ONLY_LAYERS)
    accepted = {name for name in candidates if _accepted_on_upload(name)}
    assert accepted == layer_rules | structure
    assert ALLOWED_CLASSES["keras.layers"] == keras_facts.ACCEPTED_LAYERS


def test_an_op_node_or_application_layer_is_accepted_on_upload_iff_the_adapter_models_it() -> None:
    _, op_rules = _rules()

    def pairs(*tables) -> set[tuple[str, str]]:
        return {(module, op) for table in tables for module, ops in table.items() for op in ops}

    uploadable = pairs(keras_facts.OP_NODES, keras_facts.APPLICATION_LAYERS)
    registered = uploadable | pairs(keras_facts.TRACED_OP_NODES, keras_facts.HUB_LAYERS)
    assert registered == op_rules, (
        f"op rules without a fact: {sorted(op_rules - registered)}; "
        f"facts without a rule: {sorted(registered - op_rules)}"
    )
    for module, op in uploadable:
        assert module.startswith(("keras.src.ops.", "keras.src.applications.")), module
        assert op in ALLOWED_CLASSES[module]
    for module, op in pairs(keras_facts.TRACED_OP_NODES) - uploadable:
        assert op not in ALLOWED_CLASSES.get(module, ()), f"{module}.{op} is for traces only"


def test_modelled_layers_are_exactly_the_adapter_rules() -> None:
    layer_rules, _ = _rules()
    modelled = frozenset().union(*keras_facts.MODELLED_LAYERS.values())
    assert modelled == layer_rules, (
        f"rules without a fact: {sorted(layer_rules - modelled)}; "
        f"facts without a rule: {sorted(modelled - layer_rules)}"
    )


def test_structure_layers_have_no_rule_and_converter_only_layers_are_refused() -> None:
    structure = frozenset().union(*keras_facts.STRUCTURE_LAYERS.values())
    assert not structure & set(RULES)
    for name in keras_facts.CONVERTER_ONLY_LAYERS:
        assert name not in RULES and not _accepted_on_upload(name)


def test_every_layer_sits_in_one_family_named_like_the_estimators() -> None:
    for table in (keras_facts.MODELLED_LAYERS, keras_facts.STRUCTURE_LAYERS):
        assert set(table) <= set(keras_facts.FAMILIES)
    seen: dict[str, str] = {}
    for table in (keras_facts.MODELLED_LAYERS, keras_facts.STRUCTURE_LAYERS):
        for family, names in table.items():
            for name in names:
                assert name not in seen, f"{name} is in {seen[name]} and {family}"
                seen[name] = family
    assert keras_facts.family_of("MaxPooling2D") == "pooling"
    assert keras_facts.family_of("Lambda") is None


def test_the_parameter_bound_knows_every_accepted_layer() -> None:
    """A class accepted on upload needs a parameter rule, or to be known
    weightless or a wrapper, or the upload's bound refuses every model using it."""
    from autoinit.upload.params import PARAMETER_RULES, WEIGHTLESS_LAYERS, WRAPPER_LAYERS

    bounded = set(PARAMETER_RULES) | WEIGHTLESS_LAYERS | WRAPPER_LAYERS | {"StackedRNNCells"}  # inside RNN
    assert keras_facts.ACCEPTED_LAYERS <= bounded, sorted(keras_facts.ACCEPTED_LAYERS - bounded)


def test_every_fact_names_a_real_keras_class() -> None:
    for name in keras_facts.CONVERTER_KNOWN_LAYERS:
        assert isinstance(getattr(keras.layers, name), type), name
    for module, kind in (
        ("initializers", keras_facts.INITIALIZER_CLASSES),
        ("regularizers", keras_facts.REGULARIZER_CLASSES),
        ("constraints", keras_facts.CONSTRAINT_CLASSES),
        ("dtype_policies", keras_facts.DTYPE_POLICY_CLASSES),
    ):
        for name in kind:
            assert isinstance(getattr(getattr(keras, module), name), type), name


def test_the_converter_knows_every_class_accepted_on_upload() -> None:
    from autoinit.legacy.converter import KNOWN_LAYERS

    assert keras_facts.ACCEPTED_LAYERS <= KNOWN_LAYERS
    assert set(keras_facts.CONVERTER_ONLY_LAYERS) <= KNOWN_LAYERS


def _modelled_activation(name: str) -> bool:
    resolved = resolve_activation(keras.activations.get(name))
    if isinstance(resolved, str):
        return True  # an axis-wise activation (softmax, ...)
    assert isinstance(resolved, Activation)
    return resolved.key[0] != "callable"


def test_activation_names_are_those_the_adapter_models() -> None:
    modelled = {name for name in ALL_OBJECTS_DICT if _modelled_activation(name)}
    assert keras_facts.ACTIVATIONS == modelled
    assert KERAS_ACTIVATIONS == keras_facts.ACTIVATIONS
    assert "threshold" not in keras_facts.ACTIVATIONS  # needs arguments


def test_no_other_module_spells_out_the_model_classes() -> None:
    """One fact, one place: the model class names are written only in keras_facts."""
    names = ('"Functional"', '"Sequential"', '"Model"')
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("autoinit", "server")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if all(name in line for name in names)
    ]
    assert found == [], f"model class names written again at {found}"


def test_the_registry_is_pure_python() -> None:
    code = (
        "import sys, autoinit.keras_facts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
