from typing import Optional

import attrs
from hypothesis import given, strategies as st

from ledgerflow import Dataset, Directory, File, Model
from ledgerflow.types import accepts


@attrs.define
class S:
    x: int


@attrs.define
class P:
    x: int
    y: str


@attrs.define
class Q:
    x: str


@attrs.define
class Base:
    a: int


@attrs.define
class Derived(Base):
    b: int = 0


def test_rules():
    assert accepts(int, int) and not accepts(float, int) and not accepts(int, bool)
    assert accepts(Optional[int], int) and not accepts(int, Optional[int])
    assert accepts(int | None, Optional[int])
    assert accepts(File, File["csv"]) and not accepts(File["csv"], File) and not accepts(File["csv"], File["json"])
    assert not accepts(File, Directory) and accepts(Directory, Model) and not accepts(Model, Directory)
    assert accepts(Model, Model["sklearn"]) and not accepts(Model["torch"], Model["sklearn"])
    assert accepts(Dataset, Dataset[S]) and accepts(Dataset[S], Dataset[P]) and not accepts(Dataset[P], Dataset[S])
    assert not accepts(Dataset[S], Dataset[Q]) and not accepts(Dataset[S], Dataset)
    assert accepts(list[Optional[int]], list[int]) and not accepts(list[int], list[str])
    assert accepts(dict[str, File], dict[str, File["csv"]]) and not accepts(dict[int, int], dict[str, int])
    assert accepts(tuple[int, ...], tuple[int, int]) and not accepts(tuple[int, int], tuple[int, ...])
    assert accepts(Base, Derived) and not accepts(Derived, Base)
    assert not accepts(list[int], tuple[int, ...])


atoms = st.sampled_from([
    int, float, str, bool, bytes, type(None), File, File["csv"], File["json"], Directory, Model, Model["sklearn"],
    Model["torch"], Dataset, Dataset[S], Dataset[P], Dataset[Q], Base, Derived,
])
types = st.recursive(atoms, lambda inner: st.one_of(
    inner.map(lambda t: list[t]),
    inner.map(lambda t: Optional[t]),
    st.tuples(inner, inner).map(lambda ab: tuple[ab[0], ab[1]]),
    inner.map(lambda t: dict[str, t]),
), max_leaves=4)


@given(types)
def test_reflexive(t):
    assert accepts(t, t)


@given(types, types, types)
def test_transitive(a, b, c):
    if accepts(a, b) and accepts(b, c):
        assert accepts(a, c)


@given(st.sampled_from([File, Directory, Model]), st.text(min_size=1), st.text(min_size=1))
def test_different_tags_never_match(kind, t1, t2):
    if t1 != t2:
        assert not accepts(kind[t1], kind[t2]) and not accepts(kind[t2], kind[t1])
    assert accepts(kind, kind[t1])
