// "Outbox": what the outbox default sender holds for this tenant (GET /api/v2/phone/outbox:
// codes and numbers come masked from the API) and how much of the evaluation cap is used.

import { fill, formatDate, h, visible } from "../lib/dom.js";

const OUTBOX = "/api/v2/phone/outbox";
const PER_PAGE = 50;

export default {
  id: "outbox",
  title: "Outbox",
  async render(root, ctx) {
    root.append(h("h1", {}, "Outbox"),
      h("p", { class: "muted" },
        "The default sender of a fresh install stores messages instead of sending them, up to " +
        "a lifetime cap per tenant, like Auth0's evaluation sender: configure a provider on the " +
        "Phone message page to reach phones. Codes and phone numbers are masked here; the " +
        "operator's phone-actions outbox command shows them."));
    const usage = h("section", { class: "card", "aria-labelledby": "usage-title", "data-testid": "outbox-usage" },
      h("h2", { id: "usage-title" }, "Evaluation messages"));
    const list = h("section", { class: "card", "aria-labelledby": "held-title" },
      h("h2", { id: "held-title" }, "Held messages"));
    const body = h("div", { "aria-live": "polite" });
    list.append(body);
    root.append(usage, list);
    let page = 0;
    const show = async () => {
      const params = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE), include_totals: "true" });
      const answer = await ctx.api("GET", `${OUTBOX}?${params}`);
      fill(usage, usage.firstChild, meter(answer.used, answer.cap));
      fill(body, held(answer, (delta) => { page += delta; show(); }));
    };
    await show();
  },
};

function meter(used, cap) {
  const id = "outbox-meter";
  const left = Math.max(0, cap - used);
  const bar = h("meter", { id, min: 0, max: cap, low: Math.floor(cap * 0.7), high: Math.floor(cap * 0.9),
    optimum: 0, value: used, "data-testid": "outbox-meter" }, `${used} of ${cap}`);
  bar.style.width = "100%"; // CSSOM, not a style attribute: allowed by the console's CSP
  bar.style.maxWidth = "32rem";
  bar.style.height = "1.25rem";
  return [
    h("div", { class: "field" },
      h("label", { for: id, "data-testid": "outbox-used" }, `${used} of ${cap} evaluation messages used`), bar),
    h("p", { class: "muted" }, left
      ? `${left} left. Once all are used, the default sender refuses this tenant's messages.`
      : "None left: the default sender refuses this tenant's messages. Configure a provider."),
  ];
}

function held(answer, move) {
  const { messages, start, total, length } = answer;
  if (!messages.length) {
    return h("p", { class: "muted", "data-testid": "outbox-empty" }, "The outbox holds no message " +
      "of this tenant yet: send one with Send a test message on the ",
    h("a", { href: "#/phone" }, "Phone message"), " page.");
  }
  return [
    h("p", { "data-testid": "outbox-count" }, `Messages ${start + 1} to ${start + length} of ${total}, newest first.`),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Date", "Recipient", "Channel", "Text"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, messages.map((m) => h("tr", { "data-testid": "outbox-row" },
        h("td", {}, formatDate(m.created_at)),
        h("td", { class: "mono", "data-testid": "outbox-recipient" }, visible(m.recipient, false)),
        h("td", {}, visible(m.channel, false)),
        h("td", { "data-testid": "outbox-text" }, visible(m.text, false)))))),
    h("div", { class: "actions-row" },
      h("button", { type: "button", class: "secondary", disabled: start === 0, onClick: () => move(-1) }, "Previous page"),
      h("button", { type: "button", class: "secondary", disabled: start + length >= total, onClick: () => move(1) }, "Next page")),
  ];
}
