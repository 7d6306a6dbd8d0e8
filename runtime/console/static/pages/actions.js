// Actions: the list and a create form (#/actions); one action's editor (#/actions/<id>) with
// compile errors on their lines, secrets (names only), a Test tab on the trigger's sample
// event, Deploy, the version history with rollback, and the binding to its trigger.
// Everything goes through the public Management API; every answer is shown as text.

import { ApiError } from "../lib/api.js";
import {
  clearErrors, field, fieldError, fill, formatDate, h, notice, pageError, visible,
} from "../lib/dom.js";
import { codeEditor } from "../lib/editor.js";

const ACTIONS = "/api/v2/actions/actions";
const TRIGGERS = "/api/v2/actions/triggers";
// Plain words first, the trigger's id second; each says where the Phone message page uses it.
const KNOWN_TRIGGERS = [
  ["send-phone-message", "Sends each built message, as the selected provider (send-phone-message, v2)"],
  ["custom-phone-provider", "Sends each built message, as the phone provider (custom-phone-provider, v1)"],
];
const VERSIONS = { "send-phone-message": "v2", "custom-phone-provider": "v1" };

export default {
  id: "actions",
  title: "Actions",
  async render(root, ctx) {
    if (ctx.params.length) await renderAction(root, ctx, ctx.params[0]);
    else await renderList(root, ctx);
  },
};

// -- helpers --------------------------------------------------------------------------------

function triggerOf(action) {
  const first = (action.supported_triggers || [])[0];
  return first && typeof first.id === "string" ? first.id : "";
}

function statusText(action) {
  const deployed = action.deployed_version;
  if (!deployed) return "Not deployed";
  return action.all_changes_deployed
    ? `Deployed: version ${deployed.number}`
    : `Deployed: version ${deployed.number}; saved changes not deployed`;
}

// "Payload validation error: 'does not compile: line 4, column 11: SyntaxError: ...' on
// property code." as [{line, column, message}]
export function compileIssues(message) {
  const body = String(message)
    .replace(/^Payload validation error: '(?:does not compile: )?/, "")
    .replace(/' on property code\.?$/, "");
  return body.split(/; (?=line \d+)/).map((part) => {
    const found = /^line (\d+)(?:, column (\d+))?: ([\s\S]*)$/.exec(part);
    return found
      ? { line: Number(found[1]), column: found[2] === undefined ? null : Number(found[2]),
        message: found[3] }
      : { line: null, column: null, message: part };
  });
}

function errorsOfField(form, err, inputs, fallback) {
  const target = err && err.field ? inputs[err.field.split(/[.[]/)[0]] : null;
  if (target && err.status === 400) fieldError(target, err);
  else if (fallback) fieldError(fallback, err);
  else pageError(form, err);
}

// 94.97 ms, 0.83 ms: two significant decimals at most
function ms(value) {
  return typeof value === "number" ? `${Number(value.toFixed(value < 10 ? 2 : 1))} ms` : "";
}

function badge(text, good, testid) {
  return h("span", { class: ["badge", good === true && "ok", good === false && "bad"],
    "data-testid": testid }, text);
}

// -- the list -------------------------------------------------------------------------------

async function renderList(root, ctx) {
  root.append(h("h1", {}, "Actions"));
  const name = field("Name", { type: "text", required: true, maxlength: 255,
    autocomplete: "off", "data-testid": "new-action-name" });
  const trigger = field("Trigger", { "data-testid": "new-action-trigger" }, "select",
    KNOWN_TRIGGERS);
  const form = h("form", { class: "card", "data-testid": "create-form", novalidate: true },
    h("h2", {}, "Create an action"), name.wrap, trigger.wrap,
    h("p", { class: "hint" }, "It starts with a handler that does nothing; write its code next."),
    h("button", { type: "submit", "data-testid": "create-action" }, "Create action"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!name.input.value.trim()) {
      fieldError(name.input, "Give the action a name.");
      return;
    }
    const chosen = trigger.input.value;
    try {
      const created = await ctx.api("POST", ACTIONS, {
        name: name.input.value.trim(),
        supported_triggers: [{ id: chosen, version: VERSIONS[chosen] }],
      });
      ctx.navigate(`#/actions/${encodeURIComponent(created.id)}`);
    } catch (err) {
      errorsOfField(form, err, { name: name.input, supported_triggers: trigger.input });
    }
  });
  const list = h("section", { "aria-labelledby": "actions-list-title" },
    h("h2", { id: "actions-list-title" }, "Your actions"));
  root.append(list, form);
  try {
    const page = await ctx.api("GET", `${ACTIONS}?per_page=100`);
    const actions = page.actions || [];
    if (!actions.length) {
      list.append(h("p", { class: "muted", "data-testid": "no-actions" }, "No actions yet."));
      return;
    }
    list.append(h("table", { "data-testid": "actions-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"),
        h("th", { scope: "col" }, "Trigger"), h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col" }, "Updated"))),
      h("tbody", {}, actions.map((action) => h("tr", { "data-testid": "action-row" },
        h("td", {}, h("a", { href: `#/actions/${encodeURIComponent(action.id)}` },
          visible(action.name, false))),
        h("td", {}, visible(triggerOf(action), false)),
        h("td", {}, statusText(action)),
        h("td", {}, formatDate(action.updated_at)))))));
    if (page.total > actions.length) {
      list.append(h("p", { class: "hint" }, `Showing ${actions.length} of ${page.total}.`));
    }
  } catch (err) {
    pageError(list, err);
  }
}

// -- one action -----------------------------------------------------------------------------

async function renderAction(root, ctx, id) {
  const url = `${ACTIONS}/${encodeURIComponent(id)}`;
  root.append(h("p", {}, h("a", { href: "#/actions" }, "← All actions")));
  let action;
  try {
    action = await ctx.api("GET", url);
  } catch (err) {
    root.append(h("h1", {}, "Action"));
    pageError(root, err.status === 404 ? "No such action (it may have been deleted)." : err);
    return;
  }
  const trigger = triggerOf(action);
  const status = h("span", { class: "badge", "data-testid": "action-status" }, statusText(action));
  const messages = h("div", { "aria-live": "polite" });
  root.append(h("h1", { "data-testid": "action-name" }, visible(action.name, false)),
    h("p", {}, "Trigger ", h("code", {}, visible(trigger, false)), " · ", status), messages);

  const say = (text) => {
    fill(messages);
    notice(messages, text);
  };
  const fail = (err) => {
    fill(messages);
    pageError(messages, err);
  };
  const setAction = (next) => {
    action = next;
    fill(status, statusText(action));
  };

  const sections = {};
  const code = codeSection(ctx, url, () => action, setAction, say, fail, () => sections);
  const secrets = secretsSection(ctx, url, () => action, setAction, say);
  const test = testSection(ctx, url, trigger, code);
  const versions = versionsSection(ctx, url, code, setAction, say, fail, () => sections);
  const binding = bindingSection(ctx, trigger, id, () => action, say);
  Object.assign(sections, { code, secrets, test, versions, binding });
  root.append(h("div", { class: "layout-2" },
    h("div", {}, code.node, test.node),
    h("div", {}, binding.node, versions.node, secrets.node,
      deleteSection(ctx, url, () => action, fail))));
  await Promise.all([versions.load(), binding.load(), test.load()]);
}

function codeSection(ctx, url, current, setAction, say, fail, sections) {
  const errorList = h("ul", { id: "compile-errors", class: "compile-errors",
    "data-testid": "compile-errors", "aria-live": "polite" });
  const editor = codeEditor(current().code, { label: "Python", onSave: () => save() });
  editor.textarea.setAttribute("aria-describedby",
    `${editor.textarea.getAttribute("aria-describedby")} compile-errors`);
  const saveButton = h("button", { type: "button", "data-testid": "save" }, "Save");
  const deployButton = h("button", { type: "button", class: "secondary", "data-testid": "deploy" },
    "Deploy");

  function showIssues(issues) {
    editor.setErrors(issues);
    fill(errorList, issues.map((issue) => h("li", { "data-testid": "compile-error" },
      issue.line
        ? h("button", { type: "button", onclick: () => editor.goTo(issue.line) },
          `Line ${issue.line}${issue.column === null ? "" : `, column ${issue.column}`}: `,
          visible(issue.message, false))
        : visible(issue.message, false))));
  }

  // true when the code is stored (or was already)
  async function save() {
    if (!editor.dirty) return true;
    saveButton.disabled = true;
    try {
      const saved = await ctx.api("PATCH", url, { code: editor.value });
      editor.markClean();
      showIssues([]);
      setAction(saved);
      say("Saved. The code runs once it is deployed.");
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.errorCode === "invalid_code") {
        showIssues(compileIssues(err.message));
        fail("The code does not compile: nothing was saved. Each error is shown on its line.");
      } else {
        fail(err);
      }
      return false;
    } finally {
      saveButton.disabled = false;
    }
  }

  async function deploy() {
    deployButton.disabled = true;
    try {
      if (!(await save())) return;
      const version = await ctx.api("POST", `${url}/deploy`);
      setAction(await ctx.api("GET", url));
      say(`Deployed: version ${version.number}.`);
      await Promise.all([sections().versions.load(), sections().binding.load()]);
    } catch (err) {
      if (err instanceof ApiError && err.errorCode === "invalid_code") {
        showIssues(compileIssues(err.message));
      }
      fail(err);
    } finally {
      deployButton.disabled = false;
    }
  }

  // closing or reloading the tab with unsaved code asks first (while this editor is shown)
  function guard(event) {
    if (!editor.textarea.isConnected) window.removeEventListener("beforeunload", guard);
    else if (editor.dirty) event.preventDefault();
  }
  window.addEventListener("beforeunload", guard);
  saveButton.addEventListener("click", () => save());
  deployButton.addEventListener("click", () => deploy());
  const node = h("section", { class: "card", "aria-labelledby": "code-title" },
    h("h2", { id: "code-title" }, "Code"), editor.wrap, errorList,
    h("div", { class: "actions-row" }, saveButton, deployButton));
  return { node, editor, save, showIssues };
}

function secretsSection(ctx, url, current, setAction, say) {
  const list = h("ul", { class: "plain", "data-testid": "secrets" });
  const name = field("Name", { type: "text", autocomplete: "off", "data-testid": "secret-name",
    pattern: "[A-Za-z_][A-Za-z0-9_]*" });
  const value = field("Value", { type: "password", autocomplete: "new-password",
    "data-testid": "secret-value" });
  const form = h("form", { novalidate: true },
    h("div", { class: "secret-row" }, name.wrap, value.wrap),
    h("button", { type: "submit", "data-testid": "add-secret" }, "Save secret"));

  function show() {
    const secrets = current().secrets || [];
    fill(list, secrets.length ? secrets.map((secret) => h("li", { "data-testid": "secret" },
      h("code", {}, visible(secret.name, false)), " ",
      h("span", { class: "muted" }, `set${secret.updated_at ? `, ${formatDate(secret.updated_at)}` : ""}`),
      " ",
      h("button", { type: "button", class: "secondary", "aria-label": `Remove ${secret.name}`,
        onclick: () => store(secrets.filter((s) => s.name !== secret.name).map((s) => ({ name: s.name })),
          `Removed ${secret.name}.`) }, "Remove")))
      : h("li", { class: "muted" }, "No secrets."));
  }

  async function store(secrets, done) {
    clearErrors(form);
    try {
      setAction(await ctx.api("PATCH", url, { secrets }));
      show();
      say(done);
      return true;
    } catch (err) {
      const index = err.field ? /^secrets\[(\d+)\]\.(\w+)/.exec(err.field) : null;
      if (index && index[2] === "value") fieldError(value.input, err);
      else if (index || (err.field || "").startsWith("secrets")) fieldError(name.input, err);
      else pageError(form, err);
      return false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const chosen = name.input.value.trim();
    if (!chosen) {
      fieldError(name.input, "Give the secret a name.");
      return;
    }
    const kept = (current().secrets || []).filter((s) => s.name !== chosen)
      .map((s) => ({ name: s.name }));
    if (await store([...kept, { name: chosen, value: value.input.value }],
      `Secret ${chosen} saved; its value is never shown again.`)) {
      name.input.value = "";
      value.input.value = "";
    }
  });
  show();
  const node = h("section", { class: "card", "aria-labelledby": "secrets-title" },
    h("h2", { id: "secrets-title" }, "Secrets"),
    h("p", { class: "hint" }, "The action reads them as event.secrets. Values are write-only: " +
      "once saved, only the names are shown. Saving a name again replaces its value."),
    list, form);
  return { node };
}

function testSection(ctx, url, trigger, code) {
  const event = field("Event (JSON)", { rows: 16, spellcheck: "false", "data-testid": "test-event",
    hint: "The trigger's event, prefilled with a sample. The test runs the saved code (unsaved " +
      "changes are saved first) in the sandbox with the action's secrets; its HTTP calls are " +
      "really made." }, "textarea");
  const output = h("div", { "aria-live": "polite", "data-testid": "test-output" });
  const run = h("button", { type: "button", "data-testid": "run-test" }, "Run test");
  const reset = h("button", { type: "button", class: "secondary", "data-testid": "reset-event" },
    "Reset to the sample");
  const form = h("div", {}, event.wrap, h("div", { class: "actions-row" }, run, reset), output);
  let sample = null;

  async function load() {
    try {
      sample = await ctx.api("GET", `${TRIGGERS}/${encodeURIComponent(trigger)}/sample`);
      event.input.value = JSON.stringify(sample, null, 2);
    } catch (err) {
      pageError(form, err);
    }
  }

  reset.addEventListener("click", () => {
    clearErrors(form);
    if (sample) event.input.value = JSON.stringify(sample, null, 2);
  });

  run.addEventListener("click", async () => {
    clearErrors(form);
    let payload;
    try {
      payload = JSON.parse(event.input.value);
    } catch (exc) {
      fieldError(event.input, `This is not JSON: ${exc.message}`);
      return;
    }
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
      fieldError(event.input, "The event must be a JSON object.");
      return;
    }
    run.disabled = true;
    fill(output, h("p", { class: "loading" }, "Running…"));
    try {
      if (!(await code.save())) {
        fill(output);
        return;
      }
      const answer = await ctx.api("POST", `${url}/test`, { payload });
      showResult(answer.payload || {});
    } catch (err) {
      fill(output);
      if (err instanceof ApiError && err.status === 400 && (err.field || "").startsWith("payload")) {
        fieldError(event.input, err);
      } else {
        pageError(output, err);
      }
    } finally {
      run.disabled = false;
    }
  });

  function showResult(result) {
    const ok = result.outcome === "ok";
    const duration = result.stats ? ms(result.stats.duration_ms) : "";
    const parts = [
      h("h3", {}, "Outcome"),
      h("p", {}, badge(visible(result.outcome || "unknown", false), ok, "test-outcome"),
        " in ", h("span", { "data-testid": "test-duration" }, duration),
        result.handed_off ? " · handed off (a provider may have the message)" : ""),
    ];
    const issues = Array.isArray(result.errors) ? result.errors : [];
    if (issues.length) code.showIssues(issues);
    if (result.error) {
      parts.push(h("h3", {}, "Error"), h("pre", { class: "output", "data-testid": "test-error" },
        visible(result.error)));
    }
    if (Array.isArray(result.traceback) && result.traceback.length) {
      parts.push(h("h3", {}, "Traceback"), h("pre", { class: "output", "data-testid": "test-traceback" },
        result.traceback.map((line) => visible(line, false)).join("\n")));
    }
    const logs = Array.isArray(result.logs) ? result.logs : [];
    parts.push(h("h3", {}, "Logs"), logs.length
      ? h("pre", { class: "output", "data-testid": "test-logs" },
        logs.map((line) => visible(line, false)).join("\n"))
      : h("p", { class: "muted", "data-testid": "test-logs" }, "Nothing printed."));
    const calls = Array.isArray(result.http) ? result.http : [];
    parts.push(h("h3", {}, "HTTP calls"), calls.length
      ? h("table", { "data-testid": "test-http" },
        h("thead", {}, h("tr", {}, ["Method", "URL", "Status", "Duration"].map((t) =>
          h("th", { scope: "col" }, t)))),
        h("tbody", {}, calls.map((call) => h("tr", {},
          h("td", {}, visible(call.method || "", false)),
          h("td", { class: "mono" }, visible(call.url || "", false)),
          h("td", {}, call.error ? visible(call.error, false) : String(call.status ?? "")),
          h("td", {}, ms(call.duration_ms))))))
      : h("p", { class: "muted", "data-testid": "test-http" }, "No HTTP calls."));
    parts.push(h("h3", {}, "Result"), h("pre", { class: "output", "data-testid": "test-result" },
      visible(JSON.stringify(result.result ?? null, null, 2))));
    if (result.notification) {
      parts.push(h("h3", {}, "Notification"), h("pre", { class: "output" },
        visible(JSON.stringify(result.notification, null, 2))));
    }
    fill(output, parts);
  }

  const node = h("section", { class: "card", "aria-labelledby": "test-title" },
    h("h2", { id: "test-title" }, "Test"), form);
  return { node, load };
}

function versionsSection(ctx, url, code, setAction, say, fail, sections) {
  const body = h("div", { "data-testid": "versions" });

  async function load() {
    try {
      const page = await ctx.api("GET", `${url}/versions?per_page=50`);
      const versions = page.versions || [];
      if (!versions.length) {
        fill(body, h("p", { class: "muted" }, "No versions yet: Deploy makes the first."));
        return;
      }
      fill(body, h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Version"),
          h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "State"))),
        h("tbody", {}, versions.map((version) => h("tr", { "data-testid": "version-row" },
          h("td", {}, `Version ${version.number}`),
          h("td", {}, formatDate(version.created_at)),
          h("td", {}, version.deployed
            ? badge("Deployed", true, "version-deployed")
            : h("button", { type: "button", class: "secondary",
              "data-testid": `rollback-${version.number}`,
              "aria-label": `Roll back to version ${version.number}`,
              onclick: (event) => rollback(version, event.currentTarget) }, "Roll back")))))));
    } catch (err) {
      fill(body);
      pageError(body, err);
    }
  }

  async function rollback(version, button) {
    button.disabled = true;
    try {
      const made = await ctx.api("POST", `${url}/versions/${encodeURIComponent(version.id)}/deploy`);
      const action = await ctx.api("GET", url);
      setAction(action);
      code.editor.setValue(action.code);
      code.showIssues([]);
      say(`Rolled back: version ${made.number} is deployed, with the code of version ` +
        `${version.number} (the editor shows it).`);
      await Promise.all([load(), sections().binding.load()]);
    } catch (err) {
      button.disabled = false;
      fail(err);
    }
  }

  const node = h("section", { class: "card", "aria-labelledby": "versions-title" },
    h("h2", { id: "versions-title" }, "Versions"),
    h("p", { class: "hint" }, "Each deploy makes an immutable version, newest first. Rolling " +
      "back deploys a copy of an older one."), body);
  return { node, load };
}

function deleteSection(ctx, url, current, fail) {
  const body = h("div", {});
  const start = h("button", { type: "button", class: "danger", "data-testid": "delete" },
    "Delete action");

  function ask() {
    const confirm = h("button", { type: "button", class: "danger", "data-testid": "confirm-delete" },
      "Delete it");
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    cancel.addEventListener("click", () => {
      fill(body, start);
      start.focus();
    });
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      try {
        await ctx.api("DELETE", url);
        ctx.navigate("#/actions");
      } catch (err) {
        confirm.disabled = false;
        fail(err.status === 409
          ? "This action is bound to its trigger: unbind it first (Trigger binding)." : err);
      }
    });
    fill(body, h("p", { role: "alert" }, "Delete ", h("strong", {}, visible(current().name, false)),
      " and all its versions? This cannot be undone."), h("div", { class: "actions-row" },
      confirm, cancel));
    cancel.focus();
  }

  start.addEventListener("click", ask);
  fill(body, start);
  return h("section", { class: "card", "aria-labelledby": "delete-title" },
    h("h2", { id: "delete-title" }, "Delete"), body);
}

// A binding alone sends nothing: deliveries run a trigger's actions only while the Phone
// message page chooses them (a new user binds, sends a test and sees the outbox instead).
const CHOSEN_ON_PHONE_PAGE = {
  "send-phone-message": ["its Selected provider is ",
    "Your action bound to send-phone-message (phone-message-hook)",
    " and no phone provider is enabled"],
  "custom-phone-provider": ["its Phone provider is ",
    "Your action bound to custom-phone-provider (custom)", ", enabled"],
};

function whenItRuns(trigger) {
  const chosen = CHOSEN_ON_PHONE_PAGE[trigger];
  if (!chosen) return null;
  return h("p", { class: "hint", "data-testid": "binding-when" }, "Deliveries run them only " +
    "while the ", h("a", { href: "#/phone" }, "Phone message"), " page sends with your action: ",
  chosen[0], h("strong", {}, chosen[1]), `${chosen[2]}. Otherwise they are not run.`);
}

function bindingSection(ctx, trigger, id, current, say) {
  const body = h("div", { "data-testid": "binding" });
  const path = `${TRIGGERS}/${encodeURIComponent(trigger)}/bindings`;
  let bindings = [];

  async function load() {
    try {
      bindings = (await ctx.api("GET", `${path}?per_page=100`)).bindings || [];
    } catch (err) {
      fill(body);
      pageError(body, err);
      return;
    }
    const bound = bindings.some((b) => b.action && b.action.id === id);
    const deployed = Boolean(current().deployed_version);
    const list = bindings.length
      ? h("ol", { "data-testid": "bindings" }, bindings.map((b) => h("li", {},
        visible(b.display_name || (b.action && b.action.name) || b.id, false),
        b.action && b.action.id === id ? h("strong", {}, " (this action)") : "")))
      : h("p", { class: "muted" }, "No action is bound.");
    const button = bound
      ? h("button", { type: "button", class: "secondary", "data-testid": "unbind",
        onclick: () => change(bindings.filter((b) => !(b.action && b.action.id === id))
          .map((b) => ({ ref: { type: "binding_id", value: b.id } })), "Unbound.") },
      `Unbind from ${trigger}`)
      : h("button", { type: "button", "data-testid": "bind", disabled: !deployed,
        "aria-describedby": deployed ? undefined : "bind-hint",
        onclick: () => change([
          ...bindings.map((b) => ({ ref: { type: "binding_id", value: b.id } })),
          { ref: { type: "action_id", value: id }, display_name: current().name },
        ], `Bound to ${trigger}: it runs its deployed version when the Phone message page sends ` +
          "with your action.") },
      `Bind to ${trigger}`);
    fill(body, h("p", {}, `The actions bound to ${trigger}, run in this order:`), list,
      whenItRuns(trigger),
      h("div", { class: "actions-row" }, button),
      deployed ? null : h("p", { class: "hint", id: "bind-hint" }, "Deploy the action before " +
        "binding it: a trigger runs deployed versions only."));
  }

  async function change(refs, done) {
    try {
      await ctx.api("PATCH", path, { bindings: refs });
      say(done);
    } catch (err) {
      pageError(body, err);
      return;
    }
    await load();
  }

  const node = h("section", { class: "card", "aria-labelledby": "binding-title" },
    h("h2", { id: "binding-title" }, "Trigger binding"), body);
  return { node, load };
}

