/* Lineage of any ref (digest, execution, EXECUTION_ID:step), upstream or downstream, by recorded
   provenance (Ledger.upstream / Ledger.downstream): drawn in columns by depth, and listed. */
"use strict";
(function () {
  var el = LF.el, main = LF.main();
  var ref = LF.data("ref"), direction = LF.data("direction") || "upstream", depth = LF.data("depth");
  var form = el("form", "toolbar"); form.method = "get"; form.action = "/lineage";
  var input = el("input", "ref"); input.name = "ref"; input.value = ref; input.placeholder = "digest, execution id, or EXECUTION_ID:step";
  var dir = el("select"); dir.name = "direction";
  ["upstream", "downstream"].forEach(function (d) { var o = el("option", null, d); o.value = d; dir.appendChild(o); });
  dir.value = direction;
  var dep = el("input"); dep.name = "depth"; dep.type = "number"; dep.min = "0"; dep.placeholder = "depth (all)"; dep.value = depth;
  var go = el("button", null, "walk"); go.type = "submit";
  form.appendChild(el("h1", null, "Lineage")); form.appendChild(input); form.appendChild(dir); form.appendChild(dep); form.appendChild(go);
  main.appendChild(form);
  var box = el("div");
  main.appendChild(box);
  if (!ref) { box.appendChild(el("p", "empty", "Give a digest (or a prefix), an execution id, or EXECUTION_ID:step.")); LF.ready(); return; }

  function what(n) {
    var a = n.artifact;
    if (a && (a.kind === "value" || a.kind === null) && a.value !== null) return n.label + " = " + (a.value.length > 60 ? a.value.slice(0, 57) + "..." : a.value);
    if (a) return n.label + " (" + LF.size(a.size) + ")";
    return n.label || "";
  }
  function draw(L) {
    box.textContent = "";
    box.appendChild(el("p", "sub", L.direction + " of " + L.root + ": " + L.nodes.length + " nodes, " + L.edges.length + " edges" +
      (L.depth_limit !== null ? ", up to depth " + L.depth_limit : "")));
    var walk = el("div"); walk.id = "walk"; box.appendChild(walk);
    var W = 250, H = 66, GAPX = 70, GAPY = 12, M = 16, cols = {}, maxDepth = 0;
    L.nodes.forEach(function (n) { (cols[n.depth] = cols[n.depth] || []).push(n); maxDepth = Math.max(maxDepth, n.depth); });
    var tallest = 0; Object.keys(cols).forEach(function (k) { tallest = Math.max(tallest, cols[k].length); });
    var width = 2 * M + (maxDepth + 1) * W + maxDepth * GAPX, height = 2 * M + tallest * H + Math.max(0, tallest - 1) * GAPY;
    var s = LF.svg("svg", { width: width, height: height }); s.style.position = "absolute"; s.style.left = "0"; s.style.top = "0";
    walk.appendChild(s); walk.style.height = (height + 4) + "px";
    var inner = el("div"); inner.style.position = "relative"; inner.style.width = width + "px"; inner.style.height = height + "px";
    walk.appendChild(inner);
    var at = {};
    Object.keys(cols).forEach(function (k) {
      var d = +k, list = cols[k];
      // Data flows left to right: upstream puts the root at the right, downstream at the left.
      var col = L.direction === "upstream" ? maxDepth - d : d;
      list.forEach(function (n, i) {
        var x = M + col * (W + GAPX), y = M + i * (H + GAPY);
        at[n.ref] = { x: x, y: y };
        var div = el("div", "lnode k-" + n.kind + (d === 0 ? " root" : ""));
        div.style.left = x + "px"; div.style.top = y + "px"; div.style.height = H + "px";
        div.setAttribute("data-ref", n.ref); div.setAttribute("data-kind", n.kind); div.setAttribute("data-depth", d);
        div.appendChild(el("div", "k", n.kind + " \u00b7 depth " + d + (n.status ? " \u00b7 " + n.status : "")));
        if (n.kind === "step") {  // the step's name, then its execution's whole id
          var cut = n.ref.indexOf(":"), a = LF.link(LF.refHref("step", n.ref), n.ref.slice(cut + 1), "r");
          a.title = n.ref; div.appendChild(a); div.appendChild(el("span", "r eid-small", n.ref.slice(0, cut)));
        } else { var a2 = LF.refLink(n.kind, n.ref); a2.classList.add("r"); div.appendChild(a2); }
        var w = el("div", "sub", what(n)); w.title = what(n); w.style.whiteSpace = "nowrap"; w.style.overflow = "hidden"; w.style.textOverflow = "ellipsis";
        div.appendChild(w);
        inner.appendChild(div);
      });
    });
    L.edges.forEach(function (e) {
      var a = at[e.source], b = at[e.target];
      if (!a || !b) return;
      var left = a.x <= b.x ? a : b, right = a.x <= b.x ? b : a;
      var x1 = left.x + W, y1 = left.y + H / 2, x2 = right.x, y2 = right.y + H / 2, dx = Math.max(24, (x2 - x1) / 2);
      var p = LF.svg("path", { d: "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2 });
      var t = LF.svg("title"); t.textContent = e.source + " \u2192 " + e.target + " (" + e.name + (e.how ? ", " + e.how : "") + ")";
      p.appendChild(t); s.appendChild(p);
    });
    box.appendChild(el("h3", null, "Nodes"));
    var table = LF.table(["depth", "kind", "ref", "what", "status"], L.nodes.map(function (n) {
      return [n.depth, n.kind, LF.refLink(n.kind, n.ref), what(n), n.status ? LF.pill(n.status) : ""];
    }));
    table.id = "lineage-table"; box.appendChild(table);
    LF.ready();
  }
  var q = "ref=" + encodeURIComponent(ref) + "&direction=" + encodeURIComponent(direction) + (depth ? "&depth=" + encodeURIComponent(depth) : "");
  LF.getJSON("/api/lineage?" + q).then(draw, function (err) { LF.fail(box, err); });
})();
