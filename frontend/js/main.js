// The signal-propagation page: upload (or pick) a model, follow the job, draw
// the server's figure, the training charts when the job trained, and a per-layer table. ES modules, no build step;
// plotly.js comes from the server (/static/plotly.min.js, shipped inside the
// plotly package). This module wires the page's controls to the others.

import { storeApiKey, whenUnauthorized } from "./api.js";
import { renderChart } from "./chart.js";
import { $ } from "./dom.js";
import { installDropTarget } from "./dropzone.js";
import { loadExamples } from "./examples.js";
import { loadOptions } from "./form.js";
import { hideJob, jobFromHash, openJob, submitFile, submitPasted } from "./jobs.js";
import { state } from "./state.js";
import { renderTable } from "./table.js";
import { renderTraining } from "./training.js";

function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  storeApiKey(key);
  $("key-form").hidden = true;
  $("key-input").value = "";
  const jobId = jobFromHash();
  if (jobId) openJob(jobId);
  else hideJob();
}

function start() {
  whenUnauthorized(() => { $("key-form").hidden = false; });
  $("file-input").addEventListener("change", (event) => {
    submitFile(event.target.files[0]);
    event.target.value = "";  // the same file can be chosen again
  });
  $("paste-submit").addEventListener("click", submitPasted);
  $("key-form").addEventListener("submit", useKey);
  $("log-toggle").addEventListener("change", () => renderChart());
  $("pre-activation-toggle").addEventListener("change", () => renderChart());
  $("block-view").addEventListener("change", (event) => {
    state.view = event.target.value;
    renderTable();
    renderChart();
  });
  $("table-filter").addEventListener("input", renderTable);
  $("weighted-only").addEventListener("change", renderTable);
  state.darkQuery.addEventListener("change", async () => {
    if (!state.traces) return;
    await renderChart();
    await renderTraining();
  });
  window.addEventListener("hashchange", () => {
    const jobId = jobFromHash();
    if (jobId && jobId !== state.jobId) openJob(jobId);
  });
  installDropTarget();
  loadOptions();
  loadExamples();
  const jobId = jobFromHash();
  if (jobId) openJob(jobId);
}

start();
