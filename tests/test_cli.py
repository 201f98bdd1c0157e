"""Specifications of the ``autoinit`` command line (`autoinit.cli`), run on real files."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from autoinit import zoo  # noqa: E402
from autoinit.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LEGACY_FIXTURES = REPO / "tests" / "fixtures" / "legacy"


def small_model() -> keras.Model:
    inputs = keras.Input((20,), name="x")
    y = keras.layers.Dense(64, activation="relu", name="hidden")(inputs)
    y = keras.layers.Dropout(0.1, name="drop")(y)
    y = keras.layers.Dense(32, activation="tanh", name="middle")(y)
    y = keras.layers.Dense(10, name="logits")(y)
    return keras.Model(inputs, y, name="small")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A JSON config and a .keras file of the same small model."""
    folder = tmp_path_factory.mktemp("inputs")
    model = small_model()
    config = folder / "small.json"
    config.write_text(model.to_json())
    archive = folder / "small.keras"
    model.save(archive)
    return {"json": config, "keras": archive}


@pytest.fixture(scope="module")
def init_run(files, tmp_path_factory) -> dict[str, Path]:
    """``autoinit init small.json`` with every output requested, run once."""
    out = tmp_path_factory.mktemp("outputs")
    paths = {name: out / name for name in ("model.keras", "config.json", "traces.json", "plot.html")}
    status = main(
        [
            "init",
            str(files["json"]),
            "-o",
            str(paths["model.keras"]),
            "--config-out",
            str(paths["config.json"]),
            "--traces",
            str(paths["traces.json"]),
            "--html",
            str(paths["plot.html"]),
            "--baseline",
            "default",
            "he_normal",
            "--seed",
            "7",
            "--batch-size",
            "64",
            "--backward",
            "-q",
        ]
    )
    assert status == 0
    return paths


def dense_scales(traces: dict) -> dict[str, float]:
    return {layer["name"]: layer["scale"] for layer in traces["layers"] if layer["class_name"] == "Dense"}


def run_quiet(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --------------------------------------------------------------------------- #
# autoinit init
# --------------------------------------------------------------------------- #
def test_init_saves_a_loadable_model_whose_kernel_variances_are_the_reported_scales(init_run):
    model = keras.saving.load_model(init_run["model.keras"])
    scales = dense_scales(json.loads(init_run["traces.json"].read_text()))
    assert set(scales) == {"hidden", "middle", "logits"}
    for name, scale in scales.items():
        kernel = model.get_layer(name).kernel.numpy()
        assert float(np.var(kernel)) == pytest.approx(scale, rel=0.15), name
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), 0.0)


def test_init_config_out_rebuilds_the_saved_weights_exactly(init_run):
    saved = keras.saving.load_model(init_run["model.keras"])
    config = json.loads(init_run["config.json"].read_text())
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in saved.get_weights()]
    for a, b in zip(rebuilt.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_init_traces_follow_the_payload_schema(init_run):
    traces = json.loads(init_run["traces.json"].read_text())
    assert traces["series"] == ["predicted", "default", "he_normal", "autoinit"]
    assert traces["model"]["name"] == "small"
    assert [layer["name"] for layer in traces["layers"]] == ["x", "hidden", "drop", "middle", "logits"]
    for layer in traces["layers"]:
        for series in traces["series"]:
            assert {"mean", "var"} <= set(layer[series])
    logits = traces["layers"][-1]
    assert logits["autoinit"]["var"] == pytest.approx(1.0, rel=0.5)
    # --backward: dL/d(output) of L = sum(output * R) is R, of unit variance.
    assert logits["autoinit"]["grad_var"] == pytest.approx(1.0, rel=0.25)


def test_init_html_is_a_standalone_page_embedding_plotly_js(init_run):
    html = init_run["plot.html"].read_text()
    assert "plotly.js v" in html and "Plotly.newPlot" in html  # the library itself, not a CDN link
    assert "AutoInit (measured)" in html and "he_normal (measured)" in html
    assert "gradient variance" in html  # the --backward panel


def test_init_prints_the_chosen_scales_on_stdout(files, tmp_path, capsys):
    status, out, err = run_quiet(["init", str(files["json"]), "-o", str(tmp_path / "m.keras")], capsys)
    assert status == 0
    rows = {line.split()[0]: float(line.split()[-1]) for line in out.splitlines()[1:]}
    model = keras.saving.load_model(tmp_path / "m.keras")
    assert set(rows) == {"hidden", "middle", "logits"}
    assert rows["hidden"] == pytest.approx(float(np.var(model.get_layer("hidden").kernel.numpy())), rel=0.15)
    assert "reading" in err  # progress lines go to stderr


def test_init_reads_only_the_config_of_a_keras_file_never_its_weights(files, tmp_path, capsys):
    # Replace the archive's weights with garbage: loading them would fail.
    broken = tmp_path / "broken_weights.keras"
    with zipfile.ZipFile(files["keras"]) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = b"not an HDF5 file" if info.filename.endswith(".h5") else source.read(info)
            target.writestr(info, data)
    out = tmp_path / "from_keras.keras"
    status, _, err = run_quiet(["init", str(broken), "-o", str(out), "--seed", "1", "-q"], capsys)
    assert status == 0, err
    original = keras.saving.load_model(files["keras"])
    model = keras.saving.load_model(out)
    assert [layer.name for layer in model.layers] == [layer.name for layer in original.layers]
    kernel = model.get_layer("hidden").kernel.numpy()
    assert not np.array_equal(kernel, original.get_layer("hidden").kernel.numpy())
    assert float(np.var(kernel)) == pytest.approx(1.0 / 20.0, rel=0.15)  # unit-variance input, fan-in 20


def test_init_converts_tf_keras_2_configs(tmp_path, capsys):
    legacy = json.loads((LEGACY_FIXTURES / "sequential.json").read_text())["config"]
    source = tmp_path / "legacy.json"
    source.write_text(json.dumps(legacy))
    status, out, err = run_quiet(["init", str(source), "-o", str(tmp_path / "legacy.keras"), "-q"], capsys)
    assert status == 0, err
    model = keras.saving.load_model(tmp_path / "legacy.keras")
    assert model.get_layer("conv").kernel.shape == (3, 3, 1, 8)
    assert "conv" in out


def test_same_seed_gives_identical_models(files, tmp_path, capsys):
    for name in ("a", "b"):
        assert (
            main(["init", str(files["json"]), "-o", str(tmp_path / f"{name}.keras"), "--seed", "3", "-q"])
            == 0
        )
    capsys.readouterr()
    a = keras.saving.load_model(tmp_path / "a.keras").get_weights()
    b = keras.saving.load_model(tmp_path / "b.keras").get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- #
# Errors: one line, exit status 2, no traceback
# --------------------------------------------------------------------------- #
def lambda_config() -> str:
    inputs = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(y)).to_json()


def unbuildable_config() -> str:
    config = json.loads(small_model().to_json())
    config["config"]["layers"][1]["config"]["units"] = "sixty-four"
    return json.dumps(config)


def kernel_larger_than_its_input() -> str:
    # Passes the upload checks; Keras refuses to build a 5x5 valid convolution on a 3x3 map.
    config = json.loads(keras.Sequential([keras.Input((3, 3, 1)), keras.layers.Conv2D(2, 3)]).to_json())
    config["config"]["layers"][1]["config"]["kernel_size"] = [5, 5]
    config["config"]["layers"][1].pop("build_config", None)
    return json.dumps(config)


def reshape_needs_a_multiple_of_five() -> str:
    # Valid config; the probe's stand-in length (32) for the unknown axis cannot be reshaped.
    inputs = keras.Input((None,))
    y = keras.layers.Reshape((-1, 5))(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(y)).to_json()


@pytest.mark.parametrize(
    "content, extra, cause",
    [
        (None, [], "no such file"),
        ('{"class_name": "Functional", ', [], "not valid JSON"),
        (lambda_config, [], "Lambda"),
        (unbuildable_config, [], "Expected 'units' to be a positive integer"),
        (kernel_larger_than_its_input, [], "Could not build"),
        ("[1, 2, 3]", [], "JSON object"),
        (lambda: small_model().to_json(), ["--distribution", "cauchy"], "--distribution"),
        (lambda: small_model().to_json(), ["--baseline", "kaiming"], "--baseline"),
        (reshape_needs_a_multiple_of_five, ["--traces", "TRACES"], "could not be initialized: ValueError"),
    ],
    ids=[
        "missing-file",
        "invalid-json",
        "lambda",
        "unbuildable",
        "keras-refuses",
        "not-a-model",
        "unknown-distribution",
        "unknown-baseline",
        "fails-while-probing",
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_cause(content, extra, cause, tmp_path, capsys):
    source = tmp_path / "model.json"
    if content is not None:
        source.write_text(content() if callable(content) else content)
    out = tmp_path / "out.keras"
    extra = [str(tmp_path / "traces.json") if arg == "TRACES" else arg for arg in extra]
    status, stdout, err = run_quiet(["init", str(source), "-o", str(out), "-q", *extra], capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("autoinit: error: "), err
    assert cause in err
    assert "Traceback" not in err and not out.exists() and stdout == ""


def test_output_must_be_a_keras_file(files, tmp_path, capsys):
    status, _, err = run_quiet(["init", str(files["json"]), "-o", str(tmp_path / "m.h5")], capsys)
    assert status == 2 and "should name a .keras file" in err


def test_a_zero_input_variance_is_a_usage_error(files, tmp_path, capsys):
    argv = ["init", str(files["json"]), "-o", str(tmp_path / "m.keras"), "--input-var", "0"]
    status, _, err = run_quiet(argv, capsys)
    assert status == 2 and "--input-var: Input should be greater than 0" in err
    assert not (tmp_path / "m.keras").exists()


def test_usage_errors_exit_2(capsys):
    status, _, err = run_quiet(["init", "model.json"], capsys)  # no -o
    assert status == 2 and "-o/--output" in err


# --------------------------------------------------------------------------- #
# autoinit zoo
# --------------------------------------------------------------------------- #
def test_zoo_list_prints_every_model_with_its_description(capsys):
    status, out, _ = run_quiet(["zoo", "list"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[0] == "name"
    assert [line.split()[0] for line in lines[1:]] == list(zoo.ZOO)
    for entry in zoo.list_models():
        assert any(line.startswith(entry["name"]) and entry["description"] in line for line in lines)


def test_zoo_export_writes_a_config_that_builds(tmp_path, capsys):
    target = tmp_path / "text_cnn.json"
    status, _, err = run_quiet(["zoo", "export", "text_cnn", "-o", str(target)], capsys)
    assert status == 0, err
    model = keras.models.model_from_json(target.read_text())
    reference = zoo.build("text_cnn")
    assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]
    assert model.count_params() == reference.count_params()


def test_zoo_export_of_an_unknown_name_lists_the_valid_ones(tmp_path, capsys):
    status, _, err = run_quiet(["zoo", "export", "resnet50", "-o", str(tmp_path / "x.json")], capsys)
    assert status == 2 and "resnet50" in err and "all_cnn_c" in err
    assert not (tmp_path / "x.json").exists()


def test_exported_zoo_config_feeds_init(tmp_path, capsys):
    exported = tmp_path / "mlp.json"
    assert main(["zoo", "export", "mlp", "-o", str(exported)]) == 0
    assert main(["init", str(exported), "-o", str(tmp_path / "mlp.keras"), "-q"]) == 0
    capsys.readouterr()
    model = keras.saving.load_model(tmp_path / "mlp.keras")
    # Fan-in 64 with unit-variance input: weight variance 1/64.
    assert float(np.var(model.get_layer("dense1").kernel.numpy())) == pytest.approx(1 / 64, rel=0.15)


# --------------------------------------------------------------------------- #
# The real console process
# --------------------------------------------------------------------------- #
def run_process(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


def test_help_runs_as_a_process_without_importing_tensorflow():
    result = run_process("-m", "autoinit.cli", "--help")
    assert result.returncode == 0
    for command in ("init", "zoo", "serve", "worker"):
        assert command in result.stdout
    probe = run_process(
        "-c",
        "import sys; from autoinit.cli import main; main(['--help']); "
        "print('HEAVY' if {'keras', 'tensorflow'} & set(sys.modules) else 'LIGHT')",
    )
    assert probe.stdout.strip().endswith("LIGHT")


def test_serve_delegates_its_flags_to_the_service_or_says_it_is_missing():
    result = run_process("-m", "autoinit.cli", "serve", "--help")
    try:
        available = importlib.util.find_spec("server.serve") is not None
    except ModuleNotFoundError:  # no `server` package at all
        available = False
    if not available:
        assert result.returncode == 2
        assert "autoinit: error:" in result.stderr and "server.serve" in result.stderr
        assert "Traceback" not in result.stderr
    else:
        assert result.returncode == 0
        assert "usage" in result.stdout.lower()


def test_every_option_of_the_options_model_has_its_flag():
    from autoinit.cli import build_parser
    from autoinit.options import InitializeOptions

    init = build_parser()._subparsers._group_actions[0].choices["init"]
    destinations = {action.dest for action in init._actions}
    assert set(InitializeOptions.model_fields) <= destinations


def test_train_steps_write_the_training_curves_into_the_traces(files, tmp_path, capsys):
    traces = tmp_path / "traces.json"
    argv = [
        "init",
        str(files["json"]),
        "-o",
        str(tmp_path / "m.keras"),
        "--traces",
        str(traces),
        "--train-steps",
        "3",
        "--probe-batch",
        "32",
        "--baseline",
        "default",
        "he_normal",
        "-q",
    ]
    status, _, err = run_quiet(argv, capsys)
    assert status == 0, err
    training = json.loads(traces.read_text())["training"]
    assert training["steps"] == 3 and training["synthetic"] is True
    assert list(training["series"]) == ["default", "he_normal", "autoinit"]
    assert all(len(s["loss"]) == 3 for s in training["series"].values())


def test_train_steps_without_traces_is_a_usage_error(files, tmp_path, capsys):
    argv = ["init", str(files["json"]), "-o", str(tmp_path / "m.keras"), "--train-steps", "3", "-q"]
    status, _, err = run_quiet(argv, capsys)
    assert status == 2 and "--train-steps" in err and "--traces" in err


def test_html_with_train_steps_puts_the_training_figure_below_the_signal_figure(files, tmp_path, capsys):
    html = tmp_path / "plot.html"
    argv = [
        "init",
        str(files["json"]),
        "-o",
        str(tmp_path / "m.keras"),
        "--html",
        str(html),
        "--train-steps",
        "3",
        "--probe-batch",
        "32",
        "-q",
    ]
    status, _, err = run_quiet(argv, capsys)
    assert status == 0, err
    page = html.read_text()
    assert page.count("Plotly.newPlot(") == 2 and "plotly.js v" in page  # offline, one file
    signal, training = page.index("Signal propagation through small"), page.index("Does it train? 3 steps")
    assert signal < training
    assert "synthetic teacher task: a random linear map of Gaussian inputs" in page
    assert "gradient norm (log)" in page
    from autoinit.cli import build_parser

    init = build_parser()._subparsers._group_actions[0].choices["init"]
    (html_flag,) = [action for action in init._actions if action.dest == "html"]
    assert "--train-steps" in html_flag.help and "same file" in html_flag.help
