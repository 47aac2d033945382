"""A Ray cluster of several nodes on this machine: GPU steps land on the GPU node, artifacts go
through the S3 server, the ledger says which node ran each step; a local store is refused."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ledgerflow import Ledger

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import pyarrow as pa
    import ray
    from ray.cluster_utils import Cluster
    from ledgerflow import Dataset, Resources, run, task, workflow, map_task
    from ledgerflow.errors import ResourceError
    from ledgerflow.executors.ray import RayExecutor

    @task(resources=Resources(num_cpus=1))
    def ingest(n: int) -> Dataset:
        return pa.table({"x": list(range(n))})

    @task(resources=Resources(num_cpus=1, num_gpus=1))
    def on_gpu(data: Dataset) -> str:
        return ray.get_runtime_context().get_node_id() + "|" + os.environ.get("CUDA_VISIBLE_DEVICES", "")

    @task(resources=Resources(num_cpus=1))
    def count(data: Dataset, i: int) -> int:
        return data.to_arrow().num_rows + i

    @workflow
    def wf(n: int = 10) -> tuple[str, list[int]]:
        data = ingest(n=n)
        return on_gpu(data=data), map_task(count, data=data, i=[0, 1, 2, 3])

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.add_node(num_cpus=1, num_gpus=0)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    mode = sys.argv[1]
    try:
        if mode == "local-store":
            try:
                run(wf, executor=RayExecutor())
            except ResourceError as e:
                print(json.dumps({"refused": str(e)}))
        else:
            ex = run(wf, executor=RayExecutor())
            print(json.dumps({"id": ex.id, "gpu_node": gpu_node.node_id, "outputs": list(ex.outputs)}))
    finally:
        ray.shutdown()
        cluster.shutdown()
''')


def run_script(tmp_path, mode, env):
    script = tmp_path / "cluster.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script), mode], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def clean_env(home):
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "LEDGERFLOW_STORE")}
    env["LEDGERFLOW_HOME"] = str(home)
    return env


def test_gpu_step_lands_on_the_gpu_node_with_an_s3_store(tmp_path, s3_server):
    home = tmp_path / "home"
    env = clean_env(home)
    env["LEDGERFLOW_STORE"] = s3_server.url("multinode")
    result = run_script(tmp_path, "s3", env)
    node_id, devices = result["outputs"][0].split("|")
    assert node_id == result["gpu_node"] and devices == "0"
    assert result["outputs"][1] == [10, 11, 12, 13]
    detail = Ledger(home).execution(result["id"])
    nodes = {s.step: s.node for s in detail.steps}
    assert nodes["on_gpu"].endswith(result["gpu_node"][:12])
    assert all(nodes[f"count[{i}]"] for i in range(4))
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_server.bucket,
                                                                  Prefix="multinode/").get("Contents", [])]
    dataset = next(b.artifact.digest for s in detail.steps if s.step == "ingest" for b in s.outputs)
    assert any(k.endswith(dataset.split(":")[1][2:]) for k in keys)  # the Dataset went to S3


def test_local_store_refused_on_a_multi_node_cluster(tmp_path):
    result = run_script(tmp_path, "local-store", clean_env(tmp_path / "home"))
    assert "local path" in result["refused"] and "LEDGERFLOW_STORE=s3://" in result["refused"]
    assert not (tmp_path / "home" / "ledger.duckdb").exists() or not Ledger(tmp_path / "home").executions()
