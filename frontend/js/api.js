// Talking to the server: JSON fetches, RFC 9457 problems, the API-key cookie.
// All URLs are relative so the page also works behind a path prefix.

const KEY_COOKIE = "autoinit_api_key";  // read by the server (server/app.py)

let unauthorized = () => {};

/** Call `handler` whenever the server answers 401 (it needs an API key). */
export function whenUnauthorized(handler) {
  unauthorized = handler;
}

/** Keep an API key for this site. A cookie, not a header: the download links are plain <a href> links. */
export function storeApiKey(key) {
  document.cookie = `${KEY_COOKIE}=${encodeURIComponent(key)}; path=/; SameSite=Strict`;
}

function problemText(body, status) {
  if (body && typeof body === "object") {
    const title = body.title || `HTTP ${status}`;
    return body.detail ? `${title}: ${body.detail}` : title;
  }
  return `HTTP ${status}`;
}

/** The JSON body of a request; an Error with the server's problem text if it failed. */
export async function fetchJson(url, init) {
  const response = await fetch(url, init);
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401) unauthorized();
  if (!response.ok) throw new Error(problemText(body, response.status));
  return body;
}

/** Server links are absolute ("/jobs/..."); make them relative to the page. */
export function relative(path) {
  return path.startsWith("/") ? path.slice(1) : path;
}
