// A job's life on the page: submit a model, poll its status, show its results,
// and the permalink (#job=<id>) that reopens it.

import { fetchJson, relative } from "./api.js";
import { renderViewChoices } from "./blockview.js";
import { renderChart } from "./chart.js";
import { $ } from "./dom.js";
import { readOptions, readTrainingData } from "./form.js";
import { state } from "./state.js";
import { renderTable } from "./table.js";
import { renderTraining } from "./training.js";

const POLL_MS = 400;

// ------------------------------------------------------------------ submitting
async function submit(blob, filename) {
  const form = new FormData();
  form.append("model", blob, filename);
  form.append("options", JSON.stringify(await readOptions()));
  const data = readTrainingData();
  if (data) form.append("data", data, data.name);
  stopPolling();
  showJob({ status: "uploading", progress: 0, stage: `uploading ${filename}` }, filename);
  $("results").hidden = true;
  try {
    const job = await fetchJson("initialize", { method: "POST", body: form });
    openJob(job.id, job);
  } catch (error) {
    showJob({ status: "failed", progress: 0, stage: "refused",
              error: { title: "The upload was refused", detail: error.message } }, filename);
  }
}

export function submitFile(file) {
  if (!file) return;
  submit(file, file.name);
}

export function submitPasted() {
  const text = $("paste-input").value.trim();
  if (!text) {
    showJob({ status: "failed", progress: 0, stage: "nothing pasted",
              error: { title: "Nothing to initialize", detail: "Paste a model config (JSON) first." } }, "pasted config");
    return;
  }
  submit(new Blob([text], { type: "application/json" }), "pasted.json");
}

export async function submitExample(entry) {
  try {
    const response = await fetch(`examples/${entry.file}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await submit(await response.blob(), entry.file);
  } catch (error) {
    showJob({ status: "failed", progress: 0, stage: "example",
              error: { title: "The example could not be loaded", detail: error.message } }, entry.name);
  }
}

// ------------------------------------------------------------------ status
function statusLabel(status) {
  return status === "succeeded" ? "done" : status;
}

function showJob(job, title) {
  $("job").hidden = false;
  if (title) $("job-title").textContent = title;
  const badge = $("job-status");
  badge.textContent = statusLabel(job.status);
  badge.dataset.status = job.status;
  $("job-stage").textContent = job.stage || "";
  const bar = $("job-progress");
  bar.value = job.status === "succeeded" ? 1 : Number(job.progress || 0);
  bar.setAttribute("aria-valuetext", `${statusLabel(job.status)}, ${Math.round(bar.value * 100)}%`);
  const error = $("job-error");
  if (job.error) {
    error.hidden = false;
    error.textContent = job.error.detail ? `${job.error.title}: ${job.error.detail}` : job.error.title;
  } else {
    error.hidden = true;
    error.textContent = "";
  }
  const warnings = $("job-warnings");
  warnings.replaceChildren(...(job.warnings || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  warnings.hidden = !(job.warnings && job.warnings.length);
}

function jobTitle(job) {
  const model = job.model || {};
  const parts = [model.name || "model"];
  if (model.num_layers) parts.push(`${model.num_layers} layers`);
  if (model.converted_from_tf_keras_2) parts.push("converted from tf.keras 2");
  return parts.join(" · ");
}

// ------------------------------------------------------------------ polling
function stopPolling() {
  if (state.pollTimer !== null) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

/** Show a job (known: its status, if the caller has it) and follow it until it ends. */
export function openJob(jobId, known) {
  stopPolling();
  state.jobId = jobId;
  state.traces = null;
  if (location.hash !== `#job=${jobId}`) history.replaceState(null, "", `#job=${encodeURIComponent(jobId)}`);
  if (known) showJob(known, jobTitle(known));
  poll(jobId);
}

async function poll(jobId) {
  if (state.jobId !== jobId) return;
  let job;
  try {
    job = await fetchJson(`jobs/${encodeURIComponent(jobId)}`);
  } catch (error) {
    showJob({ status: "failed", progress: 0, stage: "",
              error: { title: "The job could not be read", detail: error.message } }, jobId);
    return;
  }
  if (state.jobId !== jobId) return;
  showJob(job, jobTitle(job));
  if (job.status === "succeeded") {
    await showResults(job);
  } else if (job.status !== "failed") {
    state.pollTimer = setTimeout(() => poll(jobId), POLL_MS);
  }
}

// ------------------------------------------------------------------ results
async function showResults(job) {
  const jobId = job.id;
  try {
    const traces = await fetchJson(relative(job.links.traces));
    if (state.jobId !== jobId) return;
    state.traces = traces;
    $("results").hidden = false;
    renderDownloads(job);
    renderPermalink(jobId);
    renderViewChoices();
    renderTable();
    await renderChart();
    await renderTraining();  // after the chart: it takes the chart's colours
  } catch (error) {
    showJob({ ...job, status: "failed", error: { title: "The results could not be shown", detail: error.message } });
  }
}

function renderDownloads(job) {
  const links = [
    [job.links.model, "model (.keras)"],
    [job.links.config, "config (JSON)"],
    [job.links.traces, "traces (JSON)"],
    [job.links.traces_csv, "traces (CSV)"],
  ];
  // Loss and gradient norm per step, only for a job that trained (train_steps > 0).
  if (job.links.training_csv && state.traces && state.traces.training) {
    links.push([job.links.training_csv, "training (CSV)"]);
  }
  $("downloads").replaceChildren(...links.map(([href, text]) => {
    const link = document.createElement("a");
    link.href = relative(href);
    link.textContent = text;
    link.setAttribute("download", "");
    return link;
  }));
}

// ------------------------------------------------------------------ permalinks
function renderPermalink(jobId) {
  const link = $("permalink");
  link.href = `${location.pathname}#job=${encodeURIComponent(jobId)}`;
  link.textContent = new URL(link.href, location.href).href;
}

/** The job a permalink (#job=<id>) names, or null. */
export function jobFromHash() {
  const match = /(?:^#|&)job=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** Hide the job card (nothing to show until a job is opened). */
export function hideJob() {
  $("job").hidden = true;
}
