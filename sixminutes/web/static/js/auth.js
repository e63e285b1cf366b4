// The service's token, as this browser tab holds it.
//
// The service logs a one-time link, /6minutes/#token=…: the token is taken from the address
// at once (a fragment never reaches a server, a proxy log or a Referer), kept in this tab's
// sessionStorage, and removed from the address (history.replaceState), so that it is neither
// bookmarked nor shared with a copied link. Without it, the page asks when it needs it.
// Every request of the page's own says so (X-Requested-With), so that a 401 carries no Basic
// challenge and the browser never pops up its own login box (whose answer it would then send
// with every request of this site, forms of other sites included).

const KEY = "sixminutes.token";

/** Move a `token=` of the address's fragment (or query) into sessionStorage. */
function takeFromAddress() {
  const url = new URL(location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const token = fragment.get("token") ?? url.searchParams.get("token");
  if (token === null) return;
  fragment.delete("token");
  url.searchParams.delete("token");
  url.hash = fragment.toString();
  if (token) setToken(token);
  history.replaceState(history.state, "", url.href.replace(/#$/, ""));
}

export function getToken() {
  return sessionStorage.getItem(KEY) ?? "";
}

export function setToken(token) {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

/** Headers for the service: the token (when known) and the page's own mark. */
export function authHeaders(token = getToken()) {
  const headers = { "X-Requested-With": "sixminutes" };
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

let asked = false;

/** Ask for the token once per page load (reads refused with `auth_reads`); true if given. */
export function askToken(why) {
  if (asked) return false;
  asked = true;
  const token = window.prompt(`${why}\nThe service's token (its log says where it is kept):`);
  if (!token) return false;
  setToken(token.trim());
  return true;
}

takeFromAddress();
