// Blocks of a model whose records have nested names (block/inner): the residual
// stream and one block's inside. Pure functions of traces.layers, the page's
// twin of autoinit/plot/blocks.py (a page test checks that the two agree).
//
// The residual stream is what the blocks hand on to each other: the top-level
// records and, per block, its residual adds (<block>/add, <block>/add_1) and, in
// a post-norm block, the normalization right after each add. A block whose first
// record is a normalization normalizes first (pre-norm, GPT-2): its norms feed
// the branches, not the stream, and are left out.

export const ALL = "all";
export const STREAM = "stream";
export const BLOCK_PREFIX = "block:";

const ADD = /^add(_\d+)?$/;

const nameOf = (layer) => String(layer.name ?? "");
const depthOf = (name) => name.split("/").length - 1;

/** The block a record belongs to (its name's first part), null at the top level. */
export function blockOf(name) {
  const slash = name.indexOf("/");
  return slash < 0 ? null : name.slice(0, slash);
}

/** A record's name within its block (the whole name at the top level). */
export function labelOf(name) {
  const slash = name.indexOf("/");
  return slash < 0 ? name : name.slice(slash + 1);
}

/** The blocks in the order their first record appears. */
export function blockNames(layers) {
  const seen = new Set();
  for (const layer of layers) {
    const block = blockOf(nameOf(layer));
    if (block !== null) seen.add(block);
  }
  return [...seen];
}

export const hasBlocks = (layers) => blockNames(layers).length > 0;

const isNorm = (layer) => String(layer.class_name ?? "").includes("Norm");

function isResidualAdd(layer) {
  const name = nameOf(layer);
  return depthOf(name) === 1 && (ADD.test(labelOf(name)) || layer.class_name === "Add");
}

function stream(layers) {
  const firstOfBlock = new Map();
  for (const layer of layers) {
    const block = blockOf(nameOf(layer));
    if (block !== null && !firstOfBlock.has(block)) firstOfBlock.set(block, layer);
  }
  const kept = [];
  let previous = null;
  for (const layer of layers) {
    const name = nameOf(layer);
    const block = blockOf(name);
    const postNorm = block !== null && depthOf(name) === 1 && isNorm(layer)
      && !isNorm(firstOfBlock.get(block))
      && previous !== null && blockOf(nameOf(previous)) === block && isResidualAdd(previous);
    if (block === null || isResidualAdd(layer) || postNorm) kept.push(layer);
    previous = layer;
  }
  return kept;
}

/** The views these layers offer: [{value, label}], "all layers" first. */
export function viewChoices(layers) {
  if (!hasBlocks(layers)) return [{ value: ALL, label: "all layers" }];
  return [
    { value: ALL, label: "all layers" },
    { value: STREAM, label: "residual stream" },
    ...blockNames(layers).map((block) => ({ value: BLOCK_PREFIX + block, label: `block ${block}` })),
  ];
}

/** The records a view shows, in their order; throws on a view the layers do not offer. */
export function viewLayers(layers, view = ALL) {
  if (view === ALL) return [...layers];
  if (view === STREAM) return stream(layers);
  if (view.startsWith(BLOCK_PREFIX)) {
    const block = view.slice(BLOCK_PREFIX.length);
    if (blockNames(layers).includes(block)) return layers.filter((l) => blockOf(nameOf(l)) === block);
  }
  throw new Error(`view should be one of ${viewChoices(layers).map((c) => c.value).join(", ")}; got ${view}`);
}

/** The x axis title of a view (autoinit.plot.blocks.view_title). */
export function viewTitle(view) {
  if (view === STREAM) return "residual stream (layer index)";
  if (view.startsWith(BLOCK_PREFIX)) return `inside ${view.slice(BLOCK_PREFIX.length)} (layer index)`;
  return "layer index (topological order)";
}

/** A layer's x in the figure: its index, or its position (autoinit.plot.payload.x_of). */
export const xOf = (layer, position) => (Number.isInteger(layer.index) ? layer.index : position);

/** Tick positions and labels of the shown records, and each block's span of them. */
export function blockAxis(shown) {
  const tickvals = shown.map((layer, position) => xOf(layer, position));
  const ticktext = shown.map((layer) => labelOf(nameOf(layer)));
  const spans = new Map();
  shown.forEach((layer, position) => {
    const block = blockOf(nameOf(layer));
    if (block === null) return;
    const x = tickvals[position];
    const span = spans.get(block) || { block, x0: x, x1: x };
    spans.set(block, { block, x0: Math.min(span.x0, x), x1: Math.max(span.x1, x) });
  });
  return { tickvals, ticktext, bands: [...spans.values()] };
}
