/* One execution: the graph as recorded (live while it runs), a timeline of attempts per worker,
   and a panel with a clicked step's inputs, outputs, metrics, attempts, logs and why it ran. */
"use strict";
(function () {
  var el = LF.el, main = LF.main(), ref = LF.data("ref");
  var head = el("div"), layout = el("div", "exec-layout"), left = el("div"), panel = el("aside");
  var graphBox = el("div"), graph = el("div"), edges = LF.svg("svg", {}), tl = el("div", "timeline");
  panel.id = "panel"; graphBox.id = "graph-box"; graph.id = "graph"; tl.id = "timeline";
  var sizer = el("div"); sizer.style.position = "relative";
  graph.appendChild(edges); sizer.appendChild(graph); graphBox.appendChild(sizer);
  left.appendChild(graphBox); left.appendChild(el("h3", null, "Timeline (attempts per worker)")); left.appendChild(tl);
  layout.appendChild(left); layout.appendChild(panel);
  main.appendChild(head); main.appendChild(layout);

  var D = null, selected = null, shownKey = null, stepCache = {};

  function header(X, d) {
    head.textContent = "";
    var h = el("h1"); h.appendChild(document.createTextNode((X.workflow || "") + " \u00b7 "));
    h.appendChild(el("span", "eid", X.id)); head.appendChild(h);
    var chips = el("div", "chips");
    chips.appendChild(LF.pill(X.status));
    [["started", LF.when(X.started_at) + " UTC"], ["duration", X.status === "running" ? "running\u2026" : X.duration],
     ["executor", X.executor], ["host", X.host], ["steps", X.steps], ["cache hits", X.cache_hits]].forEach(function (c) {
      if (c[1] !== null && c[1] !== undefined && c[1] !== "") chips.appendChild(el("span", "chip", c[0] + ": " + c[1]));
    });
    (d.tags || []).forEach(function (t) { chips.appendChild(el("span", "chip", "tag " + t)); });
    var up = LF.link("/lineage?direction=upstream&ref=" + encodeURIComponent(X.id), "upstream");
    var down = LF.link("/lineage?direction=downstream&ref=" + encodeURIComponent(X.id), "downstream");
    var lin = el("span", "chip", "lineage: "); lin.appendChild(up); lin.appendChild(document.createTextNode(" \u00b7 ")); lin.appendChild(down);
    chips.appendChild(lin);
    if (X.replay_of) { var r = el("span", "chip", "replay of "); r.appendChild(LF.refLink("execution", X.replay_of)); chips.appendChild(r); }
    if (X.code_digest) { var c = el("span", "chip", "code "); c.appendChild(LF.digestLink(X.code_digest)); chips.appendChild(c); }
    head.appendChild(chips);
    if (X.graph_inferred) head.appendChild(el("p", "note", X.graph_note));
    if (X.error) head.appendChild(el("pre", "err", X.error));
  }

  // ---- the graph: positioned divs for nodes, SVG paths for edges, left to right by layer
  function drawGraph(d) {
    var NW = d.node_size.w, NH = d.node_size.h, M = 20, ALONG = 64, ACROSS = 16;
    var counts = {}, layers = 0, widest = 0, byId = {};
    d.nodes.forEach(function (n) {
      counts[n.layer] = (counts[n.layer] || 0) + 1; layers = Math.max(layers, n.layer + 1);
      widest = Math.max(widest, counts[n.layer]); byId[n.id] = n;
    });
    var W = 2 * M + layers * NW + Math.max(0, layers - 1) * ALONG, H = 2 * M + widest * NH + Math.max(0, widest - 1) * ACROSS;
    graph.style.width = W + "px"; graph.style.height = H + "px";
    // Fit the width of the box (down to 60%; past that it scrolls), and no taller than the graph.
    var scale = Math.max(0.6, Math.min(1, (graphBox.clientWidth - 4) / W));
    graph.style.transform = "scale(" + scale + ")"; graph.style.transformOrigin = "0 0";
    sizer.style.width = W * scale + "px"; sizer.style.height = H * scale + "px";
    graphBox.style.height = Math.min(560, H * scale + 24) + "px";
    edges.setAttribute("width", W); edges.setAttribute("height", H);
    Array.prototype.slice.call(graph.querySelectorAll(".node")).forEach(function (x) { x.remove(); });
    edges.textContent = "";
    d.nodes.forEach(function (n) {
      n.x = M + n.layer * (NW + ALONG);
      n.y = M + ((widest - counts[n.layer]) * (NH + ACROSS)) / 2 + n.order * (NH + ACROSS);
      var status = n.kind === "step" ? n.status : "params", c = LF.colours(n.kind === "step" ? n.status_class || n.status : "params");
      var div = el("div", "node" + (n.kind !== "step" ? " ends" : "") + (n.cache_hit ? " cachehit" : "") + (n.id === selected ? " selected" : ""));
      div.style.left = n.x + "px"; div.style.top = n.y + "px"; div.style.width = NW + "px"; div.style.height = NH + "px";
      div.style.borderColor = c[1];
      div.setAttribute("data-step", n.step); div.setAttribute("data-status", status);
      div.setAttribute("role", "button"); div.setAttribute("tabindex", "0");
      var b = el("div", "bar"); b.style.background = c[1]; div.appendChild(b);
      var name = el("div", "name", n.step); name.title = n.step; div.appendChild(name);
      var meta = el("div", "meta");
      if (n.kind === "step") {
        meta.appendChild(LF.pill(n.status)); meta.appendChild(el("span", null, n.duration));
        if (n.cache_hit) meta.appendChild(el("span", null, "cache hit"));
        if (n.attempts && n.attempts.length > 1) meta.appendChild(el("span", null, n.attempts.length + " attempts"));
      } else meta.appendChild(el("span", null, n.label || "(none)"));
      div.appendChild(meta);
      div.addEventListener("click", function (ev) { ev.stopPropagation(); select(n.id); });
      div.addEventListener("keydown", function (ev) { if (ev.key === "Enter") select(n.id); });
      graph.appendChild(div);
    });
    d.edges.forEach(function (e) {
      var a = byId[e.source], t = byId[e.target];
      if (!a || !t) return;
      var x1 = a.x + NW, y1 = a.y + NH / 2, x2 = t.x, y2 = t.y + NH / 2, dx = Math.max(30, (x2 - x1) / 2);
      var p = LF.svg("path", { d: "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2 });
      if (e.guard) p.setAttribute("class", "guard");
      if (selected && (e.source === selected || e.target === selected)) p.classList.add("hot");
      var title = LF.svg("title"); title.textContent = a.step + " \u2192 " + t.step + ": " + e.label; p.appendChild(title);
      edges.appendChild(p);
    });
  }

  // ---- the timeline: one lane per worker; overlapping attempts stack in rows within it
  function drawTimeline(t) {
    tl.textContent = "";
    if (!t.bars.length) { tl.appendChild(el("div", "empty", "no attempt has started")); return; }
    var LABEL = 140, ROW = 20, width = Math.max(600, tl.clientWidth - 20), plot = width - LABEL - 10;
    var scale = plot / t.span, lanes = [], y = 24;
    t.lanes.forEach(function (lane) {
      var rows = [], bars = t.bars.filter(function (b) { return b.lane === lane; })
        .sort(function (a, b) { return a.start - b.start; });
      bars.forEach(function (b) {
        var r = 0;
        while (r < rows.length && rows[r] > b.start + 1e-9) r++;
        rows[r] = Math.max(b.end, b.start + 4 / scale);
        b.row = r;
      });
      lanes.push({ name: lane, bars: bars, y: y, rows: Math.max(1, rows.length) });
      y += Math.max(1, rows.length) * ROW + 10;
    });
    var s = LF.svg("svg", { width: width, height: y + 4 });
    for (var i = 0; i <= 5; i++) {
      var x = LABEL + (plot * i) / 5;
      s.appendChild(LF.svg("line", { x1: x, x2: x, y1: 16, y2: y, "class": "axis" }));
      var tx = LF.svg("text", { x: x, y: 11, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" });
      tx.textContent = LF.duration((t.span * i) / 5); s.appendChild(tx);
    }
    lanes.forEach(function (lane) {
      var name = LF.svg("text", { x: 4, y: lane.y + 14 }); name.textContent = lane.name; s.appendChild(name);
      lane.bars.forEach(function (b) {
        var c = LF.colours(b.status), bx = LABEL + b.start * scale, bw = Math.max(3, (b.end - b.start) * scale);
        var g = LF.svg("g", { "class": "bar", "data-step": b.step, "data-attempt": b.attempt });
        g.appendChild(LF.svg("rect", { x: bx, y: lane.y + b.row * ROW, width: bw, height: ROW - 4, rx: 3,
                                       fill: c[0], stroke: c[1] }));
        var label = LF.svg("text", { x: bx + 4, y: lane.y + b.row * ROW + 12 });
        label.textContent = b.step + (b.attempt > 1 ? " #" + b.attempt : "");
        g.appendChild(label);
        var title = LF.svg("title");
        title.textContent = b.step + " attempt " + b.attempt + ": " + b.status + ", " + (b.running ? "running" : b.duration) +
          " (from " + LF.duration(b.start) + " to " + LF.duration(b.end) + ")";
        g.appendChild(title);
        g.addEventListener("click", function () {
          var n = D.nodes.filter(function (m) { return m.step === b.step; })[0];
          if (n) select(n.id);
        });
        s.appendChild(g);
      });
    });
    tl.appendChild(s);
  }

  // ---- the panel
  function artifacts(title, list) {
    panel.appendChild(el("h3", null, title + " (" + list.length + ")"));
    if (!list.length) { panel.appendChild(el("div", "empty", "none")); return; }
    list.forEach(function (a) {
      var c = el("div", "art"), h = el("div", "head");
      h.appendChild(el("span", "aname", a.name)); h.appendChild(el("span", "atype", a.type || a.kind || "")); c.appendChild(h);
      var f = el("div", "foot"); f.appendChild(LF.digestLink(a.digest));
      f.appendChild(document.createTextNode(" \u00b7 " + (a.kind || "artifact") + " \u00b7 " + a.size_h));
      if (a.origin) f.appendChild(document.createTextNode(" \u00b7 from " + a.origin));
      else if (a.from) f.appendChild(document.createTextNode(" \u00b7 from " + a.from));
      if (a.to && a.to.length) f.appendChild(document.createTextNode(" \u00b7 to " + a.to.join(", ")));
      c.appendChild(f);
      // A handle's recorded value is its encoded reference (digest, size): said above already.
      if (a.kind === "value" && a.value !== null && a.value !== undefined) c.appendChild(el("div", "value", a.value + (a.value_truncated ? " \u2026" : "")));
      panel.appendChild(c);
    });
  }
  function showExecution() {
    var X = D.execution;
    panel.textContent = ""; panel.setAttribute("data-selected", "");
    panel.appendChild(el("h2", null, "Execution"));
    panel.appendChild(LF.kv([["id", X.id], ["workflow", X.workflow], ["status", LF.pill(X.status)], ["duration", X.duration],
      ["started", LF.when(X.started_at)], ["ended", LF.when(X.ended_at)], ["executor", X.executor], ["host", X.host],
      ["fingerprint", X.workflow_fingerprint]]));
    artifacts("Parameters", X.params);
    artifacts("Outputs", X.outputs);
    panel.appendChild(el("p", "note", "Click a step for its inputs, outputs, metrics, logs and why it ran."));
  }
  function changeText(c) {
    function side(d, v) { return d === null || d === undefined ? "(none)" : (v !== null && v !== undefined && v.length <= 40 ? v : LF.short(d)); }
    if (c.part === "code") return "code of " + c.name + " " + (c.before && c.after ? "changed" : c.after ? "added" : "no longer used");
    if (c.part === "input") return "input " + c.name + ": " + side(c.before, c.before_value) + " -> " + side(c.after, c.after_value);
    return (c.part === "read" ? c.name : c.part) + ": " + (c.before === null ? "(not read)" : c.before) + " -> " + (c.after === null ? "(not read)" : c.after);
  }
  function stepExtras(n, box) {
    var key = D.execution.id + ":" + n.step;
    function draw(s) {
      box.textContent = "";
      var why = el("div"); why.id = "why";
      box.appendChild(el("h3", null, "Why it ran")); box.appendChild(why);
      if (s.why.error) why.appendChild(el("div", "empty", s.why.error));
      else {
        why.appendChild(el("div", null, s.why.reason));
        if (s.why.previous) { var p = el("div", "sub", "compared with "); p.appendChild(LF.refLink("step", s.why.previous)); why.appendChild(p); }
        (s.why.changes || []).forEach(function (c) {
          why.appendChild(el("div", "mono", changeText(c)));
          if (c.note) why.appendChild(el("div", "note", c.note));
          if (c.diff) why.appendChild(el("pre", "diff", c.diff));
        });
      }
      var logs = el("div"); logs.id = "logs";
      box.appendChild(el("h3", null, "Logs (" + s.logs.length + ")")); box.appendChild(logs);
      if (!s.logs.length) logs.appendChild(el("div", "empty", n.status === "running" ? "nothing printed yet" : "nothing printed"));
      s.logs.forEach(function (l) {
        logs.appendChild(el("div", "log-stream", "attempt " + l.attempt + " \u00b7 " + l.stream + " \u00b7 " + l.lines + " lines \u00b7 " + LF.size(l.size) + (l.digest === null ? " \u00b7 so far (running)" : "")));
        if (l.text === null) { logs.appendChild(el("div", "empty", "the store no longer holds it (" + LF.short(l.digest) + ")")); return; }
        var pre = el("pre", l.stream === "stderr" ? "err" : null, l.text);
        pre.setAttribute("data-stream", l.stream); pre.setAttribute("data-attempt", l.attempt);
        logs.appendChild(pre);
      });
    }
    var live = n.status === "running" || n.status === "pending";
    if (stepCache[key] && !live) { draw(stepCache[key]); return; }
    box.appendChild(el("div", "empty", "loading why and logs\u2026"));
    LF.getJSON("/api/step?ref=" + encodeURIComponent(key)).then(function (s) {
      if (!live) stepCache[key] = s;
      if (selected === n.id) draw(s);
    }, function (err) { LF.fail(box, err); });
  }
  function showStep(n) {
    panel.textContent = ""; panel.setAttribute("data-selected", n.step);
    panel.appendChild(el("h2", "step-title", n.step));
    if (n.kind === "params") { artifacts("Parameters", n.outputs); return; }
    if (n.kind === "outputs") { artifacts("Outputs", n.inputs); return; }
    panel.appendChild(el("div", "sub", n.task || ""));
    var cache = n.cache_hit ? "hit" : "miss";
    var from = n.cached_from ? LF.refLink("step", n.cached_from) : null;
    panel.appendChild(LF.kv([["status", LF.pill(n.status)], ["duration", n.duration], ["cache", cache], ["reused", from],
      ["attempts", n.attempts.length], ["map index", n.map_index], ["blocked by", n.blocked_by], ["condition", n.condition],
      ["ran on", n.node], ["resources", n.resources], ["lineage", LF.link("/lineage?ref=" + encodeURIComponent(D.execution.id + ":" + n.step), "upstream")]]));
    if (n.error) { panel.appendChild(el("h3", null, "Error")); panel.appendChild(el("pre", "err", n.error)); }
    panel.appendChild(el("h3", null, "Attempts (" + n.attempts.length + ")"));
    var attempts = el("div"); attempts.id = "attempts"; panel.appendChild(attempts);
    if (!n.attempts.length) attempts.appendChild(el("div", "empty", "none"));
    n.attempts.forEach(function (a) {
      attempts.appendChild(el("div", null, "#" + a.attempt + " " + a.status + " \u00b7 " + a.duration + (a.node ? " \u00b7 on " + a.node : "")));
      if (a.traceback || a.error) {
        var pre = el("pre", "err traceback", a.traceback || a.error); pre.setAttribute("data-attempt", a.attempt); attempts.appendChild(pre);
      }
    });
    var extras = el("div"); panel.appendChild(extras);
    stepExtras(n, extras);
    artifacts("Inputs", n.inputs);
    artifacts("Outputs", n.outputs);
    panel.appendChild(el("h3", null, "Metrics (" + n.metrics.length + ")"));
    if (!n.metrics.length) panel.appendChild(el("div", "empty", "none"));
    else panel.appendChild(LF.table(["name", "index", "value"], n.metrics.map(function (m) {
      return [m.name + (m.reused_from ? " (reused from " + m.reused_from + ")" : ""), m.index === null ? "" : m.index, m.value];
    })));
    panel.appendChild(el("h3", null, "Keys"));
    panel.appendChild(LF.kv([["cache key", n.cache_key], ["fingerprint", n.task_fingerprint], ["started", LF.when(n.started_at)],
      ["ended", LF.when(n.ended_at)]]));
  }
  function select(id) {
    selected = id;
    var n = D.nodes.filter(function (m) { return m.id === id; })[0];
    Array.prototype.forEach.call(graph.querySelectorAll(".node"), function (x) {
      x.classList.toggle("selected", n && x.getAttribute("data-step") === n.step);
    });
    shownKey = n ? JSON.stringify(n) : null;
    if (n) showStep(n); else showExecution();
    var want = n ? "#select=" + encodeURIComponent(n.step) : "";
    if (location.hash !== want) history.replaceState(null, "", location.pathname + want);
  }
  function fromHash() {
    var m = /^#select=(.*)$/.exec(location.hash);
    if (!m || !D) return;
    var name; try { name = decodeURIComponent(m[1]); } catch (e) { return; }
    var n = D.nodes.filter(function (x) { return x.step === name; })[0];
    if (n && n.id !== selected) select(n.id);
  }
  graphBox.addEventListener("click", function () { select(null); });
  window.addEventListener("hashchange", fromHash);

  function draw(d) {
    var first = D === null;
    D = d;
    header(d.execution, d);
    drawGraph(d);
    drawTimeline(d.timeline);
    main.setAttribute("data-status", d.execution.status);
    var n = D.nodes.filter(function (m) { return m.id === selected; })[0];
    if (first) { showExecution(); fromHash(); }
    else if (n && JSON.stringify(n) !== shownKey) { shownKey = JSON.stringify(n); showStep(n); }
    LF.ready();
  }
  function load() {
    return LF.getJSON("/api/executions/" + encodeURIComponent(ref)).then(draw, function (err) { LF.fail(head, err); });
  }
  // Polled while the execution runs, so the graph and the timeline follow it; once over, it stops.
  LF.poll(load, 1500, function () { return !D || D.execution.status === "running"; });
})();
