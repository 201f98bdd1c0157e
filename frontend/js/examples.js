// The one-click examples (the paper's models, frontend/examples/ from autoinit.zoo).

import { fetchJson } from "./api.js";
import { $ } from "./dom.js";
import { submitExample } from "./jobs.js";

export async function loadExamples() {
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
