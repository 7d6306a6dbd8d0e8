// "Templates": the enrollment and verification phone templates (Auth0's Unified Phone
// Experience, Liquid), their SMS and voice bodies, and a live preview per locale rendered by
// the service (POST .../templates/preview: the renderer deliveries use) a moment after typing
// stops. A body the service refuses shows the error next to it, with its line and column.

import { ApiError } from "../lib/api.js";
import { clearErrors, field, fieldError, fill, h, notice, pageError, visible } from "../lib/dom.js";
import { debounce, showError } from "../lib/forms.js";

const TEMPLATES = "/api/v2/branding/phone/templates";
const KINDS = [
  ["otp_enroll", "Enrollment", "Sent when a user enrolls a phone."],
  ["otp_verify", "Verification", "Sent when a user signs in with a phone."],
];
const LOCALES = [["en", "English (en)"], ["fr", "French (fr)"], ["fr-CA", "French, Canada (fr-CA)"],
  ["es", "Spanish (es)"], ["de", "German (de)"], ["pt-BR", "Portuguese, Brazil (pt-BR)"], ["ja", "Japanese (ja)"]];
const PREVIEW_DELAY_MS = 300;

export default {
  id: "templates",
  title: "Templates",
  async render(root, ctx) {
    root.append(h("h1", {}, "Templates"),
      h("p", { class: "muted" },
        "Liquid templates of the messages that carry a code. One body serves every language: " +
        "branch on {{ locale }} for translations. Variables: code, message_type, locale, " +
        "tenant.friendly_name, tenant.id, pause, purpose. An enabled template here wins over " +
        "the guardian factor's SMS templates; the preview uses the sample code 123456."));
    const { templates } = await ctx.api("GET", TEMPLATES);
    const locale = field("Preview locale", { name: "locale", "data-testid": "preview-locale",
      hint: "The locale the preview renders for, as a user's request would carry it." }, "select", LOCALES);
    root.append(h("div", { class: "card" }, locale.wrap));
    const editors = KINDS.map(([type, title, about]) =>
      editor(ctx, type, title, about, templates.find((t) => t.type === type) || null, locale.input));
    root.append(...editors.map((e) => e.section));
    locale.input.addEventListener("change", () => editors.forEach((e) => e.preview()));
    await Promise.all(editors.map((e) => e.preview()));
  },
};

function editor(ctx, type, title, about, stored, localeInput) {
  let template = stored;
  const body = (template && template.content && template.content.body) || {};
  const text = field("SMS text", { name: "text", rows: 4, spellcheck: "false", "data-testid": `${type}-text`,
    value: body.text || "", placeholder: "Empty: the default text, as the preview shows; Reset to default puts it here to edit" }, "textarea");
  const voice = field("Voice text", { name: "voice", rows: 4, spellcheck: "false", "data-testid": `${type}-voice`,
    value: body.voice || "", placeholder: "Empty: the default text, as the preview shows; Reset to default puts it here to edit" }, "textarea");
  const shownText = h("output", { class: "preview mono", for: text.input.id, "data-testid": `${type}-preview-text` });
  const shownVoice = h("output", { class: "preview mono", for: voice.input.id, "data-testid": `${type}-preview-voice` });
  const state = h("p", { class: "muted", "aria-live": "polite", "data-testid": `${type}-preview-state` });
  const status = h("p", { class: "muted", "data-testid": `${type}-status` },
    template ? (template.disabled ? "Saved, disabled." : "Saved, enabled.") :
      "Not created yet: deliveries use the built-in template. Saving creates it.");
  const inputs = { text: text.input, voice: voice.input, "content.body.text": text.input, "content.body.voice": voice.input };
  const form = h("form", { "data-testid": `${type}-form` },
    h("div", { class: "layout-2" },
      h("div", {}, text.wrap, voice.wrap),
      h("div", { "aria-label": "Preview", role: "group" },
        h("h3", {}, "Preview"),
        h("p", {}, h("strong", {}, "SMS: "), shownText),
        h("p", {}, h("strong", {}, "Voice: "), shownVoice),
        state)),
    h("div", { class: "actions-row" },
      h("button", { type: "submit", "data-testid": `${type}-save` }, "Save"),
      h("button", { type: "button", class: "secondary", "data-testid": `${type}-reset` }, "Reset to default")));
  const section = h("section", { class: "card", "aria-labelledby": `${type}-title`, "data-testid": `template-${type}` },
    h("h2", { id: `${type}-title` }, `${title} (${type})`), h("p", { class: "muted" }, about), status, form);

  const contentBody = () => {
    const out = {};
    if (text.input.value.trim()) out.text = text.input.value;
    if (voice.input.value.trim()) out.voice = voice.input.value;
    return out;
  };
  let asked = 0;
  const preview = async () => {
    const ticket = ++asked;
    try {
      const answer = await ctx.api("POST", `${TEMPLATES}/preview`,
        { type, locale: localeInput.value, content: { body: contentBody() } });
      if (ticket !== asked) return; // an older answer after a newer question
      clearErrors(form.querySelector(".layout-2"));
      fill(shownText, visible(answer.text));
      fill(shownVoice, visible(answer.voice));
      fill(state, `Rendered for ${answer.locale} with the code ${answer.code}.`);
    } catch (exc) {
      if (ticket !== asked) return;
      if (exc instanceof ApiError && exc.status === 401) return;
      clearErrors(form.querySelector(".layout-2"));
      const input = inputs[exc.field];
      if (input) fieldError(input, exc);
      else pageError(form, exc);
      fill(state, "The preview shows the last body that rendered.");
    }
  };
  const later = debounce(preview, PREVIEW_DELAY_MS);
  text.input.addEventListener("input", later);
  voice.input.addEventListener("input", later);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    for (const old of form.querySelectorAll(".ok-banner")) old.remove();
    const content = { body: contentBody() };
    try {
      template = template
        ? await ctx.api("PATCH", `${TEMPLATES}/${encodeURIComponent(template.id)}`, { content })
        : await ctx.api("POST", TEMPLATES, { type, content });
      fill(status, template.disabled ? "Saved, disabled." : "Saved, enabled.");
      notice(form, "Saved.");
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) return;
      showError(form, inputs, exc);
    }
  });
  form.querySelector(`[data-testid=${type}-reset]`).addEventListener("click", async () => {
    clearErrors(form);
    try {
      if (!template) template = await ctx.api("POST", TEMPLATES, { type });
      template = await ctx.api("PATCH", `${TEMPLATES}/${encodeURIComponent(template.id)}/reset`);
      text.input.value = template.content.body.text || "";
      voice.input.value = template.content.body.voice || "";
      fill(status, template.disabled ? "Saved, disabled." : "Saved, enabled.");
      notice(form, "Back to the default.");
      await preview();
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 401) return;
      showError(form, inputs, exc);
    }
  });
  return { section, preview };
}
