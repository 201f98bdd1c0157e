// What the page shows now: one object, read and written by the other modules.

export const state = {
  jobId: null,        // the job shown now
  pollTimer: null,
  traces: null,       // the job's traces payload
  sort: { key: "index", dir: 1 },
  view: "all",        // js/blocks.js: "all", "stream" or "block:<name>"
  darkQuery: window.matchMedia("(prefers-color-scheme: dark)"),
};
