"""Every type Ledgerflow accepts round-trips: run -> cache hit -> replay give identical values.

Two parts. A hypothesis property over the accepted type grammar (scalars, Enum, Literal,
handles, records, containers, dicts with non-str keys, unions of any of them): a value,
conformed as a run conforms it, encodes and decodes to an identical value (same types all
the way down, so `1`, `1.0` and `True` stay apart) and to the same bytes again; and a union
that `check_supported` refuses really has two members a recorded value cannot tell apart.
Then, end to end for a few representative types: a cached task run twice (the second a
cache hit returning identical values) and `ledgerflow.replay` of the first run identical.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import textwrap
import typing
import uuid
from typing import Literal, Optional, Union

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from ledgerflow import replay, run
from ledgerflow.engine.loading import import_file
from ledgerflow.errors import WorkflowTypeError
from ledgerflow.types import Dataset, File, Model, UnsupportedType, check_supported, conform
from ledgerflow.types.annotations import union_members
from ledgerflow.types.codec import decode, encode
from ledgerflow.types.conform import identical

from test_codec import Config, Point  # the records test_codec checks, round-tripped here too


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


class Shape(enum.Enum):  # values that are not str or int
    UNIT = (1, 1)
    BLOB = b"\x00"
    NONE = None


@attrs.frozen
class Tree:
    value: int
    children: tuple[Tree, ...] = ()


@attrs.frozen
class Cat:
    name: str
    kind: Literal["cat"] = "cat"


@attrs.frozen
class Dog:
    name: str
    kind: Literal["dog"] = "dog"


@attrs.frozen
class Kitten:  # Cat's fields: a recorded Kitten and a recorded Cat look the same
    name: str
    kind: Literal["cat", "kitten"] = "kitten"


@attrs.frozen
class Base:
    x: int


@attrs.frozen
class Derived(Base):
    y: str = ""


@attrs.frozen
class Private:
    _secret: int
    derived: int = attrs.field(init=False, default=0)


DIGESTS = st.binary(min_size=4, max_size=4).map(lambda b: "blake3:" + b.hex())
SIZES = st.integers(0, 2**40)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
DAY = dt.timedelta(hours=23, minutes=59)
# Offsets of whole seconds: one with a fraction of a second is refused (test_sub_second_offsets_are_refused).
TIMEZONES = st.none() | st.just(dt.timezone.utc) | st.builds(
    dt.timezone, st.integers(-DAY.seconds, DAY.seconds).map(lambda s: dt.timedelta(seconds=s)))

LEAVES: list[tuple[typing.Any, st.SearchStrategy]] = [
    (bool, st.booleans()),
    (int, st.integers() | st.integers(-2**70, 2**70)),
    (float, FLOATS | st.integers(-2**60, 2**60)),  # an int where a float is declared: conform makes it 1.0
    (str, st.text()),
    (bytes, st.binary()),
    (type(None), st.none()),
    (dt.datetime, st.datetimes(timezones=TIMEZONES)),
    (dt.date, st.dates()),
    (Color, st.sampled_from(Color)),
    (Level, st.sampled_from(Level)),
    (Perm, st.sampled_from([Perm.READ, Perm.WRITE, Perm.READ | Perm.WRITE, Perm(0)])),
    (Shape, st.sampled_from(Shape)),
    (Literal["a", "b"], st.sampled_from(["a", "b"])),
    (Literal[1, True, None, b"x", 2.5, Color.BLUE], st.sampled_from([1, True, None, b"x", 2.5, Color.BLUE])),
    (File, st.builds(File, digest=DIGESTS, size=SIZES)),
    (File["csv"], st.builds(File["csv"], digest=DIGESTS, size=SIZES) | st.builds(File, digest=DIGESTS, size=SIZES)),
    (Model["sklearn"], st.builds(Model["sklearn"], digest=DIGESTS, size=SIZES, flavor=st.just("sklearn"))),
    (Dataset, st.builds(Dataset, digest=DIGESTS, size=SIZES, num_rows=st.integers(0, 10**9))),
    (Config, st.builds(Config, lr=FLOATS, layers=st.lists(st.integers()) | st.lists(st.integers()).map(tuple),
                       name=st.none() | st.text())),
    (Point, st.builds(Point, x=FLOATS | st.integers(), y=FLOATS)),
    (Tree, st.recursive(st.builds(Tree, st.integers()), max_leaves=8,
                        extend=lambda kids: st.builds(Tree, st.integers(), st.lists(kids, max_size=3).map(tuple)))),
    (Cat, st.builds(Cat, st.text())),
    (Dog, st.builds(Dog, st.text())),
    (Base, st.builds(Base, st.integers()) | st.builds(Derived, st.integers(), st.text())),  # a subclass becomes a Base
    (Derived, st.builds(Derived, st.integers(), st.text())),
    (Private, st.builds(Private, st.integers())),
]
KEYS = [(str, st.text()), (int, st.integers()), (bool, st.booleans()), (float, st.floats(allow_nan=False)),
        (Color, st.sampled_from(Color)), (Level, st.sampled_from(Level)), (Literal["a", 2], st.sampled_from(["a", 2]))]


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    pairs = st.tuples(inner, inner)
    return st.one_of(
        inner.map(lambda t: (list[t[0]], st.lists(t[1], max_size=4))),
        inner.map(lambda t: (tuple[t[0], ...], st.lists(t[1], max_size=4).map(tuple))),
        pairs.map(lambda p: (tuple[p[0][0], p[1][0]], st.tuples(p[0][1], p[1][1]))),
        st.tuples(st.sampled_from(KEYS), inner).map(
            lambda kv: (dict[kv[0][0], kv[1][0]], st.dictionaries(kv[0][1], kv[1][1], max_size=4))),
        inner.map(lambda t: (Optional[t[0]], st.none() | t[1])),
        st.lists(inner, min_size=2, max_size=3).map(_union),
    )


def _union(members: list) -> tuple:
    tp = Union[tuple(m for m, _ in members)]
    return tp, st.one_of([s for _, s in members])


TYPED_VALUES = st.recursive(st.sampled_from(LEAVES), _containers, max_leaves=6)


def _accepted(tp) -> bool:
    try:
        check_supported(tp)
        return True
    except UnsupportedType:
        return False


@settings(max_examples=1500)
@given(st.data())
@pytest.mark.slow
def test_every_accepted_type_round_trips(data):
    tp, values = data.draw(TYPED_VALUES, label="type")
    if not _accepted(tp):
        return  # a refused union: see test_refused_unions_are_ambiguous
    value = conform(data.draw(values, label="value"), tp)  # what a run records
    text = encode(value, tp)
    back = decode(text, tp)
    assert identical(back, value), (tp, value, back)
    assert encode(back, tp) == text  # canonical: the same bytes, so the same digest


@settings(max_examples=300)
@given(st.lists(st.sampled_from(LEAVES), min_size=2, max_size=3, unique_by=lambda t: t[0]), st.data())
@pytest.mark.slow
def test_refused_unions_are_ambiguous(members, data):
    """check_supported refuses a union of leaves only where two values really collide:
    some value of one member, encoded, decodes as another member to something else."""
    tp = Union[tuple(m for m, _ in members)]
    if _accepted(tp):
        return
    found = False
    for (a, sa), (b, sb) in itertools.permutations(members, 2):
        # A finite member's every value is tried (50 random draws could miss its one colliding
        # value); others by 50 draws.
        finite = list(typing.get_args(b)) if typing.get_origin(b) is Literal else (
            list(b) if isinstance(b, type) and issubclass(b, enum.Enum) else None)
        for v in (finite if finite is not None else (data.draw(sb) for _ in range(50))):
            v = conform(v, b)
            try:
                if not identical(decode(encode(v, b), a), v):
                    found = True
                    break
            except ValueError:
                continue
        if found:
            break
    assert found, f"{tp} was refused, but no value of one member decodes as another"


# Unions that must be accepted (they round-trip), and ones that must be refused at decoration.
ACCEPTED = [Union[int, str], Optional[int], int | float, float | int, bool | int | float | str | None,
            dt.datetime | dt.date, str | Literal["a", "b"], float | Literal[1], float | Perm, list[int] | list[str],
            list[int] | tuple[str, str], Cat | Dog, Base | Derived, dict[int, int] | Config,
            dict[str, int] | dict[int, str], File | File["csv"],
            File["csv"] | File["json"] | Model, Optional[Color], bytes | str, tuple[int, str] | tuple[str, int],
            dict[Color, list[float]], dict[Literal["a", "b"], int], Literal[1, True, 1.0], Perm, Shape,
            Config | Point | Optional[Tree], list[int | str] | list[str]]
REFUSED = [(str | dt.datetime, "JSON strings"), (str | dt.date, "JSON strings"), (str | Color, "Enum"),
           (int | Level, "Enum"), (list[int] | tuple[int, ...], "lists and tuples"),
           (Cat | Base | Optional[Kitten], "same fields"), (dict[str, int] | Base, "object of its fields"),
           (Dataset | Dataset[Base], "schema"), (dict[str, int | str] | File, "handle"),
           (Literal[Color.RED, "red"], "alike"),
           (Optional[dict[str, list[str | dt.date]]], "JSON strings")]


@pytest.mark.parametrize("tp", ACCEPTED, ids=str)
def test_accepted(tp):
    check_supported(tp)


@pytest.mark.parametrize("tp,says", REFUSED, ids=[str(t) for t, _ in REFUSED])
def test_refused_with_a_reason(tp, says):
    with pytest.raises(UnsupportedType) as e:
        check_supported(tp)
    msg = str(e.value)
    assert "recorded alike" in msg and (says is None or says in msg), msg


def test_union_decodes_the_member_it_was_encoded_from():
    tp = bool | int | float | str | None
    for value in [True, 1, 1.0, "1", None, 0, False, 0.0, ""]:
        back = decode(encode(conform(value, tp), tp), tp)
        assert identical(back, value), (value, back)
    assert decode(encode(Derived(1, "y"), Base | Derived), Base | Derived) == Derived(1, "y")
    assert type(decode(encode(Dog("rex"), Cat | Dog), Cat | Dog)) is Dog


def test_decode_is_strict():
    for text, tp in [("1.0", int), ("true", int), ("1", str), ('{"x": 1, "y": 2}', Base), ('{"lr": 1.0}', Config),
                     ('"2020-01-01"', dt.datetime), ('"2020-01-01T00:00:00"', dt.date), ('"green"', Color),
                     ('{"$$handle": "file", "digest": "d", "size": 1, "tag": "json"}', File["csv"]),
                     ("[1]", tuple[int, int]),
                     ('"x"', int | None), ("not json", int)]:
        with pytest.raises(ValueError, match="does not decode as"):
            decode(text, tp)


# ---- end to end: run, a cache hit, replay ----

PIPELINE = '''
import dataclasses, datetime as dt, enum
from typing import Literal, Optional, Union
import attrs
from ledgerflow import task, workflow

class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"

@attrs.frozen
class Cat:
    name: str
    kind: Literal["cat"] = "cat"

@attrs.frozen
class Dog:
    name: str
    kind: Literal["dog"] = "dog"

@dataclasses.dataclass(frozen=True)
class Reading:
    at: dt.datetime
    raw: bytes
    where: tuple[float, float]
    tags: dict[int, Optional[Color]]
    pet: Union[Cat, Dog, None]
'''
E2E = {  # parameter: its type, two values (each run with the first or the second of each)
    "number": ("Union[int, str]", ("7", 7)),  # the first type found failing on a cache hit
    "color": ("Optional[Color]", (Color.BLUE, None)),
    "choice": ('Literal["a", 1, True]', (1, True)),
    "pet": ("Union[Cat, Dog]", (Dog("rex"), Cat("tom"))),
    "readings": ("list[Reading]", None),  # built from the pipeline's own classes
    "by_color": ("dict[Color, list[float]]", ({Color.RED: [1.0, float("inf")], Color.BLUE: []}, {})),
    "scalars": ("tuple[dt.date, bytes, float, bool]", ((dt.date(2026, 11, 23), b"\x00\xff", 1.0, True),
                                                       (dt.date(1, 1, 1), b"", -0.0, False))),
}
PIPELINE += "".join(f'''
@task(cache=True)
def echo_{name}(x: {tp}) -> {tp}:
    return x
''' for name, (tp, _) in E2E.items())
PIPELINE += f'''
@workflow
def echo({", ".join(f"{name}: {tp}" for name, (tp, _) in E2E.items())}) -> tuple[{", ".join(tp for tp, _ in E2E.values())}]:
    return {", ".join(f"echo_{name}(x={name})" for name in E2E)}
'''


@pytest.fixture
def pipeline(tmp_path):
    path = tmp_path / f"rt_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(PIPELINE))
    return import_file(path)


def _native(mod, value):
    """A value of this file's classes as the pipeline module's own."""
    if isinstance(value, Color):
        return mod.Color[value.name]
    if isinstance(value, (Cat, Dog)):
        return getattr(mod, type(value).__name__)(value.name)
    if isinstance(value, dict):
        return {_native(mod, k): _native(mod, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_native(mod, v) for v in value)
    return value


@pytest.mark.slow
def test_run_cache_hit_and_replay_are_identical(home, pipeline):
    mod = pipeline
    tz = dt.timezone(dt.timedelta(hours=5, minutes=30))
    readings = ([mod.Reading(dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=tz), b"\x01", (0.0, -2.5),
                             {1: mod.Color.RED, -3: None}, mod.Dog("rex"))],
                [mod.Reading(dt.datetime(1999, 12, 31), b"", (1.0, 2.0), {}, None)])
    for i in (0, 1):
        params = {name: readings[i] if values is None else _native(mod, values[i]) for name, (_, values) in E2E.items()}
        first = run(mod.echo, params)
        assert {s.status for s in first.steps.values()} == {"succeeded"}
        assert identical(first.outputs, tuple(params.values())), (first.outputs, params)
        again = run(mod.echo, params)
        assert {s.status for s in again.steps.values()} == {"cached"}, again.steps
        assert identical(again.outputs, first.outputs), (again.outputs, first.outputs)
        r = replay(first.id)
        assert r.verdict == "identical", r.summary()
        assert r.steps == len(E2E)


def test_an_ambiguous_union_is_refused_when_the_task_is_decorated(tmp_path):
    path = tmp_path / f"bad_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent('''
        import datetime as dt
        from ledgerflow import task

        @task(cache=True)
        def when(x: str | dt.datetime) -> str:
            return str(x)
    '''))
    with pytest.raises(WorkflowTypeError, match=r"parameter 'x'.*str \| datetime.*recorded alike"):
        import_file(path)


def test_conform_gives_what_the_ledger_gives_back():
    assert identical(conform(Config(1, (1, 2)), Config), Config(1.0, [1, 2]))
    assert type(conform(Derived(1, "y"), Base)) is Base
    assert type(conform(Derived(1, "y"), Base | Derived)) is Derived
    assert conform("a", Literal["a", 1]) == "a"
    with pytest.raises(TypeError):
        conform(True, Literal[1])
    assert union_members(Optional[Color]) == (Color, type(None))


def test_sub_second_offsets_are_refused():
    from ledgerflow.types import TypeMismatch

    odd = dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(microseconds=1)))
    with pytest.raises(TypeMismatch, match="fraction of a second"):
        conform(odd, dt.datetime)
