// The chart: the server's own figure (GET /jobs/{id}/figure, built by
// autoinit.plot from the traces), drawn with plotly.js from /static/plotly.min.js.

import { fetchJson } from "./api.js";
import { ALL, bandLabels, blockAxis, blockNames, viewLayers, viewTitle, xOf } from "./blocks.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

// autoinit.plot.style.TARGET_LABEL: the line at the target spans the layers drawn.
const TARGET_LABEL = "target variance";
// Every other block a shade darker, so neighbouring blocks stay apart.
const BAND_FILLS = ["rgba(128, 128, 128, 0.16)", "rgba(128, 128, 128, 0.06)"];

function hasGradients(traces) {
  return (traces?.layers || []).some(
    (l) => traces.series.some((s) => l[s] && l[s].grad_var !== undefined));
}

/** Set `layout["yaxis.title.text"]`-style dotted keys, as Plotly.relayout does. */
function setPath(target, path, value) {
  const keys = path.split(".");
  const last = keys.pop();
  let node = target;
  for (const key of keys) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[last] = value;
}

// A figure of a model with fused activations carries two views (autoinit.plot.views)
// and a "view" menu to switch them; the toolbar's checkbox drives that menu here.
function applyView(figure) {
  const menus = figure.layout.updatemenus || [];
  const menu = menus.find((m) => m.name === "view");
  $("view-toggle").hidden = !menu;
  if (!menu) return;
  figure.layout.updatemenus = menus.filter((m) => m !== menu);
  figure.layout.margin = { ...(figure.layout.margin || {}), b: 60 };  // the menu's room
  const view = $("pre-activation-toggle").checked ? "pre_activation" : "output";
  const [restyle, relayout] = menu.buttons.find((b) => b.name === view).args;
  figure.data.forEach((trace, i) => { trace.visible = restyle.visible[i]; });
  for (const [path, value] of Object.entries(relayout)) setPath(figure.layout, path, value);
}

/** Keep the points where `mask` is true, in every per-point array of a trace. */
function keepPoints(trace, mask) {
  const pick = (values) => (Array.isArray(values) && values.length === mask.length
    ? values.filter((_, i) => mask[i]) : values);
  for (const key of ["x", "y", "hovertext", "text", "customdata"]) {
    if (key in trace) trace[key] = pick(trace[key]);
  }
  for (const part of [trace.marker, trace.marker && trace.marker.line]) {
    if (!part) continue;
    for (const key of ["size", "symbol", "color", "opacity", "width"]) {
      if (key in part) part[key] = pick(part[key]);
    }
  }
}

// A transformer's residual stream, or one block's inside (js/blocks.js): the
// server's figure of every record, narrowed to the records of the view, spaced
// evenly, its x axis labelled by name within each block and each block's span
// shaded, as autoinit.plot.signal_figure(view=...) draws it.
function applyBlockView(figure, layers, view) {
  if (view === ALL) return;
  const indexed = layers.map((layer, position) => ({ ...layer, index: xOf(layer, position) }));
  // Integer inputs (token ids, a padding mask) are not in the figure: autoinit.plot.payload.is_signal.
  const shown = viewLayers(indexed, view).filter((layer) => layer.signal !== false);
  const every = new Set(indexed.map((layer) => layer.index));
  const position = new Map(shown.map((layer, i) => [layer.index, i]));
  const { tickvals, ticktext, bands } = blockAxis(shown, blockNames(indexed));
  for (const trace of figure.data) {
    if (!Array.isArray(trace.x) || trace.x.length === 0) continue;
    if (trace.name === TARGET_LABEL) {
      trace.x = [-0.5, shown.length - 0.5];
    } else if (trace.x.every((x) => every.has(x))) {
      keepPoints(trace, trace.x.map((x) => position.has(x)));
      trace.x = trace.x.map((x) => position.get(x));
    }
  }
  const layout = figure.layout;
  layout.annotations = (layout.annotations || [])
    .filter((note) => note.xref !== "x" || typeof note.x !== "number" || position.has(note.x))
    .map((note) => (note.xref === "x" && typeof note.x === "number" ? { ...note, x: position.get(note.x) } : note));
  for (const key of Object.keys(layout).filter((k) => /^xaxis\d*$/.test(k))) {
    Object.assign(layout[key], { tickmode: "array", tickvals, ticktext });
    const title = layout[key].title;
    if (title && title.text) title.text = viewTitle(view, bands.map((band) => band.block));
  }
  const labels = bandLabels(bands.map((band) => band.block));
  layout.shapes = [...(layout.shapes || []), ...bands.map(({ block, x0, x1 }, i) => ({
    type: "rect", xref: "x", yref: "paper", x0: x0 - 0.5, x1: x1 + 0.5, y0: 0, y1: 1,
    fillcolor: BAND_FILLS[i % 2], line: { width: 0 }, layer: "below", name: block,
  }))];
  layout.annotations.push(...bands.map(({ block, x0, x1 }, i) => ({
    x: (x0 + x1) / 2, xref: "x", y: 1, yref: "paper", yanchor: "top", text: labels[i], hovertext: block,
    showarrow: false, font: { size: 10 }, name: "block",
  })));
}

/** Fetch the figure for the job shown now, with the toolbar's settings, and draw it. */
export async function renderChart() {
  const jobId = state.jobId;
  const log = $("log-toggle").checked;
  const dark = state.darkQuery.matches;
  const gradients = hasGradients(state.traces);
  const figure = await fetchJson(
    `jobs/${encodeURIComponent(jobId)}/figure?log=${log}&dark=${dark}&gradients=${gradients}`);
  if (state.jobId !== jobId) return;
  if (!window.Plotly) throw new Error("plotly.js did not load (static/plotly.min.js)");
  const config = {
    ...((figure.layout && figure.layout.meta && figure.layout.meta.config) || {}),
    modeBarButtonsToAdd: [],
  };
  // SVG export next to the PNG camera button.
  config.modeBarButtonsToAdd.push({
    name: "Download plot as SVG",
    icon: window.Plotly.Icons.camera,
    click: (gd) => window.Plotly.downloadImage(gd, {
      format: "svg", filename: (config.toImageButtonOptions || {}).filename || "autoinit" }),
  });
  applyView(figure);
  applyBlockView(figure, state.traces.layers, state.view);
  // The job line above already names the model; the legend takes the title's room.
  figure.layout.title = { text: "" };
  figure.layout.margin = { ...(figure.layout.margin || {}), t: 70 };
  figure.layout.paper_bgcolor = "rgba(0,0,0,0)";
  await window.Plotly.react($("chart"), figure.data, figure.layout, config);
}
