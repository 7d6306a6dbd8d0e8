// Small helpers the settings pages share: a card per part of a page, loaded on its own so one
// refused call (a 403 for a missing scope) is explained in its card while the others work.

import { ApiError } from "./api.js";
import { clearErrors, fieldError, fill, h, notice, pageError } from "./dom.js";

// A <section class="card"> with a heading, an optional intro and a body (section.body) that
// load() fills.
export function card(id, title, ...intro) {
  const body = h("div", { class: "card-body" });
  const section = h("section", { class: "card", "aria-labelledby": `${id}-title`, "data-testid": id },
    h("h2", { id: `${id}-title` }, title),
    intro.length ? h("p", { class: "muted" }, ...intro) : null,
    body);
  section.body = body;
  return section;
}

// Fill the section's body with what `build` returns; an API error is explained there instead
// (a 403 names the scope the token lacks) and the rest of the page keeps working.
export async function load(section, build) {
  try {
    fill(section.body, await build());
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) throw exc;
    fill(section.body);
    pageError(section.body, exc);
  }
}

// Show an API error next to the field it names (inputs: {field name: input}), else as a
// banner in the form. Returns nothing; the form keeps what the user typed.
export function showError(form, inputs, exc) {
  // also the older "Payload validation error: to: ..." (no "on property")
  const named = exc && !exc.field && /^Payload validation error: ([a-z_][\w.]*): /.exec(exc.message || "");
  const name = exc && (exc.field || (named && named[1]));
  const input = name && (inputs[name] || inputs[name.split(".").pop()]);
  if (input) fieldError(input, exc);
  else pageError(form, exc);
}

// Submit handler: clears old errors and notices, runs `action`, shows `done` or the error.
export function onSubmit(form, inputs, action, done) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    for (const old of form.querySelectorAll(".ok-banner")) old.remove();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const result = await action();
      if (done) notice(form, typeof done === "function" ? done(result) : done);
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) return;
      showError(form, inputs, exc);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

// A checkbox with its label on the same line.
export function checkbox(label, attrs = {}) {
  const input = h("input", { type: "checkbox", ...attrs });
  const id = attrs.id;
  return { wrap: h("div", { class: "field inline" }, input, h("label", { for: id }, label)), input };
}

// Wait `ms` after the last call before running fn (a live preview while typing).
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
