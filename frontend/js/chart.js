// The chart: the server's own figure (GET /jobs/{id}/figure, built by
// autoinit.plot from the traces), drawn with plotly.js from /static/plotly.min.js.

import { fetchJson } from "./api.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

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
  // The job line above already names the model; the legend takes the title's room.
  figure.layout.title = { text: "" };
  figure.layout.margin = { ...(figure.layout.margin || {}), t: 70 };
  figure.layout.paper_bgcolor = "rgba(0,0,0,0)";
  await window.Plotly.react($("chart"), figure.data, figure.layout, config);
}
