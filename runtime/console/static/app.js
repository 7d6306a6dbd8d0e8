// The console's shell: sign-in with a management token, the navigation, a hash router
// (#/actions, #/actions/<id>, #/phone, #/templates, #/logs, #/outbox) and page loading.
// Each page is a module pages/<id>.js exporting {id, title, render(root, ctx)}; it is loaded
// when first visited, so a page that fails to load leaves the others working.

import { api, ApiError, claims, setToken, token, whenUnauthorized } from "./lib/api.js";
import { clearErrors, fieldError, fill, h, pageError, visible } from "./lib/dom.js";

export const PAGES = [
  { id: "actions", title: "Actions" },
  { id: "phone", title: "Phone message" },
  { id: "templates", title: "Templates" },
  { id: "logs", title: "Logs" },
  { id: "outbox", title: "Outbox" },
];
const DEFAULT_ROUTE = "#/actions";
const loaded = new Map();
let rendering = 0;
let signInReason = "";

// A part of the hash as typed when it is not valid percent-encoding (#/actions/%E0%A4): a
// hand-made link must not stop the console with a URIError.
function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch (exc) {
    return part;
  }
}

function route() {
  const parts = (location.hash || "").replace(/^#\/?/, "").split("/").filter(Boolean).map(decode);
  const page = PAGES.find((p) => p.id === parts[0]);
  return page ? { page, params: parts.slice(1) } : null;
}

function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function freshMain() {
  const old = document.getElementById("content");
  const main = h("main", { id: "content", tabindex: "-1" });
  old.replaceWith(main);
  return main;
}

function loadPage(id) {
  if (!loaded.has(id)) {
    const promise = import(`./pages/${id}.js`).then((module) => module.default);
    promise.catch(() => loaded.delete(id)); // retried at the next visit
    loaded.set(id, promise);
  }
  return loaded.get(id);
}

function showNav(current) {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  fill(nav, h("ul", {}, PAGES.map((p) => h("li", {},
    h("a", {
      href: `#/${p.id}`,
      "data-testid": `nav-${p.id}`,
      "aria-current": current && current.id === p.id ? "page" : undefined,
    }, p.title)))));
  const who = document.getElementById("who");
  const data = claims(token() || "");
  const tenant = data && typeof data.sub === "string" ? data.sub.replace(/^tenant:/, "") : "";
  fill(who, tenant ? `Tenant ${visible(tenant, false)}` : "");
  document.getElementById("sign-out").hidden = false;
}

function hideNav() {
  document.getElementById("nav").hidden = true;
  fill(document.getElementById("who"));
  document.getElementById("sign-out").hidden = true;
}

async function render(focus = true) {
  const ticket = ++rendering;
  if (!token()) {
    showSignIn();
    return;
  }
  const found = route();
  if (!found) {
    history.replaceState(null, "", DEFAULT_ROUTE);
    render(focus);
    return;
  }
  const { page, params } = found;
  showNav(page);
  document.title = `${page.title} · phone-actions console`;
  const main = freshMain();
  main.setAttribute("aria-busy", "true");
  main.append(h("p", { class: "loading", "data-testid": "loading" }, "Loading…"));
  if (focus) main.focus();
  let module;
  try {
    module = await loadPage(page.id);
  } catch (exc) {
    if (ticket !== rendering) return;
    fill(main, h("h1", {}, page.title), h("div", {
      class: "banner error-banner", role: "alert", "data-testid": "page-load-error",
    }, "This page failed to load. The other pages still work; reload to try again."));
    main.removeAttribute("aria-busy");
    return;
  }
  if (ticket !== rendering) return;
  fill(main);
  try {
    await module.render(main, { api, params, navigate });
  } catch (exc) {
    if (ticket !== rendering) return;
    if (!(exc instanceof ApiError && exc.status === 401)) pageError(main, exc);
  } finally {
    main.removeAttribute("aria-busy");
  }
}

function showSignIn() {
  hideNav();
  document.title = "Sign in · phone-actions console";
  const main = freshMain();
  const input = h("input", {
    id: "token", type: "password", name: "token", autocomplete: "off", spellcheck: "false",
    required: true, "aria-describedby": "token-hint", "data-testid": "token-input",
  });
  const form = h("form", { class: "card sign-in", "data-testid": "sign-in-form", novalidate: true },
    h("h1", {}, "Sign in"),
    h("div", { class: "field" },
      h("label", { for: "token" }, "Management API token"),
      input,
      h("p", { class: "hint", id: "token-hint" },
        "A token for one tenant: make run prints one; docs/console.md gives the phone-actions " +
        "token create command with the scopes of every page. It stays in this tab only " +
        "(session storage).")),
    h("button", { type: "submit", "data-testid": "sign-in" }, "Sign in"));
  if (signInReason) {
    form.insertBefore(h("p", { class: "banner error-banner", role: "alert" }, signInReason),
      form.children[1]);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = input.value.trim();
    if (!value) {
      fieldError(input, "Paste a token to sign in.");
      return;
    }
    if (!claims(value)) {
      fieldError(input, "This is not a token (a JWT: three parts separated by dots).");
      return;
    }
    setToken(value);
    try {
      await api("GET", "/api/v2/actions/triggers");
    } catch (exc) {
      // 403: the token is valid but lacks read:actions; its pages say what it may not do
      if (!(exc instanceof ApiError) || exc.status !== 403) {
        setToken(null);
        signInReason = "";
        // "Invalid token" alone leaves a new user stuck: say which tokens this service takes
        fieldError(input, exc.status === 401
          ? `The API refused this token: ${exc.message.replace(/\.$/, "")}. Use one this service made and that has ` +
            "not expired: make run prints a new one at each start, or run phone-actions token " +
            "create with the service's data folder." : exc);
        return;
      }
    }
    signInReason = "";
    if (!route()) history.replaceState(null, "", DEFAULT_ROUTE);
    render();
  });
  main.append(form);
  input.focus();
}

function start() {
  whenUnauthorized((err) => {
    if (document.querySelector("[data-testid=sign-in-form]")) return; // its own check says so
    setToken(null);
    signInReason = `Signed out: the API refused the token (${err.message}). Sign in again.`;
    render();
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    setToken(null);
    signInReason = "";
    render();
  });
  document.querySelector("a.skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("content").focus();
  });
  window.addEventListener("hashchange", () => render());
  render(false);
}

start();
