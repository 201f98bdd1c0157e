// How numbers, shapes and series names read on the page.

export function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-3 ? value.toExponential(2) : value.toPrecision(3);
}

export function formatShape(shape) {
  if (!Array.isArray(shape)) return shape == null ? "" : String(shape);
  if (shape.length && Array.isArray(shape[0])) return shape.map(formatShape).join(", ");
  return `(${shape.map((d) => (d === null ? "None" : d)).join(", ")})`;
}

/** The same names as autoinit.plot.series_label, so the chart and table agree. */
export function seriesLabel(series) {
  if (series === "predicted") return "AutoInit (predicted)";
  if (series === "autoinit") return "AutoInit (measured)";
  return `${series} (measured)`;
}

/** The same names as autoinit.plot.initialization_label, for the training charts. */
export function initializationLabel(series) {
  if (series === "autoinit") return "AutoInit";
  if (series === "default") return "default (model's own)";
  return series;
}
