// The training charts (issue 16): does the model train? The loss and the gradient
// norm per step of each initialization's copy, from the job's traces.training
// (autoinit.training.train_probe). They follow autoinit.plot.training's spec:
// log y, one line per initialization in the propagation chart's colours, a copy
// that diverged marked by an x and a dotted line "diverged at step N", and the
// task said plainly (synthetic unless the job was given data).

import { $ } from "./dom.js";
import { initializationLabel } from "./format.js";
import { state } from "./state.js";

export const SYNTHETIC_TASK_NOTE = "synthetic teacher task: a random linear map of Gaussian inputs";
const DATA_TASK_NOTE = "task: the data given (x, y)";
const ABOVE_TOP = 4;
// [key in each series, chart element, axis title]
const PANELS = [
  ["loss", "training-loss", "loss"],
  ["grad_norm", "training-grad", "gradient norm"],
];
// plotly.js's default colorway, for a series the propagation chart does not draw.
const FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/** Three significant digits, as autoinit.plot.text.fmt: 0.01, 0.9. */
const short = (v) => String(Number(Number(v).toPrecision(3)));

/** A value a log axis can show, or null (a gap). */
const plottable = (v) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null);

/** The propagation chart's look (the server's figure, autoinit.plot.style): each
 * series' colour and dash, and its light or dark template. */
function chartLook() {
  const chart = $("chart");
  const lines = {};
  for (const trace of chart.data || []) {
    const series = trace.meta && trace.meta.series;
    if (series && !(series in lines) && trace.line) lines[series] = { color: trace.line.color, dash: trace.line.dash };
  }
  const template = chart.layout && chart.layout.template;
  return { lines, template: template ? structuredClone(template) : undefined };
}

function divergedAt(curves) {
  return Number.isInteger(curves.diverged_at) ? curves.diverged_at : null;
}

/** The value at the step of divergence, else the last finite one before it, else `top`. */
function markHeight(values, step, top) {
  for (let i = Math.min(step, values.length - 1); i >= 0; i -= 1) {
    if (plottable(values[i]) !== null) return values[i];
  }
  return top;
}

function describe(training) {
  const optimizer = training.optimizer || {};
  const parts = [`${training.steps} steps of ${optimizer.name || "SGD"}`];
  if (optimizer.learning_rate != null) parts.push(`learning rate ${short(optimizer.learning_rate)}`);
  if (optimizer.momentum != null) parts.push(`momentum ${short(optimizer.momentum)}`);
  if (training.batch_size != null) parts.push(`batch ${training.batch_size}`);
  return parts.join(", ");
}

function lossTitle(training) {
  const names = [...new Set((training.loss || []).map((l) => String(l).replaceAll("_", " ")))].sort();
  return names.length ? `loss (${names.join(", ")})` : "loss";
}

function panelFigure(training, key, title, { lines, template }, first) {
  const entries = Object.entries(training.series);
  const shown = entries.flatMap(([, c]) => c[key].map(plottable).filter((v) => v !== null));
  // A mark with no finite value sits above every curve (autoinit.plot.training.ABOVE_TOP).
  const top = ABOVE_TOP * (shown.length ? Math.max(...shown) : 1);
  const data = [], shapes = [], annotations = [];
  entries.forEach(([name, curves], i) => {
    const line = lines[name] || { color: FALLBACK[i % FALLBACK.length], dash: "solid" };
    const label = initializationLabel(name);
    data.push({
      type: "scatter", mode: "lines", name: label, legendgroup: name, showlegend: first,
      x: curves[key].map((_, step) => step), y: curves[key].map(plottable), connectgaps: false,
      line: { color: line.color, dash: line.dash, width: 2 }, meta: { series: name, panel: key },
      hovertemplate: `${label}<br>step %{x}<br>${title} %{y:.3g}<extra></extra>`,
    });
    const step = divergedAt(curves);
    if (step === null) return;
    data.push({
      type: "scatter", mode: "markers", name: `${label} diverged`, legendgroup: name, showlegend: false,
      x: [step], y: [markHeight(curves[key], step, top)],
      marker: { symbol: "x", size: 12, color: line.color, line: { width: 1 } },
      meta: { series: name, panel: key, diverged_at: step },
      hovertemplate: `${label}: diverged at step ${step} (loss or gradient not finite)<extra></extra>`,
    });
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: step, x1: step, y0: 0, y1: 1,
                  line: { color: line.color, dash: "dot", width: 1.5 } });
    if (first) {
      annotations.push({ x: step, y: 1 - 0.09 * annotations.length, xref: "x", yref: "paper", xshift: 4,
                         xanchor: "left", yanchor: "top", showarrow: false, font: { color: line.color },
                         text: `${label}: diverged at step ${step}` });
    }
  });
  const layout = {
    template,
    height: first ? 340 : 260,
    margin: { l: 70, r: 30, t: first ? 40 : 10, b: 50 },
    paper_bgcolor: "rgba(0,0,0,0)",
    showlegend: first, legend: { orientation: "h", yanchor: "bottom", y: 1.02, xanchor: "left", x: 0 },
    hovermode: "closest", shapes, annotations,
    xaxis: { title: { text: "training step" }, range: [-0.5, training.steps - 0.5] },
    yaxis: { type: "log", exponentformat: "power",
             title: { text: `${key === "loss" ? lossTitle(training) : title} (log)` } },
  };
  return { data, layout };
}

/** Draw the training charts of the job shown now, or hide them if it did not train. */
export async function renderTraining() {
  const training = state.traces && state.traces.training;
  const card = $("training-card");
  if (!training || !training.series) {
    card.hidden = true;
    delete card.dataset.job;
    if (window.Plotly) for (const [, id] of PANELS) window.Plotly.purge($(id));
    return;
  }
  card.hidden = false;
  $("training-summary").textContent = describe(training);
  const synthetic = training.synthetic ?? (training.task ?? "teacher") === "teacher";
  $("training-note").textContent = synthetic ? SYNTHETIC_TASK_NOTE : DATA_TASK_NOTE;
  const look = chartLook();
  const config = { displaylogo: false, responsive: true,
                   toImageButtonOptions: { format: "png", scale: 2, filename: "autoinit_training" } };
  const jobId = state.jobId;
  for (const [i, [key, id, title]] of PANELS.entries()) {
    const { data, layout } = panelFigure(training, key, title, look, i === 0);
    await window.Plotly.react($(id), data, layout, config);
  }
  card.dataset.job = jobId;  // which job the charts show (read by tests)
}
