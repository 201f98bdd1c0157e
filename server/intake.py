"""Untrusted upload -> validated Keras 3 config, in the API process (no TF).

Order matters: parse (bounded, no Keras) -> convert tf.keras 2 configs ->
walk the result against the allow-list. Anything refused becomes a 4xx
`ProblemError` before a job exists, so workers only ever see configs that
passed `autoinit.upload.validate_model_config`. Then `check_probe_memory`
refuses a job whose probe cannot fit the worker's memory budget even one
example at a time, from the shapes the config states. Training data (the
``data`` field, an ``.npz``) is read by `validate_training_data` with
``autoinit.training.load_training_data``: never unpickled, bounded in size as
sent and uncompressed.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from typing import Any

from autoinit import keras_facts
from autoinit.errors import ModelConfigError, TrainingDataError, UnsafeConfigError
from autoinit.legacy import convert_legacy_config, is_legacy_config
from autoinit.options import InitializeOptions
from autoinit.probe_cost import FLOAT_BYTES, TensorSizes, probe_graph_bytes, probe_memory_bytes
from autoinit.upload import (
    UploadLimits,
    UploadTooLargeError,
    is_hdf5,
    parse_upload,
    validate_model_config,
)
from autoinit.upload.params import ActivationElements, activation_elements
from server.problems import ProblemError
from server.text import has_lone_surrogate, lone_surrogate_path

__all__ = [
    "ValidatedUpload",
    "check_probe_memory",
    "check_options_fit_config",
    "check_training_data_wanted",
    "probe_memory_floor",
    "validate_training_data",
    "validate_upload",
]

log = logging.getLogger("autoinit.server")


@dataclass(frozen=True)
class ValidatedUpload:
    config: dict[str, Any]
    summary: dict[str, Any]


def _unsupported_format(data: bytes, filename: str | None) -> bool:
    name = (filename or "").lower()
    return is_hdf5(data) or name.endswith((".h5", ".hdf5", ".pb", ".pbtxt"))


def validate_upload(data: bytes, filename: str | None, limits: UploadLimits) -> ValidatedUpload:
    """Parse, convert and validate; raise `ProblemError` (413/415/422) if refused.

    Whatever the bytes hold, the answer is a `ValidatedUpload` or a 4xx: an
    unexpected error of the parser or the converter (a bug met with hostile
    input) is a 422 too, never a 500, and no job exists yet either way.
    """
    if filename is not None and has_lone_surrogate(filename):
        raise ProblemError(
            422,
            "Invalid file name",
            f"The file name {filename!r} is not valid Unicode (an unpaired surrogate).",
        )
    try:
        config = parse_upload(data, filename, limits)
        legacy = is_legacy_config(config)
        if legacy:
            config = convert_legacy_config(config)
        summary = validate_model_config(config, limits)
    except UploadTooLargeError as error:
        raise ProblemError(413, "Upload too large", str(error)) from None
    except UnsafeConfigError as error:
        raise ProblemError(422, "Unsafe model config refused", str(error)) from None
    except ModelConfigError as error:
        if _unsupported_format(data, filename):
            raise ProblemError(415, "Unsupported model format", str(error)) from None
        raise ProblemError(422, "Invalid model config", str(error)) from None
    except Exception as error:  # hostile input met a bug: still a 4xx, never a 500
        log.warning("upload refused after an unexpected %s", type(error).__name__, exc_info=True)
        raise ProblemError(
            422,
            "Invalid model config",
            f"The config could not be read as a Keras model config ({type(error).__name__}: "
            f"{str(error)[:300]}). Expected the JSON of model.to_json() or a .keras archive.",
        ) from None
    where = lone_surrogate_path(config)
    if where is not None:
        raise ProblemError(
            422,
            "Invalid model config",
            f"The config holds invalid Unicode (an unpaired surrogate, \\ud800-\\udfff) at {where}.",
        )
    name = config.get("config", {}).get("name") if isinstance(config.get("config"), dict) else None
    return ValidatedUpload(
        config=config,
        summary={
            "name": name,
            "class_name": config.get("class_name"),
            "num_layers": summary.num_layers,
            "estimated_params": summary.estimated_params,
            "class_counts": dict(summary.class_counts),
            "converted_from_tf_keras_2": legacy,
        },
    )


def _byte_sizes(sizes: ActivationElements) -> TensorSizes:
    return TensorSizes(
        inputs=FLOAT_BYTES * sizes.inputs,
        outputs=FLOAT_BYTES * sizes.outputs,
        live_peak=FLOAT_BYTES * sizes.live_peak,
        total=FLOAT_BYTES * sizes.total,
        calls=sizes.calls,
    )


def probe_memory_floor(
    sizes: ActivationElements, batch_size: int, *, backward: bool, micro_batch: int = 1
) -> int:
    """Bytes the worker's probe needs at its smallest micro-batch (one example):
    the worker's own estimate (`autoinit.probe_cost`, shared with
    ``autoinit.probe.estimate_probe_memory``), from the config's sizes."""
    return probe_memory_bytes(_byte_sizes(sizes), batch_size, micro_batch, backward=backward)


def check_probe_memory(config: dict[str, Any], options: InitializeOptions, budget: int) -> None:
    """Raise a 422 `ProblemError` when the probe this job asks for cannot fit
    ``budget`` bytes (``AUTOINIT_WORKER_MEMORY_BUDGET``) even one example at a
    time; say by how much, and what would fit."""
    try:
        sizes = activation_elements(config)
    except ModelConfigError:  # validated already; the worker's own estimate then decides
        log.warning("no activation sizes for a validated config", exc_info=True)
        return
    backward = bool(options.backward)
    need = probe_memory_floor(sizes, options.probe_batch, backward=backward)
    if need <= budget:
        return
    changes = []
    # One example at a time, the need grows by `held` per example of the batch (held on the host).
    held = probe_memory_floor(sizes, 2, backward=backward) - probe_memory_floor(sizes, 1, backward=backward)
    base = probe_memory_floor(sizes, 1, backward=backward) - held
    if held > 0 and budget - base >= held:
        changes.append(f"a probe_batch of at most {(budget - base) // held} (received {options.probe_batch})")
    if backward and probe_memory_floor(sizes, options.probe_batch, backward=False) <= budget:
        changes.append("backward=false (the gradient probe keeps part of every layer's output)")
    graph = probe_graph_bytes(sizes.calls, backward=backward)
    if graph > budget:  # the traced graph alone does not fit, whatever the batch
        changes.append(
            f"a model with fewer layers (the traced graph of {sizes.calls} layer calls alone needs about {_mib(graph)})"
        )
    else:
        changes.append("a model with smaller inputs or narrower layers")
    raise ProblemError(
        422,
        "The probe needs more memory than this server allows",
        f"Probing this model ({sizes.calls} layer calls, {_mib(FLOAT_BYTES * sizes.live_peak)} of layer "
        f"outputs alive at once per example{', ' + _mib(FLOAT_BYTES * sizes.total) + ' in all' if backward else ''}) "
        f"with probe_batch={options.probe_batch}{' and backward=true' if backward else ''} needs about "
        f"{_mib(need)} even one example at a time; this server's workers allow {_mib(budget)} "
        f"(AUTOINIT_WORKER_MEMORY_BUDGET). What to change: " + "; or ".join(changes) + ".",
    )


def check_options_fit_config(config: dict[str, Any], options: InitializeOptions) -> None:
    """Raise a 422 `ProblemError` for an option the uploaded model cannot take:
    AutoInit++ (``center_activations``) inserts layers into a Functional or
    Sequential config's layer list, and a keras_hub backbone's config holds
    arguments, not layers."""
    if options.center_activations and keras_facts.is_hub_backbone(
        config.get("module"), config.get("class_name")
    ):
        raise ProblemError(
            422,
            "Option not available for this model",
            f"center_activations (AutoInit++) inserts centring layers into a Functional or Sequential "
            f"config's layer list; a keras_hub backbone's config ({config.get('class_name')}) holds its "
            "arguments, not layers. Received: center_activations=true. Send it without center_activations, "
            "or as a Functional model built from the same layers.",
        )


def _mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB" if size < 2**30 else f"{size / 2**30:,.1f} GiB"


def check_training_data_wanted(options: InitializeOptions, max_train_steps: int) -> None:
    """Training data trains the model: a 422 unless the options ask for training."""
    if options.train_steps > 0:
        return
    raise ProblemError(
        422,
        "Training data without training",
        "The 'data' field (training data) is used only to train the model: ask for training "
        f"with train_steps > 0 (at most {max_train_steps} on this server, AUTOINIT_MAX_TRAIN_STEPS). "
        f"Received: train_steps={options.train_steps}.",
    )


def validate_training_data(data: bytes, max_bytes: int) -> None:
    """Read the ``data`` field as an ``.npz`` of ``x`` and ``y`` without unpickling.

    Whether the arrays fit the model's input and output is the worker's check
    (it builds the model): a mismatch fails the job with the reason.

    Raises:
        ProblemError: 413 when the archive or its arrays uncompressed are over
            ``max_bytes`` (``AUTOINIT_MAX_DATA_BYTES``); 422 with
            `autoinit.errors.TrainingDataError`'s message when it cannot be read
            (not an ``.npz``, pickled object arrays, ``x`` or ``y`` missing,
            non-numeric, of different lengths).
    """
    from autoinit.training import load_training_data  # NumPy only: no Keras in the API process

    if len(data) > max_bytes:
        raise ProblemError(
            413,
            "Training data too large",
            f"The training data is {len(data):,} bytes; this server's limit is {max_bytes:,} "
            "(AUTOINIT_MAX_DATA_BYTES).",
        )
    unpacked = _unpacked_bytes(data)
    if unpacked is None:  # NumPy would take it for a pickle and say so: say what it is not
        raise ProblemError(
            422,
            "Invalid training data",
            "Expected an .npz archive (a zip of .npy arrays, as numpy.savez writes) with arrays "
            f"'x' and 'y'. Received {len(data):,} bytes that are no zip archive "
            f"(they start with {data[:8]!r}).",
        )
    if unpacked > max_bytes:
        # A compressed archive is read whole: its arrays must fit the limit too.
        raise ProblemError(
            413,
            "Training data too large",
            f"The training data's arrays hold {unpacked:,} bytes uncompressed; this server's limit "
            f"is {max_bytes:,} (AUTOINIT_MAX_DATA_BYTES).",
        )
    try:
        load_training_data(data, max_bytes=max_bytes)
    except TrainingDataError as error:
        raise ProblemError(422, "Invalid training data", str(error)) from None
    except Exception as error:  # hostile input met a bug: still a 4xx, never a 500
        log.warning("training data refused after an unexpected %s", type(error).__name__, exc_info=True)
        raise ProblemError(
            422,
            "Invalid training data",
            f"Expected an .npz archive with arrays 'x' and 'y'. Could not read it: "
            f"{type(error).__name__}: {str(error)[:300]}",
        ) from None


def _unpacked_bytes(data: bytes) -> int | None:
    """The archive's members' sizes once uncompressed, as its directory states
    them (reading a member stops there); None when it is no zip archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
