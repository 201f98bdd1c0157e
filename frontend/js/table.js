// The per-layer table: one row per layer of the traces, sortable and filterable.

import { viewLayers } from "./blocks.js";
import { $ } from "./dom.js";
import { formatNumber, formatShape, seriesLabel } from "./format.js";
import { state } from "./state.js";

// Outside [0.5, 2]: the cell is flagged.
const offTarget = (v) => v !== null && (v < 0.5 || v > 2);

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
  // A fused layer's pre-activation W x + b is what AutoInit scales to the target
  // (its output, after the activation, is not): measured variance / target.
  const beforeRatio = (layer) => {
    const block = layer.pre_activation;
    const measured = block && block.autoinit ? block.autoinit.var : null;
    return measured !== null && measured !== undefined && block.target ? measured / block.target : null;
  };
  const fused = traces.layers.some((l) => l.pre_activation);
  // What a reader compares comes first, so it is visible without scrolling at 1280 px.
  const bySeries = ["autoinit", "predicted", ...traces.series.filter((s) => s !== "autoinit" && s !== "predicted")]
    .filter((s) => traces.series.includes(s));
  return [
    { key: "index", label: "#", value: (l) => l.index },
    { key: "name", label: "layer", value: (l) => l.name, text: true },
    { key: "ratio", label: "measured / predicted", value: ratio, flag: offTarget },
    ...(fused ? [{ key: "pre_ratio", label: "before activation / target", value: beforeRatio, flag: offTarget }] : []),
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

function headerRow(cols) {
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
  return head;
}

function bodyRow(layer, cols) {
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
  return tr;
}

/** Draw the table of the traces shown now: the chosen view (all layers, the residual
 * stream, one block), the toolbar's filter and the chosen sort. */
export function renderTable() {
  const traces = state.traces;
  if (!traces) return;
  const cols = columns(traces);
  $("layer-table").tHead.replaceChildren(headerRow(cols));

  const filter = $("table-filter").value.trim().toLowerCase();
  const weightedOnly = $("weighted-only").checked;
  const sortCol = cols.find((c) => c.key === state.sort.key) || cols[0];
  const shown = viewLayers(traces.layers, state.view);
  const rows = shown
    .filter((l) => !weightedOnly || l.has_weights)
    .filter((l) => !filter || `${l.name} ${l.class_name}`.toLowerCase().includes(filter))
    .sort((a, b) => {
      const va = sortCol.value(a), vb = sortCol.value(b);
      if (va === null || va === undefined || vb === null || vb === undefined) return compare(va, vb);
      return state.sort.dir * compare(va, vb);
    });
  const body = document.createDocumentFragment();
  for (const layer of rows) body.append(bodyRow(layer, cols));
  $("layer-table").tBodies[0].replaceChildren(body);
  $("table-count").textContent = `${rows.length} of ${traces.layers.length} layers`;
}
