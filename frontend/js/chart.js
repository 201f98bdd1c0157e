// The chart: the server's own figure (GET /jobs/{id}/figure, built by
// autoinit.plot from the traces), drawn with plotly.js from /static/plotly.min.js.

import { fetchJson } from "./api.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

function hasGradients(traces) {
  return (traces?.layers || []).some(
    (l) => traces.series.some((s) => l[s] && l[s].grad_var !== undefined));
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
  // The job line above already names the model; the legend takes the title's room.
  figure.layout.title = { text: "" };
  figure.layout.margin = { ...(figure.layout.margin || {}), t: 70 };
  figure.layout.paper_bgcolor = "rgba(0,0,0,0)";
  await window.Plotly.react($("chart"), figure.data, figure.layout, config);
}
