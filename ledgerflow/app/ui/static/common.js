/* lineage ui: what every page shares. No dependencies; every string goes in with textContent. */
"use strict";
var LF = (function () {
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLOURS = {  // status -> [fill, stroke, text], as `lineage graph --format html` draws them
    succeeded: ["#dcfce7", "#16a34a", "#14532d"], cached: ["#ede9fe", "#7c3aed", "#3b0764"],
    failed: ["#fee2e2", "#dc2626", "#7f1d1d"], timeout: ["#fee2e2", "#dc2626", "#7f1d1d"],
    running: ["#dbeafe", "#2563eb", "#1e3a8a"], skipped: ["#f1f5f9", "#94a3b8", "#475569"],
    cancelled: ["#fef3c7", "#d97706", "#78350f"], interrupted: ["#fef3c7", "#d97706", "#78350f"],
    pending: ["#f8fafc", "#94a3b8", "#475569"], params: ["#e0f2fe", "#0284c7", "#0c4a6e"],
    other: ["#f8fafc", "#64748b", "#334155"]
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function colours(status) { return COLOURS[status] || COLOURS.other; }
  function pill(status) {
    var c = colours(status), p = el("span", "pill", status || "-");
    p.style.background = c[0]; p.style.borderColor = c[1]; p.style.color = c[2];
    p.setAttribute("data-status", status || "");
    return p;
  }
  // A digest as people read it: the algorithm and 12 hex characters; the whole one in the tooltip.
  function short(digest) {
    if (!digest) return "-";
    var i = digest.indexOf(":");
    return i < 0 ? digest.slice(0, 19) : digest.slice(0, i + 1) + digest.slice(i + 1, i + 13);
  }
  function link(href, text, cls) { var a = el("a", cls, text); a.href = href; return a; }
  // A digest's page; "blake3:<hex>" is kept readable in the address (its ':' needs no escape in a path).
  function artifactHref(digest) { return "/artifacts/" + encodeURIComponent(digest).replace(/%3A/g, ":"); }
  function digestLink(digest) {
    var a = link(artifactHref(digest), short(digest), "digest");
    a.title = digest; a.setAttribute("data-digest", digest);
    return a;
  }
  function stepHref(ref) {  // "EXECUTION_ID:step" -> its execution's page with the step open
    var i = ref.indexOf(":");
    return "/executions/" + encodeURIComponent(ref.slice(0, i)) + "#select=" + encodeURIComponent(ref.slice(i + 1));
  }
  function refHref(kind, ref) {
    if (kind === "artifact" || kind === "code") return artifactHref(ref);
    if (kind === "step") return stepHref(ref);
    return "/executions/" + encodeURIComponent(ref);
  }
  function refLink(kind, ref) {  // execution ids always whole; digests short, whole in the tooltip
    if (kind === "artifact" || kind === "code") return digestLink(ref);
    var a = link(refHref(kind, ref), ref, "eid"); a.title = ref; return a;
  }
  function when(iso) { return iso ? iso.replace("T", " ").slice(0, 19) : "-"; }
  function duration(s) {
    if (s === null || s === undefined) return "-";
    if (s < 0.001) return (s * 1000).toFixed(2) + " ms";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(2) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + ("0" + Math.floor(s % 60)).slice(-2) + "s";
    return Math.floor(s / 3600) + "h " + ("0" + Math.floor((s % 3600) / 60)).slice(-2) + "m";
  }
  function size(n) {
    if (n === null || n === undefined) return "-";
    var units = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i ? n.toFixed(1) + " " + units[i] : n + " B";
  }
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || (r.status + " " + r.statusText));
        return body;
      });
    });
  }
  function main() { return document.getElementById("main"); }
  function data(name) { return main().getAttribute("data-" + name) || ""; }
  function fail(where, err) {
    var p = el("p", "missing", String(err && err.message ? err.message : err));
    where.textContent = ""; where.appendChild(p);
  }
  // Call fn (returning a promise) now and again `ms` after each answer, while keep() says so.
  function poll(fn, ms, keep) {
    function next() {
      Promise.resolve().then(fn).catch(function () { /* the next round tries again */ }).then(function () {
        if (!keep || keep()) setTimeout(next, ms);
      });
    }
    next();
  }
  function kv(rows) {
    var g = el("div", "kv");
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === "") return;
      g.appendChild(el("div", null, r[0]));
      var v = el("div");
      if (r[1] instanceof Node) v.appendChild(r[1]); else v.textContent = String(r[1]);
      g.appendChild(v);
    });
    return g;
  }
  function table(headers, rows, cls) {
    var t = el("table", cls || "grid"), head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) td.appendChild(c);
        else if (typeof c === "number") { td.className = "num"; td.textContent = String(+c.toPrecision(6)); }
        else td.textContent = c === null || c === undefined ? "" : String(c);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }
  function ready() { document.documentElement.setAttribute("data-ready", "1"); }
  return { el: el, svg: svg, colours: colours, pill: pill, short: short, link: link, artifactHref: artifactHref, digestLink: digestLink,
           stepHref: stepHref, refHref: refHref, refLink: refLink, when: when, duration: duration, size: size,
           getJSON: getJSON, data: data, main: main, fail: fail, poll: poll, kv: kv, table: table, ready: ready,
           SVGNS: SVGNS };
})();
