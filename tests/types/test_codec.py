import dataclasses
import datetime as dt
import enum
from typing import Optional

import attrs
import pytest
from hypothesis import given, strategies as st

from ledgerflow.types import conform
from ledgerflow.types.codec import decode, encode, parse_text, value_digest


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Config:
    lr: float
    layers: list[int]
    name: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


def digest(value, tp=None):
    return value_digest(encode(value, tp))


def test_scalars_that_look_alike_differ():
    assert len({digest(1, int), digest(1.0, float), digest("1", str), digest(True, bool)}) == 4


def test_dict_order_does_not_matter():
    assert encode({"a": 1, "b": 2}, dict[str, int]) == encode({"b": 2, "a": 1}, dict[str, int])
    assert encode({2: "x", 1: "y"}, dict[int, str]) == encode({1: "y", 2: "x"}, dict[int, str])


SUPPORTED = [
    (st.booleans(), bool),
    (st.integers(), int),
    (st.floats(allow_nan=False), float),
    (st.text(), str),
    (st.binary(), bytes),
    (st.none(), type(None)),
    (st.sampled_from(Color), Color),
    (st.datetimes(), dt.datetime),
    (st.dates(), dt.date),
    (st.lists(st.integers()), list[int]),
    (st.tuples(st.text(), st.floats(allow_nan=False)), tuple[str, float]),
    (st.lists(st.booleans()).map(tuple), tuple[bool, ...]),
    (st.dictionaries(st.text(), st.lists(st.floats(allow_infinity=True, allow_nan=False))), dict[str, list[float]]),
    (st.dictionaries(st.integers(), st.text()), dict[int, str]),
    (st.one_of(st.none(), st.integers()), Optional[int]),
    (st.builds(Config, lr=st.floats(allow_nan=False), layers=st.lists(st.integers()), name=st.none() | st.text()), Config),
    (st.builds(Point, x=st.floats(allow_nan=False), y=st.floats(allow_nan=False)), Point),
    (st.dictionaries(st.sampled_from(["$bytes", "$map", "$$x", "a"]), st.integers()), dict[str, int]),
]


@pytest.mark.parametrize("strategy,tp", SUPPORTED, ids=[str(t) for _, t in SUPPORTED])
@pytest.mark.slow
def test_codec_round_trips(strategy, tp):
    @given(strategy)
    def check(value):
        text = encode(value, tp)
        back = decode(text, tp)
        assert back == value
        assert encode(back, tp) == text  # canonical: the same bytes again

    check()


def test_conform_is_strict():
    assert conform(3, float) == 3.0 and isinstance(conform(3, float), float)
    for value, tp in [("3", int), (True, int), (1.5, int), (None, int), ([1, "a"], list[int]), ({"a": "b"}, dict[str, int])]:
        with pytest.raises(TypeError):
            conform(value, tp)


def test_parse_text():
    assert parse_text("500", int) == 500
    assert parse_text("1e-3", float) == 0.001
    assert parse_text("hello", str) == "hello"
    assert parse_text("false", bool) is False
    assert parse_text("none", Optional[int]) is None
    assert parse_text("RED", Color) is Color.RED
    assert parse_text('{"lr": 0.1, "layers": [1, 2]}', Config) == Config(0.1, [1, 2])
    assert parse_text("2026-11-23", dt.date) == dt.date(2026, 11, 23)
    for text, tp in [("abc", int), ("1.5", int), ("maybe", bool), ("[1, \"x\"]", list[int])]:
        with pytest.raises(ValueError):
            parse_text(text, tp)
