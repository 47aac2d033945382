"""map_task and when, on both executors, with the same output digests on each."""

import pytest

from ledgerflow import ExecutionFailed, MemoryRecorder, WorkflowTypeError, map_task, run, task, when, workflow
from ledgerflow.engine import events as ev


@task
def square(x: int, offset: int = 0) -> int:
    return x * x + offset


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def fragile(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


@task
def count_ok(xs: list[int | None]) -> int:
    return sum(1 for x in xs if x is not None)


@workflow
def static_map(offset: int = 1) -> list[int]:
    return map_task(square, x=[1, 2, 3], offset=offset)


@workflow
def dynamic_map(n: int = 5) -> int:
    return total(xs=map_task(square, x=numbers(n=n)))


@workflow
def strict_map(n: int = 5) -> int:
    return total(xs=map_task(fragile, x=numbers(n=n)))


@workflow
def tolerant_map(n: int = 10) -> int:
    return count_ok(xs=map_task(fragile, x=numbers(n=n), min_success=0.8))


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
def gated(score: int = 10, threshold: int = 5) -> str:
    s = square(x=score)
    return when(passes(score=s, threshold=threshold), then=lambda: register(score=s), otherwise=lambda: reject(score=s))


def finished(rec):
    return {e.step: e for e in rec.events if isinstance(e, ev.StepFinished)}


def outputs_digest(rec):
    (end,) = [e for e in rec.events if isinstance(e, ev.ExecutionFinished)]
    return [(n, r.digest) for n, r in end.outputs]


def test_static_map(home, executor):
    rec = MemoryRecorder()
    ex = run(static_map, executor=executor, recorder=rec)
    assert ex.outputs == [2, 5, 10]
    steps = finished(rec)
    assert [steps[f"square[{i}]"].map_index for i in range(3)] == [0, 1, 2]
    assert [r.digest for _, r in steps["square"].inputs] == [steps[f"square[{i}]"].outputs[0][1].digest for i in range(3)]


def test_dynamic_map_feeds_list_parameter(home, executor):
    rec = MemoryRecorder()
    assert run(dynamic_map, params={"n": 5}, executor=executor, recorder=rec).outputs == 30
    assert len([s for s in finished(rec) if s.startswith("square[")]) == 5


def test_thousand_element_map(home, executor):
    assert run(dynamic_map, params={"n": 1000}, executor=executor, recorder=MemoryRecorder()).outputs == \
        sum(i * i for i in range(1000))


def test_empty_map(home, executor):
    assert run(dynamic_map, params={"n": 0}, executor=executor, recorder=MemoryRecorder()).outputs == 0


def test_one_failed_element_fails_the_map(home, executor):
    rec = MemoryRecorder()
    with pytest.raises(ExecutionFailed, match="three is bad") as err:
        run(strict_map, executor=executor, recorder=rec)
    assert err.value.step == "fragile[3]"
    assert finished(rec)["fragile"].status == "failed"
    assert (finished(rec)["total"].status, finished(rec)["total"].blocked_by) == ("skipped", "fragile")


def test_min_success_tolerates_failures(home, executor):
    rec = MemoryRecorder()
    assert run(tolerant_map, executor=executor, recorder=rec).outputs == 9
    assert finished(rec)["fragile[3]"].status == "failed"
    with pytest.raises(ExecutionFailed):
        run(tolerant_map, params={"n": 4}, executor=executor, recorder=MemoryRecorder())  # 1 of 4 > 20%


def test_map_lists_must_agree_in_length(home):
    @workflow
    def w() -> list[int]:
        return map_task(square, x=[1, 2], offset=[1, 2, 3])

    with pytest.raises(ExecutionFailed, match="differ in length"):
        run(w, recorder=MemoryRecorder())


def test_map_build_time_errors():
    with pytest.raises(WorkflowTypeError, match="no argument is a list"):
        @workflow
        def w1() -> list[int]:
            return map_task(square, x=1)

    with pytest.raises(WorkflowTypeError, match=r"parameter 'x'.*expected list\[int\], given list\[str\]|expected int"):
        @task
        def words(n: int) -> list[str]:
            return []

        @workflow
        def w2() -> list[int]:
            return map_task(square, x=words(n=1))


def test_when_takes_one_branch_and_skips_the_other(home, executor):
    rec = MemoryRecorder()
    assert run(gated, params={"score": 10, "threshold": 50}, executor=executor, recorder=rec).outputs == "registered 100"
    steps = finished(rec)
    assert steps["register"].status == "succeeded" and steps["reject"].status == "skipped"
    assert "condition (output of step 'passes') was True" in steps["reject"].condition

    rec = MemoryRecorder()
    assert run(gated, params={"score": 2, "threshold": 50}, executor=executor, recorder=rec).outputs == "rejected 4"
    assert finished(rec)["register"].status == "skipped"


def test_both_branches_checked_at_build_time():
    with pytest.raises(WorkflowTypeError, match="task 'register', parameter 'score'"):
        @workflow
        def w(score: int = 1) -> str:
            return when(passes(score=score, threshold=1), then=lambda: register(score="x"),
                        otherwise=lambda: reject(score=score))

    with pytest.raises(WorkflowTypeError, match="condition must be a bool"):
        @workflow
        def w2(score: int = 1) -> str:
            return when(square(x=score), then=lambda: register(score=score), otherwise=lambda: reject(score=score))


def test_when_outside_workflow_is_plain_python():
    assert when(True, then=lambda: 1, otherwise=lambda: 2) == 1


@pytest.mark.parametrize("wf,params", [(static_map, {}), (dynamic_map, {"n": 7}), (tolerant_map, {}),
                                       (gated, {"score": 3})])
def test_same_output_digests_on_both_executors(home, ray_runtime, wf, params):
    digests = []
    for executor in ("local", "ray"):
        rec = MemoryRecorder()
        run(wf, params=params, executor=executor, recorder=rec)
        digests.append(outputs_digest(rec))
    assert digests[0] == digests[1]
