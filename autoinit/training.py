"""Does it train? Short training runs of one model under several initializations.

The propagation view says how a signal travels through a freshly initialized
network; the question a user brings next is whether the network then trains
(the paper's Figure 4: unnormalized ResNet-164/812 train with AutoInit and
fail with the default). `train_probe` answers it for any model: a copy per
initialization (AutoInit and each baseline), the same data, the same
optimizer, the same seed, a fixed number of steps; per step the loss and the
global gradient norm.

The default task needs no download. It is **synthetic** (say so wherever its
curves are shown): inputs are drawn like the probe's (Gaussian, or valid token
ids where the model takes ids) and targets come from a fixed random *linear
teacher* of the inputs, ``y = A phi(x) / sqrt(d)`` with ``A ~ N(0, 1)``:

* it is neutral: it favours no initialization (a teacher network of the
  model's own architecture, initialized by one of the contenders, would not);
* its targets have unit variance, the scale AutoInit gives outputs, so a loss
  near 1 is "predicts nothing" and falling below it is learning;
* it is learnable by any model that can represent (nearly) linear maps, so
  the curves measure how well an initialization lets gradients flow, not
  whether the task suits the architecture.

A softmax head is trained on the teacher's argmax with cross-entropy (the
chance level is ``log K``); any other output on the teacher's values with mean
squared error. Real data: an ``.npz`` holding arrays ``x`` and ``y``
(`load_training_data`, read with ``allow_pickle=False``).

The optimizer is SGD with momentum 0.9 (learning rate 0.01 unless given), no
clipping: divergence is what the run must show. Gradient norms are read off
the optimizer's own update (``w_t - w_{t-1} = m_t``, ``m_t = 0.9 m_{t-1} - lr
g_t``), so training runs through Keras' ``train_on_batch`` on any backend.

Example:
    >>> from autoinit import zoo
    >>> from autoinit.training import train_probe
    >>> run = train_probe(zoo.build("mlp"), steps=20)
    >>> sorted(run["series"]), len(run["series"]["autoinit"]["loss"])
    (['autoinit', 'default'], 20)
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autoinit.errors import AutoInitError, TrainingDataError

__all__ = [
    "DEFAULT_LEARNING_RATE",
    "MOMENTUM",
    "TASKS",
    "load_training_data",
    "train_probe",
]

TASKS = ("teacher", "data")
DEFAULT_LEARNING_RATE = 0.01
MOMENTUM = 0.9
#: Features and outputs of the linear teacher are capped at this many coordinates
#: (a fixed random selection beyond it), so its matrix stays small for any model.
_TEACHER_WIDTH = 4096
#: Token ids enter the teacher through a fixed random table of this many rows.
_TOKEN_TABLE = 65_536

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class _Head:
    """One model output: its shape (without the batch axis) and whether it is a softmax."""

    shape: tuple[int, ...]
    softmax: bool


def load_training_data(
    source: str | os.PathLike | bytes, *, max_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` archive holding arrays ``x`` and ``y``.

    Never unpickles (``allow_pickle=False``): object arrays are refused.

    Raises:
        TrainingDataError: not an ``.npz``, missing ``x`` or ``y``, object or
            non-numeric arrays, different lengths, or larger than ``max_bytes``.
    """
    if isinstance(source, (bytes, bytearray)):
        if max_bytes is not None and len(source) > max_bytes:
            raise TrainingDataError(
                f"The training data is {len(source):,} bytes; the limit is {max_bytes:,}."
            )
        handle: Any = io.BytesIO(source)
    else:
        handle = os.fspath(source)
    try:
        with np.load(handle, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise TrainingDataError(
                    "Expected an .npz archive with arrays 'x' and 'y'. Received: a single .npy array."
                )
            missing = [key for key in ("x", "y") if key not in archive.files]
            if missing:
                raise TrainingDataError(
                    f"Expected an .npz archive with arrays 'x' and 'y'. "
                    f"Missing: {missing}; it holds {sorted(archive.files)}."
                )
            x, y = archive["x"], archive["y"]
    except TrainingDataError:
        raise
    except ValueError as error:  # object arrays: "Object arrays cannot be loaded ..."
        raise TrainingDataError(
            f"The training data could not be read without unpickling (object arrays are refused): {error}"
        ) from None
    except Exception as error:  # zip/format errors
        raise TrainingDataError(
            f"Expected an .npz archive with arrays 'x' and 'y'. "
            f"Could not read it: {type(error).__name__}: {error}"
        ) from None
    for name, array in (("x", x), ("y", y)):
        if array.dtype.kind not in "biuf":
            raise TrainingDataError(f"Array '{name}' must be numeric. Received dtype {array.dtype}.")
        if array.ndim == 0 or len(array) == 0:
            raise TrainingDataError(
                f"Array '{name}' must hold at least one example. Received shape {array.shape}."
            )
    if len(x) != len(y):
        raise TrainingDataError(
            f"'x' and 'y' must hold the same number of examples. Received {len(x)} and {len(y)}."
        )
    return x, y


def train_probe(
    model_or_config: Any,
    steps: int = 100,
    batch_size: int = 64,
    seed: int = 0,
    baselines: Sequence[str] = ("default",),
    learning_rate: float | None = None,
    task: str = "teacher",
    *,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    input_mean: float = 0.0,
    input_var: float = 1.0,
    signal_variance: float = 1.0,
    distribution: str = "truncated_normal",
    center_activations: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train a copy of the model per initialization for ``steps`` steps.

    Args:
        model_or_config: a ``keras.Model``, a config dict or a JSON string.
        steps: optimizer steps per initialization.
        batch_size: examples per step.
        seed: seeds the data, the default initializers, the baselines, AutoInit
            and dropout: the same seed gives the same curves.
        baselines: initializations trained next to AutoInit: ``"default"``
            (the model's own initializers) and any of ``autoinit.probe``'s
            named baselines (``he_normal``, ``glorot_uniform``, ``lecun_normal``).
        learning_rate: SGD's learning rate (momentum 0.9); default 0.01.
        task: ``"teacher"`` (synthetic, see the module docstring) or ``"data"``
            (``data`` must be given).
        data: ``(x, y)`` arrays, e.g. from `load_training_data`.
        input_mean, input_var, signal_variance, distribution,
        center_activations: as for ``autoinit.probe.compare``.
        progress: ``progress(fraction, stage)`` after every step.

    Returns:
        ``{"task", "steps", "batch_size", "seed", "optimizer": {...},
        "series": {name: {"loss": [...], "grad_norm": [...], "diverged_at": int | None}}}``
        with one value per step; ``None`` where a value is not finite.
        ``diverged_at`` is the first step whose loss or gradient norm is not
        finite (training of that copy stops there).

    Raises:
        AutoInitError: unknown task or baseline, bad ``steps``/``batch_size``.
        TrainingDataError: ``data`` does not fit the model's input or output.
    """
    import keras

    from autoinit.autoinit import AutoInit
    from autoinit.keras_adapter.loading import load_model
    from autoinit.probe.baselines import BASELINES, apply_baseline

    if task not in TASKS:
        raise AutoInitError(f"Unknown task. Expected one of {TASKS}. Received: task={task!r}")
    if (task == "data") != (data is not None):
        raise AutoInitError(
            "task='data' needs data=(x, y), and data needs task='data'. "
            f"Received: task={task!r}, data {'given' if data is not None else 'None'}"
        )
    if steps < 1 or batch_size < 1:
        raise AutoInitError(
            f"steps and batch_size must be positive. Received: steps={steps}, batch_size={batch_size}"
        )
    unknown = [b for b in baselines if b != "default" and b not in BASELINES]
    if unknown:
        raise AutoInitError(f"Unknown baselines {unknown}. Expected 'default' or some of {BASELINES}.")
    report = progress or (lambda fraction, stage: None)
    lr = DEFAULT_LEARNING_RATE if learning_rate is None else float(learning_rate)
    if not (math.isfinite(lr) and lr > 0):
        raise AutoInitError(f"learning_rate must be a positive finite number. Received: {learning_rate!r}")

    template = load_model(model_or_config, custom_objects)
    if center_activations:
        from autoinit.centering import center_model

        template, _ = center_model(template, custom_objects)
    config = keras.saving.serialize_keras_object(template)
    heads = _heads(template)
    if data is not None:
        _check_data(template, heads, *data)

    def batches() -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
        # Drawn afresh (from the seed) for each copy: the same batches, never all in memory.
        return _batches(template, heads, steps, batch_size, seed, data, input_mean, input_var)

    def fresh_copy() -> Any:
        keras.utils.set_random_seed(seed)  # the same default draws and dropout masks for every copy
        return load_model(config, custom_objects)

    def autoinit(model: Any) -> Any:
        return AutoInit(
            weight_init_config={"distribution": distribution},
            input_data_mean=input_mean,
            input_data_var=input_var,
            signal_variance=signal_variance,
            seed=seed,
        ).initialize_model(model)

    initializers: dict[str, Callable[[Any], Any]] = {}
    for name in baselines:
        if name == "default":
            initializers[name] = lambda model: model
        else:
            initializers[name] = lambda model, name=name: (apply_baseline(model, name, seed), model)[1]
    initializers["autoinit"] = autoinit

    series: dict[str, dict[str, Any]] = {}
    for index, (name, initialize) in enumerate(initializers.items()):
        model = initialize(fresh_copy())
        keras.utils.set_random_seed(seed)
        series[name] = _train(
            model,
            heads,
            batches(),
            lr,
            lambda step, name=name, index=index: report(
                (index + (step + 1) / steps) / len(initializers), f"training {name}"
            ),
        )
        del model
        keras.backend.clear_session()
    return {
        "task": task,
        "synthetic": task == "teacher",
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "optimizer": {"name": "SGD", "learning_rate": lr, "momentum": MOMENTUM},
        "loss": [
            "sparse_categorical_crossentropy" if head.softmax else "mean_squared_error" for head in heads
        ],
        "series": series,
    }


def _heads(model: Any) -> list[_Head]:
    heads = []
    for tensor in model.outputs:
        layer = tensor._keras_history[0]
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        softmax = type(layer).__name__ == "Softmax" or activation == "softmax"
        shape = tuple(1 if d is None else int(d) for d in tensor.shape[1:])
        heads.append(_Head(shape, softmax))
    return heads


def _check_data(model: Any, heads: list[_Head], x: np.ndarray, y: np.ndarray) -> None:
    if len(model.inputs) != 1 or len(heads) != 1:
        raise TrainingDataError(
            f"Training on data needs a model with one input and one output. "
            f"Received {len(model.inputs)} inputs and {len(heads)} outputs."
        )
    expected = tuple(model.inputs[0].shape[1:])
    if len(expected) != x.ndim - 1 or any(e is not None and e != r for e, r in zip(expected, x.shape[1:])):
        raise TrainingDataError(
            f"'x' must have shape (N, {', '.join(map(str, expected))}) to fit the "
            f"model's input. Received {x.shape}."
        )
    head = heads[0]
    labels = head.softmax and y.dtype.kind in "biu"
    wanted = head.shape[:-1] if labels else head.shape
    if tuple(y.shape[1:]) != wanted:
        kind = "integer labels" if labels else "targets"
        raise TrainingDataError(
            f"'y' ({kind}) must have shape (N, {', '.join(map(str, wanted))}) "
            f"to fit the model's output {head.shape}. Received {y.shape}."
        )
    if labels and (y.min() < 0 or y.max() >= head.shape[-1]):
        raise TrainingDataError(f"Labels must lie in [0, {head.shape[-1]}). Received [{y.min()}, {y.max()}].")


def _batches(
    model: Any,
    heads: list[_Head],
    steps: int,
    batch_size: int,
    seed: int,
    data: tuple[np.ndarray, np.ndarray] | None,
    input_mean: float,
    input_var: float,
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """The same ``(inputs, targets)`` per step for every initialization."""
    rng = np.random.default_rng([seed, 1])
    if data is not None:
        x, y = data
        order = np.concatenate(
            [rng.permutation(len(x)) for _ in range(math.ceil(steps * batch_size / len(x)))]
        )
        for step in range(steps):
            picked = order[step * batch_size : (step + 1) * batch_size]
            target = y[picked]
            yield (
                [x[picked].astype("float32") if x.dtype.kind == "f" else x[picked]],
                [
                    target.astype("int32")
                    if heads[0].softmax and target.dtype.kind in "biu"
                    else target.astype("float32")
                ],
            )
        return
    from autoinit.probe.inputs import gaussian_inputs

    teacher = _LinearTeacher(model, heads, rng, input_mean, input_var)
    for _ in range(steps):
        inputs = gaussian_inputs(
            model, batch_size, seed=int(rng.integers(2**31)), mean=input_mean, var=input_var
        )
        yield inputs, teacher(inputs)


class _LinearTeacher:
    """``y = A phi(x) / sqrt(d)``: a fixed random linear map of the inputs
    (standardized floats; token ids through a fixed random table), at most
    `_TEACHER_WIDTH` features and outputs (fixed random selections beyond)."""

    def __init__(
        self, model: Any, heads: list[_Head], rng: np.random.Generator, input_mean: float, input_var: float
    ) -> None:
        self.rng, self.heads = rng, heads
        self.mean, self.std = input_mean, math.sqrt(input_var)
        self.table = rng.standard_normal((_TOKEN_TABLE, 4)).astype("float32")
        self.features: np.ndarray | None = None
        self.maps: list[tuple[np.ndarray, np.ndarray | None]] = []

    def _phi(self, inputs: list[np.ndarray]) -> np.ndarray:
        parts = []
        for x in inputs:
            if x.dtype.kind in "biu":
                parts.append(self.table[np.asarray(x, dtype=np.int64) % _TOKEN_TABLE].reshape(len(x), -1))
            else:
                parts.append(((x - self.mean) / self.std).reshape(len(x), -1))
        phi = np.concatenate(parts, axis=1).astype("float32")
        if self.features is None:
            width = phi.shape[1]
            self.features = (
                np.sort(self.rng.choice(width, _TEACHER_WIDTH, replace=False))
                if width > _TEACHER_WIDTH
                else np.arange(width)
            )
        return phi[:, self.features]

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        phi = self._phi(inputs)
        if not self.maps:
            for head in self.heads:
                size = int(np.prod(head.shape))
                width = min(size, _TEACHER_WIDTH)
                matrix = self.rng.standard_normal((phi.shape[1], width)) / math.sqrt(phi.shape[1])
                spread = self.rng.integers(width, size=size) if size > width else None
                self.maps.append((matrix.astype("float32"), spread))
        targets = []
        for head, (matrix, spread) in zip(self.heads, self.maps):
            values = phi @ matrix
            if spread is not None:
                values = values[:, spread]
            values = values.reshape((len(phi),) + head.shape)
            targets.append(values.argmax(axis=-1).astype("int32") if head.softmax else values)
        return targets


def _train(
    model: Any, heads: list[_Head], batches: Iterator, lr: float, after_step: Callable[[int], None]
) -> dict[str, Any]:
    import keras

    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=MOMENTUM),
        loss=[
            keras.losses.SparseCategoricalCrossentropy() if head.softmax else keras.losses.MeanSquaredError()
            for head in heads
        ],
    )
    weights = model.trainable_variables
    before = [keras.ops.convert_to_numpy(w) for w in weights]
    velocity = [np.zeros_like(w) for w in before]
    losses: list[float | None] = []
    norms: list[float | None] = []
    diverged_at = None
    for step, (inputs, targets) in enumerate(batches):
        if diverged_at is not None:
            losses.append(None)
            norms.append(None)
            after_step(step)
            continue
        with np.errstate(all="ignore"):
            loss = float(
                np.asarray(
                    model.train_on_batch(
                        _structured(model, inputs), targets if len(targets) > 1 else targets[0]
                    )
                ).reshape(-1)[0]
            )
            after = [keras.ops.convert_to_numpy(w) for w in weights]
            # SGD with momentum: w_t - w_{t-1} = m_t = MOMENTUM m_{t-1} - lr g_t.
            steps_taken = [a - b for a, b in zip(after, before)]
            squared = sum(
                float(np.sum(np.square((MOMENTUM * v - s) / lr, dtype=np.float64)))
                for v, s in zip(velocity, steps_taken)
            )
        norm = math.sqrt(squared) if math.isfinite(squared) else math.inf
        before, velocity = after, steps_taken
        finite = math.isfinite(loss) and math.isfinite(norm)
        losses.append(loss if math.isfinite(loss) else None)
        norms.append(norm if math.isfinite(norm) else None)
        if not finite:
            diverged_at = step
        after_step(step)
    return {"loss": losses, "grad_norm": norms, "diverged_at": diverged_at}


def _structured(model: Any, inputs: list[np.ndarray]) -> Any:
    """The inputs in the structure the model was built on (a dict by name
    for ``keras_hub`` backbones; the arrays follow the flattened order, as
    ``graph.model_inputs`` lists them)."""
    import keras

    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        return inputs if len(inputs) > 1 else inputs[0]
    return keras.tree.pack_sequence_as(struct, inputs)
