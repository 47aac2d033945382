"""Scale-out: a fan-out reading one shared Dataset on a two-node Ray cluster, S3 store vs local store.

    python bench/scale.py               # prints a table
    python bench/scale.py --write       # ... and updates docs/benchmarks.md

The cluster: `ray.cluster_utils.Cluster` on this machine, a head node and one worker node
(--cpus-per-node each, default 2, so two steps on one node can ask for the same object at
once). Each node's raylet gets its own environment through `add_node(env_vars=...)`, which
Ray passes to the raylet and so to every worker it starts:

* `LEDGERFLOW_CACHE=<tmp>/cache/<node>`: each node its own read-through cache, as on a real
  cluster, so "downloaded once per node" is measured rather than shared through one folder;
* `AWS_ACCESS_KEY_ID=<node>`: the S3 server accepts any key, and the key names who sent
  each request, so the server attributes every byte it serves to the node that asked.

The driver has a cache of its own (`<tmp>/cache/driver`) and its own key, as a laptop
submitting to a cluster would: it uploads the Dataset, so both nodes must download it.

The S3 server is moto's server mode on 127.0.0.1, in a subprocess of this script
(`--serve-s3`), wrapped in a WSGI counter that tallies, per access key, requests and body
bytes by method, and the bytes served per object key. Each repeat uses a fresh S3 prefix,
hence a fresh cache folder on every node (the cache is per store URL) and a fresh home.

The workload: a Dataset of --mib MiB (one int64 column), stored with `Dataset.from_arrow`
before the run and passed as a workflow parameter; `map_task` over --steps steps, each
`data.to_arrow().num_rows` (which memory-maps the node's copy, verified by default).
Measured: the wall time of `ledgerflow.run` (the upload is timed apart), bytes served per
node, and where each step ran (from the ledger). The same workflow then runs with the store
on a local path (LEDGERFLOW_SHARED_STORE=1, as for a shared filesystem: on one machine
both nodes see it) on the same cluster. Runs are interleaved (local, s3, local, s3, ...)
after one small warm-up of each, and the median of --repeats is reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request  # noqa: E402
from collections import defaultdict
from pathlib import Path

# bench/ holds a ray.py: keep `import ray` from importing it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
from ledgerflow import Dataset, Resources, map_task, task, workflow  # noqa: E402

SECTION = "Scale-out (bench/scale.py)"
BUCKET = "ledgerflow-bench"
MiB = 1 << 20


# -- the S3 server, with a byte counter ---------------------------------------------------

class Counting:
    """WSGI middleware: per access key, request counts and body bytes by method, and bytes
    served per object key. `GET /__counts__` returns the tally as JSON; `POST /__reset__` clears it."""

    CHUNK = 256 << 10
    _CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = defaultdict(lambda: defaultdict(int))   # who -> method -> count
        self.bytes_out = defaultdict(lambda: defaultdict(int))  # who -> method -> response body bytes
        self.bytes_in = defaultdict(int)                        # who -> request body bytes
        self.served = defaultdict(lambda: defaultdict(int))     # who -> path -> GET body bytes
        self.gets = defaultdict(list)                           # who -> [path, Range header, bytes sent]

    def tally(self):
        with self.lock:
            return {"requests": {w: dict(m) for w, m in self.requests.items()},
                    "bytes_out": {w: dict(m) for w, m in self.bytes_out.items()},
                    "bytes_in": dict(self.bytes_in),
                    "served": {w: dict(p) for w, p in self.served.items()},
                    "gets": dict(self.gets)}

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if path in ("/__counts__", "/__reset__"):
            if path == "/__reset__":
                with self.lock:
                    self.reset()
            body = json.dumps(self.tally()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        match = self._CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        who = match.group(1) if match else "anonymous"
        size_in = int(environ.get("CONTENT_LENGTH") or 0)
        response = self.app(environ, start_response)

        def counted():
            # Re-chunked, so that a GET the client abandons counts what was sent before the
            # socket closed (plus at most the socket buffers and one chunk), not the whole body.
            n = 0
            try:
                for chunk in response:
                    view = memoryview(chunk)
                    for start in range(0, len(view), self.CHUNK):
                        piece = view[start:start + self.CHUNK]
                        n += len(piece)
                        yield bytes(piece)
            finally:
                if hasattr(response, "close"):
                    response.close()
                with self.lock:
                    self.requests[who][method] += 1
                    self.bytes_out[who][method] += n
                    self.bytes_in[who] += size_in
                    if method == "GET":
                        self.served[who][path] += n
                        self.gets[who].append([path, environ.get("HTTP_RANGE", ""), n])

        return counted()


def serve_s3() -> None:
    """Run moto's S3 server on a free port of 127.0.0.1 behind the counter; print the port."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


class S3Server:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-s3"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.endpoint = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def _call(self, path: str, method: str = "GET") -> dict:
        with urllib.request.urlopen(urllib.request.Request(self.endpoint + path, method=method), timeout=30) as r:
            return json.loads(r.read())

    def counts(self) -> dict:
        return self._call("/__counts__")

    def reset(self) -> None:
        self._call("/__reset__", "POST")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- the benchmark ------------------------------------------------------------------------

@task(resources=Resources(num_cpus=1))
def count(data: Dataset, i: int) -> int:
    return data.to_arrow().num_rows  # verified: the node's copy is re-hashed on every read


@task(resources=Resources(num_cpus=1))
def count_unverified(data: Dataset, i: int) -> int:
    return data.to_arrow(verify=False).num_rows


def fan_of(steps: int, verify: bool):
    @workflow
    def fan(data: Dataset) -> list[int]:
        return map_task(count if verify else count_unverified, data=data, i=list(range(steps)))
    return fan


# (label, store, to_arrow verifies)
CASES = (("local", "local", True), ("s3", "s3", True), ("local-noverify", "local", False),
         ("s3-noverify", "s3", False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--mib", type=int, default=100, help="size of the shared Dataset")
    parser.add_argument("--cpus-per-node", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--verbose", action="store_true", help="list every GET of the Dataset")
    parser.add_argument("--s3-max-concurrency", type=int, default=None,
                        help="set s3fs's max_concurrency through FSSPEC_S3 on every node (default: s3fs's own)")
    parser.add_argument("--serve-s3", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_s3:
        return serve_s3()

    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lf-bench-scale-"))
    s3 = S3Server()
    # Every process (the driver, the raylets and their workers) inherits these; each node
    # then overrides the access key and the cache folder through add_node(env_vars=...).
    for name in ("RAY_ADDRESS", "LEDGERFLOW_STORE", "LEDGERFLOW_SHARED_STORE", "AWS_PROFILE",
                 "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ENDPOINT_URL_S3": s3.endpoint, "AWS_ACCESS_KEY_ID": "driver",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "LEDGERFLOW_CACHE": str(tmp / "cache" / "driver"), "PYTHONWARNINGS": "ignore"})
    os.environ.pop("FSSPEC_S3", None)
    if args.s3_max_concurrency:  # read by fsspec at import, in the driver and in every worker
        os.environ["FSSPEC_S3"] = json.dumps({"max_concurrency": args.s3_max_concurrency})
    try:
        run_benchmark(args, tmp, s3, t_start)
    finally:
        s3.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_benchmark(args, tmp: Path, s3: S3Server, t_start: float) -> None:
    import boto3
    import numpy as np
    import pyarrow as pa
    import ray
    from ray.cluster_utils import Cluster

    import ledgerflow
    from ledgerflow import Ledger
    from ledgerflow.executors.ray import RayExecutor
    from ledgerflow.store import Store
    from ledgerflow.store.remote import cache_root

    boto3.client("s3", endpoint_url=s3.endpoint).create_bucket(Bucket=BUCKET)

    nodes = ("head", "worker")
    t0 = time.perf_counter()

    def node_env(name: str) -> dict:
        return {"LEDGERFLOW_CACHE": str(tmp / "cache" / name), "AWS_ACCESS_KEY_ID": name}

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": args.cpus_per_node, "include_dashboard": False, "env_vars": node_env("head")})
    worker = cluster.add_node(num_cpus=args.cpus_per_node, env_vars=node_env("worker"))
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    node_of = {cluster.head_node.node_id[:12]: "head", worker.node_id[:12]: "worker"}
    cluster_s = time.perf_counter() - t0

    fans = {v: fan_of(args.steps, v) for v in (True, False)}
    warm = {v: fan_of(2 * len(nodes) * args.cpus_per_node, v) for v in (True, False)}
    rows = args.mib * MiB // 8
    table = pa.table({"x": np.arange(rows, dtype=np.int64)})
    small = pa.table({"x": np.arange(1000, dtype=np.int64)})
    results: dict[str, list[dict]] = {label: [] for label, _, _ in CASES}
    serial = iter(range(1_000_000))

    def one_run(kind: str, wf, data: pa.Table) -> dict:
        k = next(serial)
        home = tmp / f"home-{k}"
        if kind == "s3":
            url = f"s3://{BUCKET}/run-{k}"
            os.environ.pop("LEDGERFLOW_SHARED_STORE", None)
        else:
            url = str(tmp / f"store-{k}")
            os.environ["LEDGERFLOW_SHARED_STORE"] = "1"
        os.environ["LEDGERFLOW_STORE"] = url
        store = Store.open(url)
        s3.reset()
        t = time.perf_counter()
        ds = Dataset.from_arrow(data, store=store)
        upload_s = time.perf_counter() - t
        t = time.perf_counter()
        ex = ledgerflow.run(wf, params={"data": ds}, home=home, executor=RayExecutor(), progress=False)
        run_s = time.perf_counter() - t
        assert all(n == data.num_rows for n in ex.outputs), "wrong result"
        detail = Ledger(home).execution(ex.id)
        per_node = defaultdict(int)
        for s in detail.steps:
            if "[" in s.step:
                per_node[node_of.get(s.node.rsplit("/", 1)[-1], s.node)] += 1
        result = {"run_s": run_s, "upload_s": upload_s, "steps_on": dict(per_node), "size": ds.size,
                  "steps": len(ex.outputs)}
        if kind == "s3":
            tally = s3.counts()
            key = f"/{BUCKET}/run-{k}/objects/{ds.digest.split(':')[1][:2]}/{ds.digest.split(':')[1][2:]}"
            result["dataset_bytes"] = {n: tally["served"].get(n, {}).get(key, 0) for n in (*nodes, "driver")}
            result["dataset_gets"] = {n: [(rng or "whole", b) for path, rng, b in tally["gets"].get(n, [])
                                          if path == key] for n in nodes}
            result["get_bytes"] = {n: tally["bytes_out"].get(n, {}).get("GET", 0) for n in (*nodes, "driver")}
            result["requests"] = {n: sum(tally["requests"].get(n, {}).values()) for n in (*nodes, "driver")}
            result["uploaded"] = {n: tally["bytes_in"].get(n, 0) for n in (*nodes, "driver")}
            result["cached"] = {n: _du(cache_root_for(tmp / "cache" / n, url, cache_root)) for n in nodes}
        return result

    print(f"cluster: head + 1 worker node, {args.cpus_per_node} CPUs each, up in {cluster_s:.1f} s; "
          f"S3 server {s3.endpoint}", flush=True)
    for _, kind, verify in CASES:
        one_run(kind, warm[verify], small)  # worker processes start and import pyarrow, s3fs, ...
    for r in range(args.repeats):
        for label, kind, verify in CASES:
            res = one_run(kind, fans[verify], table)
            results[label].append(res)
            extra = ""
            if kind == "s3":
                extra = "  dataset bytes served: " + ", ".join(
                    f"{n} {b / res['size']:.2f}x" for n, b in res["dataset_bytes"].items())
            print(f"  repeat {r + 1} {label:14s}: run {res['run_s']:6.2f} s, upload {res['upload_s']:5.2f} s, "
                  f"steps per node {res['steps_on']}{extra}", flush=True)
            if kind == "s3" and args.verbose:
                for n, gets in res["dataset_gets"].items():
                    print(f"      {n} GETs of the Dataset: " + ", ".join(f"{rng} -> {b / MiB:.1f} MiB"
                                                                     for rng, b in gets))

    ray.shutdown()
    cluster.shutdown()
    total_s = time.perf_counter() - t_start
    body = render(args, results, cluster_s, total_s)
    print()
    print(body)
    if args.write:
        spec = importlib.util.spec_from_file_location("_bench_report", _HERE / "report.py")
        report = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(report)
        report.write_section(SECTION, body)
        print(f"\nwrote the section {SECTION!r} of docs/benchmarks.md")


def cache_root_for(base: Path, url: str, cache_root) -> Path:
    saved = os.environ.get("LEDGERFLOW_CACHE")
    os.environ["LEDGERFLOW_CACHE"] = str(base)
    try:
        return cache_root(url)
    finally:
        os.environ["LEDGERFLOW_CACHE"] = saved


def _du(path: Path) -> int:
    """Bytes of the objects in a cache folder (not its locks or temp files)."""
    objects = path / "objects"
    return sum(p.stat().st_size for p in objects.rglob("*") if p.is_file()) if objects.exists() else 0


def render(args, results: dict, cluster_s: float, total_s: float) -> str:
    def med(label: str, f) -> float:
        return statistics.median(f(r) for r in results[label])

    s3_runs = results["s3"] + results["s3-noverify"]  # the store traffic does not depend on verification

    def med_s3(f) -> float:
        return statistics.median(f(r) for r in s3_runs)

    size, steps = s3_runs[0]["size"], s3_runs[0]["steps"]
    run_s = {label: med(label, lambda r: r["run_s"]) for label in results}
    concurrency = (f"s3fs `max_concurrency={args.s3_max_concurrency}` (set with `FSSPEC_S3`)"
                   if args.s3_max_concurrency else "s3fs's defaults")
    lines = [
        f"A two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: head + 1 worker node, "
        f"{args.cpus_per_node} CPUs each), the store on moto's S3 server on 127.0.0.1, {concurrency}. "
        f"A fan-out of {steps} steps (`map_task`), each reading one shared {size / MiB:.0f} MiB Dataset "
        f"(a workflow parameter, uploaded by the driver) with `to_arrow()` and returning its row count. "
        f"Each node has its own `LEDGERFLOW_CACHE` and its own S3 access key (raylet `env_vars`), so the "
        f"server attributes every byte it sends to the node that asked. {args.repeats} runs of each case, "
        f"interleaved, after a warm-up; each run in a fresh S3 prefix (cold caches) and a fresh home. "
        f"Medians.",
        "",
        "Bytes downloaded per node (S3 runs):",
        "",
        "| node | steps it ran | Dataset bytes sent to it | = Dataset fetches | GETs of the Dataset | "
        "all GET bytes | all requests | its cache after the run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in ("head", "worker", "driver"):
        ran = f"{med_s3(lambda r: r['steps_on'].get(n, 0)):.0f}" if n != "driver" else "0"
        ds_b = med_s3(lambda r: r["dataset_bytes"][n])
        gets = f"{med_s3(lambda r: len(r['dataset_gets'][n])):.0f}" if n != "driver" else "0"
        get_b = med_s3(lambda r: r["get_bytes"][n])
        reqs = med_s3(lambda r: r["requests"][n])
        cached = f"{med_s3(lambda r: r['cached'][n]) / MiB:.1f} MiB" if n != "driver" else "(uploaded it)"
        lines.append(f"| {n} | {ran} | {ds_b / MiB:.1f} MiB | {ds_b / size:.2f} | {gets} | {get_b / MiB:.1f} MiB | "
                     f"{reqs:.0f} | {cached} |")
    total_ds = med_s3(lambda r: sum(r["dataset_bytes"].values()))
    naive = steps * size
    lines += [
        "",
        f"The cluster downloaded {total_ds / MiB:.0f} MiB of the Dataset: {total_ds / size:.2f} times its size "
        f"for {steps} steps on 2 nodes (target: once per node), {total_ds / naive:.4f}x the "
        f"{naive / MiB:,.0f} MiB that fetching it once per step would cost.",
    ]
    if med_s3(lambda r: len(r["dataset_gets"]["head"])) > 1:
        extra = (total_ds / (2 * size) - 1) * 100
        lines += [
            "",
            "Each node's one download is several GETs: s3fs's `get_file` (default `max_concurrency=10`) first "
            "opens a GET of the whole object, reads only its length and closes it, then fetches 50 MiB ranges "
            f"in parallel. The abandoned GET is the extra {extra:.0f}% (what the loopback buffers took before "
            "the close). "
            "`python bench/scale.py --s3-max-concurrency 1` (sets `FSSPEC_S3='{\"max_concurrency\": 1}'` on "
            "every node) makes it one GET per node, exactly 1.00 fetch.",
        ]
    lines += [
        "",
        "Wall time of `ledgerflow.run` (the Dataset's upload, before the run, timed apart):",
        "",
        "| store | `to_arrow()` | run | per step | upload |",
        "|---|---|---:|---:|---:|",
    ]
    names = {"local": "local path (`LEDGERFLOW_SHARED_STORE=1`)", "s3": "S3 (moto, 127.0.0.1)"}
    for label in results:
        kind = "s3" if label.startswith("s3") else "local"
        how = "`verify=False`" if label.endswith("noverify") else "verified (default)"
        lines.append(f"| {names[kind]} | {how} | {run_s[label]:.2f} s | {run_s[label] / steps * 1e3:.0f} ms | "
                     f"{med(label, lambda r: r['upload_s']):.2f} s |")
    lines += [
        "",
        f"S3 / local: {run_s['s3'] / run_s['local']:.2f}x with verified reads, "
        f"{run_s['s3-noverify'] / run_s['local-noverify']:.2f}x with `verify=False`. "
        f"Verified / unverified reads: {run_s['local'] / run_s['local-noverify']:.2f}x on the local store, "
        f"{run_s['s3'] / run_s['s3-noverify']:.2f}x on S3. All runs (s): "
        + "; ".join(f"{label} " + ", ".join(f"{r['run_s']:.2f}" for r in rs) for label, rs in results.items())
        + f". Cluster start {cluster_s:.1f} s; whole script {total_s:.0f} s.",
        "",
        "`to_arrow()` verifies by default, but a process hashes a node's copy once and trusts it while "
        "the file's identity (path, inode, size, mtime) is unchanged: before that, every step re-hashed "
        "the whole 100 MiB (about 30 ms here) and verified runs took 10-13 s instead of about 1-2 s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
