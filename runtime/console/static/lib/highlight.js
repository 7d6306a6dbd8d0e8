// A small Python highlighter for the action editor: one regular expression finds comments,
// strings (single, triple-quoted, with prefixes), numbers, decorators and names; keywords,
// builtins and the names after def/class get a class. It only colours: the code itself is
// the textarea's, and everything here becomes text nodes (never HTML).

import { h } from "./dom.js";

const KEYWORDS = new Set(("False None True and as assert async await break class continue def " +
  "del elif else except finally for from global if import in is lambda nonlocal not or pass " +
  "raise return try while with yield match case").split(" "));
const BUILTINS = new Set(("abs all any bool bytes callable chr dict dir divmod enumerate filter " +
  "float format frozenset getattr hasattr hash hex id int isinstance issubclass iter len list " +
  "map max min next object oct ord pow print range repr reversed round set setattr slice sorted " +
  "str sum super tuple type zip self event api Exception ValueError KeyError TypeError " +
  "RuntimeError ApiError").split(" "));

const TOKEN = new RegExp([
  "(#[^\\n]*)", // 1 comment
  "((?:[rRbBuUfF]{1,2})?(?:'''[\\s\\S]*?(?:'''|$)|\"\"\"[\\s\\S]*?(?:\"\"\"|$)|" +
    "'(?:\\\\.|[^'\\\\\\n])*'?|\"(?:\\\\.|[^\"\\\\\\n])*\"?))", // 2 string
  "((?:\\b0[xXoObB][0-9a-fA-F_]+)|(?:\\b\\d[\\d_]*\\.?[\\d_]*(?:[eE][+-]?\\d+)?[jJ]?))", // 3 number
  "(@[A-Za-z_][\\w.]*)", // 4 decorator
  "([A-Za-z_]\\w*)", // 5 name
].join("|"), "g");

// [[className|null, text], ...] for the whole source.
export function tokens(source) {
  const out = [];
  let last = 0;
  let previous = "";
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(source); match; match = TOKEN.exec(source)) {
    if (match[0] === "") {
      TOKEN.lastIndex += 1;
      continue;
    }
    if (match.index > last) out.push([null, source.slice(last, match.index)]);
    let kind = null;
    if (match[1]) kind = "tok-com";
    else if (match[2]) kind = "tok-str";
    else if (match[3]) kind = "tok-num";
    else if (match[4]) kind = "tok-deco";
    else if (match[5]) {
      const word = match[5];
      if (previous === "def" || previous === "class") kind = "tok-fn";
      else if (KEYWORDS.has(word)) kind = "tok-kw";
      else if (BUILTINS.has(word)) kind = "tok-builtin";
      previous = word;
    }
    if (!match[5]) previous = "";
    out.push([kind, match[0]]);
    last = TOKEN.lastIndex;
  }
  if (last < source.length) out.push([null, source.slice(last)]);
  return out;
}

// The tokens cut at newlines: one array of [className|null, text] per line.
export function lines(source) {
  const result = [[]];
  for (const [kind, text] of tokens(source)) {
    const parts = text.split("\n");
    parts.forEach((part, index) => {
      if (index > 0) result.push([]);
      if (part) result[result.length - 1].push([kind, part]);
    });
  }
  return result;
}

// Fill pre with the highlighted source: one block span.line per line, no newline characters
// (errors: {lineNumber: message} marks those lines). Lines whose tokens and mark did not
// change keep their element: typing in a long script rebuilds only the lines it touched.
const painted = new WeakMap(); // pre -> [{key, node}] of its lines

export function render(pre, source, errors = {}) {
  const before = painted.get(pre) || [];
  const after = lines(source).map((parts, index) => {
    const number = index + 1;
    const message = errors[number] || "";
    const key = `${message}\u0000${parts.map(([kind, text]) => `${kind}\u0001${text}`).join("\u0002")}`;
    const old = before[index];
    if (old && old.key === key) return old;
    return {
      key,
      node: h("span", {
        class: message ? "line has-error" : "line",
        "data-line": String(number),
        "data-testid": message ? "error-line" : undefined,
      }, parts.map(([kind, text]) => (kind ? h("span", { class: kind }, text) : text))),
    };
  });
  after.forEach((line, index) => {
    const current = pre.children[index];
    if (current !== line.node) {
      if (current) current.replaceWith(line.node);
      else pre.append(line.node);
    }
  });
  while (pre.children.length > after.length) pre.lastElementChild.remove();
  painted.set(pre, after);
  return after.length;
}
