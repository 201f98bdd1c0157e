// The signal-propagation page: upload (or pick) a model, follow the job, draw
// the server's figure and a per-layer table. No build step; plotly.js comes
// from the server (/static/plotly.min.js, shipped inside the plotly package).
// All URLs are relative so the page also works behind a path prefix.

const POLL_MS = 400;
const $ = (id) => document.getElementById(id);

const state = {
  jobId: null,        // the job shown now
  pollTimer: null,
  traces: null,       // the job's traces payload
  sort: { key: "index", dir: 1 },
  darkQuery: window.matchMedia("(prefers-color-scheme: dark)"),
};

// ------------------------------------------------------------------ helpers
function problemText(body, status) {
  if (body && typeof body === "object") {
    const title = body.title || `HTTP ${status}`;
    return body.detail ? `${title}: ${body.detail}` : title;
  }
  return `HTTP ${status}`;
}

async function fetchJson(url, init) {
  const response = await fetch(url, init);
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401) $("key-form").hidden = false;
  if (!response.ok) throw new Error(problemText(body, response.status));
  return body;
}

// ------------------------------------------------------------------ API key
const KEY_COOKIE = "autoinit_api_key";  // read by the server (server/app.py)

function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  // A cookie, not a header: the download links are plain <a href> links.
  document.cookie = `${KEY_COOKIE}=${encodeURIComponent(key)}; path=/; SameSite=Strict`;
  $("key-form").hidden = true;
  $("key-input").value = "";
  const jobId = jobFromHash();
  if (jobId) openJob(jobId);
  else $("job").hidden = true;
}

function relative(path) {
  // Server links are absolute ("/jobs/..."); make them relative to the page.
  return path.startsWith("/") ? path.slice(1) : path;
}

function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-3 ? value.toExponential(2) : value.toPrecision(3);
}

function formatShape(shape) {
  if (!Array.isArray(shape)) return shape == null ? "" : String(shape);
  if (shape.length && Array.isArray(shape[0])) return shape.map(formatShape).join(", ");
  return `(${shape.map((d) => (d === null ? "None" : d)).join(", ")})`;
}

function seriesLabel(series) {
  if (series === "predicted") return "AutoInit (predicted)";
  if (series === "autoinit") return "AutoInit (measured)";
  return `${series} (measured)`;
}

// ------------------------------------------------------------------ options
function readOptions() {
  const form = $("options-form");
  const data = new FormData(form);
  const number = (name) => Number(data.get(name));
  const options = {
    input_mean: number("input_mean"),
    input_var: number("input_var"),
    signal_variance: number("signal_variance"),
    distribution: data.get("distribution"),
    seed: Math.trunc(number("seed")),
    probe_batch: Math.trunc(number("probe_batch")),
    baselines: data.getAll("baselines"),
    backward: data.get("backward") === "on",
  };
  // Sent only when asked for, so servers without AutoInit++ still take the defaults.
  if (data.get("center_activations") === "on") options.center_activations = true;
  return options;
}

// ------------------------------------------------------------------ submitting
async function submit(blob, filename) {
  const form = new FormData();
  form.append("model", blob, filename);
  form.append("options", JSON.stringify(readOptions()));
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

function submitFile(file) {
  if (!file) return;
  submit(file, file.name);
}

function submitPasted() {
  const text = $("paste-input").value.trim();
  if (!text) {
    showJob({ status: "failed", progress: 0, stage: "nothing pasted",
              error: { title: "Nothing to initialize", detail: "Paste a model config (JSON) first." } }, "pasted config");
    return;
  }
  submit(new Blob([text], { type: "application/json" }), "pasted.json");
}

async function submitExample(entry) {
  try {
    const response = await fetch(`examples/${entry.file}`);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await submit(await response.blob(), entry.file);
  } catch (error) {
    showJob({ status: "failed", progress: 0, stage: "example",
              error: { title: "The example could not be loaded", detail: error.message } }, entry.name);
  }
}

// ------------------------------------------------------------------ job status
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

function stopPolling() {
  if (state.pollTimer !== null) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

function openJob(jobId, known) {
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
    renderTable();
    await renderChart();
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
  $("downloads").replaceChildren(...links.map(([href, text]) => {
    const link = document.createElement("a");
    link.href = relative(href);
    link.textContent = text;
    link.setAttribute("download", "");
    return link;
  }));
}

function renderPermalink(jobId) {
  const link = $("permalink");
  link.href = `${location.pathname}#job=${encodeURIComponent(jobId)}`;
  link.textContent = new URL(link.href, location.href).href;
}

async function renderChart() {
  const jobId = state.jobId;
  const log = $("log-toggle").checked;
  const dark = state.darkQuery.matches;
  const gradients = (state.traces?.layers || []).some(
    (l) => state.traces.series.some((s) => l[s] && l[s].grad_var !== undefined));
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

// ------------------------------------------------------------------ table
function columns(traces) {
  const measured = traces.series.filter((s) => s !== "predicted");
  const stat = (series, metric) => (layer) => (layer[series] ? layer[series][metric] : null);
  // AutoInit measured vs what it predicted, as second moments E[y^2] = mean^2 + var. At a
  // weighted layer the prediction is the target (passed through a fused activation).
  const second = (entry) => (entry && entry.var !== null && entry.var !== undefined && entry.mean !== null
    ? entry.mean * entry.mean + entry.var : null);
  const ratio = (layer) => {
    const measured = second(layer.autoinit), predicted = second(layer.predicted);
    return measured !== null && predicted ? measured / predicted : null;
  };
  // What a reader compares comes first, so it is visible without scrolling at 1280 px.
  const bySeries = ["autoinit", "predicted", ...traces.series.filter((s) => s !== "autoinit" && s !== "predicted")]
    .filter((s) => traces.series.includes(s));
  return [
    { key: "index", label: "#", value: (l) => l.index },
    { key: "name", label: "layer", value: (l) => l.name, text: true },
    { key: "ratio", label: "measured / predicted", value: ratio, flag: (v) => v !== null && (v < 0.5 || v > 2) },
    ...bySeries.map((s) => ({ key: `${s}.var`, label: `var ${seriesLabel(s)}`, value: stat(s, "var") })),
    { key: "autoinit.mean", label: "mean AutoInit (measured)", value: stat("autoinit", "mean") },
    ...(traces.layers.some((l) => measured.some((s) => l[s] && l[s].grad_var !== undefined))
      ? measured.map((s) => ({ key: `${s}.grad_var`, label: `grad var ${seriesLabel(s)}`, value: stat(s, "grad_var") }))
      : []),
    { key: "class_name", label: "class", value: (l) => l.class_name, text: true },
    { key: "output_shape", label: "output shape", value: (l) => formatShape(l.output_shape), text: true },
    { key: "estimator", label: "estimator", value: (l) => l.estimator || "", text: true },
    { key: "scale", label: "weight var", value: (l) => l.scale ?? null },
  ];
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;   // blanks last, whatever the direction
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

function renderTable() {
  const traces = state.traces;
  if (!traces) return;
  const cols = columns(traces);
  const head = document.createElement("tr");
  for (const col of cols) {
    const th = document.createElement("th");
    th.scope = "col";
    if (col.text) th.className = "text";
    th.setAttribute("aria-sort", state.sort.key === col.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = col.label;
    button.addEventListener("click", () => {
      state.sort = { key: col.key, dir: state.sort.key === col.key ? -state.sort.dir : 1 };
      renderTable();
      $("layer-table").querySelector(`th[aria-sort]:not([aria-sort="none"]) button`).focus();
    });
    th.append(button);
    head.append(th);
  }
  $("layer-table").tHead.replaceChildren(head);

  const filter = $("table-filter").value.trim().toLowerCase();
  const weightedOnly = $("weighted-only").checked;
  const sortCol = cols.find((c) => c.key === state.sort.key) || cols[0];
  const rows = traces.layers
    .filter((l) => !weightedOnly || l.has_weights)
    .filter((l) => !filter || `${l.name} ${l.class_name}`.toLowerCase().includes(filter))
    .sort((a, b) => {
      const va = sortCol.value(a), vb = sortCol.value(b);
      if (va === null || va === undefined || vb === null || vb === undefined) return compare(va, vb);
      return state.sort.dir * compare(va, vb);
    });
  const body = document.createDocumentFragment();
  for (const layer of rows) {
    const tr = document.createElement("tr");
    tr.dataset.name = layer.name;
    if (layer.has_weights) tr.classList.add("weighted");
    if (layer.estimator === "pass-through") tr.classList.add("pass-through");
    for (const col of cols) {
      const td = document.createElement("td");
      const value = col.value(layer);
      td.textContent = col.text || col.key === "index" ? (value ?? "") : formatNumber(value);
      td.className = [col.text ? "text" : "", col.key.replace(/[^a-z_]/gi, "_"),
                      col.flag && col.flag(value) ? "off" : ""].join(" ").trim();
      if (col.key === "name") td.title = `${layer.name} (${layer.class_name}, ${formatShape(layer.output_shape)})`;
      tr.append(td);
    }
    body.append(tr);
  }
  $("layer-table").tBodies[0].replaceChildren(body);
  $("table-count").textContent = `${rows.length} of ${traces.layers.length} layers`;
}

// ------------------------------------------------------------------ examples
async function loadExamples() {
  const list = $("examples");
  try {
    const entries = await fetchJson("examples/index.json");
    list.replaceChildren(...entries.map((entry) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = entry.name;
      button.dataset.example = entry.name;
      button.title = `${entry.description} (${entry.num_layers} layers, ${entry.num_params.toLocaleString()} parameters)`;
      button.addEventListener("click", () => submitExample(entry));
      item.append(button);
      return item;
    }));
  } catch (error) {
    const item = document.createElement("li");
    item.textContent = `Examples unavailable: ${error.message}`;
    list.replaceChildren(item);
  }
}

// ------------------------------------------------------------------ drag and drop
function installDropTarget() {
  const overlay = $("drop-overlay");
  let depth = 0;
  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    submitFile(event.dataTransfer.files[0]);
  });
}

// ------------------------------------------------------------------ start
function jobFromHash() {
  const match = /(?:^#|&)job=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

function start() {
  $("file-input").addEventListener("change", (event) => {
    submitFile(event.target.files[0]);
    event.target.value = "";  // the same file can be chosen again
  });
  $("paste-submit").addEventListener("click", submitPasted);
  $("key-form").addEventListener("submit", useKey);
  $("log-toggle").addEventListener("change", () => renderChart());
  $("table-filter").addEventListener("input", renderTable);
  $("weighted-only").addEventListener("change", renderTable);
  state.darkQuery.addEventListener("change", () => { if (state.traces) renderChart(); });
  window.addEventListener("hashchange", () => {
    const jobId = jobFromHash();
    if (jobId && jobId !== state.jobId) openJob(jobId);
  });
  installDropTarget();
  loadExamples();
  const jobId = jobFromHash();
  if (jobId) openJob(jobId);
}

start();
