// The code editor: a transparent <textarea> (the real input: selection, undo, screen readers)
// over a highlighted <pre> with the same font metrics, scrolled together, and a line-number
// gutter. Tab inserts 4 spaces (Shift+Tab removes them); Escape then Tab leaves the editor;
// Enter keeps the indentation; Ctrl+S (or Cmd+S) saves. Compile errors mark their lines.

import { h, uid } from "./dom.js";
import { render as renderCode } from "./highlight.js";

const INDENT = "    ";
const LINE_PX = 20; // console.css: .editor line-height

export function codeEditor(code, { label = "Code", onSave = () => {} } = {}) {
  const id = uid("code");
  const gutter = h("div", { class: "gutter", "aria-hidden": "true", "data-testid": "gutter" });
  const pre = h("pre", { class: "highlight", "aria-hidden": "true", "data-testid": "highlight" });
  const textarea = h("textarea", {
    id, spellcheck: "false", autocapitalize: "off", autocomplete: "off", wrap: "off",
    "aria-describedby": `${id}-hint`, "data-testid": "code-editor",
  });
  textarea.value = code;
  const hint = h("p", { class: "hint", id: `${id}-hint` },
    "Python. Tab inserts 4 spaces and Shift+Tab removes them; to leave the editor with the " +
    "keyboard, press Escape, then Tab. Ctrl+S saves.");
  const box = h("div", { class: "editor" }, gutter, h("div", { class: "stack" }, pre, textarea));
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), box, hint);

  let errors = {};
  let clean = code;
  let frame = 0;
  let escaped = false;

  function sync() {
    pre.scrollTop = textarea.scrollTop;
    pre.scrollLeft = textarea.scrollLeft;
    gutter.scrollTop = textarea.scrollTop;
  }

  function paint() {
    frame = 0;
    const count = renderCode(pre, textarea.value, errors);
    const numbers = [];
    for (let line = 1; line <= count; line += 1) {
      const message = errors[line];
      numbers.push(h("span", {
        class: message ? "has-error" : undefined,
        title: message || undefined,
        "data-testid": message ? "gutter-error" : undefined,
      }, String(line)));
    }
    gutter.replaceChildren(...numbers);
    sync();
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(paint);
  }

  function insert(text) {
    // execCommand keeps the browser's undo history; setRangeText where it is unavailable
    if (!document.execCommand("insertText", false, text)) {
      textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  function selectedLines() {
    const value = textarea.value;
    const start = value.lastIndexOf("\n", textarea.selectionStart - 1) + 1;
    let end = textarea.selectionEnd;
    if (end > start && value[end - 1] === "\n") end -= 1;
    const stop = value.indexOf("\n", end);
    return { start, end: stop === -1 ? value.length : stop };
  }

  function reindent(change) {
    const { start, end } = selectedLines();
    const block = textarea.value.slice(start, end);
    const next = block.split("\n").map(change).join("\n");
    if (next === block) return;
    textarea.setSelectionRange(start, end);
    insert(next);
    textarea.setSelectionRange(start, start + next.length);
  }

  textarea.addEventListener("keydown", (event) => {
    const modified = event.ctrlKey || event.altKey || event.metaKey;
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key === "Tab" && !modified) {
      if (escaped) {
        escaped = false; // the browser moves the focus
        return;
      }
      event.preventDefault();
      const multi = textarea.value.slice(textarea.selectionStart, textarea.selectionEnd)
        .includes("\n");
      if (event.shiftKey) reindent((line) => line.replace(/^ {1,4}/, ""));
      else if (multi) reindent((line) => (line ? INDENT + line : line));
      else insert(INDENT);
      return;
    }
    escaped = false;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
      event.preventDefault();
      onSave();
      return;
    }
    if (event.key === "Enter" && !modified && !event.shiftKey) {
      const before = textarea.value.slice(0, textarea.selectionStart);
      const line = before.slice(before.lastIndexOf("\n") + 1);
      let indent = /^[ \t]*/.exec(line)[0];
      if (/:\s*(#.*)?$/.test(line)) indent += INDENT;
      event.preventDefault();
      insert(`\n${indent}`);
    }
  });
  textarea.addEventListener("input", schedule);
  textarea.addEventListener("scroll", sync);
  paint();

  return {
    wrap,
    textarea,
    get value() {
      return textarea.value;
    },
    get dirty() {
      return textarea.value !== clean;
    },
    setValue(value) {
      textarea.value = value;
      clean = value;
      paint();
    },
    markClean() {
      clean = textarea.value;
    },
    // issues: [{line, column, message}]; lines without a number are not marked
    setErrors(issues) {
      errors = {};
      for (const issue of issues) {
        if (!issue.line) continue;
        const where = issue.column === null || issue.column === undefined
          ? "" : `column ${issue.column}: `;
        const text = `${where}${issue.message}`;
        errors[issue.line] = errors[issue.line] ? `${errors[issue.line]}; ${text}` : text;
      }
      if (Object.keys(errors).length) textarea.setAttribute("aria-invalid", "true");
      else textarea.removeAttribute("aria-invalid");
      paint();
    },
    goTo(line) {
      const lines = textarea.value.split("\n");
      const target = Math.min(Math.max(line, 1), lines.length);
      let offset = 0;
      for (let index = 0; index < target - 1; index += 1) offset += lines[index].length + 1;
      textarea.focus();
      textarea.setSelectionRange(offset, offset + lines[target - 1].length);
      textarea.scrollTop = Math.max(0, (target - 3) * LINE_PX);
      sync();
    },
  };
}
