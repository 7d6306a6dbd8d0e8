// Building the page from data without ever parsing data as HTML: h() makes elements and turns
// every string into a text node. Nothing in the console uses innerHTML (or its relatives) with
// data, so tenant text (names, logs, templates) is always shown as text.

import { claims, token } from "./api.js";

export function h(tag, attrs, ...children) {
  const ns = attrs && attrs.ns;
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === "ns") continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "value" && !ns) {
      node.value = value;
    } else if (key === "checked" && !ns) {
      node.checked = Boolean(value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace everything inside node with children.
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

let counter = 0;
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

// A labelled form control: returns {wrap, input}. kind: "input" (default), "textarea", "select".
export function field(label, attrs = {}, kind = "input", options = []) {
  const { hint, ...rest } = attrs;
  const id = rest.id || uid("f");
  const input = h(kind, { ...rest, id });
  for (const option of options) {
    const [value, text] = Array.isArray(option) ? option : [option, option];
    input.append(h("option", { value }, text));
  }
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    return { wrap: h("div", { class: "field" }, h("label", { for: id }, label), input,
      h("p", { class: "hint", id: hintId }, hint)), input };
  }
  return { wrap: h("div", { class: "field" }, h("label", { for: id }, label), input), input };
}

// Control characters made visible: C0 as the U+2400 "symbol for" block (newline and tab kept
// when keepLines), DEL as U+2421, C1 and other invisible format characters as \xNN / \uNNNN.
export function visible(text, keepLines = true) {
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => {
    const code = c.charCodeAt(0);
    if (keepLines && (c === "\n" || c === "\t")) return c;
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return "\u2421";
    if (code <= 0xff) return `\\x${code.toString(16).padStart(2, "0")}`;
    return `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function describedBy(input, id, add) {
  const ids = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  const next = add ? [...new Set([...ids, id])] : ids.filter((x) => x !== id);
  if (next.length) input.setAttribute("aria-describedby", next.join(" "));
  else input.removeAttribute("aria-describedby");
}

// An API message shown next to its field, without the validator's wrapping: "Payload
// validation error: 'Field required' on property name." reads "Field required" (the first
// property's, when there are several; its message may hold quotes: "has no country code:
// ..., or set the tenant's default_country"), and the older "Payload validation error: to:
// Value error, '415' has no country code" reads "to: '415' has no country code". What the
// message says is kept word for word.
export function fieldMessage(message) {
  const text = String(message);
  const quoted = /^Payload validation error: '(.*?)' on property [\w.[\]-]+(?:\.|; .*|\s\(.*)$/s.exec(text);
  return (quoted ? quoted[1] : text.replace(/^Payload validation error: /, ""))
    .replace(/^([\w.[\]-]+: )?Value error, /, "$1");
}

// Show err's message next to input (linked for screen readers); returns the message element.
export function fieldError(input, err) {
  const message = typeof err === "string" ? err : fieldMessage(explain(err));
  const id = `${input.id || (input.id = uid("f"))}-error`;
  let node = document.getElementById(id);
  if (!node) {
    node = h("p", { class: "error", id, role: "alert", "data-testid": "field-error" });
    (input.closest(".field") || input.parentNode).append(node);
  }
  fill(node, visible(message, false));
  input.setAttribute("aria-invalid", "true");
  describedBy(input, id, true);
  return node;
}

export function clearErrors(form) {
  for (const node of form.querySelectorAll("p.error")) node.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    describedBy(input, `${input.id}-error`, false);
  }
  for (const banner of form.querySelectorAll(".banner.error-banner")) banner.remove();
}

// A human sentence for an API error: a 403 names the scope the token lacks.
export function explain(err) {
  if (!err || typeof err !== "object") return String(err);
  if (err.status === 403 && err.scope) {
    return `This token lacks the scope ${err.scope} needed here (the API answered 403: ` +
      `${err.message}). Ask for a token with it added: ${tokenCommand(err.scope)}.`;
  }
  if (err.status === 403) return `The API refused this (403): ${err.message}`;
  return err.message || String(err);
}

// The command that makes this token again with `missing` added: run as printed, it keeps what
// the token could already do (a token with the one missing scope would lose the others).
export function tokenCommand(missing) {
  const data = claims(token() || "") || {};
  const tenant = typeof data.tenant === "string" ? data.tenant
    : typeof data.sub === "string" ? data.sub.replace(/^tenant:/, "") : "ID";
  const had = typeof data.scope === "string" ? data.scope.split(/\s+/).filter(Boolean) : [];
  const need = String(missing).split(/[\s,]+/).filter(Boolean)[0] || String(missing);
  return `phone-actions token create --tenant ${tenant} --scope "${[...new Set([...had, need])].join(" ")}"`;
}

// An error banner at the top of root (a page or a form).
export function pageError(root, err) {
  const banner = h("div", { class: "banner error-banner", role: "alert", "data-testid": "page-error" },
    visible(explain(err), false));
  root.prepend(banner);
  return banner;
}

// A short-lived polite status message.
export function notice(root, text) {
  const node = h("p", { class: "banner ok-banner", role: "status", "data-testid": "notice" }, text);
  root.prepend(node);
  return node;
}

export function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
