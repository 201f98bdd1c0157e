// Blocks of a model whose records have nested names (outer/inner): the residual
// stream and one block's inside. Pure functions of traces.layers, the page's
// twin of autoinit/plot/blocks.py (a page test checks that the two agree).
//
// A block is a path that holds a residual add (<block>/add, <block>/add_1), the
// outermost such path (vit_encoder/transformer_block_1 in a ViT, whose blocks sit
// inside an encoder); a model with nested names but no add has its top-level
// composites as blocks. The residual stream is what the blocks hand on to each
// other: the records outside every block and, per block, its own adds and, in a
// post-norm block, the normalization right after each add. A block whose first
// record is a normalization normalizes first (pre-norm, GPT-2): its norms feed the
// branches, not the stream, and are left out.

export const ALL = "all";
export const STREAM = "stream";
export const BLOCK_PREFIX = "block:";

const ADD = /^add(_\d+)?$/;

const nameOf = (layer) => String(layer.name ?? "");
const leafOf = (name) => name.slice(name.lastIndexOf("/") + 1);
const isAdd = (layer) => ADD.test(leafOf(nameOf(layer))) || layer.class_name === "Add";
const isNorm = (layer) => String(layer.class_name ?? "").includes("Norm");

/** The blocks, in the order their first record appears. */
export function blockNames(layers) {
  const names = layers.map(nameOf);
  let holders = new Set(layers.filter((l) => nameOf(l).includes("/") && isAdd(l))
    .map((l) => nameOf(l).slice(0, nameOf(l).lastIndexOf("/"))));
  if (holders.size === 0) holders = new Set(names.filter((n) => n.includes("/")).map((n) => n.split("/")[0]));
  const blocks = [...holders].filter((b) => ![...holders].some((outer) => b.startsWith(`${outer}/`)));
  const first = new Map(blocks.map((b) => [b, names.findIndex((n) => n.startsWith(`${b}/`))]));
  return blocks.sort((a, b) => first.get(a) - first.get(b));
}

/** The block (of `blocks`) a record is inside, null if it is outside all. */
export function blockOf(name, blocks) {
  return blocks.find((block) => name.startsWith(`${block}/`)) ?? null;
}

/** A record's name within its block (the whole name outside every block). */
export function labelOf(name, blocks) {
  const block = blockOf(name, blocks);
  return block === null ? name : name.slice(block.length + 1);
}

export const hasBlocks = (layers) => blockNames(layers).length > 0;

function stream(layers) {
  const blocks = blockNames(layers);
  const firstOfBlock = new Map();
  for (const layer of layers) {
    const block = blockOf(nameOf(layer), blocks);
    if (block !== null && !firstOfBlock.has(block)) firstOfBlock.set(block, layer);
  }
  const kept = [];
  let previousBlock = null, previousAdd = false;
  for (const layer of layers) {
    const block = blockOf(nameOf(layer), blocks);
    const own = block !== null && !labelOf(nameOf(layer), blocks).includes("/");  // not deeper
    const residualAdd = own && isAdd(layer);
    const postNorm = own && isNorm(layer) && !isNorm(firstOfBlock.get(block))
      && previousBlock === block && previousAdd;
    if (block === null || residualAdd || postNorm) kept.push(layer);
    previousBlock = block;
    previousAdd = residualAdd;
  }
  return kept;
}

/** The views these layers offer: [{value, label}], "all layers" first; the residual
 * stream only where some block holds an add. */
export function viewChoices(layers) {
  const residual = layers.some((l) => nameOf(l).includes("/") && isAdd(l));
  return [
    { value: ALL, label: "all layers" },
    ...(residual ? [{ value: STREAM, label: "residual stream" }] : []),
    ...blockNames(layers).map((block) => ({ value: BLOCK_PREFIX + block, label: `block ${block}` })),
  ];
}

/** The records a view shows, in their order; throws on a view the layers do not offer. */
export function viewLayers(layers, view = ALL) {
  if (view === ALL) return [...layers];
  if (view === STREAM) return stream(layers);
  if (view.startsWith(BLOCK_PREFIX)) {
    const block = view.slice(BLOCK_PREFIX.length);
    if (blockNames(layers).includes(block)) return layers.filter((l) => nameOf(l).startsWith(`${block}/`));
  }
  throw new Error(`view should be one of ${viewChoices(layers).map((c) => c.value).join(", ")}; got ${view}`);
}

/** The shaded spans' labels: what tells the blocks apart (0, 1, ... of transformer_layer_0,
 * ...), or their whole names where they share no prefix (autoinit.plot.blocks.band_labels). */
export function bandLabels(blocks) {
  let prefix = blocks.length > 1 ? blocks[0] : "";
  for (const block of blocks) while (!block.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return blocks.map((block) => block.slice(prefix.length) || block);
}

/** The x axis title of a view; `blocks`, the stream's, are named first to last
 * (autoinit.plot.blocks.view_title). */
export function viewTitle(view, blocks = []) {
  if (view === STREAM) {
    const through = blocks.length > 1 ? ` (blocks ${blocks[0]} … ${blocks[blocks.length - 1]})` : "";
    return `residual stream, in topological order${through}`;
  }
  if (view.startsWith(BLOCK_PREFIX)) return `inside ${view.slice(BLOCK_PREFIX.length)}, in topological order`;
  return "layer index (topological order)";
}

/** A layer's x in the figure: its index, or its position (autoinit.plot.payload.x_of). */
export const xOf = (layer, position) => (Number.isInteger(layer.index) ? layer.index : position);

/** The shown records' labels (names within their `blocks`, the whole model's), evenly
 * spaced at 0, 1, ..., and each block's span of those positions. */
export function blockAxis(shown, blocks) {
  const ticktext = shown.map((layer) => labelOf(nameOf(layer), blocks));
  const spans = new Map();
  shown.forEach((layer, position) => {
    const block = blockOf(nameOf(layer), blocks);
    if (block === null) return;
    const span = spans.get(block) || { block, x0: position, x1: position };
    spans.set(block, { block, x0: Math.min(span.x0, position), x1: Math.max(span.x1, position) });
  });
  return { tickvals: shown.map((_, position) => position), ticktext, bands: [...spans.values()] };
}
