"""The Ray executor: resources and GPUs, parallelism, worker deaths, timeouts."""

import json
import os
import signal
import time

import pytest

from ledgerflow import ExecutionFailed, MemoryRecorder, Resources, run, task, workflow
from ledgerflow.engine import events as ev
from ledgerflow.errors import ResourceError


@task(resources=Resources(num_cpus=1, num_gpus=1))
def on_gpu(label: str, hold: float) -> tuple[str, float, float]:
    start = time.time()
    time.sleep(hold)
    return os.environ.get("CUDA_VISIBLE_DEVICES", ""), start, time.time()


@task(resources=Resources(num_cpus=1))
def on_cpu(label: str) -> tuple[float, float]:
    start = time.time()
    time.sleep(0.2)
    return start, time.time()


@workflow
def two_gpu_steps(hold: float = 1.0) -> list[tuple[str, float, float]]:
    return [on_gpu(label="a", hold=hold), on_gpu(label="b", hold=hold)]


@workflow
def gpu_beside_cpu(hold: float = 4.0) -> tuple[tuple[str, float, float], tuple[float, float]]:
    return on_gpu(label="g", hold=hold), on_cpu(label="c")


def test_gpu_steps_never_overlap_and_see_their_gpu(home, ray_runtime):
    rec = MemoryRecorder()
    (dev_a, s_a, e_a), (dev_b, s_b, e_b) = run(two_gpu_steps, executor="ray", recorder=rec).outputs
    assert dev_a == dev_b == "0"
    assert e_a <= s_b or e_b <= s_a, "two num_gpus=1 steps ran at once on a 1-GPU cluster"
    started = [e for e in rec.events if isinstance(e, ev.StepStarted)]
    assert all(json.loads(s.resources)["num_gpus"] == 1 for s in started)
    assert all(e.node and "/" in e.node for e in rec.events if isinstance(e, ev.StepFinished))


def test_cpu_steps_run_beside_a_gpu_step(home, ray_runtime):
    (dev, g_start, g_end), (c_start, c_end) = run(gpu_beside_cpu, executor="ray", recorder=MemoryRecorder()).outputs
    assert dev == "0"
    assert g_start < c_end and c_start < g_end, "the CPU step waited for the GPU step"


@task(resources=Resources(num_gpus=2))
def greedy() -> int:
    return 1


@workflow
def too_big() -> int:
    return greedy()


def test_request_larger_than_cluster_fails_before_running(home, ray_runtime):
    rec = MemoryRecorder()
    with pytest.raises(ResourceError, match=r"step 'greedy' asks for num_cpus=1, num_gpus=2.*GPU=1"):
        run(too_big, executor="ray", recorder=rec)
    assert rec.events == []  # nothing ran, nothing was recorded as started


@task(resources=Resources(num_cpus=1, custom={"tpu_pod": 1}))
def custom_resource() -> int:
    return 1


@workflow
def needs_custom() -> int:
    return custom_resource()


def test_custom_resources_checked(home, ray_runtime):
    with pytest.raises(ResourceError, match="tpu_pod"):
        run(needs_custom, executor="ray", recorder=MemoryRecorder())


@task(retries=2)
def dies_once(marker: str, how: str) -> str:
    if not os.path.exists(marker):
        open(marker, "w").close()
        if how == "exit":
            os._exit(3)
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@workflow
def dying(marker: str, how: str = "exit") -> str:
    return dies_once(marker=marker, how=how)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_worker_death_is_retried(home, ray_runtime, tmp_path, how):
    rec = MemoryRecorder()
    ex = run(dying, params={"marker": str(tmp_path / how), "how": how}, executor="ray", recorder=rec)
    assert ex.outputs == "survived" and ex.steps["dies_once"].attempts == 2
    first, second = [e for e in rec.events if isinstance(e, ev.StepFinished)]
    assert first.status == "failed" and "WorkerCrashedError" in first.error and second.status == "succeeded"


@task(timeout=1, retries=1)
def hangs(seconds: float) -> int:
    time.sleep(seconds)
    return 0


@workflow
def hanging(seconds: float = 60.0) -> int:
    return hangs(seconds=seconds)


def test_timeout_stops_the_step_and_retries_apply(home, ray_runtime):
    rec = MemoryRecorder()
    t0 = time.monotonic()
    with pytest.raises(ExecutionFailed, match="timeout of 1 s"):
        run(hanging, executor="ray", recorder=rec)
    assert time.monotonic() - t0 < 30
    attempts = [(e.attempt, e.status) for e in rec.events if isinstance(e, ev.StepFinished)]
    assert attempts == [(1, "timeout"), (2, "timeout")]


@task(resources=Resources(num_cpus=1))
def stamp(i: int) -> tuple[float, float]:
    start = time.time()
    time.sleep(1.0)
    return start, time.time()


@workflow
def parallel() -> list[tuple[float, float]]:
    return [stamp(i=i) for i in range(3)]


def test_independent_steps_run_in_parallel(home, ray_runtime):
    spans = run(parallel, executor="ray", recorder=MemoryRecorder()).outputs
    overlaps = sum(1 for a in spans for b in spans if a is not b and a[0] < b[1] and b[0] < a[1])
    assert overlaps > 0, "independent steps ran one after another"
