// A guard in front of routing: only plain origin-form request targets reach
// the router. Absolute-form targets (`GET http://host/…`), `*`, dot segments,
// doubled slashes and encoded slashes, dots or backslashes are refused, so no
// spelling of a path can reach an engine-internal route (/health, /metrics …)
// or be read differently by us and by the engine.

const BAD_PATH = /\/\/|\/\.\.?(\/|$)|%2e|%2f|%5c|\\/i;

/** True when `url` is a safe origin-form target: starts with one `/`, no dot segments or encoded separators. */
export function isSafeRequestTarget(url: string | undefined): boolean {
  if (url === undefined || url.charCodeAt(0) !== 47 /* '/' */) return false;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return !BAD_PATH.test(path);
}
