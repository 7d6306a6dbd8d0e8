// A stacked bar chart as inline SVG (no library): one bar per bucket, one coloured part per
// series. Accessible: the <svg> is role="img" with a <title> and a <desc> summing it up, and
// the same numbers are in a real <table> below it (screen readers and keyboard users read the
// table; the picture is for the eye). Labels are text nodes: series names are tenant data.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f6f43", "#2b5fab", "#b3261e", "#8a5a00", "#6b3fa0", "#00727a", "#a33b72", "#4d5566"];
const WIDTH = 720;
const HEIGHT = 220;
const PAD = { left: 40, right: 8, top: 10, bottom: 28 };

function s(tag, attrs, ...children) {
  return h(tag, { ...attrs, ns: SVG }, ...children);
}

// buckets: [{label, values: {seriesKey: count}}]; series: [{key, label}] (colours assigned in
// order). Returns a <figure data-testid=testid> holding the svg, a legend and the table.
export function stackedBars({ id, title, summary, buckets, series, labelEvery = 3, testid = "chart" }) {
  const totals = buckets.map((b) => series.reduce((sum, one) => sum + (b.values[one.key] || 0), 0));
  const top = Math.max(1, ...totals);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, buckets.length);
  const barW = Math.max(2, step * 0.7);
  const y = (value) => PAD.top + plotH - (value / top) * plotH;
  const colour = new Map(series.map((one, i) => [one.key, PALETTE[i % PALETTE.length]]));

  const bars = [];
  buckets.forEach((bucket, i) => {
    let base = 0;
    const x = PAD.left + i * step + (step - barW) / 2;
    for (const one of series) {
      const value = bucket.values[one.key] || 0;
      if (!value) continue;
      bars.push(s("rect", {
        x: x.toFixed(1), y: y(base + value).toFixed(1), width: barW.toFixed(1),
        height: Math.max(0.5, y(base) - y(base + value)).toFixed(1), fill: colour.get(one.key),
      }, s("title", {}, `${bucket.label}: ${one.label} ${value}`)));
      base += value;
    }
    if (i % labelEvery === 0 || i === buckets.length - 1) {
      bars.push(s("text", { x: (x + barW / 2).toFixed(1), y: HEIGHT - 8, "text-anchor": "middle",
        "font-size": 11, fill: "#4d5566" }, bucket.label));
    }
  });
  const axis = [
    s("line", { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), stroke: "#9aa3b2" }),
    s("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y(0), stroke: "#9aa3b2" }),
    s("text", { x: PAD.left - 6, y: PAD.top + 10, "text-anchor": "end", "font-size": 11, fill: "#4d5566" }, String(top)),
    s("text", { x: PAD.left - 6, y: y(0), "text-anchor": "end", "font-size": 11, fill: "#4d5566" }, "0"),
  ];
  const svg = s("svg", {
    role: "img", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: "100%", "aria-labelledby": `${id}-t ${id}-d`,
    preserveAspectRatio: "xMidYMid meet", "data-testid": `${testid}-svg`,
  }, s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, summary), axis, bars);

  const legend = h("ul", { class: "plain legend", "aria-label": "Legend" }, series.map((one) =>
    h("li", {}, s("svg", { width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" },
      s("rect", { width: 12, height: 12, fill: colour.get(one.key) })), " ", one.label)));
  const table = h("table", { "data-testid": `${testid}-table` },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Hour (UTC)"),
      series.map((one) => h("th", { scope: "col" }, one.label)), h("th", { scope: "col" }, "Total"))),
    h("tbody", {}, buckets.map((bucket, i) => h("tr", {},
      h("th", { scope: "row" }, bucket.label),
      series.map((one) => h("td", {}, String(bucket.values[one.key] || 0))),
      h("td", { "data-testid": `${testid}-total-${i}` }, String(totals[i]))))));
  return h("figure", { "data-testid": testid },
    svg,
    h("figcaption", { "data-testid": `${testid}-summary` }, summary),
    series.length ? legend : null,
    h("details", {}, h("summary", {}, "The numbers as a table"), table));
}
