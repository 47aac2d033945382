/* Metrics compared across the executions of one workflow: one line per step.metric, drawn as SVG. */
"use strict";
(function () {
  var el = LF.el, main = LF.main();
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4d7c0f", "#9333ea", "#475569"];
  var bar = el("div", "toolbar"), pick = el("select"), chart = el("div"), list = el("div", "series-list"), table = el("div");
  pick.id = "workflow"; chart.id = "chart-box";
  bar.appendChild(el("h1", null, "Metrics")); var l = el("label", null, "workflow "); l.appendChild(pick); bar.appendChild(l);
  main.appendChild(bar); main.appendChild(chart); main.appendChild(el("h3", null, "Series")); main.appendChild(list); main.appendChild(table);
  var D = null, on = {};

  function plot() {
    chart.textContent = "";
    var series = D.series.filter(function (s) { return on[s.name]; }), n = D.executions.length;
    var W = Math.max(640, chart.clientWidth || 900), H = 320, L = 60, R = 20, T = 16, B = 46;
    var s = LF.svg("svg", { width: W, height: H, id: "chart" });
    var values = [];
    series.forEach(function (x) { x.values.forEach(function (v) { if (typeof v === "number") values.push(v); }); });
    if (!n || !values.length) { chart.appendChild(el("p", "empty", n ? "pick a series below" : "no execution of this workflow")); return; }
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (hi === lo) { hi += Math.abs(hi) * 0.05 || 1; lo -= Math.abs(lo) * 0.05 || 1; }
    function X(i) { return L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1)); }
    function Y(v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); }
    for (var k = 0; k <= 4; k++) {
      var v = lo + ((hi - lo) * k) / 4, y = Y(v);
      s.appendChild(LF.svg("line", { x1: L, x2: W - R, y1: y, y2: y, "class": "grid" }));
      var t = LF.svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }); t.textContent = String(+v.toPrecision(4)); s.appendChild(t);
    }
    D.executions.forEach(function (e, i) {
      var t = LF.svg("text", { x: X(i), y: H - B + 16, "text-anchor": "middle" }); t.textContent = e.id.slice(-6);
      var title = LF.svg("title"); title.textContent = e.id + " (" + e.status + ", " + LF.when(e.started_at) + ")"; t.appendChild(title);
      s.appendChild(t);
    });
    var axis = LF.svg("text", { x: (W + L) / 2, y: H - 8, "text-anchor": "middle" }); axis.textContent = "executions, oldest to newest (last 6 characters of the id)"; s.appendChild(axis);
    series.forEach(function (x) {
      var colour = PALETTE[D.series.indexOf(x) % PALETTE.length], d = "", pen = false;
      x.values.forEach(function (v, i) {
        if (typeof v !== "number") { pen = false; return; }
        d += (pen ? " L" : " M") + X(i) + "," + Y(v); pen = true;
      });
      if (d) s.appendChild(LF.svg("path", { d: d, fill: "none", stroke: colour, "stroke-width": 2, "data-series": x.name }));
      x.values.forEach(function (v, i) {
        if (typeof v !== "number") return;
        var c = LF.svg("circle", { cx: X(i), cy: Y(v), r: 3.5, fill: colour, "data-series": x.name });
        var tt = LF.svg("title"); tt.textContent = x.name + " = " + v + " in " + D.executions[i].id; c.appendChild(tt);
        c.addEventListener("click", function () { location.href = "/executions/" + encodeURIComponent(D.executions[i].id); });
        s.appendChild(c);
      });
    });
    chart.appendChild(s);
  }
  function draw(d) {
    D = d;
    pick.textContent = "";
    d.workflows.forEach(function (w) { var o = el("option", null, w); o.value = w; pick.appendChild(o); });
    pick.value = d.workflow;
    on = {};
    d.series.forEach(function (x, i) { on[x.name] = i < 6; });
    list.textContent = "";
    d.series.forEach(function (x, i) {
      var label = el("label"), box = el("input"); box.type = "checkbox"; box.checked = on[x.name];
      box.addEventListener("change", function () { on[x.name] = box.checked; plot(); });
      var sw = el("span", "swatch"); sw.style.background = PALETTE[i % PALETTE.length];
      label.appendChild(box); label.appendChild(sw); label.appendChild(document.createTextNode(x.name)); label.title = x.name;
      list.appendChild(label);
    });
    table.textContent = "";
    if (d.executions.length) {
      var t = LF.table(["series"].concat(d.executions.map(function (e) { return e.id; })),
        d.series.map(function (x) { return [x.name].concat(x.values.map(function (v) { return v === null ? "" : v; })); }));
      t.id = "metrics-table"; table.appendChild(el("h3", null, "Values")); table.appendChild(t);
    }
    plot();
    LF.ready();
  }
  function load(workflow) {
    return LF.getJSON("/api/metrics" + (workflow ? "?workflow=" + encodeURIComponent(workflow) : "")).then(draw, function (err) { LF.fail(chart, err); });
  }
  pick.addEventListener("change", function () {
    try { history.replaceState(null, "", "/metrics?workflow=" + encodeURIComponent(pick.value)); } catch (e) { /* fine */ }
    load(pick.value);
  });
  load(LF.data("workflow"));
})();
