// The options form: what a job is asked to do. Its defaults, bounds and
// choices come from the server (GET /options, derived from the one options
// model, autoinit.options.InitializeOptions); the HTML holds only the labels.

import { fetchJson } from "./api.js";
import { $ } from "./dom.js";

// Display names of choices whose plain name reads poorly; others read as "truncated normal".
const CHOICE_LABELS = {
  default: "model's own (default)",
  he_normal: "He normal",
  glorot_uniform: "Glorot uniform",
  lecun_normal: "LeCun normal",
};
const choiceLabel = (value) => CHOICE_LABELS[value] || String(value).replaceAll("_", " ");

let schema = null;   // the options' JSON schema, once loaded
let loaded = null;   // the promise of loading it

function choiceCheckbox(name, value, checked) {
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.name = name;
  box.value = value;
  box.checked = checked;
  label.append(box, ` ${choiceLabel(value)}`);
  return label;
}

function fill(control, property, value) {
  const field = control.closest("label");
  if (field && property.description) field.title = property.description;
  if (control.tagName === "SELECT") {
    control.replaceChildren(...property.enum.map((choice) => new Option(choiceLabel(choice), choice)));
    control.value = value;
  } else if (control.type === "checkbox") {
    control.checked = value === true;
  } else {
    const low = property.minimum ?? property.exclusiveMinimum;
    if (low !== undefined) control.min = String(low);
    if (property.maximum !== undefined) control.max = String(property.maximum);
    control.value = String(value);
  }
}

/** Fill the form from GET /options; controls the server does not list are hidden. */
export function loadOptions() {
  loaded ??= fetchJson("options").then((answer) => {
    schema = answer.schema;
    const form = $("options-form");
    const properties = schema.properties || {};
    for (const [name, property] of Object.entries(properties)) {
      const value = answer.defaults[name];
      if (property.type === "array" && $(name)) {
        const legend = $(name).querySelector("legend");
        $(name).replaceChildren(legend, ...property.items.enum.map(
          (choice) => choiceCheckbox(name, choice, value.includes(choice))));
        $(name).title = property.description || "";
      } else if (form.elements[name]) {
        fill(form.elements[name], property, value);
      }
    }
    for (const control of form.querySelectorAll("[name]")) {
      if (!(control.name in properties)) control.closest("label").hidden = true;
    }
    if (form.elements.train_steps && "train_steps" in properties) {
      form.elements.train_steps.addEventListener("input", showTrainingData);
      showTrainingData();
    }
  }).catch((error) => {
    // Without the schema, jobs are sent without options: the server's defaults apply.
    $("options-error").hidden = false;
    $("options-error").textContent = `The options could not be loaded (${error.message}); jobs use the server's defaults.`;
  });
  return loaded;
}

/** The options form as the JSON object POST /initialize takes, typed by the schema. */
export async function readOptions() {
  await loadOptions();
  if (!schema) return {};
  const form = $("options-form");
  const data = new FormData(form);
  const options = {};
  for (const [name, property] of Object.entries(schema.properties || {})) {
    if (!form.querySelector(`[name="${name}"]`) && !$(name)) continue;  // no control: the server's default
    if (property.type === "array") options[name] = data.getAll(name);
    else if (property.type === "boolean") options[name] = data.get(name) === "on";
    else if (property.type === "integer") options[name] = Math.trunc(Number(data.get(name)));
    else if (property.type === "number") options[name] = Number(data.get(name));
    else options[name] = data.get(name);
  }
  return options;
}

/** The training-data input is offered only while the form asks for training (train_steps > 0). */
function showTrainingData() {
  const steps = $("options-form").elements.train_steps;
  $("train-data").hidden = !(steps && Number(steps.value) > 0);
}

/** The training data (.npz) to send as the upload's 'data' field, or null:
 * none chosen, or the form does not ask for training. */
export function readTrainingData() {
  const file = $("train-data-input").files[0];
  return file && !$("train-data").hidden ? file : null;
}
