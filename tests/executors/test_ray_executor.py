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


def rendezvous(folder: str, me: str, peers: int, timeout: float = 60.0) -> bool:
    """Mark `me` present in folder and wait until `peers` others are too: True only if they
    ran at the same time (one after the other, the first would wait in vain)."""
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, me), "w").close()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(os.listdir(folder)) >= peers + 1:
            return True
        time.sleep(0.05)
    return False


@task(resources=Resources(num_cpus=1, num_gpus=1))
def gpu_waits_for_cpu(folder: str) -> tuple[str, bool]:
    return os.environ.get("CUDA_VISIBLE_DEVICES", ""), rendezvous(folder, "gpu", 1)


@task(resources=Resources(num_cpus=1))
def cpu_meets_gpu(folder: str) -> bool:
    return rendezvous(folder, "cpu", 1)


@workflow
def two_gpu_steps(hold: float = 1.0) -> list[tuple[str, float, float]]:
    return [on_gpu(label="a", hold=hold), on_gpu(label="b", hold=hold)]


@workflow
def gpu_beside_cpu(folder: str) -> tuple[tuple[str, bool], bool]:
    return gpu_waits_for_cpu(folder=folder), cpu_meets_gpu(folder=folder)


def test_gpu_steps_never_overlap_and_see_their_gpu(home, ray_runtime):
    rec = MemoryRecorder()
    (dev_a, s_a, e_a), (dev_b, s_b, e_b) = run(two_gpu_steps, executor="ray", recorder=rec).outputs
    assert dev_a == dev_b == "0"
    assert e_a <= s_b or e_b <= s_a, "two num_gpus=1 steps ran at once on a 1-GPU cluster"
    started = [e for e in rec.events if isinstance(e, ev.StepStarted)]
    assert all(json.loads(s.resources)["num_gpus"] == 1 for s in started)
    assert all(e.node and "/" in e.node for e in rec.events if isinstance(e, ev.StepFinished))


def test_cpu_steps_run_beside_a_gpu_step(home, ray_runtime, tmp_path):
    (dev, gpu_met), cpu_met = run(gpu_beside_cpu, {"folder": str(tmp_path / "meet")}, executor="ray",
                                  recorder=MemoryRecorder()).outputs
    assert dev == "0"
    assert gpu_met and cpu_met, "the CPU step did not run while the GPU step was running"


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
    # Checked as the first step was about to start: no step started; the execution says why it stopped.
    assert not [e for e in rec.events if isinstance(e, ev.StepStarted)]
    assert "ResourceError" in rec.events[-1].error and rec.events[-1].status == "failed"


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
def meet(folder: str, i: int) -> bool:
    return rendezvous(folder, str(i), 2)


@workflow
def parallel(folder: str) -> list[bool]:
    return [meet(folder=folder, i=i) for i in range(3)]


def test_independent_steps_run_in_parallel(home, ray_runtime, tmp_path):
    met = run(parallel, {"folder": str(tmp_path / "meet")}, executor="ray", recorder=MemoryRecorder()).outputs
    assert met == [True, True, True], "independent steps did not all run at once on a 4-CPU runtime"


@task
def where_am_i(i: int) -> int:
    return i


@workflow
def spread() -> list[int]:
    return [where_am_i(i=i) for i in range(3)]


def test_each_node_that_ran_steps_has_its_environment_recorded(tmp_path, ray_runtime):
    from ledgerflow import Ledger

    ex = run(spread, executor="ray", home=tmp_path / "home")
    detail = Ledger(tmp_path / "home").execution(ex.id)
    ran_on = {s.node for s in detail.steps}
    assert ran_on and ran_on <= set(detail.nodes)
    env = next(iter(detail.nodes.values()))
    assert env["python"] and "ledgerflow" in env["packages"] and "ray" in env["packages"]


def test_values_of_classes_only_the_driver_can_name_cross_both_ways(home, ray_runtime):
    # A class made inside a function cannot be pickled by reference: the call to the worker and
    # the outcome back both fall back to pickling it by value, as Ray itself would.
    import attrs

    @attrs.frozen
    class Point:
        x: int
        y: int

    @task
    def make(n: int) -> Point:
        return Point(n, n + 1)

    @task
    def total(p: Point) -> int:
        return p.x + p.y

    @workflow
    def points(n: int = 2) -> tuple[Point, int]:
        p = make(n=n)
        return p, total(p=p)

    ex = run(points, home=home, executor="ray")
    point, total_ = ex.outputs
    assert (point.x, point.y, total_) == (2, 3, 5)
