/* The model registry: every registered model, its versions, current aliases and alias history. */
"use strict";
(function () {
  var el = LF.el, main = LF.main();
  function draw(d) {
    main.textContent = "";
    main.appendChild(el("h1", null, "Models"));
    if (!d.models.length) { main.appendChild(el("p", "empty", "no model registered yet (ledgerflow.register inside a step)")); LF.ready(); return; }
    d.models.forEach(function (m) {
      var card = el("div", "card"); card.id = "model-" + m.name; card.setAttribute("data-model", m.name);
      card.appendChild(el("h2", null, m.name));
      var chips = el("div", "chips");
      Object.keys(m.aliases).sort().forEach(function (a) { chips.appendChild(el("span", "chip", a + " \u2192 v" + m.aliases[a])); });
      card.appendChild(chips);
      card.appendChild(el("h3", null, "Versions"));
      card.appendChild(LF.table(["version", "digest", "aliases", "metrics", "type", "size", "execution", "registered (UTC)", "who", "why"],
        m.versions.map(function (v) {
          return [v.version, LF.digestLink(v.digest), v.aliases.join(", "),
                  Object.keys(v.metrics).map(function (k) { return k + "=" + (+Number(v.metrics[k]).toPrecision(6)); }).join(" "),
                  v.type || "", LF.size(v.size),
                  v.execution_id ? LF.link(LF.stepHref(v.execution_id + ":" + (v.step || "")), v.execution_id + (v.step ? ":" + v.step : ""), "eid") : "",
                  LF.when(v.registered_at), v.who || "", v.why || ""];
        })));
      card.appendChild(el("h3", null, "Alias history"));
      card.appendChild(LF.table(["when (UTC)", "alias", "action", "from", "to", "who", "why"], m.history.map(function (h) {
        return [LF.when(h.at), h.alias, h.action, h.previous_version === null ? "-" : "v" + h.previous_version, "v" + h.version, h.who || "", h.why || ""];
      })));
      main.appendChild(card);
    });
    LF.ready();
  }
  LF.getJSON("/api/models").then(draw, function (err) { LF.fail(main, err); });
})();
