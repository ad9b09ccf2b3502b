// Small dependency-free SVG charts (no CDN): values per day with axes, date labels, a legend and a title,
// followed by the same numbers as a real <table> (with caption) behind a disclosure, for screen readers and
// for anyone who prefers numbers. Used by the teacher's usage section and the administrator's usage overview.
//   CourseBots.chart(box, {title, lang, rows: [{date: "YYYY-MM-DD", key: number, ...}],
//                          series: [{key, label}], dateLabel, tableLabel, empty, showTitle})
// The first series is drawn as bars, the others as lines. Text is set with textContent only.
(function () {
  "use strict";
  var CB = window.CourseBots = window.CourseBots || {};
  var NS = "http://www.w3.org/2000/svg";
  // Colours with at least 4.5:1 contrast on white (and distinguishable by shape: bars, lines, dashes).
  var COLOURS = ["#0b57d0", "#a50e0e", "#146c2e", "#6a3d9a"];
  var DASHES = ["", "", "6 4", "2 3"];
  var counter = 0;

  function svg(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function html(name, attrs, text) {
    var node = document.createElement(name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function niceMax(value) {
    if (value <= 4) { return Math.max(1, Math.ceil(value)); }
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * power >= value) { return steps[i] * power; } }
    return 10 * power;
  }
  function dayOf(text) {  // "2026-12-02" -> a Date at UTC midnight (shown in UTC so the day never shifts)
    var parts = String(text).split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
  }
  function formatters(lang) {
    var short = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", timeZone: "UTC" });
    var long = new Intl.DateTimeFormat(lang, { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
    var number = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
    return { short: function (d) { return short.format(dayOf(d)); }, long: function (d) { return long.format(dayOf(d)); },
             number: function (v) { return v === null || v === undefined ? "—" : number.format(v); } };
  }

  function draw(figure, options, f) {
    var rows = options.rows, series = options.series;
    var width = Math.max(260, Math.floor(figure.clientWidth || 600)), height = 240;
    var left = 48, right = 12, top = 12 + 20 * Math.ceil(series.length / 2), bottom = 40;
    var plotW = width - left - right, plotH = height - top - bottom;
    var max = 0;
    rows.forEach(function (r) { series.forEach(function (s) { max = Math.max(max, Number(r[s.key]) || 0); }); });
    max = niceMax(max);
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "img",
                             class: "cb-chart", "aria-label": options.title, focusable: "false" });
    chart.appendChild(svg("title", {}, options.title));
    // legend
    series.forEach(function (s, i) {
      var x = left + (i % 2) * Math.min(220, plotW / 2), y = 14 + 20 * Math.floor(i / 2);
      if (i === 0) {
        chart.appendChild(svg("rect", { x: x, y: y - 9, width: 14, height: 10, fill: COLOURS[0] }));
      } else {
        chart.appendChild(svg("line", { x1: x, y1: y - 4, x2: x + 14, y2: y - 4, stroke: COLOURS[i % COLOURS.length],
                                        "stroke-width": 3, "stroke-dasharray": DASHES[i % DASHES.length] }));
      }
      chart.appendChild(svg("text", { x: x + 20, y: y, class: "cb-chart-label" }, s.label));
    });
    // y axis: gridlines and values
    var ticks = max <= 4 ? max : [5, 4, 3, 2].filter(function (n) { return max % n === 0; })[0] || 4;  // whole steps
    for (var t = 0; t <= ticks; t++) {
      var value = max * t / ticks, y = top + plotH - plotH * t / ticks;
      chart.appendChild(svg("line", { x1: left, y1: y, x2: left + plotW, y2: y, stroke: t ? "#d9d9d9" : "#1a1a1a",
                                      "stroke-width": 1 }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "cb-chart-label" },
                            f.number(value)));
    }
    chart.appendChild(svg("line", { x1: left, y1: top, x2: left, y2: top + plotH, stroke: "#1a1a1a", "stroke-width": 1 }));
    // x axis: one band per day, a date label every few days so labels never overlap
    var band = plotW / Math.max(1, rows.length);
    var every = Math.max(1, Math.ceil(64 / band));
    rows.forEach(function (r, i) {
      if (i % every !== 0) { return; }
      var x = left + band * (i + 0.5);
      chart.appendChild(svg("line", { x1: x, y1: top + plotH, x2: x, y2: top + plotH + 4, stroke: "#1a1a1a" }));
      chart.appendChild(svg("text", { x: x, y: top + plotH + 18, "text-anchor": "middle", class: "cb-chart-label" },
                            f.short(r.date)));
    });
    chart.appendChild(svg("text", { x: left + plotW / 2, y: height - 4, "text-anchor": "middle", class: "cb-chart-label" },
                          options.dateLabel));
    // first series: bars, each with its value as a tooltip
    var first = series[0];
    rows.forEach(function (r, i) {
      var v = Number(r[first.key]) || 0, h = plotH * v / max;
      var bar = svg("rect", { x: left + band * i + band * 0.15, y: top + plotH - h, width: Math.max(1, band * 0.7),
                              height: h, fill: COLOURS[0] });
      bar.appendChild(svg("title", {}, f.long(r.date) + ": " + f.number(v) + " " + first.label));
      chart.appendChild(bar);
    });
    // further series: lines with points
    series.slice(1).forEach(function (s, j) {
      var colour = COLOURS[(j + 1) % COLOURS.length];
      var points = rows.map(function (r, i) {
        return (left + band * (i + 0.5)).toFixed(1) + "," + (top + plotH - plotH * (Number(r[s.key]) || 0) / max).toFixed(1);
      });
      chart.appendChild(svg("polyline", { points: points.join(" "), fill: "none", stroke: colour, "stroke-width": 2,
                                          "stroke-dasharray": DASHES[(j + 1) % DASHES.length] }));
    });
    return chart;
  }

  function table(options, f) {
    var details = html("details", { class: "cb-chart-table" });
    details.appendChild(html("summary", {}, options.tableLabel));
    var wrap = html("div", { class: "cb-table-wrap", role: "region", "aria-label": options.title, tabindex: "0" });
    var tableNode = html("table", { class: "cb-table" });
    tableNode.appendChild(html("caption", {}, options.title));
    var head = html("thead"), tr = html("tr");
    tr.appendChild(html("th", { scope: "col" }, options.dateLabel));
    options.series.forEach(function (s) { tr.appendChild(html("th", { scope: "col" }, s.label)); });
    head.appendChild(tr);
    tableNode.appendChild(head);
    var body = html("tbody");
    options.rows.forEach(function (r) {
      var row = html("tr");
      row.appendChild(html("th", { scope: "row" }, f.long(r.date)));
      options.series.forEach(function (s) { row.appendChild(html("td", {}, f.number(r[s.key]))); });
      body.appendChild(row);
    });
    tableNode.appendChild(body);
    wrap.appendChild(tableNode);
    details.appendChild(wrap);
    return details;
  }

  CB.chart = function (box, options) {
    var f = formatters(options.lang || document.documentElement.lang || "en");
    box.textContent = "";
    if (!options.rows || !options.rows.length) { box.appendChild(html("p", {}, options.empty || "")); return; }
    var figure = html("figure", { class: "cb-chart-figure", id: "cb-chart-" + (++counter) });
    if (options.showTitle !== false) {  // a page whose heading already names the chart passes showTitle: false
      figure.appendChild(html("figcaption", { class: "cb-chart-title" }, options.title));
    }
    box.appendChild(figure);
    var drawn = draw(figure, options, f);
    figure.appendChild(drawn);
    box.appendChild(table(options, f));
    var lastWidth = figure.clientWidth, timer = null;
    function redraw() {
      if (!figure.isConnected) { window.removeEventListener("resize", onResize); return; }
      if (figure.clientWidth === lastWidth || !figure.clientWidth) { return; }
      lastWidth = figure.clientWidth;
      var next = draw(figure, options, f);
      figure.replaceChild(next, drawn);
      drawn = next;
    }
    function onResize() { clearTimeout(timer); timer = setTimeout(redraw, 150); }
    window.addEventListener("resize", onResize);
  };
})();
