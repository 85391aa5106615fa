"""ROS 1 messages <-> plain dicts, by genpy introspection.

Every genpy message class lists its fields in ``__slots__`` and their ROS types in
``_slot_types`` (ROS message description spec, http://wiki.ros.org/msg). From those, this module
builds one conversion plan per class, once, and reuses it for every message:

- nested messages become nested dicts, arrays become lists;
- ``uint8[]`` and ``char[]`` (fixed or variable length) become ``bytes``, as genpy itself
  deserializes them;
- ``time`` and ``duration`` become ``{"secs": int, "nsecs": int}``.

:func:`from_dict` checks every value with :mod:`pyros.message_types` and raises
:class:`~pyros.exceptions.MessageError` naming the field as a dotted path, with ``[i]`` for
array elements (``"linear.z2"``, ``"poses[3].position.x"``). Missing fields take the ROS
defaults (zero, empty, ``False``; nested messages all-default).

This module imports genpy, so import it only after :func:`pyros_ros.environment.setup_ros1`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

import genpy

from pyros.exceptions import MessageError
from pyros.message_types import (
    FLOAT_TYPES,
    INT_RANGES,
    coerce_bytes,
    coerce_primitive,
    coerce_time,
    is_primitive,
    split_array,
)

__all__ = ["message_class", "service_class", "to_dict", "from_dict"]

_TYPE_NAME = re.compile(r"([A-Za-z][A-Za-z0-9_]*)/(?:(?:msg|srv)/)?([A-Za-z][A-Za-z0-9_]*)")
_BYTE_ARRAY_BASES = frozenset({"uint8", "char"})
"""Array element types genpy (de)serializes as ``bytes`` (genpy's ``is_special`` bytes case)."""

_FLOAT32 = struct.Struct("<f")
_FLOAT32_MAX = 3.4028234663852886e38
"""Largest finite float32; genpy cannot pack a finite float beyond it (inf and nan it can)."""

_TIME_SECS_RANGE = {"time": (0, 2**32 - 1), "duration": (-(2**31), 2**31 - 1)}
"""``secs`` ranges: ROS 1 serializes time as uint32 secs and duration as int32 secs."""

_classes: dict[tuple[str, str], Any] = {}


def message_class(type_name: str) -> type[genpy.Message]:
    """Return the genpy class of a message type.

    Args:
        type_name: ``"pkg/Type"`` (``"pkg/msg/Type"`` is accepted too), e.g. ``"std_msgs/String"``.

    Returns:
        The generated class, e.g. ``std_msgs.msg.String``.

    Raises:
        MessageError: the name is malformed, or no installed ROS package provides that type.
    """
    cls = _classes.get(("msg", type_name))
    if cls is None:
        cls = _load(type_name, "msg")
    return cls  # type: ignore[no-any-return]


def service_class(type_name: str) -> Any:
    """Return the genpy class of a service type.

    Args:
        type_name: ``"pkg/Type"`` (or ``"pkg/srv/Type"``), e.g. ``"std_srvs/SetBool"``.

    Returns:
        The generated service class, with ``_request_class``, ``_response_class``, ``_type``
        and ``_md5sum``.

    Raises:
        MessageError: the name is malformed, or no installed ROS package provides that type.
    """
    cls = _classes.get(("srv", type_name))
    if cls is None:
        cls = _load(type_name, "srv")
    return cls


def _load(type_name: str, kind: str) -> Any:
    what = "message" if kind == "msg" else "service"
    match = _TYPE_NAME.fullmatch(type_name) if isinstance(type_name, str) else None
    if match is None:
        raise MessageError(f"{type_name!r} is not a ROS {what} type name like 'pkg/Type'")
    package, name = match.groups()
    # Look before importing: the package must be a ROS package with generated
    # <package>/<kind>/__init__.py, so that a type name never imports an unrelated module.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise MessageError(f"unknown {what} type {type_name!r}: {exc}") from exc
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any(os.path.isfile(os.path.join(d, kind, "__init__.py")) for d in locations):
        raise MessageError(
            f"unknown {what} type {type_name!r}: no ROS package {package!r} with {kind} "
            f"definitions is installed (Debian: python3-{package.replace('_', '-')}; "
            f"ROS apt repository: ros-$ROS_DISTRO-{package.replace('_', '-')})"
        )
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError as exc:
        raise MessageError(f"unknown {what} type {type_name!r}: {exc}") from exc
    cls = getattr(module, name, None)
    canonical = f"{package}/{name}"
    if kind == "msg":
        ok = isinstance(cls, type) and issubclass(cls, genpy.Message)
    else:
        ok = isinstance(cls, type) and hasattr(cls, "_request_class")
    if not ok or getattr(cls, "_type", None) != canonical:
        raise MessageError(f"unknown {what} type {type_name!r}: {package}.{kind} has no {name}")
    _classes[(kind, type_name)] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# Conversion plans. A plan is built once per message class:
#   out_fields: [(slot, converter or None)] for to_dict (None: the value is already plain);
#   in_fields:  [(slot, converter(value, field_path), default_factory)] for from_dict.

_Out = Callable[[Any], Any]
_In = Callable[[Any, str], Any]


class _Plan:
    __slots__ = ("cls", "names", "out_fields", "in_fields")

    def __init__(self, cls: type[genpy.Message]) -> None:
        self.cls = cls
        self.names = frozenset(cls.__slots__)
        self.out_fields: list[tuple[str, _Out | None]] = []
        self.in_fields: list[tuple[str, _In, Callable[[], Any]]] = []
        for name, field_type in zip(cls.__slots__, cls._slot_types, strict=True):
            out_conv, in_conv, default = _field_converters(field_type)
            self.out_fields.append((name, out_conv))
            self.in_fields.append((name, in_conv, default))


_plans: dict[type, _Plan] = {}


def _plan(cls: type[genpy.Message]) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        if not (isinstance(cls, type) and issubclass(cls, genpy.Message)):
            raise TypeError(f"{cls!r} is not a genpy message class")
        plan = _plans[cls] = _Plan(cls)
    return plan


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _field_converters(field_type: str) -> tuple[_Out | None, _In, Callable[[], Any]]:
    """Return ``(to_dict converter, from_dict converter, default factory)`` for one field."""
    base, is_array, length = split_array(field_type)
    if is_array and base in _BYTE_ARRAY_BASES:
        return _bytes_out, partial(_bytes_in, length=length), _constant(bytes(length or 0))
    if base in ("time", "duration"):
        time_cls = genpy.Time if base == "time" else genpy.Duration
        scalar_in = partial(_time_in, base, time_cls)
        if not is_array:
            return _time_out, scalar_in, time_cls
        return (
            _list_of(_time_out),
            partial(_array_in, partial(_each_in, scalar_in), length),
            _array_default(time_cls, length),
        )
    if is_primitive(base):
        zero = _primitive_zero(base)
        if not is_array:
            scalar = _float32_in if base == "float32" else partial(coerce_primitive, base)
            return None, scalar, _constant(zero)
        elements = _float32s_in if base == "float32" else partial(_primitives_in, base)
        return (
            list,
            partial(_array_in, elements, length),
            _array_default(_constant(zero), length),
        )
    sub_plan = _plan(_message_class_for_field(base))
    scalar_in = partial(_message_in, sub_plan)
    if not is_array:
        return partial(_message_out, sub_plan), scalar_in, sub_plan.cls
    return (
        partial(_messages_out, sub_plan),
        partial(_array_in, partial(_each_in, scalar_in), length),
        _array_default(sub_plan.cls, length),
    )


def _message_class_for_field(base: str) -> type[genpy.Message]:
    # genpy writes "Header" for std_msgs/Header in old message definitions.
    return message_class("std_msgs/Header" if base == "Header" else base)


def _primitive_zero(base: str) -> Any:
    if base in INT_RANGES:
        return 0
    if base in FLOAT_TYPES:
        return 0.0
    if base == "bool":
        return False
    return ""


def _array_default(element: Callable[[], Any], length: int | None) -> Callable[[], list[Any]]:
    if length is None:
        return list
    return lambda: [element() for _ in range(length)]


# --- to_dict ---------------------------------------------------------------------------------


def to_dict(msg: genpy.Message) -> dict[str, Any]:
    """Convert a genpy message to a plain dict shaped like the ROS message.

    Args:
        msg: any genpy message instance (deserialized or built by hand).

    Returns:
        ``{field: value}`` for every field, with nested dicts, lists for arrays, ``bytes`` for
        ``uint8[]``/``char[]`` and ``{"secs": int, "nsecs": int}`` for time and duration.
        The dict shares nothing mutable with ``msg`` except immutable ``bytes`` and ``str``.
    """
    return _message_out(_plan(type(msg)), msg)


def _message_out(plan: _Plan, msg: Any) -> dict[str, Any]:
    out = {}
    for name, conv in plan.out_fields:
        value = getattr(msg, name)
        out[name] = value if conv is None else conv(value)
    return out


def _messages_out(plan: _Plan, msgs: Any) -> list[dict[str, Any]]:
    return [_message_out(plan, msg) for msg in msgs]


def _bytes_out(value: Any) -> bytes:
    return value if type(value) is bytes else bytes(value)


def _time_out(value: Any) -> dict[str, int]:
    return {"secs": value.secs, "nsecs": value.nsecs}


def _list_of(conv: _Out) -> _Out:
    return lambda values: [conv(value) for value in values]


# --- from_dict -------------------------------------------------------------------------------


def from_dict(
    cls: type[genpy.Message], data: dict[str, Any], field_prefix: str = ""
) -> genpy.Message:
    """Build a genpy message from a plain dict, checking every field.

    Args:
        cls: the message class (from :func:`message_class`, or a service's
            ``_request_class``).
        data: ``{field: value}``; nested messages as dicts, arrays as lists (or tuples),
            ``uint8[]``/``char[]`` as ``bytes``, ``bytearray`` or a list of 0..255, time and
            duration as ``{"secs", "nsecs"}`` or a number of seconds. Missing fields take their
            ROS defaults.
        field_prefix: dotted path of this message inside an enclosing one, used in error
            fields (``"request"`` makes a bad ``data`` field ``"request.data"``).

    Returns:
        A new instance of ``cls``.

    Raises:
        MessageError: ``data`` is not a dict, names a field ``cls`` does not have, or holds a
            value of the wrong type, out of range, or with the wrong fixed array length;
            ``field`` is the dotted path of the first bad field.
        TypeError: ``cls`` is not a genpy message class.
    """
    return _message_in(_plan(cls), data, field_prefix)


def _message_in(plan: _Plan, data: Any, field: str) -> Any:
    if not isinstance(data, dict):
        raise MessageError(
            f"{_where(field)}expected a dict for {plan.cls._type}, got {type(data).__name__}",
            field=field or None,
        )
    if not plan.names.issuperset(data):
        unknown = next(key for key in data if key not in plan.names)
        path = f"{field}.{unknown}" if field else str(unknown)
        raise MessageError(
            f"field {path!r}: {plan.cls._type} has no field {unknown!r} "
            f"(fields: {', '.join(plan.cls.__slots__)})",
            field=path,
        )
    prefix = f"{field}." if field else ""
    cls: Any = plan.cls
    msg = cls.__new__(cls)  # every slot is set below: genpy's __init__ would only set them twice
    for name, conv, default in plan.in_fields:
        if name in data:
            setattr(msg, name, conv(data[name], prefix + name))
        else:
            setattr(msg, name, default())
    return msg


def _where(field: str) -> str:
    return f"field {field!r}: " if field else ""


def _bytes_in(value: Any, field: str, length: int | None) -> bytes:
    if type(value) is bytes and length is None:
        return value
    return coerce_bytes(value, field, length)


def _time_in(base: str, time_cls: type, value: Any, field: str) -> Any:
    checked = coerce_time(value, field, base)
    secs = checked["secs"]
    low, high = _TIME_SECS_RANGE[base]
    if not low <= secs <= high:
        raise MessageError(
            f"field {field!r}: secs {secs} is out of range for a ROS 1 {base} [{low}, {high}]",
            field=field,
        )
    return time_cls(secs, checked["nsecs"])


def _array_in(elements_in: _In, length: int | None, value: Any, field: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise MessageError(
            f"field {field!r}: expected a list, got {type(value).__name__}", field=field
        )
    if length is not None and len(value) != length:
        raise MessageError(
            f"field {field!r}: expected exactly {length} elements, got {len(value)}",
            field=field,
        )
    return elements_in(value, field)  # type: ignore[no-any-return]


def _each_in(element_in: _In, values: Any, field: str) -> list[Any]:
    return [element_in(value, f"{field}[{index}]") for index, value in enumerate(values)]


def _float32_in(value: Any, field: str) -> float:
    checked: float = coerce_primitive("float32", value, field)
    try:
        _FLOAT32.pack(checked)
    except OverflowError:
        raise MessageError(
            f"field {field!r}: {checked} is out of range for float32 (max {_FLOAT32_MAX:.7g})",
            field=field,
        ) from None
    return checked


def _float32s_in(values: Any, field: str) -> list[float]:
    checked = _primitives_in("float32", values, field)
    try:
        struct.pack(f"<{len(checked)}f", *checked)
    except OverflowError:
        for index, value in enumerate(checked):
            _float32_in(value, f"{field}[{index}]")
    return checked


def _primitives_in(base: str, values: Any, field: str) -> list[Any]:
    # Fast path for the common case of values that are already canonical (all floats for a
    # float array, all in-range ints for an int array): the result is exactly what
    # coerce_primitive would return, so the per-element checks only run when one might fail.
    if base in FLOAT_TYPES:
        if all(type(value) is float for value in values):
            return list(values)
    elif base in INT_RANGES:
        if values and all(type(value) is int for value in values):
            low, high = INT_RANGES[base]
            if low <= min(values) and max(values) <= high:
                return list(values)
    elif base == "string":
        if all(type(value) is str for value in values):
            return list(values)
    return [
        coerce_primitive(base, value, f"{field}[{index}]") for index, value in enumerate(values)
    ]
