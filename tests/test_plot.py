"""Specification of the signal figure, its JSON, HTML, image and CSV outputs.

The figure reads only the traces payload (docs/ARCHITECTURE.md), so these
tests build payloads by hand: a small network with weighted layers, an
unsupported (pass-through) layer, an overflow (null), a zero variance,
baselines and gradient variances. The training figure's tests read real
``train_probe`` runs of small Keras models, one of which diverges.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
import math
import re
import subprocess
import sys

import pytest

from autoinit.plot import (
    OVERFLOW_LABEL,
    PASS_THROUGH_LABEL,
    SYNTHETIC_TASK_NOTE,
    TARGET_LABEL,
    TASK_NOTE_NAME,
    WEIGHTED_LABEL,
    WEIGHTED_RED,
    figure_json,
    signal_figure,
    traces_to_csv,
    training_figure,
    write_html,
    write_image,
)
from autoinit.plot.style import series_colour

CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"'][^\"']*cdn\.plot\.ly")

SERIES_LABELS = {
    "predicted": "AutoInit (predicted)",
    "default": "default (measured)",
    "autoinit": "AutoInit (measured)",
    "he_normal": "he_normal (measured)",
}


def _layer(
    index, name, class_name, shape, *, weighted=False, estimator="builtin", scale=None, target=None, **stats
):
    layer = {
        "index": index,
        "name": name,
        "class_name": class_name,
        "has_weights": weighted,
        "output_shape": shape,
        "estimator": estimator,
        "scale": scale,
        "target": target,
    }
    layer.update(stats)
    return layer


@pytest.fixture
def traces():
    """A six-layer CNN head as compare() would report it."""
    return {
        "model": {"name": "tiny_cnn", "num_layers": 6, "num_params": 12345},
        "signal_variance": 2.0,
        "input": {"mean": 0.0, "var": 1.0},
        "series": ["predicted", "default", "autoinit", "he_normal"],
        "layers": [
            _layer(
                0,
                "conv2d",
                "Conv2D",
                [None, 32, 32, 16],
                weighted=True,
                scale=0.0123,
                target=2.0,
                predicted={"mean": 0.0, "var": 0.5712345},
                default={"mean": 0.01, "var": 0.21, "grad_var": 1.3e-4},
                autoinit={"mean": 0.0, "var": 0.57, "grad_var": 2.1e-3},
                he_normal={"mean": 0.02, "var": 1.9, "grad_var": 4.0e-3},
            ),
            _layer(
                1,
                "re_lu",
                "ReLU",
                [None, 32, 32, 16],
                predicted={"mean": 0.3, "var": 0.2},
                default={"mean": 0.18, "var": 0.07, "grad_var": 6.0e-5},
                autoinit={"mean": 0.3, "var": 0.21, "grad_var": 1.0e-3},
                he_normal={"mean": 0.55, "var": 0.65, "grad_var": 2.0e-3},
            ),
            _layer(
                2,
                "my_block/odd_op",
                "MysteryOp",
                [None, 32, 32, 16],
                estimator="pass-through",
                predicted={"mean": 0.3, "var": 0.2},
                default={"mean": 0.18, "var": 0.07, "grad_var": 6.0e-5},
                autoinit={"mean": 0.3, "var": 0.2, "grad_var": 1.0e-3},
                he_normal={"mean": 0.55, "var": 0.65, "grad_var": 2.0e-3},
            ),
            _layer(
                3,
                "dense",
                "Dense",
                [None, 64],
                weighted=True,
                scale=1.23456e-5,
                target=2.0,
                predicted={"mean": 0.0, "var": 2.0},
                default={"mean": None, "var": None, "grad_var": None},
                autoinit={"mean": 0.0, "var": 1.98, "grad_var": 9.0e-4},
                he_normal={"mean": 0.1, "var": 40.0, "grad_var": 3.0e-3},
            ),
            _layer(
                4,
                "dropout",
                "Dropout",
                [None, 64],
                predicted={"mean": 0.0, "var": 2.0},
                default={"mean": None, "var": None, "grad_var": None},
                autoinit={"mean": 0.0, "var": 0.0, "grad_var": 9.0e-4},
                he_normal={"mean": 0.1, "var": 40.0, "grad_var": 3.0e-3},
            ),
            _layer(
                5,
                "dense_1",
                "Dense",
                [None, 10],
                weighted=True,
                scale=0.5,
                target=2.0,
                predicted={"mean": 0.0, "var": 2.0},
                default={"mean": None, "var": None, "grad_var": None},
                autoinit={"mean": -0.01, "var": 2.1, "grad_var": 8.0e-4},
                he_normal={"mean": 0.2, "var": 800.0, "grad_var": 3.5e-3},
            ),
        ],
    }


def _by_name(fig, name):
    return [trace for trace in fig.data if trace.name == name]


def _series_trace(fig, series, metric="var"):
    (trace,) = [
        t for t in fig.data if isinstance(t.meta, dict) and t.meta == {"series": series, "metric": metric}
    ]
    return trace


# ----------------------------------------------------------------- series ---
def test_one_legend_entry_per_series_with_human_names_in_payload_order(traces):
    fig = signal_figure(traces)
    legend_series = [
        t.name for t in fig.data if t.showlegend is not False and t.name in SERIES_LABELS.values()
    ]
    assert legend_series == [SERIES_LABELS[s] for s in traces["series"]]


def test_predicted_is_dotted_measured_autoinit_and_default_solid_baselines_dashed(traces):
    fig = signal_figure(traces)
    assert _series_trace(fig, "predicted").line.dash == "dot"
    assert _series_trace(fig, "autoinit").line.dash == "solid"
    assert _series_trace(fig, "default").line.dash == "solid"
    assert _series_trace(fig, "he_normal").line.dash == "dash"


def test_a_series_keeps_its_colour_across_figures(traces):
    first = signal_figure(traces)
    only_two = signal_figure(traces, series=["he_normal", "autoinit"])
    for s in ("he_normal", "autoinit"):
        assert _series_trace(first, s).line.color == _series_trace(only_two, s).line.color
    colours = {_series_trace(first, s).line.color for s in traces["series"]}
    assert len(colours) == 4


def test_series_argument_draws_only_those_series(traces):
    fig = signal_figure(traces, series=["predicted", "autoinit"])
    names = {t.name for t in fig.data}
    assert SERIES_LABELS["predicted"] in names and SERIES_LABELS["autoinit"] in names
    assert SERIES_LABELS["default"] not in names and SERIES_LABELS["he_normal"] not in names


def test_series_argument_naming_an_absent_series_is_rejected_with_what_exists(traces):
    with pytest.raises(ValueError) as raised:
        signal_figure(traces, series=["glorot_uniform"])
    assert "glorot_uniform" in str(raised.value) and "he_normal" in str(raised.value)


def test_only_series_listed_in_the_payload_are_drawn(traces):
    traces["series"] = ["predicted", "autoinit"]
    names = {t.name for t in signal_figure(traces).data}
    assert SERIES_LABELS["he_normal"] not in names and SERIES_LABELS["default"] not in names


def test_x_is_layer_index_in_topological_order(traces):
    fig = signal_figure(traces)
    assert list(_series_trace(fig, "autoinit").x) == [0, 1, 2, 3, 4, 5]
    assert "layer index" in fig.layout.xaxis2.title.text


# ------------------------------------------------------------------- axes ---
def test_variance_axis_is_log_by_default_and_the_mean_panel_linear_below(traces):
    fig = signal_figure(traces)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis2.type == "linear"
    assert "mean" in fig.layout.yaxis2.title.text
    # the variance panel is the larger, upper one; the x axis is shared
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]
    top = fig.layout.yaxis.domain[1] - fig.layout.yaxis.domain[0]
    bottom = fig.layout.yaxis2.domain[1] - fig.layout.yaxis2.domain[0]
    assert top > 2 * bottom
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"


def test_log_y_false_gives_a_linear_variance_axis(traces):
    assert signal_figure(traces, log_y=False).layout.yaxis.type == "linear"


def test_without_mean_panel_there_is_one_panel(traces):
    fig = signal_figure(traces, show_mean_panel=False)
    assert "yaxis2" not in fig.to_plotly_json()["layout"]
    assert {t.yaxis for t in fig.data} == {"y"}


def test_mean_metric_puts_the_mean_on_a_linear_top_panel(traces):
    fig = signal_figure(traces, metric="mean")
    assert fig.layout.yaxis.type == "linear"
    assert list(_series_trace(fig, "he_normal", "mean").y) == [0.02, 0.55, 0.55, 0.1, 0.1, 0.2]


def test_unknown_metric_is_rejected_naming_the_choices(traces):
    with pytest.raises(ValueError, match="metric"):
        signal_figure(traces, metric="std")


# ---------------------------------------------------------- reference line ---
def test_target_variance_line_sits_at_signal_variance_across_all_layers(traces):
    (line,) = _by_name(signal_figure(traces), TARGET_LABEL)
    assert set(line.y) == {2.0}
    assert min(line.x) <= 0 and max(line.x) >= 5
    assert line.yaxis == "y"


# ------------------------------------------------------------------ hover ---
def test_hover_names_layer_class_shape_statistics_and_estimator(traces):
    trace = _series_trace(signal_figure(traces), "predicted")
    conv = trace.hovertext[0]
    for expected in ("conv2d", "Conv2D", "(None, 32, 32, 16)", "0.571", "builtin"):
        assert expected in conv
    assert "0.5712345" not in conv  # three significant digits
    assert "MysteryOp" in trace.hovertext[2] and "pass-through" in trace.hovertext[2]
    assert len(trace.hovertext) == len(traces["layers"])
    assert "%{hovertext}" in trace.hovertemplate


def test_hover_shows_the_scale_for_weighted_layers_only(traces):
    hovers = _series_trace(signal_figure(traces), "autoinit").hovertext
    assert "scale" in hovers[3] and "1.23e-05" in hovers[3]
    assert "scale" in hovers[0] and "0.0123" in hovers[0]
    assert "scale" not in hovers[1]


def test_hover_reports_overflow_for_null_values(traces):
    hovers = _series_trace(signal_figure(traces), "default").hovertext
    assert "var: overflow" in hovers[3]


# ------------------------------------------------------- layer highlights ---
def test_weighted_layers_get_bigger_red_outlined_markers_on_measured_traces(traces):
    fig = signal_figure(traces)
    weighted = [layer["has_weights"] for layer in traces["layers"]]
    for s in ("default", "autoinit", "he_normal"):
        marker = _series_trace(fig, s).marker
        assert "markers" in _series_trace(fig, s).mode
        assert marker.line.color == WEIGHTED_RED
        assert [w > 0 for w in marker.line.width] == weighted
        assert min(size for size, w in zip(marker.size, weighted) if w) > max(
            size for size, w in zip(marker.size, weighted) if not w
        )
    (key,) = _by_name(fig, WEIGHTED_LABEL)
    assert key.marker.line.color == WEIGHTED_RED


def test_pass_through_layers_are_flagged_with_an_x_and_their_own_legend_entry(traces):
    (flag,) = _by_name(signal_figure(traces), PASS_THROUGH_LABEL)
    assert list(flag.x) == [2]
    assert flag.marker.symbol == "x"
    assert flag.y[0] == pytest.approx(0.2)  # sits on the predicted line
    assert "my_block/odd_op" in flag.hovertext[0] and "no estimator" in flag.hovertext[0]


def test_no_pass_through_entry_when_every_layer_has_an_estimator(traces):
    traces["layers"][2]["estimator"] = "custom"
    assert _by_name(signal_figure(traces), PASS_THROUGH_LABEL) == []


# ------------------------------------------------------ gaps and overflow ---
def test_null_values_leave_gaps_and_are_marked_as_overflow(traces):
    fig = signal_figure(traces)
    default = _series_trace(fig, "default")
    assert list(default.y) == [0.21, 0.07, 0.07, None, None, None]
    assert default.connectgaps is False
    overflow = [t for t in _by_name(fig, OVERFLOW_LABEL) if t.yaxis == "y"]
    assert len(overflow) == 1 and list(overflow[0].x) == [3, 4, 5]
    assert min(overflow[0].y) > 800.0  # above every plotted value
    notes = [a.text for a in fig.layout.annotations if "overflow" in (a.text or "")]
    assert notes == ["overflow: default (measured)"]
    assert [a.x for a in fig.layout.annotations if "overflow" in (a.text or "")] == [3]


def test_zero_variance_is_a_gap_on_a_log_axis_but_drawn_on_a_linear_one(traces):
    assert _series_trace(signal_figure(traces), "autoinit").y[4] is None
    assert _series_trace(signal_figure(traces, log_y=False), "autoinit").y[4] == 0.0
    # a zero is not an overflow: only the default series' nulls are marked
    fig = signal_figure(traces)
    (overflow,) = [t for t in _by_name(fig, OVERFLOW_LABEL) if t.yaxis == "y"]
    assert set(overflow.marker.color) == {_series_trace(fig, "default").line.color}


def test_non_finite_python_floats_are_treated_as_overflow(traces):
    traces["layers"][5]["he_normal"]["var"] = math.inf
    traces["layers"][4]["he_normal"]["var"] = math.nan
    fig = signal_figure(traces)
    assert list(_series_trace(fig, "he_normal").y[3:]) == [40.0, None, None]
    assert json.loads(fig.to_json())  # still valid JSON (no Infinity/NaN)


def test_a_model_that_overflows_everywhere_still_draws(traces):
    for layer in traces["layers"]:
        for s in traces["series"]:
            layer[s] = {"mean": None, "var": None}
    fig = signal_figure(traces, show_gradients=True)
    assert all(y is None for y in _series_trace(fig, "default").y)
    assert json.loads(fig.to_json())["data"]


def test_deep_model_with_hundreds_of_layers_draws_lines_and_keeps_weighted_markers():
    layers = []
    for i in range(812):
        weighted = i % 3 == 0
        var = 1.5**i if 1.5**i < 3e38 else None
        layers.append(
            _layer(
                i,
                f"layer_{i}",
                "Conv2D" if weighted else "Add",
                [None, 8, 8, 64],
                weighted=weighted,
                scale=0.01 if weighted else None,
                predicted={"mean": 0.0, "var": 1.0},
                default={"mean": 0.0, "var": var},
            )
        )
    deep = {"signal_variance": 1.0, "series": ["predicted", "default"], "layers": layers}
    fig = signal_figure(deep)
    default = _series_trace(fig, "default")
    assert sum(size > 0 for size in default.marker.size) == len([l for l in layers if l["has_weights"]])
    assert default.y[-1] is None and default.y[10] == pytest.approx(1.5**10)


# -------------------------------------------------------------- gradients ---
def test_gradient_panel_appears_only_when_asked_and_measured(traces):
    fig = signal_figure(traces, show_gradients=True)
    grads = [t for t in fig.data if isinstance(t.meta, dict) and t.meta.get("metric") == "grad_var"]
    assert {t.meta["series"] for t in grads} == {"default", "autoinit", "he_normal"}  # predicted has none
    grad_axis = grads[0].yaxis
    assert fig.layout[grad_axis.replace("y", "yaxis")].type == "log"
    assert all(t.showlegend is False for t in grads)  # toggled with their series
    assert _series_trace(fig, "he_normal", "grad_var").y[0] == pytest.approx(4.0e-3)
    assert not any(
        isinstance(t.meta, dict) and t.meta.get("metric") == "grad_var" for t in signal_figure(traces).data
    )


def test_gradients_requested_without_grad_var_adds_no_panel(traces):
    for layer in traces["layers"]:
        for s in traces["series"]:
            layer[s].pop("grad_var", None)
    fig = signal_figure(traces, show_gradients=True)
    assert {t.yaxis for t in fig.data} == {"y", "y2"}


# ----------------------------------------------------------------- layout ---
def test_legend_is_horizontal_above_the_plot_and_title_names_the_model(traces):
    fig = signal_figure(traces)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y > 1
    assert "tiny_cnn" in fig.layout.title.text
    assert signal_figure(traces, title="Fig. 2").layout.title.text == "Fig. 2"


def test_dark_selects_the_plotly_dark_template(traces):
    light = json.loads(figure_json(traces))["layout"]["template"]["layout"]["paper_bgcolor"]
    dark = json.loads(figure_json(traces, dark=True))["layout"]["template"]["layout"]["paper_bgcolor"]
    assert light != dark == "rgb(17,17,17)"
    assert "paper_bgcolor" not in json.loads(figure_json(traces))["layout"]  # only the template sets it


def test_figure_does_not_modify_the_payload(traces):
    before = copy.deepcopy(traces)
    signal_figure(traces, show_gradients=True)
    traces_to_csv(traces)
    assert traces == before


def test_malformed_payload_is_rejected_saying_what_was_expected():
    with pytest.raises(ValueError, match="layers"):
        signal_figure({"series": ["predicted"]})
    with pytest.raises(TypeError, match="traces"):
        signal_figure([1, 2, 3])


# ------------------------------------------------------------------- JSON ---
def test_figure_json_round_trips_with_data_layout_and_png_export_config(traces):
    spec = json.loads(figure_json(traces, show_gradients=True))
    assert spec["data"] and spec["layout"]
    assert {d["name"] for d in spec["data"]} >= set(SERIES_LABELS.values()) | {
        TARGET_LABEL,
        PASS_THROUGH_LABEL,
    }
    config = spec["layout"]["meta"]["config"]
    assert config["toImageButtonOptions"]["format"] == "png"
    assert "tiny_cnn" in config["toImageButtonOptions"]["filename"]
    default = next(d for d in spec["data"] if d["name"] == SERIES_LABELS["default"])
    assert default["y"][3] is None


# ------------------------------------------------------------------- HTML ---
def test_write_html_embeds_plotly_js_for_offline_hosts(traces, tmp_path):
    path = tmp_path / "signal.html"
    write_html(signal_figure(traces), path)
    html = path.read_text(encoding="utf-8")
    # (plotly.js itself mentions cdn.plot.ly as the default map-data URL; what
    # matters is that no <script> loads from the network)
    assert not CDN_SCRIPT.search(html)
    assert len(html) > 1_000_000  # plotly.min.js is several MB
    assert "conv2d" in html and '"displaylogo": false' in html


def test_write_html_online_links_plotly_js_instead(traces, tmp_path):
    path = tmp_path / "signal.html"
    write_html(signal_figure(traces), path, offline=False)
    html = path.read_text(encoding="utf-8")
    assert CDN_SCRIPT.search(html) and len(html) < 500_000


# ------------------------------------------------------------------ image ---
@pytest.mark.skipif(importlib.util.find_spec("kaleido") is not None, reason="kaleido is installed here")
def test_write_image_without_kaleido_says_to_install_it(traces, tmp_path):
    with pytest.raises(RuntimeError, match="pip install kaleido"):
        write_image(signal_figure(traces), tmp_path / "signal.png")
    assert not (tmp_path / "signal.png").exists()


def test_write_image_rejects_unknown_formats(traces, tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        write_image(signal_figure(traces), tmp_path / "signal.gif")


# -------------------------------------------------------------------- CSV ---
def test_csv_has_one_row_per_layer_and_stat_columns_per_series(traces):
    text = traces_to_csv(traces)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "index",
        "name",
        "class_name",
        "has_weights",
        "output_shape",
        "estimator",
        "scale",
        "target",
        "predicted_mean",
        "predicted_var",
        "default_mean",
        "default_var",
        "default_grad_var",
        "autoinit_mean",
        "autoinit_var",
        "autoinit_grad_var",
        "he_normal_mean",
        "he_normal_var",
        "he_normal_grad_var",
    ]
    assert len(rows) == 1 + len(traces["layers"])


def test_csv_values_keep_full_precision_and_nulls_are_empty(traces):
    rows = list(csv.DictReader(io.StringIO(traces_to_csv(traces))))
    conv, relu, odd, dense = rows[0], rows[1], rows[2], rows[3]
    assert conv["name"] == "conv2d" and conv["class_name"] == "Conv2D" and conv["has_weights"] == "true"
    assert json.loads(conv["output_shape"]) == [None, 32, 32, 16]
    assert float(conv["scale"]) == 0.0123 and float(conv["target"]) == 2.0
    assert float(conv["predicted_var"]) == 0.5712345
    assert float(conv["he_normal_grad_var"]) == 4.0e-3
    assert relu["scale"] == "" and relu["has_weights"] == "false"
    assert odd["estimator"] == "pass-through" and odd["name"] == "my_block/odd_op"
    assert dense["default_var"] == "" and dense["default_mean"] == "" and float(dense["scale"]) == 1.23456e-5
    assert float(rows[4]["autoinit_var"]) == 0.0


# ------------------------------------------------------------ dependencies ---
def test_importing_the_plot_module_does_not_load_tensorflow_or_keras():
    code = "import sys, autoinit.plot; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_a_fixed_colour_for_exactly_the_series_compare_can_produce():
    """One fact, one place: the baselines are named by ``autoinit.probe``; the
    figure has a colour for each of them and for nothing else."""
    from autoinit.plot.style import SERIES_COLOURS
    from autoinit.probe import BASELINES

    assert set(SERIES_COLOURS) == {"predicted", "autoinit", "default", *BASELINES}
    assert len(set(SERIES_COLOURS.values())) == len(SERIES_COLOURS)


# ------------------------------------------------------ pre-activation view ---
@pytest.fixture
def fused_traces():
    """A ReLU MLP as compare() reports it: Dense layers with a fused ReLU carry
    their pre-activation (W x + b), which AutoInit scales to the target."""

    def fused(index, name, before_var, after_var):
        return _layer(
            index,
            name,
            "Dense",
            [None, 64],
            weighted=True,
            scale=0.03,
            target=1.0,
            predicted={"mean": 0.4, "var": 0.34},
            autoinit={"mean": 0.39, "var": after_var},
            default={"mean": 0.2, "var": after_var / 4},
            pre_activation={
                "target": 1.0,
                "predicted": {"mean": 0.0, "var": 1.0},
                "autoinit": {"mean": 0.01, "var": before_var},
                "default": {"mean": 0.0, "var": before_var / 4},
            },
        )

    return {
        "model": {"name": "relu_mlp", "num_layers": 4, "num_params": 1000},
        "signal_variance": 1.0,
        "series": ["predicted", "default", "autoinit"],
        "layers": [
            _layer(
                0,
                "features",
                "InputLayer",
                [None, 32],
                predicted={"mean": 0.0, "var": 1.0},
                autoinit={"mean": 0.0, "var": 1.0},
                default={"mean": 0.0, "var": 1.0},
            ),
            fused(1, "h1", 1.02, 0.35),
            fused(2, "h2", 0.97, 0.33),
            _layer(
                3,
                "out",
                "Dense",
                [None, 4],
                weighted=True,
                scale=0.03,
                target=1.0,
                predicted={"mean": 0.0, "var": 1.0},
                autoinit={"mean": 0.0, "var": 0.98},
                default={"mean": 0.0, "var": 0.2},
            ),
        ],
    }


def _view_trace(fig, series, metric="var"):
    (trace,) = [
        t
        for t in fig.data
        if isinstance(t.meta, dict)
        and t.meta == {"series": series, "metric": metric, "view": "pre_activation"}
    ]
    return trace


def _view_menu(fig):
    (menu,) = [m for m in fig.layout.updatemenus if m.name == "view"]
    return {button.name: button for button in menu.buttons}


def test_fused_layers_have_a_pre_activation_view_read_against_the_target(fused_traces):
    fig = signal_figure(fused_traces)
    before = _view_trace(fig, "autoinit")
    # Fused layers show W x + b (near the target line at 1), marked with diamonds;
    # the others show their output, as in the output view.
    assert list(before.y) == [1.0, 1.02, 0.97, 0.98]
    assert list(before.marker.symbol) == ["circle", "diamond", "diamond", "circle"]
    assert list(_series_trace(fig, "autoinit").y) == [1.0, 0.35, 0.33, 0.98]
    assert list(_view_trace(fig, "predicted").y) == [1.0, 1.0, 1.0, 1.0]
    assert list(_view_trace(fig, "autoinit", "mean").y) == [0.0, 0.01, 0.01, 0.0]
    assert (
        "target variance: 1" in before.hovertext[1] and "before its fused activation" in before.hovertext[1]
    )
    # The output view's hover names the value the target refers to.
    assert "before the fused activation: var 1.02" in _series_trace(fig, "autoinit").hovertext[1]


def test_the_view_menu_switches_between_outputs_and_pre_activations(fused_traces):
    fig = signal_figure(fused_traces)
    buttons = _view_menu(fig)
    assert list(buttons) == ["output", "pre_activation"]
    index = {id(t): i for i, t in enumerate(fig.data)}
    output, before = _series_trace(fig, "autoinit"), _view_trace(fig, "autoinit")
    target = _by_name(fig, TARGET_LABEL)[0]
    # At first the output view: pre-activation traces hidden, outputs and the target shown.
    assert before.visible is False and output.visible is not False
    shown = buttons["pre_activation"].args[0]["visible"]
    assert shown[index[id(before)]] and not shown[index[id(output)]] and shown[index[id(target)]]
    shown = buttons["output"].args[0]["visible"]
    assert not shown[index[id(before)]] and shown[index[id(output)]] and shown[index[id(target)]]
    assert buttons["pre_activation"].args[1]["yaxis.title.text"] == "variance before fused activations (log)"
    assert buttons["output"].args[1]["yaxis.title.text"] == "variance (log)"


def test_no_view_menu_without_fused_activations(traces):
    fig = signal_figure(traces)
    assert not fig.layout.updatemenus
    assert not any(isinstance(t.meta, dict) and "view" in t.meta for t in fig.data)


def test_csv_carries_the_pre_activation_of_fused_layers_next_to_its_target(fused_traces, traces):
    rows = list(csv.DictReader(io.StringIO(traces_to_csv(fused_traces))))
    h1, out = rows[1], rows[3]
    assert float(h1["pre_activation_target"]) == 1.0 and float(h1["autoinit_pre_activation_var"]) == 1.02
    assert float(h1["predicted_pre_activation_var"]) == 1.0 and float(h1["autoinit_var"]) == 0.35
    assert out["pre_activation_target"] == "" and out["autoinit_pre_activation_var"] == ""
    # Traces without fused activations keep their columns.
    assert "pre_activation_target" not in traces_to_csv(traces).splitlines()[0]


# --------------------------------------------------------------- training ---
def _training_model(stddev=None, depth=3):
    import keras

    init = keras.initializers.RandomNormal(stddev=stddev) if stddev else "glorot_uniform"
    layers = [keras.Input((16,))] + [keras.layers.Dense(32, kernel_initializer=init) for _ in range(depth)]
    return keras.Sequential(layers + [keras.layers.Dense(4, kernel_initializer=init)], name="deep_mlp")


@pytest.fixture(scope="module")
def training_run():
    """A real run whose default diverges at its first step: 12 Dense layers
    with weights N(0, 8^2) at width 32 put the first loss past float32."""
    from autoinit.training import train_probe

    run = train_probe(
        _training_model(stddev=8.0, depth=12), steps=8, batch_size=16, baselines=("default", "he_normal")
    )
    assert run["series"]["default"]["diverged_at"] == 0  # the case these tests are about
    assert run["series"]["autoinit"]["diverged_at"] is None
    return run


def _curves(fig, panel):
    return [t for t in fig.data if t.meta and t.meta.get("panel") == panel and t.mode == "lines"]


def _divergence_marks(fig, panel):
    return {
        t.meta["series"]: t
        for t in fig.data
        if t.meta and t.meta.get("panel") == panel and "diverged_at" in t.meta
    }


def test_training_figure_has_a_loss_panel_over_a_gradient_norm_panel_both_log(training_run):
    fig = training_figure(training_run)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]  # loss on top
    assert fig.layout.yaxis.title.text == "loss (mean squared error) (log)"
    assert fig.layout.yaxis2.title.text == "gradient norm (log)"
    assert fig.layout.xaxis2.title.text == "training step"
    assert all(t.yaxis == "y" for t in _curves(fig, "loss"))
    assert all(t.yaxis == "y2" for t in _curves(fig, "grad_norm"))


def test_training_figure_draws_one_line_per_initialization_with_each_steps_value(training_run):
    fig = training_figure(training_run)
    for panel in ("loss", "grad_norm"):
        lines = _curves(fig, panel)
        assert [t.meta["series"] for t in lines] == list(training_run["series"])
        for line in lines:
            values = training_run["series"][line.meta["series"]][panel]
            assert list(line.x) == list(range(training_run["steps"]))
            assert list(line.y) == values  # nulls (not finite) stay gaps
            assert line.connectgaps is False
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == ["default (model's own)", "he_normal", "AutoInit"]


def test_training_lines_keep_the_signal_figures_colours(training_run, traces):
    signal = {
        t.meta["series"]: t.line.color
        for t in signal_figure(traces).data
        if isinstance(t.meta, dict) and "series" in t.meta
    }
    for line in _curves(training_figure(training_run), "loss"):
        assert line.line.color == signal[line.meta["series"]]


def test_divergence_is_marked_on_both_panels_with_a_line_and_the_step(training_run):
    fig = training_figure(training_run)
    diverged = {
        name: curves["diverged_at"]
        for name, curves in training_run["series"].items()
        if curves["diverged_at"] is not None
    }
    assert "autoinit" not in diverged and diverged["default"] == 0
    for panel in ("loss", "grad_norm"):
        marks = _divergence_marks(fig, panel)
        assert {name: list(mark.x) for name, mark in marks.items()} == {n: [s] for n, s in diverged.items()}
        assert all(mark.marker.symbol == "x" for mark in marks.values())
    lines = [(shape.x0, shape.line.color, shape.line.dash) for shape in fig.layout.shapes]
    assert sorted(lines) == sorted(
        (step, series_colour(name), "dot") for name, step in diverged.items() for _ in range(2)
    )
    texts = {a.text for a in fig.layout.annotations}
    assert "default (model's own): diverged at step 0" in texts
    assert not any("AutoInit: diverged" in text for text in texts)


def test_a_divergence_mark_sits_on_the_last_finite_value_or_above_every_curve(training_run):
    fig = training_figure(training_run)
    for panel in ("loss", "grad_norm"):
        every = [v for c in training_run["series"].values() for v in c[panel] if v is not None and v > 0]
        for name, mark in _divergence_marks(fig, panel).items():
            values = training_run["series"][name][panel][: mark.x[0] + 1]
            finite_before = [v for v in values if v is not None]
            assert mark.y[0] == (finite_before[-1] if finite_before else 4.0 * max(every))


def test_the_synthetic_task_is_said_in_the_figure_and_real_data_is_not_called_synthetic(training_run):
    import numpy as np

    from autoinit.training import train_probe

    (note,) = [a for a in training_figure(training_run).layout.annotations if a.name == TASK_NOTE_NAME]
    assert SYNTHETIC_TASK_NOTE in note.text
    assert SYNTHETIC_TASK_NOTE == "synthetic teacher task: a random linear map of Gaussian inputs"
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((64, 16)).astype("float32"), rng.standard_normal((64, 4)).astype("float32"))
    real = train_probe(_training_model(), steps=2, batch_size=16, baselines=(), task="data", data=data)
    (note,) = [a for a in training_figure(real).layout.annotations if a.name == TASK_NOTE_NAME]
    assert "synthetic" not in note.text and "data" in note.text


def test_training_figure_title_names_the_optimizer_and_can_be_replaced(training_run):
    fig = training_figure(training_run)
    assert (
        fig.layout.title.text == "Does it train? 8 steps of SGD, learning rate 0.01, momentum 0.9, batch 16"
    )
    assert training_figure(training_run, title="mine").layout.title.text == "mine"


def test_training_figure_round_trips_as_json_and_leaves_the_run_untouched(training_run):
    before = copy.deepcopy(training_run)
    spec = json.loads(training_figure(training_run).to_json())
    assert training_run == before
    assert spec["layout"]["meta"]["config"]["toImageButtonOptions"]["format"] == "png"
    diverged = [c for c in training_run["series"].values() if c["diverged_at"] is not None]
    assert len(spec["data"]) == 2 * len(training_run["series"]) + 2 * len(diverged)  # curves, marks


def test_a_malformed_training_object_is_rejected_saying_what_was_expected():
    with pytest.raises(TypeError, match="train_probe"):
        training_figure([1, 2])
    with pytest.raises(ValueError, match="'series'"):
        training_figure({"steps": 3})
    with pytest.raises(ValueError, match=r"\['grad_norm'\]"):
        training_figure({"series": {"autoinit": {"loss": [1.0]}}})


def test_write_html_stacks_several_figures_on_one_page_with_plotly_js_once(traces, training_run, tmp_path):
    path = tmp_path / "both.html"
    write_html([signal_figure(traces), training_figure(training_run)], path)
    html = path.read_text()
    assert html.count("Plotly.newPlot(") == 2 and not CDN_SCRIPT.search(html)
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # the library embedded once
    assert html.index("Signal propagation through tiny_cnn") < html.index("Does it train?")


# ------------------------------------------------------- training as CSV ---
def test_training_csv_has_a_row_per_step_and_loss_and_grad_norm_columns_per_initialization(training_run):
    from autoinit.plot import training_to_csv

    rows = list(csv.reader(io.StringIO(training_to_csv(training_run))))
    names = list(training_run["series"])
    assert names == ["default", "he_normal", "autoinit"]
    assert rows[0] == ["step"] + [f"{n}_{key}" for n in names for key in ("loss", "grad_norm")]
    body = rows[1:-1]
    assert [row[0] for row in body] == [str(step) for step in range(training_run["steps"])]
    for column, (name, key) in enumerate(((n, k) for n in names for k in ("loss", "grad_norm")), start=1):
        values = training_run["series"][name][key]
        # Every value at full precision; null (not finite, or after divergence) is an empty cell.
        assert [row[column] for row in body] == ["" if v is None else repr(float(v)) for v in values]
    # The default diverged at step 0: its cells are empty from there on; AutoInit's are all filled.
    assert all(row[1] == row[2] == "" for row in body)
    assert all(row[5] and row[6] for row in body)


def test_training_csv_last_row_says_the_step_each_copy_diverged_at(training_run):
    from autoinit.plot import training_to_csv

    last = next(csv.reader(io.StringIO(training_to_csv(training_run).splitlines()[-1])))
    expected = ["diverged_at"]
    for curves in training_run["series"].values():
        step = curves["diverged_at"]
        expected += ["" if step is None else str(step)] * 2
    assert last == expected
    assert last[1:3] == ["0", "0"] and last[5:] == ["", ""]  # default at step 0; AutoInit never
    edited = copy.deepcopy(training_run)
    edited["series"]["he_normal"]["diverged_at"] = 5
    edited["series"]["default"]["diverged_at"] = None
    assert training_to_csv(edited).splitlines()[-1] == "diverged_at,,,5,5,,"


def test_training_csv_refuses_what_is_not_a_training_object(traces):
    from autoinit.plot import training_to_csv

    with pytest.raises(TypeError, match="train_probe"):
        training_to_csv([1, 2])
    with pytest.raises(ValueError, match="'series'"):
        training_to_csv(traces)  # the traces themselves, not traces["training"]
