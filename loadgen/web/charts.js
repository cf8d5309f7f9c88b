// milvus-loadgen: live charts under the Vector DB tab's table (served at ./loadgen/charts.js, added to Locust's page).
// Plain inline SVG, no library: the page talks only to the UI's own server. Data: ./loadgen/charts.json
// (loadgen/web/charts.py), whose points are the figures the tab's table shows. Each line carries data-series (its
// name in charts.py's series_names), data-last (its latest value) and data-count (its points), for tests and tooling.
(function () {
  "use strict";
  var BOX_ID = "loadgen-charts", POLL_MS = 2000, W = 440, H = 170, PAD = { l: 52, r: 10, t: 22, b: 26 };
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = { sync: "#1f77b4", async: "#ff7f0e", fanout: "#9467bd", target: "#7f7f7f", achieved: "#2ca02c",
    server: "#d62728" };
  var EXTRA = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  var last = null, timer = null;

  function activeTab() {
    var t = document.querySelector('[role="tab"][aria-selected="true"]');
    return t ? t.textContent.trim() : "";
  }

  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3); }

  // lines: [{name, label, color, dash, values: [[t, v], ...]}]
  function chart(title, unit, lines) {
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "data-chart": title });
    svg.style.cssText = "background:#fff;border:1px solid #ddd;margin:4px;font:11px sans-serif;vertical-align:top";
    svg.appendChild(el("text", { x: PAD.l, y: 14, "font-weight": "bold" }, title));
    var ts = [], vs = [0];
    lines.forEach(function (s) { s.values.forEach(function (p) { ts.push(p[0]); vs.push(p[1]); }); });
    if (!ts.length) { svg.appendChild(el("text", { x: PAD.l, y: H / 2 }, "no data yet")); return svg; }
    var t0 = Math.min.apply(null, ts), t1 = Math.max.apply(null, ts), vmax = Math.max.apply(null, vs) * 1.1 || 1;
    if (t1 === t0) t1 = t0 + 1;
    var x = function (t) { return PAD.l + (W - PAD.l - PAD.r) * (t - t0) / (t1 - t0); };
    var y = function (v) { return H - PAD.b - (H - PAD.t - PAD.b) * v / vmax; };
    svg.appendChild(el("line", { x1: PAD.l, y1: y(0), x2: W - PAD.r, y2: y(0), stroke: "#999" }));
    svg.appendChild(el("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: y(0), stroke: "#999" }));
    svg.appendChild(el("text", { x: PAD.l - 4, y: PAD.t + 8, "text-anchor": "end" }, fmt(vmax)));
    svg.appendChild(el("text", { x: PAD.l - 4, y: y(0), "text-anchor": "end" }, "0 " + unit));
    svg.appendChild(el("text", { x: PAD.l, y: H - 12 }, t0.toFixed(0) + " s"));
    svg.appendChild(el("text", { x: W - PAD.r, y: H - 12, "text-anchor": "end" }, t1.toFixed(0) + " s"));
    var legendX = PAD.l, legendRow = 0;
    lines.forEach(function (s) {
      if (!s.values.length) return;
      var pts = s.values.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ");
      var lastValue = s.values[s.values.length - 1][1];
      var line = el("polyline", { points: pts, fill: "none", stroke: s.color, "stroke-width": 1.6,
        "data-series": s.name, "data-last": String(lastValue), "data-count": String(s.values.length) });
      if (s.dash) line.setAttribute("stroke-dasharray", "4 3");
      line.appendChild(el("title", {}, s.label + ": " + fmt(lastValue) + " " + unit));
      svg.appendChild(line);
      var text = (s.dash ? "- - " : "\u2014 ") + s.label + " " + fmt(lastValue), width = 10 + 5.6 * text.length;
      if (legendX > PAD.l && legendX + width > W - PAD.r) { legendX = PAD.l; legendRow++; }  // wrap the legend
      svg.appendChild(el("text", { x: legendX, y: H - 2 + 12 * legendRow, fill: s.color }, text));
      legendX += width;
    });
    svg.setAttribute("height", H + 12 * legendRow);
    svg.setAttribute("viewBox", "0 0 " + W + " " + (H + 12 * legendRow));
    return svg;
  }

  function clientColor(row, j) {  // a request row "<type> <name>": its flavour's colour, as in the latency charts
    var type = row.split(" ")[0];
    if (/-async-fanout$/.test(type)) return COLORS.fanout;
    if (/-async$/.test(type)) return COLORS.async;
    return /^(pymilvus|langchain|llamaindex)$/.test(type) ? COLORS.sync : EXTRA[j % EXTRA.length];
  }

  function values(points, get) {
    var out = [];
    points.forEach(function (p) {
      var v; try { v = get(p); } catch (e) { v = undefined; }
      if (typeof v === "number") out.push([p.t, v]);
    });
    return out;
  }

  function keysOf(points, field) {  // in the order the table lists them (first seen first)
    var seen = [];
    points.forEach(function (p) { Object.keys(p[field] || {}).forEach(function (k) { if (seen.indexOf(k) < 0) seen.push(k); }); });
    return seen;
  }

  function render(doc, box) {
    var points = doc.points || [], charts = [];
    keysOf(points, "latency").forEach(function (row) {  // sync beside async, p50 dashed, p99 solid
      var lines = [];
      ["sync", "async"].forEach(function (side) {
        ["p50_ms", "p99_ms"].forEach(function (q) {
          lines.push({ name: "latency|" + row + "|" + side + "|" + q, label: side + " " + q.replace("_ms", ""),
            color: COLORS[side], dash: q === "p50_ms", values: values(points, function (p) { return p.latency[row][side][q]; }) });
        });
      });
      charts.push(chart(row + " latency", "ms", lines));
    });
    var recallRows = keysOf(points, "recall"), recent = "last " + (doc.recent_s || 5) + " s";
    if (recallRows.length) {  // the mean so far (solid) and the last seconds' mean (dashed), per row and side
      var lines = [], i = 0;
      recallRows.forEach(function (row) {
        ["sync", "async"].forEach(function (side) {
          var color = i < 2 ? COLORS[side] : EXTRA[i % EXTRA.length];
          lines.push({ name: "recall|" + row + "|" + side, label: row + " " + side, color: color,
            values: values(points, function (p) { return p.recall[row][side]; }) });
          lines.push({ name: "recall_recent|" + row + "|" + side, label: recent, color: color, dash: true,
            values: values(points, function (p) { return p.recall_recent[row][side]; }) });
          i++;
        });
      });
      charts.push(chart("recall (mean so far; dashed: " + recent + ")", "", lines));
    }
    if (points.some(function (p) { return p.open_loop; })) {
      charts.push(chart("open model: target vs achieved", "req/s", ["target_rate", "achieved_rate"].map(function (k) {
        return { name: "open_loop|" + k, label: k.replace("_rate", ""), color: COLORS[k.replace("_rate", "")], dash: k === "target_rate",
          values: values(points, function (p) { return p.open_loop[k]; }) };
      })));
    }
    keysOf(points, "server").forEach(function (fn) {
      var clients = {};
      points.forEach(function (p) { Object.keys(((p.server || {})[fn] || {}).client_p99_ms || {}).forEach(function (c) { clients[c] = 1; }); });
      var lines = [{ name: "server|" + fn + "|server", label: "server", color: COLORS.server, dash: true,
        values: values(points, function (p) { return p.server[fn].server_p99_ms; }) }];
      Object.keys(clients).sort().forEach(function (c, j) {
        lines.push({ name: "server|" + fn + "|" + c, label: c, color: clientColor(c, j),
          values: values(points, function (p) { return p.server[fn].client_p99_ms[c]; }) });
      });
      charts.push(chart(fn + ": client vs server p99", "ms", lines));
    });
    var links = doc.links || {}, head = document.createElement("p");
    head.style.cssText = "font:13px sans-serif;margin:8px 4px";
    Object.keys(links).forEach(function (name) {
      var a = document.createElement("a");
      a.href = links[name]; a.textContent = name; a.target = "_blank"; a.rel = "noopener";
      a.style.marginRight = "1.5em";
      head.appendChild(a);
    });
    head.appendChild(document.createTextNode(points.length + " points, figures of the run so far (as the table)"));
    box.replaceChildren(head);
    charts.forEach(function (c) { box.appendChild(c); });
    box.setAttribute("data-points", String(points.length));
  }

  function place() {
    var box = document.getElementById(BOX_ID);
    if (activeTab() !== "Vector DB") { if (box) box.remove(); return null; }
    var table = document.querySelector("table");
    if (!table) return null;
    var anchor = table.closest(".MuiTableContainer-root") || table;
    if (!box) { box = document.createElement("div"); box.id = BOX_ID; box.style.cssText = "padding:8px 0"; }
    if (anchor.nextSibling !== box) anchor.after(box);
    if (last && !box.hasChildNodes()) render(last, box);
    return box;
  }

  function poll() {
    var box = place();
    if (!box) return;
    fetch("./loadgen/charts.json", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc) return;
        last = doc;
        var b = place();
        if (b) render(doc, b);
      }).catch(function () { /* the UI may be restarting: the next poll tries again */ });
  }

  setInterval(place, 500);  // React re-renders the tab: put the box back under the table
  timer = setInterval(poll, POLL_MS);
  poll();
})();
