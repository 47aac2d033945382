"""Plain values to canonical bytes and back, through one cattrs converter.

The canonical encoding is compact JSON with sorted keys and a few tagged forms (bytes,
non-finite floats, dicts with non-string keys), so equal values have equal bytes and so
equal digests, whatever the dict order; and `1`, `1.0`, `"1"` and `True` all differ.
Handles inside values (a `list[Model]`) encode as their kind and digest.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import typing
from typing import Any

import cattrs

from ledgerflow.store import digest_bytes
from ledgerflow.types.annotations import is_handle_type, type_name, union_members
from ledgerflow.types.handles import Dataset, Handle, HANDLE_KINDS

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
    if isinstance(h, Dataset):
        out["num_rows"] = h.num_rows
    if getattr(h, "flavor", None) is not None:
        out["flavor"] = h.flavor
    return out


def _structure_handle(obj: Any, cls: type) -> Handle:
    if isinstance(obj, Handle):
        return obj
    fields = {k: v for k, v in obj.items() if k not in ("$handle", "tag")}
    kind = HANDLE_KINDS[obj["$handle"]]
    if cls.kind != kind.kind:
        raise TypeError(f"a {kind.kind} handle cannot be read as {cls.__name__}")
    target = cls if cls.refinement() is not None else kind[obj["tag"]] if obj.get("tag") else kind
    return target(**fields)


converter.register_unstructure_hook_func(is_handle_type, _unstructure_handle)
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
    """The value of type tp that `encode` turned into text; ValueError if `text` is not one.

    >>> decode('["x"]', list[int])
    Traceback (most recent call last):
    ...
    ValueError: the recorded value does not decode as list[int]: While structuring list[int] (1 sub-exception)
    """
    try:
        return converter.structure(json.loads(text, object_hook=_untag), tp)
    except (cattrs.errors.BaseValidationError, KeyError, AttributeError, IndexError, RecursionError) as e:
        # cattrs reports a mismatch as an ExceptionGroup, which callers that fall back on a
        # ValueError (cache reuse, replay) did not catch: a damaged or planted value in the
        # ledger then crashed the run instead of being refused (found by tests/test_faults.py).
        raise ValueError(f"the recorded value does not decode as {type_name(tp)}: {e}") from e


def value_digest(text: str) -> str:
    return digest_bytes(text.encode())


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_text(text: str, tp: Any) -> Any:
    """A value of type tp from command-line text (`-p lr=0.01`); ValueError says why not.

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
        raise ValueError(f"{text!r} is not a {type_name(tp)}")
    if tp is str:
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(f"{text!r} is not a bool: use true or false")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an int") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a float") from None
    if tp in (dt.datetime, dt.date):
        try:
            return tp.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO {tp.__name__} (e.g. 2026-11-23)") from None
    if is_handle_type(tp):
        raise ValueError(f"a {type_name(tp)} parameter takes a digest of a stored artifact, "
                         "not command-line text")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        if isinstance(tp, type) and hasattr(tp, "__members__"):  # an Enum given by name
            if text in tp.__members__:
                return tp[text]
        raise ValueError(f"{text!r} is not a {type_name(tp)}: give it as JSON") from None
    from ledgerflow.types.conform import conform

    try:
        return conform(converter.structure(raw, tp) if typing.get_origin(tp) is None else raw, tp)
    except (TypeError, ValueError, cattrs.BaseValidationError) as e:
        raise ValueError(f"{text!r} is not a {type_name(tp)}: {e}") from None


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
