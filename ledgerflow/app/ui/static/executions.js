/* The executions list: filters, search, and new runs appearing as they start (polls every 1.5 s). */
"use strict";
(function () {
  var main = LF.main();
  var bar = LF.el("div", "toolbar");
  var status = LF.el("select"), workflow = LF.el("select"), search = LF.el("input");
  status.id = "filter-status"; workflow.id = "filter-workflow"; search.id = "search";
  search.type = "search"; search.placeholder = "search id, workflow, error, host";
  search.value = LF.data("q");
  var live = LF.el("span", "live", "");
  bar.appendChild(LF.el("h1", null, "Executions"));
  [["status", status], ["workflow", workflow]].forEach(function (p) {
    var l = LF.el("label", null, p[0] + " "); l.appendChild(p[1]); bar.appendChild(l);
  });
  bar.appendChild(search); bar.appendChild(live);
  var box = LF.el("div");
  main.appendChild(bar); main.appendChild(box);
  var wanted = { status: LF.data("filter-status"), workflow: LF.data("filter-workflow") };
  var seen = null, timer = null;

  function options(select, values, current) {
    var have = Array.prototype.map.call(select.options, function (o) { return o.value; }).join("\u0001");
    var want = [""].concat(values);
    if (current && want.indexOf(current) < 0) want.push(current);
    if (have === want.join("\u0001")) return;
    select.textContent = "";
    want.forEach(function (v) { var o = LF.el("option", null, v || "all"); o.value = v; select.appendChild(o); });
    select.value = current || "";
  }
  function query() {
    var q = new URLSearchParams();
    if (status.value || wanted.status) q.set("status", status.value || wanted.status);
    if (workflow.value || wanted.workflow) q.set("workflow", workflow.value || wanted.workflow);
    if (search.value.trim()) q.set("q", search.value.trim());
    return q.toString();
  }
  function draw(d) {
    options(status, d.statuses, wanted.status); options(workflow, d.workflows, wanted.workflow);
    live.className = "live" + (d.running ? " on" : "");
    live.textContent = d.running ? d.running + " running \u00b7 live" : "live";
    if (!d.executions.length) {
      box.textContent = "";
      box.appendChild(LF.el("p", "empty", d.total ? "no execution matches" : "no executions recorded yet"));
    } else {
      var rows = d.executions.map(function (x) {
        var dur = x.status === "running" ? "running\u2026" : x.duration;
        var wf = LF.link("/executions?workflow=" + encodeURIComponent(x.workflow || ""), x.workflow || "");
        return [LF.refLink("execution", x.id), wf, LF.pill(x.status), LF.when(x.started_at), dur,
                x.executor || "", x.error ? x.error.split("\n")[0].slice(0, 160) : ""];
      });
      var t = LF.table(["id", "workflow", "status", "started (UTC)", "duration", "executor", "error"], rows);
      t.id = "executions";
      Array.prototype.forEach.call(t.tBodies[0].rows, function (tr, i) {
        var id = d.executions[i].id;
        tr.setAttribute("data-id", id); tr.setAttribute("data-status", d.executions[i].status);
        if (seen && !seen[id]) tr.className = "new";
      });
      box.textContent = ""; box.appendChild(t);
    }
    seen = seen || {};
    d.executions.forEach(function (x) { seen[x.id] = true; });
    LF.ready();
  }
  function load() {
    var q = query();
    try { history.replaceState(null, "", "/executions" + (q ? "?" + q : "")); } catch (e) { /* fine */ }
    return LF.getJSON("/api/executions" + (q ? "?" + q : "")).then(draw, function (err) { LF.fail(box, err); });
  }
  function changed() { wanted.status = status.value; wanted.workflow = workflow.value; seen = null; load(); }
  status.addEventListener("change", changed);
  workflow.addEventListener("change", changed);
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(changed, 250); });
  LF.poll(load, 1500);
})();
