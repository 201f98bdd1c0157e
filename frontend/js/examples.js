// The one-click examples: the paper's models (frontend/examples/index.json, from
// autoinit.zoo) and small keras_hub transformers (hub.json, autoinit.zoo.HUB_ZOO;
// their jobs need keras-hub on the workers).

import { fetchJson } from "./api.js";
import { $ } from "./dom.js";
import { submitExample } from "./jobs.js";

function exampleItem(entry, hub) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = entry.name;
  button.dataset.example = entry.name;
  if (hub) button.classList.add("hub");
  button.title = `${entry.description} (${entry.num_layers} layers, ${entry.num_params.toLocaleString()} parameters)`;
  button.addEventListener("click", () => submitExample(entry));
  item.append(button);
  return item;
}

export async function loadExamples() {
  const list = $("examples");
  try {
    const [paper, hub] = await Promise.all([
      fetchJson("examples/index.json"),
      fetchJson("examples/hub.json").catch(() => []),  // optional: absent, no keras_hub examples
    ]);
    list.replaceChildren(...paper.map((e) => exampleItem(e, false)), ...hub.map((e) => exampleItem(e, true)));
  } catch (error) {
    const item = document.createElement("li");
    item.textContent = `Examples unavailable: ${error.message}`;
    list.replaceChildren(item);
  }
}
