"""Plain values to canonical bytes and back.

Encoding goes through one cattrs converter into compact JSON with sorted keys and a few
tagged forms (bytes, non-finite floats, dicts with non-string keys), so equal values have
equal bytes and so equal digests, whatever the dict order; and `1`, `1.0`, `"1"` and `True`
all differ. Handles inside values (a `list[Model]`) encode as their kind and digest.
Decoding is the strict inverse, one small decoder per type (`decode`): what a cache hit or a
replay gives back is exactly what the step returned, and a union type whose members could
be recorded alike is refused when the task is decorated (`union_problem`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import enum
import math
import threading
import typing
from typing import Any

import cattrs
from cattrs.cols import namedtuple_dict_unstructure_factory

from ledgerflow.errors import DecodeError, HandleTypeError, UnsupportedType
from ledgerflow.store import digest_bytes
from ledgerflow.types.annotations import (
    NoneType,
    init_fields,
    is_enum_type,
    is_handle_type,
    is_literal_type,
    is_namedtuple,
    is_record_type,
    record_fields,
    type_name,
    union_members,
)
from ledgerflow.types.conform import conform, identical
from ledgerflow.types.kinds import HANDLE_KINDS, Handle

converter = cattrs.Converter()
converter.register_unstructure_hook(dt.datetime, dt.datetime.isoformat)
converter.register_structure_hook(dt.datetime, lambda v, _: v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v))
converter.register_unstructure_hook(dt.date, dt.date.isoformat)
converter.register_structure_hook(dt.date, lambda v, _: v if isinstance(v, dt.date) else dt.date.fromisoformat(v))
converter.register_structure_hook(bytes, lambda v, _: bytes(v))
converter.register_structure_hook(type(None), lambda v, _: v)


def _unstructure_handle(h: Handle) -> dict[str, Any]:
    # The store URL and original file name are where and how, not what: they stay out so
    # the same content encodes the same wherever it lives.
    out: dict[str, Any] = {"$handle": h.kind, "digest": h.digest, "size": h.size}
    if h.tag is not None:
        out["tag"] = h.tag
    out.update(h.wire())
    return out


def _structure_handle(obj: Any, cls: type) -> Handle:
    if isinstance(obj, Handle):
        return obj
    fields = {k: v for k, v in obj.items() if k not in ("$handle", "tag")}
    kind = HANDLE_KINDS[obj["$handle"]]
    if cls.kind != kind.kind:
        raise HandleTypeError(f"a {kind.kind} handle cannot be read as {cls.__name__}")
    target = cls if cls.refinement() is not None else kind[obj["tag"]] if obj.get("tag") else kind
    return target(**fields)


converter.register_unstructure_hook_func(is_handle_type, _unstructure_handle)
# A NamedTuple is a record: encoded by field name, as attrs classes and dataclasses are (cattrs
# would write it as a list, and the names its consumers read it by would be lost).
converter.register_unstructure_hook_factory(is_namedtuple, namedtuple_dict_unstructure_factory)
converter.register_structure_hook_func(is_handle_type, _structure_handle)


def _tag(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return {"$float": repr(o)}
    if isinstance(o, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(o)).decode()}
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o):
            return {("$" + k if k.startswith("$") else k): _tag(v) for k, v in o.items()}
        pairs = [[_tag(k), _tag(v)] for k, v in o.items()]
        pairs.sort(key=lambda kv: json.dumps(kv[0], sort_keys=True))
        return {"$map": pairs}
    if isinstance(o, (list, tuple)):
        return [_tag(x) for x in o]
    return o


def _untag(o: dict) -> Any:
    if len(o) == 1:
        (key, val), = o.items()
        if key == "$float":
            return float(val)
        if key == "$bytes":
            return base64.b64decode(val)
        if key == "$map":
            return {_hashable(k): v for k, v in val}
    return {(k[1:] if k.startswith("$$") else k): v for k, v in o.items()}


def _hashable(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def canonical_json(unstructured: Any) -> str:
    return json.dumps(_tag(unstructured), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def encode(value: Any, tp: Any = None) -> str:
    """The canonical JSON text of a value of type tp.

    >>> encode({"b": 1, "a": 1.0}, dict[str, float] | dict[str, int])
    '{"a":1.0,"b":1}'
    """
    return canonical_json(converter.unstructure(value, unstructure_as=tp) if tp is not None
                          else converter.unstructure(value))


def decode(text: str, tp: Any) -> Any:
    """The value of type tp that `encode` turned into text; DecodeError (a ValueError) if `text` is not one.

    Decoding is strict, the inverse of `encode` and nothing more: `1` is no `str`, `1.0` is
    no `int`, `true` is no `int`, and a record takes exactly its fields. A union is decoded
    as the first member that takes the text, which is the member it was encoded from:
    `check_supported` refuses unions whose members could be recorded alike.

    >>> decode('"7"', int | str), decode('7', int | str)
    ('7', 7)
    >>> decode('["x"]', list[int])
    Traceback (most recent call last):
    ...
    ledgerflow.errors.DecodeError: the recorded value does not decode as list[int]: [0]: expected int, got str 'x'
    """
    try:
        raw = json.loads(text, object_hook=_untag)
        try:
            return _decoder(tp)(raw)
        except _Reject:
            try:  # recorded before conform made every float slot's value a float: `1` as 1.0
                return _decoder(tp, True)(raw)
            except _Reject:
                pass
            raise
    except _Reject as e:
        raise DecodeError(f"the recorded value does not decode as {type_name(tp)}: {e}") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        # Text that is not JSON, or a planted value deep enough to exhaust the stack: callers
        # (cache reuse, replay) fall back on a ValueError, never a crash.
        raise DecodeError(f"the recorded value does not decode as {type_name(tp)}: "
                         f"{type(e).__name__}: {e}") from None


class _Reject(ValueError):
    """A JSON value that is not the encoding of any value of the type asked for."""

    def __init__(self, msg: str, where: str = ""):
        super().__init__(f"{where}: {msg}" if where else msg)
        self.msg, self.where = msg, where

    def at(self, step: str) -> "_Reject":
        return _Reject(self.msg, step + self.where)


def _reject(tp: Any, v: Any, why: str = "") -> typing.NoReturn:
    shown = repr(v)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    kind = {dict: "object", list: "array", type(None): "null"}.get(type(v), type(v).__name__)
    raise _Reject(f"expected {type_name(tp)}, got {kind} {shown}" + (f" ({why})" if why else ""))


_DECODERS: dict[Any, Any] = {}
_BUILDING = threading.RLock()


def _decoder(tp: Any, lenient: bool = False) -> typing.Callable[[Any], Any]:
    """The strict decoder of type tp, from JSON as `json.loads(..., object_hook=_untag)` gives it.

    Lenient, a float slot also takes a JSON integer, as values recorded before `conform`
    rebuilt records with their float fields as floats have them. Never in the strict one:
    in `float | Perm` the `1` is a Perm's.
    """
    key = (tp, lenient)
    try:
        return _DECODERS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: built each time
        return _build(tp, lenient)
    with _BUILDING:
        if key in _DECODERS:
            return _DECODERS[key]
        # A record may contain itself (a tree): a forwarding stub stands in while it is built.
        slot: list = []
        _DECODERS[key] = lambda v: slot[0](v)
        try:
            fn = _build(tp, lenient)
        except BaseException:
            del _DECODERS[key]
            raise
        slot.append(fn)
        _DECODERS[key] = fn
        return fn


def _build(tp: Any, lenient: bool) -> typing.Callable[[Any], Any]:
    if tp is None or tp is NoneType:
        def none(v: Any) -> None:
            if v is not None:
                _reject(tp, v)
        return none
    members = union_members(tp)
    if members is not None:
        return _union_decoder(tp, [_decoder(m, lenient) for m in members])
    if tp in (bool, int, str, bytes):
        def exact(v: Any) -> Any:
            if type(v) is tp:
                return v
            _reject(tp, v)
        return exact
    if tp is float:
        def real(v: Any) -> float:
            if type(v) is float:
                return v
            if lenient and type(v) is int:
                try:
                    return float(v)
                except OverflowError:
                    pass
            _reject(tp, v)
        return real
    if tp in (dt.datetime, dt.date):
        def iso(v: Any) -> Any:
            if type(v) is str:
                try:
                    d = tp.fromisoformat(v)
                except ValueError:
                    _reject(tp, v)
                if type(d) is tp and d.isoformat() == v:  # exactly what `encode` writes
                    return d
            _reject(tp, v)
        return iso
    if is_handle_type(tp):
        return _handle_decoder(tp)
    if is_literal_type(tp) or is_enum_type(tp):
        return _finite_decoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return _list_decoder(tp, _decoder(args[0], lenient))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_decoder(tp, _decoder(args[0], lenient), None)
        return _tuple_decoder(tp, None, [_decoder(a, lenient) for a in args])
    if origin is dict:
        return _dict_decoder(tp, _decoder(args[0], lenient), _decoder(args[1], lenient))
    if is_record_type(tp):
        return _record_decoder(tp, lenient)
    raise UnsupportedType(f"unsupported type {type_name(tp)}: no decoder")


def _union_decoder(tp: Any, members: list) -> typing.Callable[[Any], Any]:
    def union(v: Any) -> Any:
        for d in members:
            try:
                return d(v)
            except _Reject:
                continue
        _reject(tp, v)
    return union


def _list_decoder(tp: Any, item: Any) -> typing.Callable[[Any], Any]:
    def seq(v: Any) -> list:
        if type(v) is not list:
            _reject(tp, v)
        try:
            return [item(x) for x in v]
        except _Reject:
            raise _first_failure(item, v) from None
    return seq


def _tuple_decoder(tp: Any, item: Any, items: list | None) -> typing.Callable[[Any], Any]:
    def tup(v: Any) -> tuple:
        if type(v) is not list:
            _reject(tp, v)
        if items is None:
            try:
                return tuple([item(x) for x in v])
            except _Reject:
                raise _first_failure(item, v) from None
        if len(v) != len(items):
            _reject(tp, v, f"{len(v)} elements, not {len(items)}")
        out = []
        for i, (d, x) in enumerate(zip(items, v)):
            try:
                out.append(d(x))
            except _Reject as e:
                raise e.at(f"[{i}]") from None
        return tuple(out)
    return tup


def _first_failure(item: Any, v: list) -> _Reject:
    for i, x in enumerate(v):
        try:
            item(x)
        except _Reject as e:
            return e.at(f"[{i}]")
    return _Reject("an element does not decode")


def _dict_decoder(tp: Any, key: Any, value: Any) -> typing.Callable[[Any], Any]:
    def mapping(v: Any) -> dict:
        if type(v) is not dict:
            _reject(tp, v)
        out = {}
        for k, x in v.items():
            try:
                dk = key(k)
            except _Reject as e:
                raise _Reject(f"key {e.msg}") from None
            try:
                out[dk] = value(x)
            except _Reject as e:
                raise e.at(f"[{k!r}]") from None
        return out
    return mapping


def _record_decoder(tp: type, lenient: bool) -> typing.Callable[[Any], Any]:
    types = record_fields(tp)
    fields = [(name, arg, _decoder(types[name], lenient)) for name, arg in init_fields(tp)]
    names = frozenset(name for name, _, _ in fields)

    def record(v: Any) -> Any:
        if type(v) is not dict or v.keys() != names:
            if type(v) is dict:
                missing, extra = sorted(names - v.keys()), sorted(map(repr, v.keys() - names))
                _reject(tp, v, "; ".join(filter(None, (missing and f"missing {', '.join(missing)}",
                                                       extra and f"no field {', '.join(extra)}"))))
            _reject(tp, v)
        kwargs = {}
        for name, arg, d in fields:
            try:
                kwargs[arg] = d(v[name])
            except _Reject as e:
                raise e.at(f".{name}") from None
        try:
            return tp(**kwargs)
        except Exception as e:  # its own validators refuse the recorded fields
            raise _Reject(f"{type_name(tp)}({', '.join(kwargs)}) failed: {type(e).__name__}: {e}") from None
    return record


_HANDLE_FIELDS = {"digest": str, "size": int}


def _handle_decoder(tp: type) -> typing.Callable[[Any], Any]:
    allowed = {**_HANDLE_FIELDS, **tp.wire_fields}

    def handle(v: Any) -> Handle:
        if type(v) is not dict or v.get("$handle") != tp.kind or type(v.get("digest")) is not str:
            _reject(tp, v)
        tag = v.get("tag")
        if tp.tag is not None and tag != tp.tag:
            _reject(tp, v, f"tag {tag!r}, not {tp.tag!r}")
        if tag is not None and (type(tag) is not str or not tag):
            _reject(tp, v, "tag")
        fields = {}
        for k, x in v.items():
            if k == "$handle" or k == "tag":
                continue
            if type(x) is not allowed.get(k):
                _reject(tp, v, f"field {k!r}")
            fields[k] = x
        target = tp if tp.refinement() is not None else tp.base[tag] if tag else tp.base
        try:
            return target(**fields)
        except (TypeError, ValueError) as e:
            raise _Reject(f"{type_name(tp)}: {e}") from None
    return handle


def _finite_key(v: Any) -> Any:
    return (type(v), v) if type(v) in (str, int, bool, NoneType) else canonical_json(v)


def finite_values(tp: Any) -> list[tuple[Any, Any]]:
    """(JSON as decoded, value) for each value of an Enum or a Literal."""
    values = typing.get_args(tp) if is_literal_type(tp) else list(tp.__members__.values())
    return [(json.loads(encode(x), object_hook=_untag), x) for x in values]


def _finite_decoder(tp: Any) -> typing.Callable[[Any], Any]:
    table: dict[Any, Any] = {}
    for j, x in finite_values(tp):
        table.setdefault(_finite_key(j), x)
    flag = tp if is_enum_type(tp) and issubclass(tp, enum.Flag) else None

    def finite(v: Any) -> Any:
        try:
            return table[_finite_key(v)]
        except (KeyError, TypeError):
            pass
        if flag is not None and type(v) is int:  # a combination of flags
            try:
                return flag(v)
            except ValueError:
                pass
        _reject(tp, v)
    return finite


# ---- which values survive encode -> decode: used by check_supported when a task is decorated ----

def finite_problem(tp: Any) -> str | None:
    """Why the values of an Enum or Literal cannot all round-trip, or None."""
    try:
        values = finite_values(tp)
    except (TypeError, ValueError) as e:
        return (f"its values must be plain values with a JSON form (str, int, float, bool, bytes, None, "
                f"tuples of them): {e}")
    decoder = _finite_decoder(tp)
    for j, x in values:
        try:
            back = decoder(j)
        except _Reject:
            return f"{_shown(x)} is recorded as {canonical_json(j)}, which does not read back as it"
        if back is not x and not identical(back, x):
            return (f"{_shown(back)} and {_shown(x)} are recorded alike, as {canonical_json(j)}: "
                    "give each value a different plain value")
    return None


def _shown(x: Any) -> str:
    return f"{type(x).__name__}.{x.name}" if isinstance(x, enum.Enum) else repr(x)


def union_problem(members: tuple) -> str | None:
    """Why a value of this union might decode as another member than it was encoded from, or None."""
    for i, a in enumerate(members):
        for b in members[i + 1:]:
            if _relation(a, b, set()) == _CLASH:
                return (f"{type_name(a)} and {type_name(b)} can be recorded alike, so a cached or replayed "
                        f"value could not say which of them it was ({_why(a, b)})")
    return None


_NONE, _SAME, _CLASH = 0, 1, 2  # no text decodes as both; some do, always to identical values; some don't
_STRINGS = ("str", "datetime", "date")


def _kind(tp: Any) -> str:
    if tp is None or tp is NoneType:
        return "null"
    if tp in (bool, int, float, bytes, str):
        return tp.__name__
    if tp is dt.datetime:
        return "datetime"
    if tp is dt.date:
        return "date"
    if is_handle_type(tp):
        return "handle"
    if union_members(tp) is not None:
        return "union"
    if is_literal_type(tp) or is_enum_type(tp):
        return "finite"
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        return "tuple..." if len(args) == 2 and args[1] is Ellipsis else "tuple"
    if origin in (list, dict):
        return origin.__name__
    if is_record_type(tp):
        return "record"
    return "other"


def _relation(a: Any, b: Any, seen: set) -> int:
    """Whether some encoded text is taken by the decoders of both a and b, and if so whether
    they always make identical values of it (_SAME) or not always (_CLASH)."""
    if a == b:
        return _SAME
    ka, kb = _kind(a), _kind(b)
    if ka == "union" or kb == "union":
        split, other = (a, b) if ka == "union" else (b, a)
        return max(_relation(m, other, seen) for m in union_members(split))
    if ka == "finite" or kb == "finite":
        fin, other = (a, b) if ka == "finite" else (b, a)
        decoder, out = _decoder(other), _NONE
        for j, x in finite_values(fin):
            try:
                back = decoder(j)
            except _Reject:
                continue
            out = max(out, _SAME if back is x or identical(back, x) else _CLASH)
        return out
    pair = (a, b) if ka <= kb else (b, a)
    if pair in seen:  # a recursive record met again: no finite text is taken by both through here
        return _NONE
    seen = seen | {pair}
    if ka in _STRINGS and kb in _STRINGS:
        return _CLASH if "str" in (ka, kb) else _NONE  # a datetime's text is never a date's
    if ka in ("list", "tuple", "tuple...") and kb in ("list", "tuple", "tuple..."):
        return _arrays(a, ka, b, kb, seen)
    if ka == kb == "dict":
        (k1, v1), (k2, v2) = typing.get_args(a), typing.get_args(b)
        keys, values = _relation(k1, k2, seen), _relation(v1, v2, seen)
        return _SAME if _NONE in (keys, values) else max(keys, values)  # {} is both, alike
    if {ka, kb} == {"dict", "record"}:
        mapping, record = (a, b) if ka == "dict" else (b, a)
        key, value = typing.get_args(mapping)
        types, keys = record_fields(record), _decoder(key)
        for name, _ in init_fields(record):
            try:
                keys(name)
            except _Reject:
                return _NONE
            if _relation(value, types[name], seen) == _NONE:
                return _NONE
        return _CLASH
    if {ka, kb} == {"dict", "handle"}:
        key, value = typing.get_args(a if ka == "dict" else b)
        try:
            for name in ("$handle", "digest", "size"):
                _decoder(key)(name)
        except _Reject:
            return _NONE
        if _relation(value, str, seen) and _relation(value, int, seen):
            return _CLASH
        return _NONE
    if ka == kb == "record":
        fa, fb = record_fields(a), record_fields(b)
        na, nb = [n for n, _ in init_fields(a)], [n for n, _ in init_fields(b)]
        if set(na) != set(nb) or any(_relation(fa[n], fb[n], seen) == _NONE for n in na):
            return _NONE
        return _CLASH  # both classes take the same object: a different class comes back
    if ka == kb == "handle":
        if a.kind != b.kind:
            return _NONE
        if not a.refinement_on_wire:
            return _CLASH  # two schemas (or one and none): the digest does not record which
        if a.tag is not None and b.tag is not None:
            return _NONE
        return _SAME  # File takes File["csv"]'s text as File["csv"]
    return _NONE


def _arrays(a: Any, ka: str, b: Any, kb: str, seen: set) -> int:
    if ka > kb:
        a, ka, b, kb = b, kb, a, ka
    xa, xb = typing.get_args(a), typing.get_args(b)
    if ka == kb and ka in ("list", "tuple..."):
        return max(_SAME, _relation(xa[0], xb[0], seen))  # [] is both, alike
    if ka == "list":  # a list and a tuple: what both take comes back as different containers
        if kb == "tuple...":
            return _CLASH
        rels = [_relation(xa[0], x, seen) for x in xb]
        return _NONE if _NONE in rels else _CLASH
    if ka == kb:  # two fixed tuples
        if len(xa) != len(xb):
            return _NONE
        rels = [_relation(x, y, seen) for x, y in zip(xa, xb)]
    else:  # "tuple" and "tuple..."
        rels = [_relation(x, xb[0], seen) for x in xa]
    return _NONE if _NONE in rels else max(rels, default=_SAME)


def _why(a: Any, b: Any) -> str:
    kinds = {_kind(a), _kind(b)}
    if "union" in kinds:
        return "their members overlap: list each member once, at the top level"
    if "finite" in kinds:
        return ("an Enum or Literal is recorded as its plain value, which the other takes too: declare "
                "one of them, or give the Enum values the other cannot take")
    if kinds <= set(_STRINGS):
        return ("both are recorded as JSON strings: declare one of them, or put each in its own "
                "attrs class or dataclass")
    if kinds <= {"list", "tuple", "tuple..."}:
        if kinds & {"tuple", "tuple..."} and "list" in kinds:
            return "lists and tuples are both recorded as JSON arrays: use one kind of container"
        return "their elements can be recorded alike: make the element types distinct"
    if kinds == {"record"}:
        return ("a record is recorded as its fields, and both have the same fields: give each class "
                "a field of its own, e.g. `kind: Literal['a'] = 'a'`")
    if "record" in kinds and "dict" in kinds:
        return "a record is recorded as an object of its fields, as a dict is: declare one of them"
    if kinds == {"handle"}:
        return ("a Dataset is recorded by its digest, not its schema: declare one Dataset type "
                "(plain Dataset takes any schema)")
    if "handle" in kinds:
        return "a dict with str keys can hold what a handle is recorded as: narrow the dict's value type"
    if kinds == {"dict"}:
        return "their keys and values can be recorded alike: make the key or value types distinct"
    return "declare one of them"


def value_digest(text: str) -> str:
    return digest_bytes(text.encode())


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:40]) + f"... ({len(text):,} characters)"


def parse_text(text: str, tp: Any) -> Any:
    """A value of type tp from command-line text (`-p lr=0.01`); DecodeError (a ValueError) says why not.

    Strings are taken as they are; numbers and booleans as written; anything else as JSON.

    >>> parse_text("0.01", float), parse_text("yes", bool), parse_text("[1, 2]", list[int])
    (0.01, True, [1, 2])
    """
    members = union_members(tp)
    if members is not None:
        if text.lower() in ("none", "null") and type(None) in members:
            return None
        errors = []
        for m in members:
            if m is type(None):
                continue
            try:
                return parse_text(text, m)
            except ValueError as e:
                errors.append(str(e))
        raise DecodeError(f"{text!r} is not a {type_name(tp)}")
    if tp is str:
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise DecodeError(f"{text!r} is not a bool: use true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise DecodeError(f"{text!r} is not an int") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise DecodeError(f"{text!r} is not a float") from None
    if tp in (dt.datetime, dt.date):
        try:
            return tp.fromisoformat(text)
        except ValueError:
            raise DecodeError(f"{text!r} is not an ISO {tp.__name__} (e.g. 2026-11-23)") from None
    if is_literal_type(tp):
        for a in typing.get_args(tp):
            if isinstance(a, enum.Enum) and text in (a.name, str(a.value)):
                return a
            if not isinstance(a, enum.Enum) and a is not None:
                try:
                    if identical(parse_text(text, type(a)), a):
                        return a
                except ValueError:
                    pass
            if a is None and text.lower() in ("none", "null"):
                return None
        raise DecodeError(f"{text!r} is not one of {type_name(tp)}")
    if is_handle_type(tp):
        raise DecodeError(f"a {type_name(tp)} parameter takes a digest of a stored artifact, "
                         "not command-line text")
    try:
        raw = json.loads(text)
    except RecursionError:
        raise DecodeError(f"{_short(text)} is nested too deeply to read") from None
    except json.JSONDecodeError:
        if isinstance(tp, type) and hasattr(tp, "__members__"):  # an Enum given by name, or by its value
            if text in tp.__members__:
                return tp[text]
            for member in tp:
                if str(member.value) == text:
                    return member
        raise DecodeError(f"{text!r} is not a {type_name(tp)}: give it as JSON") from None
    try:
        return conform(converter.structure(raw, tp) if typing.get_origin(tp) is None else raw, tp)
    except (TypeError, ValueError, cattrs.BaseValidationError) as e:
        raise DecodeError(f"{text!r} is not a {type_name(tp)}: {e}") from None


def handles_inside(text: str | None) -> tuple[tuple[str, str, str, int], ...]:
    """(path, kind, digest, size) of every handle nested in a plain value's canonical JSON.

    A path says how to reach the handle from the value: `.model` for a field or a
    string key, `[0]` for a list element (or a non-identifier key, `["a b"]`). The value's own
    encoding is the one place that knows where handles hide, so lineage asks it.

    >>> from ledgerflow.types.handles import File
    >>> handles_inside(encode({"a": [File(digest="blake3:00", size=3)]}, dict[str, list[File]]))
    (('.a[0]', 'file', 'blake3:00', 3),)
    """
    if not text or '"$$handle"' not in text:
        return ()
    found: list = []

    def visit(item: Any, path: str) -> None:
        if isinstance(item, dict):
            if "$$handle" in item and isinstance(item.get("digest"), str):
                found.append((path, item["$$handle"], item["digest"], int(item.get("size") or 0)))
                return
            if len(item) == 1 and "$map" in item:  # a dict with non-string keys: [[key, value], ...]
                for i, pair in enumerate(item["$map"]):
                    visit(pair[1] if isinstance(pair, list) and len(pair) == 2 else pair, f"{path}[{i}]")
                return
            for key, value in item.items():
                key = key[1:] if key.startswith("$$") else key
                visit(value, f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]")
        elif isinstance(item, list):
            for i, value in enumerate(item):
                visit(value, f"{path}[{i}]")

    visit(json.loads(text), "")
    return tuple(found)
