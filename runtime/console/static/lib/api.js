// The console's one way to the service: the public Management API, same origin, bearer token.
// Errors arrive in Auth0's shape {statusCode, error, message, errorCode}; ApiError keeps them
// and names the field the message is about, so a page can show it next to that field.

export const TOKEN_KEY = "phone-actions-token";

export class ApiError extends Error {
  constructor(status, body) {
    const data = body && typeof body === "object" ? body : {};
    const message = typeof data.message === "string" ? data.message : `HTTP ${status}`;
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.error = typeof data.error === "string" ? data.error : "";
    this.errorCode = typeof data.errorCode === "string" ? data.errorCode : null;
    this.field = fieldOf(message);
    this.scope = scopeOf(message);
  }
}

// "Payload validation error: '...' on property code." or "secrets[0].name: must be ..."
export function fieldOf(message) {
  const onProperty = /on property ([A-Za-z_][\w.\[\]-]*?)\.?(?:;|\s\(|$)/.exec(message);
  if (onProperty) return onProperty[1];
  const leading = /^([a-z_][\w.\[\]-]*): /.exec(message);
  return leading ? leading[1] : null;
}

// "Insufficient scope, expected any of: read:actions"
export function scopeOf(message) {
  const found = /expected any of: ([\w:, ]+)/.exec(message);
  return found ? found[1].trim() : null;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Called on a 401: app.js sets it to show the sign-in form again.
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export async function api(method, path, body) {
  // An id of "." or ".." (a hand-made link: #/actions/.) makes a dot segment, which fetch
  // resolves (also when percent-encoded) to another resource: /api/v2/actions/actions/. would
  // read the list as one action. No API id is made of dots: answer as the API would.
  if (path.split("?")[0].split("/").some((part) => /^(?:\.|%2e){1,2}$/i.test(part))) {
    throw new ApiError(404, { error: "Not Found", message: "Not found: an id cannot be . or .." });
  }
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, { message: "The service cannot be reached; try again." });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (exc) {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return data;
}

// The unverified claims of a token, for display only (the API checks every request).
export function claims(value) {
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(part + "=".repeat((4 - (part.length % 4)) % 4));
    const data = JSON.parse(json);
    return data && typeof data === "object" ? data : null;
  } catch (exc) {
    return null;
  }
}
