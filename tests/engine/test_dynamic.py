"""Dynamic steps (issue 15, point 1): part of the graph built at run time from values, recorded
in the same execution with lineage, cached, on both executors; recursion with a depth limit."""

from __future__ import annotations

import pytest

from ledgerflow import ExecutionFailed, Ledger, dynamic, run, task, workflow


@task(cache=True)
def merge(a: list[int], b: list[int]) -> list[int]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


@dynamic
def merge_sort(xs: list[int]) -> list[int]:
    if len(xs) <= 1:
        return xs
    mid = len(xs) // 2
    return merge(a=merge_sort(xs=xs[:mid]), b=merge_sort(xs=xs[mid:]))


@task
def numbers(n: int) -> list[int]:
    return [(i * 7919) % 13 for i in range(n)]


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def sorted_numbers(n: int = 6) -> list[int]:
    return merge_sort(xs=numbers(n=n))


def test_a_recursive_merge_sort_joins_the_execution(home, executor):
    ex = run(sorted_numbers, {"n": 6}, executor=executor, home=home, progress=False)
    assert ex.outputs == sorted((i * 7919) % 13 for i in range(6))
    ledger = Ledger(home)
    steps = {s.step: s.status for s in ledger.execution(ex.id).steps}
    assert steps["merge_sort"] == "succeeded"
    assert "merge_sort.merge" in steps and "merge_sort.merge_sort.merge" in steps
    assert all(status == "succeeded" for status in steps.values()), steps
    graph = ledger.graph(ex.id)
    assert {e.source for e in graph.edges_into("merge_sort") if e.param == "return"} == {"merge_sort.merge"}
    # Lineage runs from the sorted list back through the merges to the numbers it came from.
    up = ledger.upstream(f"{ex.id}:merge_sort")
    reached = {n.ref.split(":", 1)[1] for n in up.nodes if n.kind == "step"}
    assert {"merge_sort.merge", "numbers"} <= reached
    again = run(sorted_numbers, {"n": 6}, executor=executor, home=home, progress=False)
    assert again.outputs == ex.outputs
    assert again.steps["merge_sort.merge"].status == "cached"


@dynamic
def forever(n: int) -> int:
    return forever(n=n + 1)


@workflow
def endless(n: int = 0) -> int:
    return forever(n=n)


def test_a_recursion_that_never_ends_stops_at_the_depth_limit(home):
    with pytest.raises(ExecutionFailed, match=r"nested 33 deep \(the limit is 32\): does the recursion"):
        run(endless, home=home, progress=False)


@dynamic
def badly_typed(n: int) -> int:
    return total(xs=[str(n)])


@workflow
def wrong(n: int = 1) -> int:
    return badly_typed(n=n)


def test_what_a_dynamic_body_builds_is_type_checked(home):
    with pytest.raises(ExecutionFailed, match=r"task .total., parameter .xs. at .*: expected list\[int\], given list"):
        run(wrong, home=home, progress=False)


def test_outside_a_workflow_it_is_the_plain_function():
    assert merge_sort([3, 1, 2]) == [1, 2, 3]
