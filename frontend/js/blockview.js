// The "Show" control of a model whose records have nested names (a transformer):
// all layers, the residual stream, or one block's inside (js/blocks.js); it
// narrows the chart and the table alike. Hidden for other models.

import { ALL, viewChoices } from "./blocks.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

/** Offer the views of the traces shown now; keep the chosen one where it still applies. */
export function renderViewChoices() {
  const choices = viewChoices(state.traces ? state.traces.layers : []);
  if (!choices.some((choice) => choice.value === state.view)) state.view = ALL;
  const select = $("block-view");
  select.replaceChildren(...choices.map(({ value, label }) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    return option;
  }));
  select.value = state.view;
  $("block-view-box").hidden = choices.length < 2;
}
