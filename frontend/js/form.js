// The options form: what a job is asked to do.

import { $ } from "./dom.js";

/** The options form as the JSON object POST /initialize takes. */
export function readOptions() {
  const data = new FormData($("options-form"));
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
