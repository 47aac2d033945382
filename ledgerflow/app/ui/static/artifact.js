/* One artifact: type, size, digest, producers and consumers, registry entries, a preview, downloads. */
"use strict";
(function () {
  var el = LF.el, main = LF.main(), digest = LF.data("digest");
  var base = LF.artifactHref(digest);

  function near(title, list) {
    var box = el("div", "card"); box.appendChild(el("h3", null, title + " (" + list.length + ")"));
    if (!list.length) box.appendChild(el("div", "empty", "none recorded"));
    list.forEach(function (n) {
      var line = el("div"); line.appendChild(el("span", "chip", n.kind)); line.appendChild(document.createTextNode(" "));
      line.appendChild(LF.refLink(n.kind, n.ref));
      if (n.label) line.appendChild(el("span", "sub", "  " + n.label));
      if (n.status) { line.appendChild(document.createTextNode(" ")); line.appendChild(LF.pill(n.status)); }
      box.appendChild(line);
    });
    return box;
  }
  function preview(p) {
    var box = el("div", "card"); box.id = "preview"; box.setAttribute("data-kind", p.kind);
    box.appendChild(el("h3", null, "Preview"));
    if (p.kind === "table") {
      box.appendChild(el("div", "sub", p.num_rows + " rows \u00b7 " + p.columns.length + " columns" +
        (p.num_rows > p.rows.length ? " \u00b7 the first " + p.rows.length + " shown" : "")));
      var t = LF.table(p.columns.map(function (c) { return c.name + " (" + c.type + ")"; }), p.rows);
      t.id = "preview-table"; box.appendChild(t);
    } else if (p.kind === "text") {
      box.appendChild(el("pre", null, p.text + (p.truncated ? "\n\u2026" : "")));
    } else if (p.kind === "listing") {
      box.appendChild(el("div", "sub", p.count + " files \u00b7 " + LF.size(p.size)));
      var rows = p.files.map(function (f) {
        var a = LF.link(base + "/files/" + f.path.split("/").map(encodeURIComponent).join("/"), f.path);
        a.setAttribute("download", "");
        var d = el("span", "digest", LF.short(f.digest)); d.title = f.digest;
        return [a, f.size_h, d];
      });
      var lt = LF.table(["file (download)", "size", "digest"], rows); lt.id = "files"; box.appendChild(lt);
    } else if (p.kind === "value") {
      box.appendChild(el("pre", null, p.text));
    } else box.appendChild(el("div", "empty", p.note || "no preview"));
    return box;
  }
  function draw(d) {
    var a = d.artifact;
    main.textContent = "";
    var h = el("h1"); h.appendChild(document.createTextNode((a.type || a.kind || "artifact") + " "));
    var s = el("span", "digest", LF.short(a.digest)); s.title = a.digest; h.appendChild(s); main.appendChild(h);
    var facts = el("div", "card");
    var download = null;
    if (!d.code_snapshot && a.kind !== "directory" && a.kind !== "model") {
      download = LF.link(base + "/download", "download"); download.id = "download"; download.setAttribute("download", "");
    }
    facts.appendChild(LF.kv([["digest", el("span", "digest", a.digest)], ["kind", a.kind], ["type", a.type],
      ["size", a.size === null ? null : LF.size(a.size) + " (" + a.size + " bytes)"], ["store", a.uri], ["bytes", download],
      ["lineage", (function () {
        var x = el("span");
        x.appendChild(LF.link("/lineage?direction=upstream&ref=" + encodeURIComponent(a.digest), "upstream"));
        x.appendChild(document.createTextNode(" \u00b7 "));
        x.appendChild(LF.link("/lineage?direction=downstream&ref=" + encodeURIComponent(a.digest), "downstream"));
        return x;
      })()]]));
    if (d.collected) facts.appendChild(el("p", "note", "removed from the store by gc at " + LF.when(d.collected.removed_at) + " (" + d.collected.reason + ")"));
    main.appendChild(facts);
    var row = el("div", "row"), l = el("div", "grow"), r = el("div", "grow");
    l.appendChild(near("Producers", d.producers)); r.appendChild(near("Consumers", d.consumers));
    row.appendChild(l); row.appendChild(r); main.appendChild(row);
    if (d.registry.length) {
      var reg = el("div", "card"); reg.id = "registry"; reg.appendChild(el("h3", null, "Model registry"));
      reg.appendChild(LF.table(["model", "version", "aliases", "metrics", "execution", "registered (UTC)", "who", "why"],
        d.registry.map(function (v) {
          return [LF.link("/models#" + encodeURIComponent(v.name), v.name), v.version, v.aliases.join(", "),
                  Object.keys(v.metrics).map(function (k) { return k + "=" + v.metrics[k]; }).join(" "),
                  v.execution_id ? LF.refLink("execution", v.execution_id) : "", LF.when(v.registered_at), v.who || "", v.why || ""];
        })));
      main.appendChild(reg);
    }
    main.appendChild(preview(d.preview));
    LF.ready();
  }
  LF.getJSON("/api" + base).then(draw, function (err) { LF.fail(main, err); });
})();
