// "Logs": the tenant's log events from GET /api/v2/logs, searched with Auth0's query syntax and
// paged, each row expandable to the event's JSON (shown as text); above them a chart of the
// messages of the last 24 hours per hour, by outcome and provider, built from the delivery
// events (gd_send_sms/_voice and their _failure; details.provider and details.status).

import { ApiError } from "../lib/api.js";
import { stackedBars } from "../lib/chart.js";
import { clearErrors, field, fieldError, fill, formatDate, h, pageError, visible } from "../lib/dom.js";

const LOGS = "/api/v2/logs";
const PER_PAGE = 50;
const DELIVERY_TYPES = ["gd_send_sms", "gd_send_sms_failure", "gd_send_voice", "gd_send_voice_failure"];
const HOUR_MS = 3600 * 1000;
const CHART_PAGES = 10; // the API pages through the first 1,000 matches (100 per page)

export default {
  id: "logs",
  title: "Logs",
  async render(root, ctx) {
    const chart = h("section", { class: "card", "aria-labelledby": "chart-title", "data-testid": "logs-chart" },
      h("h2", { id: "chart-title" }, "Messages per hour, last 24 hours"),
      h("div", { "data-testid": "chart-body" }, h("p", { class: "loading" }, "Loading…")));
    const search = field("Search", {
      type: "search", name: "q", "data-testid": "logs-q", autocomplete: "off", spellcheck: "false",
      hint: "Auth0's query syntax, e.g. type:gd_send_sms_failure, user_name:\"+14155552671\", " +
        "date:[2026-01-01 TO *], type:gd_send_sms AND NOT ip:10.*. Empty: every event.",
    });
    const form = h("form", { role: "search", "data-testid": "logs-search" }, search.wrap,
      h("div", { class: "actions-row" },
        h("button", { type: "submit", "data-testid": "logs-search-button" }, "Search"),
        h("button", { type: "button", class: "secondary", "data-testid": "logs-refresh" }, "Refresh")));
    const results = h("div", { "data-testid": "logs-results", "aria-live": "polite" });
    root.append(h("h1", {}, "Logs"), chart, h("section", { class: "card", "aria-label": "Log events" }, form, results));

    let page = 0;
    const show = async () => {
      clearErrors(form);
      const params = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE), include_totals: "true" });
      const q = search.input.value.trim();
      if (q) params.set("q", q);
      try {
        const answer = await ctx.api("GET", `${LOGS}?${params}`);
        fill(results, table(answer, (delta) => { page += delta; show(); }));
      } catch (exc) {
        if (exc instanceof ApiError && exc.status === 401) throw exc;
        fill(results);
        if (exc instanceof ApiError && exc.field === "q") fieldError(search.input, exc);
        else pageError(results, exc);
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      page = 0;
      show();
    });
    form.querySelector("[data-testid=logs-refresh]").addEventListener("click", () => {
      show();
      drawChart(ctx, chart.querySelector("[data-testid=chart-body]"));
    });
    await Promise.all([show(), drawChart(ctx, chart.querySelector("[data-testid=chart-body]"))]);
  },
};

function table(answer, move) {
  const { logs, start, total, length } = answer;
  if (!logs.length) return h("p", { class: "muted", "data-testid": "logs-empty" }, "No log events match.");
  const rows = [];
  logs.forEach((event, i) => {
    const detailsId = `log-details-${start + i}`;
    const details = h("tr", { id: detailsId, hidden: true, "data-testid": "log-details" },
      h("td", { colspan: 5 }, h("pre", { class: "output" }, visible(JSON.stringify(event, null, 2)))));
    const button = h("button", {
      type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": detailsId,
      "data-testid": "log-expand", "aria-label": `Details of ${visible(event.type || "event", false)} at ${formatDate(event.date)}`,
    }, "Details");
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      details.hidden = !open;
    });
    rows.push(h("tr", { "data-testid": "log-row" },
      h("td", { class: "mono", "data-testid": "log-type" }, visible(event.type || "", false)),
      h("td", { "data-testid": "log-description" }, visible(event.description || "", false)),
      h("td", { class: "mono", "data-testid": "log-user" }, visible(event.user_name || "", false),
        event.user_id ? h("div", { class: "muted", "data-testid": "log-user-id" }, visible(event.user_id, false)) : null),
      h("td", { "data-testid": "log-date" }, formatDate(event.date)),
      h("td", {}, button)), details);
  });
  const from = start + 1;
  const to = start + length;
  return [
    h("p", { "data-testid": "logs-count" }, `Events ${from} to ${to} of ${total}${total >= 1000 ? " (the first 1,000 can be paged)" : ""}.`),
    h("table", {},
      h("thead", {}, h("tr", {}, ["Type", "Description", "User", "Date", "Event"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)),
    h("div", { class: "actions-row" },
      h("button", { type: "button", class: "secondary", "data-testid": "logs-prev", disabled: start === 0, onClick: () => move(-1) }, "Previous page"),
      h("button", { type: "button", class: "secondary", "data-testid": "logs-next", disabled: to >= Math.min(total, 1000), onClick: () => move(1) }, "Next page")),
  ];
}

// The delivery events of the last 24 hours, counted per hour and (outcome, provider).
async function drawChart(ctx, target) {
  const now = Date.now();
  const first = Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
  const since = new Date(first).toISOString();
  const q = `type:(${DELIVERY_TYPES.join(" OR ")}) AND date:["${since}" TO *]`;
  const events = [];
  let total = 0;
  try {
    for (let page = 0; page < CHART_PAGES; page += 1) {
      const params = new URLSearchParams({ q, page: String(page), per_page: "100", include_totals: "true" });
      const answer = await ctx.api("GET", `${LOGS}?${params}`);
      events.push(...answer.logs);
      total = answer.total;
      if (events.length >= total || !answer.logs.length) break;
    }
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) throw exc;
    fill(target);
    pageError(target, exc);
    return;
  }
  const buckets = [];
  for (let i = 0; i < 24; i += 1) {
    const hour = new Date(first + i * HOUR_MS);
    buckets.push({ label: `${String(hour.getUTCHours()).padStart(2, "0")}:00`, values: {} });
  }
  const series = new Map();
  for (const event of events) {
    const when = Date.parse(event.date);
    const index = Math.floor((when - first) / HOUR_MS);
    if (!(index >= 0 && index < 24)) continue;
    const details = event.details || {};
    const outcome = String(event.type).endsWith("_failure") ? "failed"
      : details.status === "stored" ? "stored" : "delivered";
    const provider = details.provider ? String(details.provider) : "no provider";
    const key = `${outcome} · ${provider}`;
    if (!series.has(key)) series.set(key, { key, label: visible(key, false) });
    buckets[index].values[key] = (buckets[index].values[key] || 0) + 1;
  }
  const ordered = [...series.values()].sort((a, b) => a.key.localeCompare(b.key));
  const counted = buckets.reduce((sum, b) => sum + Object.values(b.values).reduce((x, y) => x + y, 0), 0);
  const current = Object.values(buckets[23].values).reduce((x, y) => x + y, 0);
  const parts = ordered.map((one) => `${one.label}: ${buckets.reduce((sum, b) => sum + (b.values[one.key] || 0), 0)}`);
  const summary = `${counted} message ${counted === 1 ? "attempt" : "attempts"} in the last 24 hours, ${current} in the hour from ` +
    `${buckets[23].label} UTC` + (parts.length ? ` (${parts.join("; ")})` : "") +
    (total > events.length ? `; counted from the newest ${events.length} of ${total} events.` : ".");
  fill(target, stackedBars({
    id: "messages-per-hour", title: "Messages per hour by outcome and provider, last 24 hours (UTC)",
    summary, buckets, series: ordered, testid: "chart",
  }));
}
