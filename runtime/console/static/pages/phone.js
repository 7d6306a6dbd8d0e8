// "Phone message": Auth0's Phone Message settings page on the public API. Message types and the
// selected provider (guardian factor), the provider's settings (the Unified Phone Experience
// provider, which wins when enabled, and the guardian's Twilio settings), the fallback policy
// and default country (this project's /api/v2/phone/settings), and a test message whose report
// is shown.
// Credentials are write-only: their inputs are never prefilled, the page says set or not set.

import { field, h, notice } from "../lib/dom.js";
import { card, checkbox, load, onSubmit } from "../lib/forms.js";

const GUARDIAN = "/api/v2/guardian/factors/phone";
const PROVIDERS = "/api/v2/branding/phone/providers";
const SETTINGS = "/api/v2/phone/settings";
const FALLBACKS = [
  ["never", "A failed message is reported failed; the default sender is not tried."],
  ["retryable", "The default: only when the provider's error is retryable (for " +
    "Twilio: no connection could be made, HTTP 429 or 5xx)."],
  ["always", "After any error of the provider, such as a refused sender or number."],
];
// Plain words first, the API's raw value second (what Auth0's docs and the API call it).
const SELECTABLE = [
  ["auth0", "The default sender of this service (auth0)"],
  ["twilio", "Twilio, with the Twilio settings below (twilio)"],
  ["phone-message-hook", "Your action bound to send-phone-message (phone-message-hook)"],
];
const UPE_NAMES = [
  ["twilio", "Twilio (twilio)"],
  ["custom", "Your action bound to custom-phone-provider (custom)"],
];
const labelOf = (choices, value) => (choices.find(([v]) => v === value) || [value, value])[1];

export default {
  id: "phone",
  title: "Phone message",
  async render(root, ctx) {
    const types = card("message-types", "Message types",
      "How codes may reach users: SMS, voice calls, or both.");
    const selected = card("selected-provider", "Selected provider",
      "Who sends the phone factor's messages when no phone provider (below) is enabled.");
    const provider = card("phone-provider", "Phone provider",
      "One provider for every message (Auth0's Unified Phone Experience): while one is enabled, " +
      "it sends every message and the selected provider above is not used.");
    const twilio = card("twilio-settings", "Twilio settings",
      "Used when the selected provider (above) is Twilio. It needs the account SID, the auth " +
      "token, and a From number or a messaging service SID (voice calls need From).");
    const fallback = card("fallback-policy", "Fallback policy and default country",
      "When the provider fails without handing the message off, the pipeline may send it with " +
      "the default sender instead. A message that may have reached a carrier never falls back, " +
      "whatever the policy, so no user receives two codes.");
    const trial = card("test-message", "Send a test message",
      "A real delivery through the pipeline with the sample code 123456: it has a report and a " +
      "log event like any other.");
    root.append(h("h1", {}, "Phone message"), types, selected, provider, twilio, fallback, trial);
    const state = { provider: null };
    // after the phone provider changes: it and the test (which uses it) are shown again
    const reload = async (said) => {
      await load(provider, () => phoneProvider(ctx, state, reload));
      await load(trial, () => testMessage(ctx, state));
      if (said) notice(provider.body, said);
    };
    await Promise.all([
      load(types, () => messageTypes(ctx)),
      load(selected, () => selectedProvider(ctx)),
      load(provider, () => phoneProvider(ctx, state, reload)),
      load(twilio, () => twilioSettings(ctx)),
      load(fallback, () => phoneSettings(ctx)),
    ]);
    await load(trial, () => testMessage(ctx, state));
  },
};

async function messageTypes(ctx) {
  const { message_types: chosen } = await ctx.api("GET", `${GUARDIAN}/message-types`);
  const sms = checkbox("SMS", { id: "type-sms", "data-testid": "type-sms", checked: chosen.includes("sms") });
  const voice = checkbox("Voice", { id: "type-voice", "data-testid": "type-voice", checked: chosen.includes("voice") });
  const form = h("form", { "data-testid": "message-types-form" },
    h("fieldset", {}, h("legend", {}, "Enabled message types"), sms.wrap, voice.wrap),
    h("div", { class: "actions-row" }, h("button", { type: "submit", "data-testid": "save-message-types" }, "Save message types")));
  onSubmit(form, { message_types: sms.input }, async () => {
    const body = { message_types: [sms.input.checked && "sms", voice.input.checked && "voice"].filter(Boolean) };
    return ctx.api("PUT", `${GUARDIAN}/message-types`, body);
  }, (saved) => (saved.message_types.length
    ? `Saved: ${saved.message_types.map((t) => ({ sms: "SMS", voice: "voice" })[t] || t).join(", ")}.`
    : "Saved: none. Every code is refused until a type is enabled."));
  return form;
}

// What each selectable provider needs before deliveries can succeed.
const NEEDS = {
  "auth0": "Nothing to set up: this service's default sender sends the codes.",
  "twilio": "Needs the Twilio settings below: the account SID, the auth token, and a From " +
    "number or a messaging service SID.",
  "phone-message-hook": "Your action needs to be deployed and bound to send-phone-message on " +
    "the Actions page first: without one, every delivery fails.",
};

async function selectedProvider(ctx) {
  const { provider: current } = await ctx.api("GET", `${GUARDIAN}/selected-provider`);
  const select = field("Provider", { name: "provider", "data-testid": "provider-select",
    hint: NEEDS[current] || "" }, "select", SELECTABLE);
  select.input.value = current;
  // the hint says what the chosen provider needs, as the choice changes
  const hint = select.wrap.querySelector(".hint");
  select.input.addEventListener("change", () => {
    if (hint) hint.textContent = NEEDS[select.input.value] || "";
  });
  const form = h("form", { "data-testid": "selected-provider-form" }, select.wrap,
    h("div", { class: "actions-row" }, h("button", { type: "submit", "data-testid": "save-provider" }, "Save provider")));
  onSubmit(form, { provider: select.input }, () =>
    ctx.api("PUT", `${GUARDIAN}/selected-provider`, { provider: select.input.value }),
  (saved) => `Saved: ${labelOf(SELECTABLE, saved.provider)}.`);
  return form;
}

// The Unified Phone Experience provider: shown and changed when there is one, else created.
async function phoneProvider(ctx, state, reload) {
  const { providers } = await ctx.api("GET", PROVIDERS);
  const found = providers[0] || null;
  state.provider = found;
  const conf = (found && found.configuration) || {};
  const name = field("Name", { name: "name", "data-testid": "upe-name", disabled: Boolean(found) }, "select",
    UPE_NAMES);
  name.input.value = found ? found.name : "twilio";
  const sid = field("Account SID", { name: "sid", value: conf.sid || "", autocomplete: "off" });
  const from = field("Default from", { name: "default_from", value: conf.default_from || "", autocomplete: "off",
    hint: "A phone number or an alphanumeric sender id." });
  const mssid = field("Messaging service SID", { name: "mssid", value: conf.mssid || "", autocomplete: "off" });
  const methods = conf.delivery_methods || ["text"];
  const text = checkbox("Text (SMS)", { id: "upe-text", checked: methods.includes("text") });
  const voice = checkbox("Voice", { id: "upe-voice", checked: methods.includes("voice") });
  const token = field("Auth token", { name: "auth_token", type: "password", autocomplete: "new-password",
    "data-testid": "upe-token",
    hint: found ? "Write-only: the stored token is never shown. Leave empty to keep it." : "Write-only: never shown once saved." });
  const disabled = checkbox("Disabled", { id: "upe-disabled", checked: Boolean(found && found.disabled) });
  const credentials = h("p", { "data-testid": "upe-credentials" }, "Credentials: ",
    h("span", { class: found ? "badge ok" : "badge" }, found ? "set" : "not set"));
  const twilioOnly = h("div", {}, sid.wrap, from.wrap, mssid.wrap, token.wrap);
  const sync = () => { twilioOnly.hidden = name.input.value !== "twilio"; };
  name.input.addEventListener("change", sync);
  sync();
  const form = h("form", { "data-testid": "upe-form" },
    found ? h("p", {}, "Configured: ", h("strong", {}, labelOf(UPE_NAMES, found.name)), found.disabled ? ", disabled" : ", enabled") :
      h("p", {}, "No phone provider is configured: the selected provider above sends."),
    credentials, name.wrap, twilioOnly,
    h("fieldset", {}, h("legend", {}, "Delivery methods"), text.wrap, voice.wrap), disabled.wrap,
    h("div", { class: "actions-row" },
      h("button", { type: "submit", "data-testid": "save-upe" }, found ? "Save phone provider" : "Create phone provider")));
  const inputs = {
    name: name.input, sid: sid.input, default_from: from.input, mssid: mssid.input,
    delivery_methods: text.input, auth_token: token.input, disabled: disabled.input,
  };
  onSubmit(form, inputs, async () => {
    const configuration = { delivery_methods: [text.input.checked && "text", voice.input.checked && "voice"].filter(Boolean) };
    const kind = name.input.value;
    if (kind === "twilio") {
      for (const [key, input] of [["sid", sid.input], ["default_from", from.input], ["mssid", mssid.input]]) {
        if (input.value.trim()) configuration[key] = input.value.trim();
      }
    }
    const body = { disabled: disabled.input.checked, configuration };
    if (found) {
      if (kind === "twilio" && token.input.value) body.credentials = { auth_token: token.input.value };
      await ctx.api("PATCH", `${PROVIDERS}/${encodeURIComponent(found.id)}`, body);
    } else {
      body.name = kind;
      body.credentials = kind === "twilio" ? { auth_token: token.input.value } : {};
      await ctx.api("POST", PROVIDERS, body);
    }
    token.input.value = "";
    await reload(found ? "Saved." : "Created.");
  });
  return form;
}

async function twilioSettings(ctx) {
  const stored = await ctx.api("GET", `${GUARDIAN}/providers/twilio`);
  const sid = field("Account SID", { name: "sid", value: stored.sid || "", autocomplete: "off" });
  const from = field("From", { name: "from", value: stored.from || "", autocomplete: "off" });
  const service = field("Messaging service SID", { name: "messaging_service_sid",
    value: stored.messaging_service_sid || "", autocomplete: "off" });
  const token = field("Auth token", { name: "auth_token", type: "password", autocomplete: "new-password",
    "data-testid": "twilio-token",
    hint: "Write-only: the API never returns it, nor whether one is stored. Leave empty to keep " +
      "what is stored; type one to replace it." });
  const form = h("form", { "data-testid": "twilio-form" }, sid.wrap, from.wrap, service.wrap, token.wrap,
    h("div", { class: "actions-row" }, h("button", { type: "submit", "data-testid": "save-twilio" }, "Save Twilio settings")));
  const inputs = { sid: sid.input, from: from.input, messaging_service_sid: service.input, auth_token: token.input };
  onSubmit(form, inputs, async () => {
    const body = {};
    for (const key of ["sid", "from", "messaging_service_sid"]) body[key] = inputs[key].value.trim() || null;
    if (token.input.value) body.auth_token = token.input.value;
    await ctx.api("PUT", `${GUARDIAN}/providers/twilio`, body);
    token.input.value = "";
  }, "Saved.");
  return form;
}

// The fallback policy (a radio per value, each explained) and the default country: the
// tenant's delivery policy that no Auth0 endpoint sets, through this project's own endpoint.
async function phoneSettings(ctx) {
  const stored = await ctx.api("GET", SETTINGS);
  const radios = FALLBACKS.map(([value, text]) => {
    const id = `fallback-${value}`;
    const input = h("input", { type: "radio", name: "fallback", value, id, "data-testid": id,
      "aria-describedby": `${id}-hint`, checked: stored.fallback === value });
    return { input, wrap: h("div", { class: "field inline" }, input, h("label", { for: id }, value),
      h("p", { class: "hint", id: `${id}-hint` }, text)) };
  });
  const group = h("fieldset", { class: "field", "data-testid": "fallback-group" },
    h("legend", {}, "Fallback policy: when a failed provider falls back to the default sender"),
    radios.map((r) => r.wrap));
  const country = field("Default country", { name: "default_country", value: stored.default_country || "",
    autocomplete: "off", "data-testid": "default-country",
    hint: "An ISO 3166 alpha-2 code such as US or GB: numbers without + or 00 are read as numbers " +
      "of this country. Empty: every number must start with + or 00 and its country code." });
  const form = h("form", { "data-testid": "phone-settings-form" }, group, country.wrap,
    h("div", { class: "actions-row" },
      h("button", { type: "submit", "data-testid": "save-phone-settings" }, "Save policy")));
  onSubmit(form, { fallback: group, default_country: country.input }, async () => {
    const chosen = radios.find((r) => r.input.checked);
    const body = { default_country: country.input.value.trim() || null };
    if (chosen) body.fallback = chosen.input.value;
    const saved = await ctx.api("PATCH", SETTINGS, body);
    country.input.value = saved.default_country || "";
    return saved;
  }, (saved) => `Saved: fallback ${saved.fallback}, default country ${saved.default_country || "none"}.`);
  return form;
}

async function testMessage(ctx, state) {
  const to = field("Phone number", { name: "to", type: "text", inputmode: "tel", autocomplete: "off", "data-testid": "test-to",
    hint: "In international format, e.g. +14155552671; a national number only with a default country (above)." });
  const method = field("Delivery method", { name: "delivery_method", "data-testid": "test-method" }, "select",
    [["text", "SMS"], ["voice", "Voice"]]);
  const report = h("div", { "data-testid": "test-report", "aria-live": "polite" });
  const via = state.provider
    ? `with the phone provider, ${labelOf(UPE_NAMES, state.provider.name)} (its own test: it never falls back)`
    : "through the tenant's live configuration (POST /api/v2/phone/messages)";
  const form = h("form", { "data-testid": "test-form" }, h("p", { class: "muted" }, `Sent ${via}.`),
    to.wrap, method.wrap,
    h("div", { class: "actions-row" }, h("button", { type: "submit", "data-testid": "send-test" }, "Send test message")),
    report);
  onSubmit(form, { to: to.input, recipient: to.input, delivery_method: method.input, channel: method.input }, async () => {
    report.replaceChildren();
    const channel = method.input.value === "voice" ? "voice" : "sms";
    let rows;
    if (state.provider) {
      const answer = await ctx.api("POST", `${PROVIDERS}/${encodeURIComponent(state.provider.id)}/try`,
        { to: to.input.value.trim(), delivery_method: method.input.value });
      rows = [["Status", answer.status], ["Message", answer.message], ["Delivery id", answer.delivery_id]];
    } else {
      const answer = await ctx.api("POST", "/api/v2/phone/messages",
        { to: to.input.value.trim(), code: "123456", channel });
      rows = [
        ["Status", answer.status], ["Delivered by", answer.delivered_by || "nobody"],
        ["Reason", [answer.reason, answer.detail].filter(Boolean).join(": ") || "none"],
        ["Providers tried", (answer.path || []).join(" → ") || "none"], ["Delivery id", answer.id],
      ];
    }
    report.append(h("h3", {}, "Report"), h("dl", { class: "report" },
      rows.map(([k, v]) => [h("dt", {}, k), h("dd", { "data-testid": `report-${k.toLowerCase().replace(/ /g, "-")}` }, String(v ?? ""))])));
    // a failed test says where to act, not only what the provider answered
    const next = {
      failed: "Not delivered: the reason names the provider that failed. Complete its settings " +
        "on this page (Twilio settings, Phone provider) or fix the action bound on the Actions " +
        "page, then send again. The Logs page keeps the event.",
      rejected: "Refused before any provider was tried: the reason names the rule, such as a " +
        "message type not enabled above.",
    }[rows[0][1]];
    if (next) report.append(h("p", { class: "hint", "data-testid": "report-next" }, next));
  });
  return form;
}
