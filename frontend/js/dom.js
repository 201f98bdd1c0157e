// DOM shorthands shared by the page's modules.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);
