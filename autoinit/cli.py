"""The ``autoinit`` console script.

    autoinit init MODEL -o OUT.keras [--config-out CFG.json] [--traces T.json] [--html PLOT.html] ...
    autoinit zoo list
    autoinit zoo export NAME [-o NAME.json]
    autoinit serve ...      (the HTTP API: flags go to server.serve.serve_main)
    autoinit worker ...     (a job worker: flags go to server.serve.worker_main)

MODEL is a model config in JSON (``model.to_json()``; Keras 3 or tf.keras 2)
or a ``.keras`` file, of which only ``config.json`` is read: its weights are
never loaded, and the config passes the same allow-list as uploads to the
service (no ``Lambda``, no file-reading layers). Progress goes to stderr; the
chosen scales to stdout. Expected failures print one line,
``autoinit: error: ...``, and exit with status 2 (bad input) or 1 (an output
could not be written).

TensorFlow is imported only by the commands that need it, so ``--help`` is
instant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from autoinit.errors import AutoInitError

__all__ = ["main", "build_parser"]

PROG = "autoinit"
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
# A local file is the user's own: allow large .keras archives (their
# weights are never read), unlike the service's 50 MB upload bound.
_MAX_LOCAL_FILE_BYTES = 4 * 1024**3
_DELEGATED = ("serve", "worker")


class CliError(Exception):
    """An expected failure: printed as one line, mapped to an exit status."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- #
# Argument parsing
# --------------------------------------------------------------------------- #
def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, received {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, received {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``autoinit`` argument parser (subcommands ``init``, ``zoo``, ``serve``, ``worker``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="AutoInit: analytic signal-preserving weight initialization for Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser(
        "init",
        help="initialize a model's weights with AutoInit and save it",
        description="Initialize a model with AutoInit. MODEL is a JSON model config (Keras 3 or "
        "tf.keras 2) or a .keras file (only its config is read, never its weights).",
    )
    init.add_argument("model", metavar="MODEL", help="model config (.json) or .keras file")
    init.add_argument("-o", "--output", required=True, metavar="OUT.keras", help="where to save the initialized model")
    init.add_argument("--config-out", metavar="CFG.json", help="also write the initialized config (seeded initializers)")
    init.add_argument("--traces", metavar="T.json", help="also probe the model and write the traces JSON")
    init.add_argument("--html", metavar="PLOT.html", help="also probe the model and write the signal figure (offline HTML)")
    init.add_argument("--seed", type=int, default=0, help="seed for weights, probe input and dropout (default 0)")
    init.add_argument("--input-mean", type=float, default=0.0, metavar="M", help="mean of the model's input data (default 0)")
    init.add_argument("--input-var", type=_positive, default=1.0, metavar="V", help="variance of the input data (default 1)")
    init.add_argument(
        "--signal-variance", type=_positive, default=1.0, metavar="S", help="output variance to keep at weighted layers (default 1)"
    )
    init.add_argument(
        "--distribution",
        default="truncated_normal",
        metavar="D",
        help="weight distribution: truncated_normal (default), untruncated_normal, uniform, orthogonal",
    )
    init.add_argument(
        "--baseline",
        dest="baselines",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="measured series for --traces/--html: default (the model's own init), he_normal, "
        "glorot_uniform, lecun_normal (default: default)",
    )
    init.add_argument("--batch-size", type=_positive_int, default=256, metavar="B", help="probe batch size (default 256)")
    init.add_argument(
        "--backward", action="store_true", help="with --traces/--html, also measure gradient variances (grad_var)"
    )
    init.add_argument(
        "--center-activations",
        action="store_true",
        help="AutoInit++ (paper, Section 7): subtract each activation's Gaussian mean E[f(z)], z ~ N(0, 1), "
        "by inserting Rescaling layers after activations, then run AutoInit",
    )
    init.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")

    zoo = commands.add_parser("zoo", help="the paper's models", description="List or export the paper's models.")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    zoo_commands.add_parser("list", help="list the models with a description")
    export = zoo_commands.add_parser("export", help="write a model's config (model.to_json()) to a file")
    export.add_argument("name", metavar="NAME", help="zoo model name (see `autoinit zoo list`)")
    export.add_argument("-o", "--output", metavar="NAME.json", help="output file (default: NAME.json)")

    # Parsed here for --help only: main() hands their arguments over untouched.
    for name, text in (("serve", "run the HTTP API"), ("worker", "run a job worker")):
        sub = commands.add_parser(name, help=f"{text} (flags: autoinit {name} --help)", add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``autoinit`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _delegate(argv[0], argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_BAD_INPUT
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            if args.command == "init":
                return run_init(args)
            if args.zoo_command == "list":
                return run_zoo_list(sys.stdout)
            return run_zoo_export(args.name, args.output)
    except CliError as error:
        return _fail(str(error), error.status)
    except AutoInitError as error:  # bad config, unknown layer facts, ...: the input's fault
        return _fail(str(error), EXIT_BAD_INPUT)
    except (ValueError, TypeError) as error:  # Keras refusing the model while building/probing it
        return _fail(f"the model could not be initialized: {type(error).__name__}: {_plain(error)}",
                     EXIT_BAD_INPUT)


def _plain(error: Exception) -> str:
    """The error's message without terminal colour codes (Keras adds them)."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def _warning_line(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    # Warnings (e.g. a layer with no estimator, treated as pass-through) as
    # one line each, without the source line Python would print.
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _progress(quiet: bool):
    def report(fraction: float, stage: str) -> None:
        if not quiet:
            print(f"{PROG}: [{fraction * 100:3.0f}%] {stage}", file=sys.stderr, flush=True)

    return report


# --------------------------------------------------------------------------- #
# autoinit init
# --------------------------------------------------------------------------- #
def read_model_config(path: str | Path) -> dict[str, Any]:
    """A Keras 3 model config from a JSON or ``.keras`` file, validated against
    the allow-list (tf.keras 2 configs converted); no weights are read.

    Raises:
        CliError: the file is missing or unreadable, not JSON, not a model
            config, or unsafe (the message starts with the file's path).
    """
    from autoinit.errors import ModelConfigError
    from autoinit.upload import UploadLimits, parse_upload, validate_model_config

    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise CliError(f"MODEL should be a .json config or a .keras file. Received: {str(path)!r} ({what})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {str(path)!r}: {error.strerror or error}") from None
    limits = UploadLimits(max_bytes=_MAX_LOCAL_FILE_BYTES)
    try:
        config = parse_upload(data, path.name, limits)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from autoinit.keras_adapter.loading import normalize_config

        config = normalize_config(config)
        validate_model_config(config, limits)
    except ModelConfigError as error:
        raise CliError(f"{path}: {error}") from None
    return config


def _check_output(path: str | None, suffix: str, flag: str) -> None:
    if path is None:
        return
    if not path.lower().endswith(suffix):
        raise CliError(f"{flag} should name a {suffix} file. Received: {path!r}")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CliError(f"{flag}: the folder {str(parent)!r} does not exist. Received: {path!r}")


def _check_choices(args: argparse.Namespace) -> list[str]:
    from autoinit.keras_adapter.weights import DISTRIBUTIONS
    from autoinit.probe import BASELINES

    if args.distribution not in DISTRIBUTIONS:
        raise CliError(f"--distribution should be one of {', '.join(DISTRIBUTIONS)}. Received: {args.distribution!r}")
    baselines = list(dict.fromkeys(args.baselines or ["default"]))
    unknown = [b for b in baselines if b != "default" and b not in BASELINES]
    if unknown:
        raise CliError(f"--baseline should be 'default' or one of {', '.join(BASELINES)}. Received: {unknown}")
    return baselines


def _write_text(path: str, text: str, what: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write the {what} to {path!r}: {error.strerror or error}", EXIT_FAILURE) from None


def run_init(args: argparse.Namespace) -> int:
    """``autoinit init``: initialize, save, and optionally write config, traces and figure."""
    report = _progress(args.quiet)
    _check_output(args.output, ".keras", "-o/--output")
    _check_output(args.config_out, ".json", "--config-out")
    _check_output(args.traces, ".json", "--traces")
    _check_output(args.html, ".html", "--html")
    report(0.0, f"reading {args.model}")
    config = read_model_config(args.model)
    baselines = _check_choices(args)

    import keras

    from autoinit.autoinit import AutoInit
    from autoinit.probe import compare

    traces = None
    if args.traces or args.html:
        traces, model = compare(
            config,
            baselines=baselines,
            seed=args.seed,
            input_mean=args.input_mean,
            input_var=args.input_var,
            signal_variance=args.signal_variance,
            distribution=args.distribution,
            batch_size=args.batch_size,
            backward=args.backward,
            return_model=True,
            progress=report,
            center_activations=args.center_activations,
        )
        rows = traces["layers"]
    else:
        report(0.05, "building model and running AutoInit")
        autoinit = AutoInit(
            weight_init_config={"distribution": args.distribution},
            input_data_mean=args.input_mean,
            input_data_var=args.input_var,
            signal_variance=args.signal_variance,
            seed=args.seed,
            center_activations=args.center_activations,
        )
        model, rows = autoinit.initialize_model(config, return_estimates=True)

    report(1.0, f"saving {args.output}")
    try:
        model.save(args.output)
    except OSError as error:
        raise CliError(f"cannot write the model to {args.output!r}: {error.strerror or error}", EXIT_FAILURE) from None
    if args.config_out:
        initialized = keras.saving.serialize_keras_object(model)
        _write_text(args.config_out, json.dumps(initialized, indent=1), "initialized config")
    if traces is not None and args.traces:
        _write_text(args.traces, json.dumps(traces, indent=1), "traces")
    if traces is not None and args.html:
        from autoinit import plot

        fig = plot.signal_figure(traces, show_gradients=args.backward)
        try:
            plot.write_html(fig, args.html)
        except OSError as error:
            raise CliError(f"cannot write the figure to {args.html!r}: {error.strerror or error}", EXIT_FAILURE) from None
    _print_scales(rows, sys.stdout)
    return EXIT_OK


def _print_scales(rows: Sequence[dict], out: TextIO) -> None:
    """One line per weighted layer: the weight variance AutoInit chose."""
    weighted = [row for row in rows if row.get("has_weights") and row.get("scale") is not None]
    width = max([len(row["name"]) for row in weighted] + [5])
    print(f"{'layer':<{width}}  {'class':<20}  weight variance", file=out)
    for row in weighted:
        print(f"{row['name']:<{width}}  {row['class_name']:<20}  {row['scale']:.6g}", file=out)


# --------------------------------------------------------------------------- #
# autoinit zoo
# --------------------------------------------------------------------------- #
def run_zoo_list(out: TextIO) -> int:
    """``autoinit zoo list``: name, size and description of each zoo model (none is built)."""
    from autoinit.zoo import list_models

    entries = list_models()
    width = max(len(entry["name"]) for entry in entries)
    print(f"{'name':<{width}}  {'layers':>6}  {'params':>10}  description", file=out)
    for entry in entries:
        print(
            f"{entry['name']:<{width}}  {entry['num_layers']:>6}  {entry['num_params']:>10,}  {entry['description']}",
            file=out,
        )
    return EXIT_OK


def run_zoo_export(name: str, output: str | None) -> int:
    """``autoinit zoo export NAME``: write the model's ``to_json()`` config."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from autoinit import zoo

    if name not in zoo.ZOO:
        raise CliError(f"NAME should be one of: {', '.join(zoo.ZOO)}. Received: {name!r}")
    output = output or f"{name}.json"
    _check_output(output, ".json", "-o/--output")
    print(f"{PROG}: building {name}", file=sys.stderr, flush=True)
    _write_text(output, zoo.build(name).to_json(), "model config")
    print(f"{PROG}: wrote {output}", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- #
# autoinit serve / worker
# --------------------------------------------------------------------------- #
def _delegate(command: str, rest: list[str]) -> int:
    """Hand ``rest`` to ``server.serve.<command>_main`` (flags untouched)."""
    import importlib

    try:
        serve = importlib.import_module("server.serve")
    except ModuleNotFoundError as error:
        if error.name not in ("server", "server.serve"):
            raise
        return _fail(
            f"`{PROG} {command}` needs the service package (server.serve), which is not importable here: {error}",
            EXIT_BAD_INPUT,
        )
    try:
        status = getattr(serve, f"{command}_main")(rest)
    except SystemExit as exit_:  # their argparse's --help or usage error
        status = exit_.code if not isinstance(exit_.code, str) else EXIT_BAD_INPUT
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
