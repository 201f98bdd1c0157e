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
#: Option -> its CLI flag where the flag is not ``--<option-with-dashes>``.
_FLAG_NAMES = {"baselines": "--baseline"}
#: Older spellings still accepted.
_FLAG_ALIASES = {"probe_batch": ("--batch-size",)}


def _flag(option: str) -> str:
    return _FLAG_NAMES.get(option, "--" + option.replace("_", "-"))


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field of `autoinit.options.InitializeOptions`: the names,
    defaults and help come from the one options model; its bounds are checked
    when the options are built (`_options`)."""
    import typing

    from autoinit.options import InitializeOptions

    for option, field in InitializeOptions.model_fields.items():
        flags = [_flag(option), *_FLAG_ALIASES.get(option, ())]
        annotation = field.annotation
        default = field.get_default(call_default_factory=True)
        text = f"{field.description} (default: {default})"
        if annotation is bool:
            text = field.description
            parser.add_argument(*flags, dest=option, action="store_true", help=text)
        elif typing.get_origin(annotation) is list:  # checked by the model: one-line errors
            (item,) = typing.get_args(annotation)
            parser.add_argument(
                *flags,
                dest=option,
                action="extend",
                nargs="+",
                metavar="NAME",
                help=f"{text}; any of {', '.join(typing.get_args(item))}",
            )
        elif typing.get_origin(annotation) is typing.Literal:
            parser.add_argument(
                *flags,
                dest=option,
                metavar="NAME",
                help=f"{text}; one of {', '.join(typing.get_args(annotation))}",
            )
        else:
            parser.add_argument(
                *flags, dest=option, type=annotation, metavar=option.split("_")[-1][0].upper(), help=text
            )


def _options(args: argparse.Namespace):
    """The parsed flags as `InitializeOptions` (its bounds, its messages)."""
    from pydantic import ValidationError

    from autoinit.options import InitializeOptions

    # Unset flags are None (store_true ones False): the model's defaults apply.
    given = {
        name: getattr(args, name)
        for name in InitializeOptions.model_fields
        if getattr(args, name, None) is not None and getattr(args, name) is not False
    }
    try:
        return InitializeOptions(**given)
    except ValidationError as error:
        first = error.errors()[0]
        option = str(first["loc"][0]) if first["loc"] else "?"
        raise CliError(f"{_flag(option)}: {first['msg']}. Received: {first.get('input')!r}") from None


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
    init.add_argument(
        "-o", "--output", required=True, metavar="OUT.keras", help="where to save the initialized model"
    )
    init.add_argument(
        "--config-out", metavar="CFG.json", help="also write the initialized config (seeded initializers)"
    )
    init.add_argument("--traces", metavar="T.json", help="also probe the model and write the traces JSON")
    init.add_argument(
        "--html",
        metavar="PLOT.html",
        help="also probe the model and write the signal figure (offline HTML); "
        "with --train-steps, the training curves (loss, gradient norm) below it in the same file",
    )
    _add_option_flags(init)
    init.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")

    zoo = commands.add_parser(
        "zoo", help="the paper's models", description="List or export the paper's models."
    )
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
        return _fail(
            f"the model could not be initialized: {type(error).__name__}: {_plain(error)}", EXIT_BAD_INPUT
        )


def _plain(error: Exception) -> str:
    """The error's message without terminal colour codes (Keras adds them)."""
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def _warning_line(
    message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
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


def _write_text(path: str, text: str, what: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise CliError(
            f"cannot write the {what} to {path!r}: {error.strerror or error}", EXIT_FAILURE
        ) from None


def run_init(args: argparse.Namespace) -> int:
    """``autoinit init``: initialize, save, and optionally write config, traces and figure."""
    report = _progress(args.quiet)
    _check_output(args.output, ".keras", "-o/--output")
    _check_output(args.config_out, ".json", "--config-out")
    _check_output(args.traces, ".json", "--traces")
    _check_output(args.html, ".html", "--html")
    report(0.0, f"reading {args.model}")
    options = _options(args)
    if options.train_steps and not (args.traces or args.html):
        raise CliError("--train-steps writes its curves into the traces: add --traces or --html.")
    config = read_model_config(args.model)

    import keras

    from autoinit.autoinit import AutoInit
    from autoinit.probe import compare

    traces = None
    if args.traces or args.html:
        traces, model = compare(config, **options.compare_arguments(), return_model=True, progress=report)
        rows = traces["layers"]
        if options.train_steps:
            from autoinit.training import train_probe

            traces["training"] = train_probe(config, **options.train_arguments(), progress=report)
    else:
        report(0.05, "building model and running AutoInit")
        autoinit = AutoInit(**options.autoinit_arguments())
        model, rows = autoinit.initialize_model(config, return_estimates=True)

    report(1.0, f"saving {args.output}")
    try:
        model.save(args.output)
    except OSError as error:
        raise CliError(
            f"cannot write the model to {args.output!r}: {error.strerror or error}", EXIT_FAILURE
        ) from None
    if args.config_out:
        initialized = keras.saving.serialize_keras_object(model)
        _write_text(args.config_out, json.dumps(initialized, indent=1), "initialized config")
    if traces is not None and args.traces:
        _write_text(args.traces, json.dumps(traces, indent=1), "traces")
    if traces is not None and args.html:
        from autoinit import plot

        figures = [plot.signal_figure(traces, show_gradients=options.backward)]
        if "training" in traces:  # --train-steps: the training curves below, in the same file
            figures.append(plot.training_figure(traces["training"]))
        try:
            plot.write_html(figures, args.html)
        except OSError as error:
            raise CliError(
                f"cannot write the figure to {args.html!r}: {error.strerror or error}", EXIT_FAILURE
            ) from None
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
