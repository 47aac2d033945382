"""`lineage graph ID --format mermaid|dot|html`: the renderer behind it, on real executions.

The browser tests start Debian's headless Chromium (installed by .ci/install-chromium) on
the generated page; they skip, saying why, where no Chromium is installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse

import attrs
import pyarrow as pa
import pytest

from ledgerflow import Dataset, ExecutionFailed, Ledger, log_metric, map_task, run, task, when, workflow
from ledgerflow.lineage.inference import inferred_graph
from ledgerflow.app.render import build_graph, render

# --------------------------------------------------------------------------- workflows


@attrs.define
class Row:
    x: int


@task(cache=True)
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(cache=True)
def square(x: int, offset: int = 0) -> int:
    log_metric("squared", x * x)
    return x * x + offset


@task(cache=True)
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def passes(score: int, threshold: int) -> bool:
    return score >= threshold


@task
def register(score: int) -> str:
    return f"registered {score}"


@task
def reject(score: int) -> str:
    return f"rejected {score}"


@workflow
def mapped_and_gated(n: int = 4, threshold: int = 5) -> str:
    s = total(xs=map_task(square, x=numbers(n=n)))
    return when(passes(score=s, threshold=threshold), then=lambda: register(score=s),
                otherwise=lambda: reject(score=s))


@task(cache=True)
def table(n: int) -> Dataset[Row]:
    return pa.table({"x": list(range(n))})


HOSTILE = ('</script><script>document.documentElement.setAttribute("data-pwned","1")</script>'
           '<!-- "quote" #35; <b>&amp;</b> `tick` | ] ) }\u2028')


@task
def hostile(data: Dataset[Row]) -> str:
    log_metric("rows", data.to_arrow().num_rows)
    return HOSTILE


@task(retries=1)
def explode(note: str) -> int:
    raise RuntimeError("boom </script><img src=x onerror=alert(1)>")


@workflow
def hostile_flow(n: int = 3) -> str:
    return hostile(data=table(n=n))


@workflow
def failing_flow(n: int = 3) -> int:
    return explode(note=hostile(data=table(n=n)))


@task
def first_one(x: int) -> int:
    return 1


@task
def second_one(x: int) -> int:
    return 1


@task
def add(a: int, b: int) -> int:
    return a + b


@workflow
def coinciding(x: int = 1) -> int:
    """x, first_one's result and second_one's are all the value 1: one digest."""
    return add(a=second_one(x=first_one(x=x)), b=x)


@task
def fails(x: int) -> int:
    raise RuntimeError("no")


@workflow
def blocked_flow(x: int = 1) -> int:
    return add(a=second_one(x=fails(x=x)), b=x)


# --------------------------------------------------------------------------- fixtures


def _detail(home, ex_id):
    with Ledger(home) as ledger:
        return ledger.execution(ex_id)


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """One run of mapped_and_gated (n=4: the gate passes, `reject` is skipped) and its detail."""
    home = tmp_path_factory.mktemp("render-home")
    ex = run(mapped_and_gated, {"n": 4}, home=home, progress=False)
    return _detail(home, ex.id)


@pytest.fixture(scope="module")
def cached_run(tmp_path_factory):
    """A second run with a changed threshold: numbers, square[i], square and total are cache hits."""
    home = tmp_path_factory.mktemp("render-cached")
    run(mapped_and_gated, {"n": 3}, home=home, progress=False)
    ex = run(mapped_and_gated, {"n": 3, "threshold": 100}, home=home, progress=False)
    return _detail(home, ex.id)


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    home = tmp_path_factory.mktemp("render-failed")
    with pytest.raises(ExecutionFailed) as err:
        run(failing_flow, home=home, progress=False)
    return _detail(home, err.value.execution.id)


STEPS = {"numbers", "square[0]", "square[1]", "square[2]", "square[3]", "square", "total", "passes",
         "reject", "register"}
PARAMS, OUTPUTS = "@parameters", "@outputs"
EXPECTED_EDGES = {  # the graph as built: both branches' guards, and the `when` the workflow returns
    (PARAMS, "numbers"), (PARAMS, "passes"),
    *{("numbers", f"square[{i}]") for i in range(4)},
    *{(f"square[{i}]", "square") for i in range(4)},
    ("square", "total"), ("total", "passes"), ("total", "register"), ("total", "reject"),
    ("passes", "register"), ("passes", "reject"),
    ("passes", OUTPUTS), ("register", OUTPUTS), ("reject", OUTPUTS),
}


# --------------------------------------------------------------------------- mermaid

_MM_NODE = re.compile(r'^  (\w+)(?:\["(.*)"\]|\(\["(.*)"\]\)):::(\w+)$')
_MM_EDGE = re.compile(r'^  (\w+) (-->|-\.->)\|"([^"]*)"\| (\w+)$')


def parse_mermaid(text):
    """(nodes: id -> (label, class), edges: [(src, arrow, label, dst)]); fails on any line it can't read."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("%%")]
    assert lines[0] == "flowchart LR"
    nodes, edges, classdefs, classes = {}, [], {}, {}
    for ln in lines[1:]:
        if m := _MM_NODE.match(ln):
            label = m.group(2) if m.group(2) is not None else m.group(3)
            assert '"' not in label
            nodes[m.group(1)] = (label, m.group(4))
        elif m := _MM_EDGE.match(ln):
            edges.append(m.groups())
        elif m := re.match(r"^  classDef (\w+) (\S.*)$", ln):
            classdefs[m.group(1)] = m.group(2)
        elif m := re.match(r"^  class ([\w,]+) (\w+)$", ln):
            for n in m.group(1).split(","):
                classes.setdefault(n, []).append(m.group(2))
        else:
            pytest.fail(f"unexpected Mermaid line: {ln!r}")
    for _, cls in nodes.values():
        assert cls in classdefs, f"class {cls} used but not defined"
    return nodes, edges, classdefs, classes


def mermaid_named(text):
    nodes, edges, classdefs, classes = parse_mermaid(text)
    ends = {"params": PARAMS, "outputs": OUTPUTS}
    name = {i: ends.get(cls, label.split("<br/>")[0]) for i, (label, cls) in nodes.items()}
    return nodes, name, edges, classdefs, classes


def test_mermaid_has_every_step_and_the_right_edges(gated):
    text = render(gated, "mermaid")
    nodes, name, edges, classdefs, _ = mermaid_named(text)
    assert set(name.values()) == STEPS | {PARAMS, OUTPUTS}
    assert all(re.fullmatch(r"p|o|s\d+", i) for i in nodes)  # safe ids, never train[0]
    assert {(name[a], name[b]) for a, _, _, b in edges} == EXPECTED_EDGES
    by_pair = {(name[a], name[b]): (arrow, label) for a, arrow, label, b in edges}
    digest = {b.name: b.artifact.digest.split(":")[1][:8] for b in gated.inputs}
    assert by_pair[(PARAMS, "numbers")] == ("-->", f"n · {digest['n']}")
    assert by_pair[("square[2]", "square")][1].startswith("[2] · ")
    assert by_pair[("passes", "reject")] == ("-.->", "when=False")
    assert by_pair[("passes", "register")] == ("-.->", "when=True")
    assert by_pair[("register", OUTPUTS)] == ("-->", "return (then)")
    # labels: status and duration on every step, classes colour the status
    step = {s.step: s for s in gated.steps}
    for i, (label, cls) in nodes.items():
        if name[i] not in (PARAMS, OUTPUTS):
            assert label.split("<br/>")[1].startswith(step[name[i]].status + " · ")
            assert cls == "st_" + step[name[i]].status
    assert "st_succeeded" in classdefs and "st_skipped" in classdefs
    assert classdefs["st_succeeded"] != classdefs["st_skipped"]


def test_mermaid_marks_cache_hits(cached_run):
    nodes, name, edges, classdefs, classes = mermaid_named(render(cached_run, "mermaid"))
    hits = {s.step for s in cached_run.steps if s.cache_hit}
    assert {"numbers", "square[0]", "total"} <= hits
    for i, (label, _) in nodes.items():
        assert ("cachehit" in classes.get(i, [])) == (name[i] in hits)
        if name[i] in hits:
            assert "cached" in label
    # the threshold changed, so the gate failed this time: register is the skipped branch
    assert ("passes", "register") in {(name[a], name[b]) for a, _, _, b in edges}
    assert "reject" in {name[b] for a, _, _, b in edges if name[a] == "total"}


# --------------------------------------------------------------------------- dot

_DOT_NODE = re.compile(r'^  ("(?:[^"\\]|\\.)*") \[(.*)\];$')
_DOT_EDGE = re.compile(r'^  ("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*") \[(.*)\];$')


def _undot(quoted):
    return json.loads(quoted)  # DOT's \" and \\ escapes read the same as JSON's here


def parse_dot(text):
    lines = text.splitlines()
    assert re.match(r'^digraph "(?:[^"\\]|\\.)*" \{$', lines[0]) and lines[-1] == "}"
    nodes, edges = {}, []
    for ln in lines[1:-1]:
        if m := _DOT_EDGE.match(ln):
            edges.append((_undot(m.group(1)), _undot(m.group(2)), m.group(3)))
        elif m := _DOT_NODE.match(ln):
            nodes[_undot(m.group(1))] = m.group(2)
        else:
            assert re.match(r"^  (label|labelloc|node|edge|//)\b", ln) or ln.startswith("  // "), ln
    return nodes, edges


def test_dot_has_every_step_and_the_right_edges(gated):
    text = render(gated, "dot")
    nodes, edges = parse_dot(text)
    assert set(nodes) == STEPS | {PARAMS, OUTPUTS}
    assert {(a, b) for a, b, _ in edges} == EXPECTED_EDGES
    attrs_of = {(a, b): at for a, b, at in edges}
    assert 'style="dashed"' in attrs_of[("passes", "reject")]
    assert 'fillcolor="#dcfce7"' in nodes["total"] and 'fillcolor="#f1f5f9"' in nodes["reject"]
    if shutil.which("dot"):  # Graphviz itself, where installed, must accept it
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=text, text=True, check=True, timeout=30)


@pytest.mark.slow
def test_graph_of_a_failed_run(failed):
    assert failed.status == "failed"
    nodes, edges = parse_dot(render(failed, "dot"))
    assert {(a, b) for a, b, _ in edges} == {(PARAMS, "table"), ("table", "hostile"), ("hostile", "explode"),
                                             ("explode", OUTPUTS)}
    assert 'fillcolor="#fee2e2"' in nodes["explode"]
    data = _page_data(render(failed, "html"))
    node = next(n for n in data["nodes"] if n["step"] == "explode")
    assert node["status"] == "failed" and "boom" in node["error"] and len(node["attempts"]) == 2


def test_unknown_format(gated):
    with pytest.raises(ValueError, match="mermaid, dot, html"):
        render(gated, "png")


# --------------------------------------------------------------------------- html and injection


def _page_data(page):
    m = re.search(r'<script type="application/json" id="ledgerflow-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_html_is_self_contained(gated):
    page = render(gated, "html")
    assert page.startswith("<!DOCTYPE html>")
    # no network: nothing fetched from anywhere, and a CSP that forbids it anyway
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "@import" not in page and "url(http" not in page
    assert "default-src 'none'" in page
    data = _page_data(page)
    assert {n["step"] for n in data["nodes"]} == STEPS | {"parameters", "outputs"}
    square2 = next(n for n in data["nodes"] if n["step"] == "square[2]")
    assert [m["name"] for m in square2["metrics"]] == ["squared"]
    assert square2["inputs"][0]["digest"].startswith("blake3:") and square2["inputs"][0]["from"] == "numbers"


def hostile_detail(detail):
    """The real execution with a step renamed, and the workflow named, by an attacker."""
    def rename(name):
        return HOSTILE + name if name == "hostile" else name

    steps = tuple(attrs.evolve(s, step=rename(s.step)) for s in detail.steps)
    graph = attrs.evolve(detail.graph, nodes=tuple(attrs.evolve(n, step=rename(n.step)) for n in detail.graph.nodes),
                         edges=tuple(attrs.evolve(e, source=rename(e.source), target=rename(e.target))
                                     for e in detail.graph.edges))
    return attrs.evolve(detail, steps=steps, graph=graph, summary=attrs.evolve(detail.summary, workflow=HOSTILE))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("render-hostile")
    ex = run(hostile_flow, home=home, progress=False)
    return hostile_detail(_detail(home, ex.id))


def test_no_injection_from_values_or_names(hostile_run):
    outputs = [b.artifact.value for s in hostile_run.steps for b in s.outputs]
    assert HOSTILE in [json.loads(v) for v in outputs if v]  # the value really is in the ledger

    page = render(hostile_run, "html")
    # exactly our two scripts; the data can't close its block, open a comment or break a line
    assert page.count("</script") == 2 and page.count("<script") == 2
    block = re.search(r'<script type="application/json" id="ledgerflow-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and ">" not in block and "\u2028" not in block and "<!--" not in page
    assert html.escape(HOSTILE) in page  # the <title>, escaped
    data = _page_data(page)
    assert data["execution"]["workflow"] == HOSTILE  # and the data round-trips exactly
    node = next(n for n in data["nodes"] if n["step"].startswith(HOSTILE))
    assert json.loads(node["outputs"][0]["value"]) == HOSTILE

    nodes, name, edges, _, _ = mermaid_named(render(hostile_run, "mermaid"))
    assert len(nodes) == 4 and len(edges) == 3  # every line still parses; parameters, 2 steps, outputs
    mm = render(hostile_run, "mermaid")
    assert "<script" not in mm and "#35;" not in mm.replace("\uff0335;", "")

    dot_nodes, dot_edges = parse_dot(render(hostile_run, "dot"))
    assert HOSTILE.replace("\u2028", " ") + "hostile" in dot_nodes and len(dot_edges) == 3  # line breaks become spaces
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", "/dev/null"], input=render(hostile_run, "dot"), text=True,
                       check=True, timeout=30)


def test_map_elements_cut_from_a_parameter_list(tmp_path):
    @workflow
    def over_param(xs: list[int] = [3, 4, 5]) -> list[int]:  # noqa: B006
        return map_task(square, x=xs, offset=1)

    ex = run(over_param, home=tmp_path, progress=False)
    graph = build_graph(_detail(tmp_path, ex.id))
    names = {n.id: n.step for n in graph.nodes}
    pairs = {(names[e.source], names[e.target]) for e in graph.edges}
    assert pairs == {*{(PARAMS, f"square[{i}]") for i in range(3)}, *{(f"square[{i}]", "square") for i in range(3)},
                     ("square", OUTPUTS)}


# --------------------------------------------------------------------------- in a browser


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed (run .ci/install-chromium): the page can't be opened in a browser")


def dump_dom(page_path, tmp_path, fragment=""):
    """The DOM after the page's scripts ran, from headless Chromium, with no network."""
    url = page_path.resolve().as_uri() + fragment
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--window-size=1400,900", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'data-ready="1"' in out.stdout, "the page's script did not finish:\n" + out.stderr[-2000:]
    return out.stdout


def drawn_nodes(dom):
    """step -> (left, top, status) of every node div the page drew."""
    out = {}
    for tag in re.findall(r'<div class="node\b[^>]*>', dom):
        attr = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        left = float(re.search(r"left:\s*([\d.]+)px", attr["style"]).group(1))
        top = float(re.search(r"top:\s*([\d.]+)px", attr["style"]).group(1))
        out[html.unescape(attr["data-step"])] = (left, top, attr["data-status"])
    return out


def panel(dom):
    m = re.search(r'<aside id="panel"[^>]*>(.*?)</aside>', dom, re.S)
    assert m, "no side panel"
    return m.group(0)


@pytest.mark.browser
def test_browser_draws_every_step_and_a_click_shows_its_artifacts(gated, tmp_path):
    page_path = tmp_path / "graph.html"
    page_path.write_text(render(gated, "html"), encoding="utf-8")

    dom = dump_dom(page_path, tmp_path)
    nodes = drawn_nodes(dom)
    assert set(nodes) == STEPS | {"parameters", "outputs"}
    step = {s.step: s for s in gated.steps}
    for name, (_, _, status) in nodes.items():
        if name not in ("parameters", "outputs"):
            assert status == step[name].status
    boxes = sorted((x, y) for x, y, _ in nodes.values())  # no two nodes on top of each other
    assert len(set(boxes)) == len(boxes)
    assert len(re.findall(r'<path[^>]*marker-end="url\(#arrow\)"', dom)) == len(build_graph(gated).edges)
    assert 'data-selected=""' in panel(dom)  # nothing selected: the execution's summary

    # A click on square[2] (the page's #select= fragment dispatches a real click event on the node)
    target = step["square[2]"]
    dom = dump_dom(page_path, tmp_path, "#select=" + urllib.parse.quote(target.step))
    side = panel(dom)
    assert 'data-selected="square[2]"' in side
    assert re.search(r'<div class="node[^"]*\bselected\b[^"]*" data-step="square\[2\]"', dom)
    for bound in target.inputs + target.outputs:
        assert bound.artifact.digest in side and html.escape(bound.name) in side
        assert (bound.artifact.type or "") in side
    assert "squared" in side  # its metric
    assert "Attempts (1)" in side

    # a map step lists each element's output as an input, each linked to its element
    dom = dump_dom(page_path, tmp_path, "#select=square")
    side = panel(dom)
    for i in range(4):
        assert f'href="#select=square%5B{i}%5D"' in side


@pytest.mark.browser
def test_browser_hostile_page_runs_no_injected_script(hostile_run, tmp_path):
    page_path = tmp_path / "hostile.html"
    page_path.write_text(render(hostile_run, "html"), encoding="utf-8")
    name = next(s.step for s in hostile_run.steps if s.step.startswith(HOSTILE))
    dom = dump_dom(page_path, tmp_path, "#select=" + urllib.parse.quote(name))
    assert 'data-pwned="1"' not in dom  # the injected script never ran
    assert dom.count("<script") == 2 and "<img" not in dom and "<b>&amp;" not in dom
    assert len(drawn_nodes(dom)) == 4
    assert html.escape(HOSTILE, quote=False) in panel(dom)  # shown as text, in the panel's title


# --------------------------------------------------------------------------- the record, not the values


def label_names(label):
    """The parameter names on an arrow's label ("a · 8650d21c, b · ..." -> {"a", "b"})."""
    return {part.split(" · ")[0] for part in label.split(", ")}


def named_pairs(graph):
    name = {n.id: n.step for n in graph.nodes}
    return {(name[e.source], name[e.target]) for e in graph.edges}


def old_style(detail):
    """The detail as a ledger written before schema 4 gives it: no graph, no sources, no guard inputs."""
    def strip(bound):
        return tuple(attrs.evolve(b, source=None, how=None) for b in bound if not b.name.startswith("when="))

    steps = tuple(attrs.evolve(s, inputs=strip(s.inputs), outputs=strip(s.outputs), blocked_by=None)
                  for s in detail.steps)
    return attrs.evolve(detail, graph=None, steps=steps, inputs=strip(detail.inputs), outputs=strip(detail.outputs))


def test_coinciding_values_still_draw_exactly_the_built_edges(tmp_path):
    ex = run(coinciding, home=tmp_path, progress=False)
    detail = _detail(tmp_path, ex.id)
    ones = {b.artifact.digest for s in detail.steps if s.step in ("first_one", "second_one") for b in s.outputs}
    assert ones == {b.artifact.digest for b in detail.inputs}  # the coincidence is real: one digest

    built = {(PARAMS, "first_one"): {"x"}, ("first_one", "second_one"): {"x"}, ("second_one", "add"): {"a"},
             (PARAMS, "add"): {"b"}, ("add", OUTPUTS): {"return"}}
    _, dot = parse_dot(render(detail, "dot"))
    assert {(a, b): label_names(re.search(r'label="([^"]*)"', at).group(1)) for a, b, at in dot} == built
    _, name, edges, _, _ = mermaid_named(render(detail, "mermaid"))
    assert {(name[a], name[b]): label_names(label) for a, _, label, b in edges} == built
    data = _page_data(render(detail, "html"))
    assert not data["execution"]["graph_inferred"]
    second = next(n for n in data["nodes"] if n["step"] == "second_one")
    assert [(i["name"], i["from"]) for i in second["inputs"]] == [("x", "first_one")]

    # Read by digest and time, as before the ledger kept graphs, the same execution draws other edges.
    guessed = build_graph(old_style(detail))
    assert guessed.inferred and named_pairs(guessed) != set(built)
    assert (PARAMS, "second_one") in named_pairs(guessed)


def test_an_old_execution_gets_an_inferred_graph_marked_so(gated):
    old = old_style(gated)
    graph = inferred_graph(old)
    assert graph.inferred and not gated.graph.inferred
    assert ("passes", "return", "reject", "when=False", "guard") in {
        (e.source, e.slot, e.target, e.param, e.kind) for e in graph.edges}
    assert {(n.step, n.kind, n.parent) for n in graph.nodes if n.step.startswith("square")} == {
        ("square", "map", None), *{(f"square[{i}]", "element", "square") for i in range(4)}}
    drawn = build_graph(old)
    assert drawn.inferred
    # Nothing coincides in this workflow, so the reconstruction finds its data edges; it can't
    # know the guard of the branch that ran, nor the edges into the branch that didn't.
    assert named_pairs(drawn) == EXPECTED_EDGES - {("total", "reject"), ("passes", "register"),
                                                    ("passes", OUTPUTS), ("reject", OUTPUTS)}

    mermaid, dot, page = render(old, "mermaid"), render(old, "dot"), render(old, "html")
    assert "%% graph inferred: recorded before the ledger kept graphs" in mermaid
    parse_mermaid(mermaid)  # the note is a comment: every other line still parses
    assert "  // graph inferred" in dot and re.search(r'^  label=".*· graph inferred";$', dot, re.M)
    parse_dot(dot)
    data = _page_data(page)
    assert data["execution"]["graph_inferred"] and "reconstructed" in data["execution"]["graph_note"]
    for text in (render(gated, "mermaid"), render(gated, "dot")):
        assert "inferred" not in text
    assert not _page_data(render(gated, "html"))["execution"]["graph_inferred"]


def test_steps_blocked_by_a_failure_and_steps_never_recorded_show(tmp_path):
    with pytest.raises(ExecutionFailed) as err:
        run(blocked_flow, home=tmp_path, progress=False)
    detail = _detail(tmp_path, err.value.execution.id)
    nodes, edges = parse_dot(render(detail, "dot"))
    assert {(a, b) for a, b, _ in edges} == {(PARAMS, "fails"), ("fails", "second_one"), ("second_one", "add"),
                                             (PARAMS, "add"), ("add", OUTPUTS)}
    for step in ("second_one", "add"):
        assert "skipped" in nodes[step] and "blocked by fails" in nodes[step]
    data = _page_data(render(detail, "html"))
    assert {n["step"]: n.get("blocked_by") for n in data["nodes"] if n["kind"] == "step"} == {
        "fails": None, "second_one": "fails", "add": "fails"}

    # A step in the graph that the ledger has no record of (its process died first) is drawn as not run.
    cut = attrs.evolve(detail, steps=tuple(s for s in detail.steps if s.step != "add"))
    nodes, edges = parse_dot(render(cut, "dot"))
    assert "not run" in nodes["add"] and ("second_one", "add") in {(a, b) for a, b, _ in edges}


def test_cache_hits_show_where_their_outputs_and_metrics_came_from(cached_run):
    data = _page_data(render(cached_run, "html"))
    node = next(n for n in data["nodes"] if n["step"] == "square[0]")
    assert node["cache_hit"] and node["metrics"][0]["reused_from"] == node["cached_from"]
    (out,) = node["outputs"]
    assert out["how"] == "cache" and out["origin"].endswith(":square[0].return (cache hit)")
    assert out["to"] == ["square"]


@pytest.mark.browser
def test_browser_marks_an_inferred_graph(gated, tmp_path):
    page_path = tmp_path / "old.html"
    page_path.write_text(render(old_style(gated), "html"), encoding="utf-8")
    dom = dump_dom(page_path, tmp_path)
    assert 'data-graph-inferred="1"' in dom and "graph inferred" in dom
    assert "reconstructed from digests and times" in panel(dom)
