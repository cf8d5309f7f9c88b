// milvus-loadgen: the Vector DB tab's live charts (under its table) and a status line above the page, added to
// Locust's page and served at ./loadgen/charts.js. Charts are drawn with uPlot, vendored and served by the UI itself
// (./loadgen/vendor/): the page talks only to the UI's own server. Data: ./loadgen/charts.json (loadgen/web/charts.py),
// whose points are the figures the tab's table shows, and the last seconds' (window); ./loadgen/status.json says
// whether a start is preparing its collections, or why it failed. A chooser picks the (layer, operation) row.
// window.loadgenCharts lets tests and tooling read what each chart holds (from the uPlot instances themselves).
(function () {
  "use strict";
  var BOX_ID = "loadgen-charts", STATUS_ID = "loadgen-status", POLL_MS = 2000, STATUS_MS = 1000, H = 220;
  var COLORS = { sync: "#1f77b4", async: "#ff7f0e", target: "#7f7f7f", achieved: "#2ca02c", server: "#d62728" };
  var EXTRA = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  var last = null, plots = {}, chosen = null;

  function activeTab() {
    var t = document.querySelector('[role="tab"][aria-selected="true"]');
    return t ? t.textContent.trim() : "";
  }

  function fmt(v) { return v == null ? "-" : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(3); }

  function keysOf(points, field) {  // in the order the table lists them (first seen first)
    var seen = [];
    points.forEach(function (p) { Object.keys(p[field] || {}).forEach(function (k) { if (seen.indexOf(k) < 0) seen.push(k); }); });
    return seen;
  }

  function get(p, path) {  // p[path[0]][path[1]]...; undefined when any step is missing
    for (var i = 0; i < path.length; i++) { if (p == null) return undefined; p = p[path[i]]; }
    return typeof p === "number" ? p : undefined;
  }

  // a chart: {key, title, unit, series: [{name, label, color, dash, path}]}
  function chartsFor(doc, row) {
    var points = doc.points || [], out = [], w = (doc.window_s || 10) + " s";
    var sides = ["sync", "async"].filter(function (s) {
      return points.some(function (p) { return get(p, ["window", row, s, "rps"]) !== undefined || get(p, ["latency", row, s, "p99_ms"]) !== undefined; });
    });
    var lat = [], rate = [];
    sides.forEach(function (s) {
      lat.push({ name: "window|" + row + "|" + s + "|p50_ms", label: s + " p50, last " + w, color: COLORS[s], width: 1, path: ["window", row, s, "p50_ms"] });
      lat.push({ name: "window|" + row + "|" + s + "|p99_ms", label: s + " p99, last " + w, color: COLORS[s], width: 2.2, path: ["window", row, s, "p99_ms"] });
      lat.push({ name: "latency|" + row + "|" + s + "|p50_ms", label: s + " p50, run", color: COLORS[s], width: 1, dash: [2, 3], path: ["latency", row, s, "p50_ms"] });
      lat.push({ name: "latency|" + row + "|" + s + "|p99_ms", label: s + " p99, run", color: COLORS[s], width: 1.6, dash: [6, 4], path: ["latency", row, s, "p99_ms"] });
      rate.push({ name: "window|" + row + "|" + s + "|rps", label: s + ", last " + w, color: COLORS[s], width: 2, path: ["window", row, s, "rps"] });
    });
    if (lat.length) out.push({ key: "latency", title: row + ": latency, ms (solid: last " + w + "; dashed: the run)", unit: "ms", series: lat });
    if (rate.length) out.push({ key: "rate", title: row + ": req/s, last " + w, unit: "req/s", series: rate });
    var recall = [], recent = "last " + (doc.recent_s || 5) + " s";
    ["sync", "async"].forEach(function (s) {
      if (!points.some(function (p) { return get(p, ["recall", row, s]) !== undefined; })) return;
      recall.push({ name: "recall|" + row + "|" + s, label: s + " mean, run", color: COLORS[s], width: 1.6, dash: [6, 4], path: ["recall", row, s] });
      recall.push({ name: "recall_recent|" + row + "|" + s, label: s + " mean, " + recent, color: COLORS[s], width: 2.2, path: ["recall_recent", row, s] });
    });
    if (recall.length) out.push({ key: "recall", title: row + ": recall (solid: " + recent + "; dashed: the run)", unit: "recall", series: recall });
    if (points.some(function (p) { return p.open_loop; })) {
      out.push({ key: "open", title: "open model: target vs achieved", unit: "req/s", series: ["target", "achieved"].map(function (k) {
        return { name: "open_loop|" + k + "_rate", label: k, color: COLORS[k], width: 2, dash: k === "target" ? [6, 4] : null, path: ["open_loop", k + "_rate"] };
      }) });
    }
    keysOf(points, "server").forEach(function (fn) {
      var mine = points.some(function (p) { var e = (p.server || {})[fn]; return e && (e.rows || []).indexOf(row) >= 0; });
      if (!mine) return;
      var clients = [];
      points.forEach(function (p) { Object.keys(((p.server || {})[fn] || {}).client_p99_ms || {}).forEach(function (c) { if (clients.indexOf(c) < 0) clients.push(c); }); });
      var series = [{ name: "server|" + fn + "|server", label: "server", color: COLORS.server, width: 2, dash: [6, 4], path: ["server", fn, "server_p99_ms"] }];
      clients.sort().forEach(function (c, j) {
        series.push({ name: "server|" + fn + "|" + c, label: c, color: EXTRA[j % EXTRA.length], width: 1.6, path: ["server", fn, "client_p99_ms", c] });
      });
      out.push({ key: "server " + fn, title: "Milvus " + fn + ": client vs server p99, ms (the run)", unit: "ms", series: series });
    });
    out.forEach(function (c) {  // a series with no point yet (a side without recall) is left out
      c.series = c.series.filter(function (s) { return points.some(function (p) { return get(p, s.path) !== undefined; }); });
    });
    return out.filter(function (c) { return c.series.length; });
  }

  function tooltip() {  // the values under the cursor, next to it
    var tip;
    return { hooks: {
      init: function (u) {
        tip = document.createElement("div");
        tip.className = "loadgen-tip";
        tip.style.cssText = "position:absolute;pointer-events:none;background:rgba(255,255,255,.95);border:1px solid #bbb;" +
          "padding:4px 6px;font:11px sans-serif;display:none;z-index:10;white-space:nowrap";
        u.over.appendChild(tip);
      },
      setCursor: function (u) {
        var i = u.cursor.idx;
        if (i == null) { tip.style.display = "none"; return; }
        var lines = ["<b>" + fmt(u.data[0][i]) + " s</b>"];
        u.series.forEach(function (s, k) { if (k && s.show && u.data[k][i] != null) lines.push('<span style="color:' + s.stroke() + '">' + s.label + ": " + fmt(u.data[k][i]) + "</span>"); });
        tip.innerHTML = lines.join("<br>");
        tip.style.display = "block";
        tip.style.left = Math.min(u.cursor.left + 12, u.over.clientWidth - tip.offsetWidth) + "px";
        tip.style.top = Math.max(u.cursor.top - tip.offsetHeight - 8, 0) + "px";
      },
    } };
  }

  function draw(chart, points, host, width) {
    var xs = points.map(function (p) { return p.t; });
    var data = [xs].concat(chart.series.map(function (s) { return points.map(function (p) { var v = get(p, s.path); return v === undefined ? null : v; }); }));
    var names = chart.series.map(function (s) { return s.name; }).join(",");
    var plot = plots[chart.key];
    if (plot && plot.names === names && plot.u.root.parentNode.parentNode === host) {
      plot.u.setData(data, !plot.zoom);
      if (plot.zoom) plot.u.setScale("x", { min: plot.zoom[0], max: plot.zoom[1] });
      return plot;
    }
    if (plot) { plot.u.root.parentNode.remove(); plot.u.destroy(); }
    plot = { names: names, zoom: null, series: chart.series };
    var opts = {
      title: chart.title, width: width, height: H, plugins: [tooltip()], legend: { live: false },
      scales: { x: { time: false } },
      axes: [{ label: "seconds since the test began", grid: { stroke: "#eee" } },
        { label: chart.unit, grid: { stroke: "#eee" }, size: 60, values: function (u, vals) { return vals.map(fmt); } }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      series: [{ label: "s" }].concat(chart.series.map(function (s) {
        return { label: s.label, stroke: s.color, width: s.width, dash: s.dash || undefined, spanGaps: true, points: { show: false } };
      })),
      hooks: { setSelect: [function (u) {  // drag to zoom into seconds; double-click to see the whole run again
        if (u.select.width > 5) {
          plot.zoom = [u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x")];
          u.setScale("x", { min: plot.zoom[0], max: plot.zoom[1] });
        }
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      }] },
    };
    var div = document.createElement("div");
    div.setAttribute("data-chart", chart.title);
    div.style.cssText = "background:#fff;border:1px solid #ddd";
    host.appendChild(div);
    plot.u = new window.uPlot(opts, data, div);
    plot.u.over.addEventListener("dblclick", function () { plot.zoom = null; plot.u.setData(plot.u.data, true); });
    plots[chart.key] = plot;
    return plot;
  }

  function render(doc, box) {
    var points = doc.points || [];
    var rows = keysOf(points, "window").concat(keysOf(points, "latency")).filter(function (r, i, a) { return a.indexOf(r) === i; });
    if (rows.indexOf(chosen) < 0) chosen = rows[0] || null;
    var head = box.querySelector(".loadgen-head"), host = box.querySelector(".loadgen-plots");
    if (!head) {
      head = document.createElement("p"); head.className = "loadgen-head"; head.style.cssText = "font:13px sans-serif;margin:8px 4px";
      host = document.createElement("div"); host.className = "loadgen-plots";
      host.style.cssText = "display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start";
      box.replaceChildren(head, host);
    }
    var select = head.querySelector("select");
    if (!select) {
      head.appendChild(document.createTextNode("Chart of "));
      select = document.createElement("select"); select.id = "loadgen-row";
      select.addEventListener("change", function () { chosen = select.value; if (last) render(last, box); });
      head.appendChild(select);
      var links = doc.links || {};
      Object.keys(links).forEach(function (name) {
        var a = document.createElement("a");
        a.href = links[name]; a.textContent = name; a.target = "_blank"; a.rel = "noopener"; a.style.marginLeft = "1.5em";
        head.appendChild(a);
      });
      var note = document.createElement("span"); note.className = "loadgen-note"; note.style.marginLeft = "1.5em";
      head.appendChild(note);
    }
    if (select.options.length !== rows.length || rows.some(function (r, i) { return select.options[i].value !== r; })) {
      select.replaceChildren.apply(select, rows.map(function (r) { var o = document.createElement("option"); o.value = o.textContent = r; return o; }));
    }
    if (chosen) select.value = chosen;
    select.style.display = rows.length ? "" : "none";
    head.querySelector(".loadgen-note").textContent = rows.length ? points.length +
      " points; drag across a chart to zoom, double-click for the whole run" : "no figures yet";
    var charts = chosen ? chartsFor(doc, chosen) : [], keep = {};
    var width = Math.max(360, Math.min(640, Math.floor((box.clientWidth || 1200) / 2) - 12));
    charts.forEach(function (c) { keep[c.key] = draw(c, points, host, width); });
    charts.forEach(function (c) { host.appendChild(keep[c.key].u.root.parentNode); });  // in order, kept ones too
    Object.keys(plots).forEach(function (k) { if (!keep[k]) { plots[k].u.root.parentNode.remove(); plots[k].u.destroy(); delete plots[k]; } });
    box.setAttribute("data-points", String(points.length));
  }

  function place() {
    var box = document.getElementById(BOX_ID);
    if (activeTab() !== "Vector DB") { if (box) { box.remove(); Object.keys(plots).forEach(function (k) { plots[k].u.destroy(); }); plots = {}; } return null; }
    var table = document.querySelector("table");
    if (!table) return null;
    var anchor = table.closest(".MuiTableContainer-root") || table;
    if (!box) { box = document.createElement("div"); box.id = BOX_ID; box.style.cssText = "padding:8px 0"; }
    if (anchor.nextSibling !== box) anchor.after(box);
    if (last && !box.hasChildNodes()) render(last, box);
    return box;
  }

  function showStatus(s) {  // above Locust's page (outside React's root): preparing, or why the last start failed
    var bar = document.getElementById(STATUS_ID), text = s.error || (s.preparing ? "loadgen: preparing the collections: " + s.preparing.text : "");
    if (!text) { if (bar) bar.remove(); return; }
    if (!bar) {
      bar = document.createElement("div"); bar.id = STATUS_ID; bar.setAttribute("role", "status");
      var root = document.getElementById("root");
      (root ? root.parentNode : document.body).insertBefore(bar, root);
    }
    bar.setAttribute("data-phase", s.error ? "failed" : "preparing");
    bar.style.cssText = "padding:8px 16px;font:14px sans-serif;border-bottom:1px solid;" +
      (s.error ? "background:#f8d7da;color:#58151c;border-color:#f1aeb5" : "background:#cff4fc;color:#055160;border-color:#9eeaf9");
    bar.textContent = text;
  }

  function pollStatus() {
    fetch("./loadgen/status.json", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) showStatus(s); }).catch(function () { /* the UI may be restarting */ });
  }

  function poll() {
    if (!place()) return;
    fetch("./loadgen/charts.json", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc) return;
        last = doc;
        var b = place();
        if (b) render(doc, b);
      }).catch(function () { /* the UI may be restarting: the next poll tries again */ });
  }

  window.loadgenCharts = {  // what each chart holds, read off the uPlot instances: [{chart, name, last, count}]
    series: function () {
      var out = [];
      Object.keys(plots).forEach(function (k) {
        var u = plots[k].u;
        plots[k].series.forEach(function (s, i) {
          var ys = u.data[i + 1].filter(function (v) { return v != null; });
          out.push({ chart: u.root.parentNode.getAttribute("data-chart"), name: s.name, last: ys.length ? ys[ys.length - 1] : null,
            count: ys.length, x: [u.scales.x.min, u.scales.x.max], zoomed: !!plots[k].zoom });
        });
      });
      return out;
    },
    choose: function (row) { chosen = row; var b = document.getElementById(BOX_ID); if (b && last) render(last, b); },
  };

  function start() {
    setInterval(place, 500);  // React re-renders the tab: put the box back under the table
    setInterval(poll, POLL_MS);
    setInterval(pollStatus, STATUS_MS);
    poll();
    pollStatus();
  }

  var css = document.createElement("link");
  css.rel = "stylesheet"; css.href = "./loadgen/vendor/uPlot.min.css";
  document.head.appendChild(css);
  if (window.uPlot) { start(); return; }
  var lib = document.createElement("script");
  lib.src = "./loadgen/vendor/uPlot.iife.min.js";
  lib.onload = start;
  document.head.appendChild(lib);
})();
