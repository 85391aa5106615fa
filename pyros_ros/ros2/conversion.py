"""ROS 2 messages <-> plain dicts, by rosidl introspection of rclpy's generated classes.

Every generated message class lists its fields in ``get_fields_and_field_types()`` and their
IDL types in ``SLOT_TYPES`` (``rosidl_parser.definition``: ``BasicType``, strings,
``NamespacedType`` for nested messages, ``Array``, ``BoundedSequence``,
``UnboundedSequence``; ROS 2 interface design, https://design.ros2.org/articles/idl_interface_definition.html).
From those, this module builds one conversion plan per class, once, and reuses it:

- nested messages become nested dicts, arrays and sequences become lists;
- ``uint8[]`` (``char[]``) and ``byte[]`` (IDL ``octet``), fixed or not, become ``bytes``;
  a single ``byte`` becomes an int 0..255;
- time and duration are the messages ``builtin_interfaces/msg/Time`` and ``Duration``:
  ``{"sec": int, "nanosec": int}`` out; in, ``{"secs": int, "nsecs": int}`` (the ROS 1 form
  pyros uses elsewhere) and a number of seconds are accepted too.

rclpy stores numeric arrays as ``numpy`` arrays and numeric sequences as ``array.array`` and,
unless ``ROS_PYTHON_CHECK_FIELDS=1``, checks nothing when a field is set: a wrong value would
only fail (or be truncated) in serialization. :func:`from_dict` therefore checks every value
with :mod:`pyros.message_types` first and raises :class:`~pyros.exceptions.MessageError`
naming the field as a dotted path, ``[i]`` for elements (``"linear.z2"``,
``"poses[3].position.x"``). Missing fields keep the class's defaults (the ``.msg`` default
values, else zero, empty, ``False``).

Type names are accepted as ``pkg/Type`` and ``pkg/msg/Type`` (``srv``, ``action``) and
reported as the graph names them (:func:`graph_name`: ``std_msgs/msg/String``).

This module imports rclpy's message support, so import it only after
:func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

import array
import importlib
import importlib.util
import os
import re
import struct
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import numpy
from rclpy.type_support import check_for_type_support
from rosidl_parser import definition as idl

from pyros.exceptions import MessageError
from pyros.message_types import FLOAT_TYPES, INT_RANGES, coerce_bytes, coerce_primitive, coerce_time
from pyros_ros.environment import ros2_installation

__all__ = [
    "message_class",
    "service_class",
    "action_class",
    "graph_name",
    "split_type",
    "to_dict",
    "from_dict",
]

_TYPE_NAME = re.compile(r"([A-Za-z][A-Za-z0-9_]*)/(?:(msg|srv|action)/)?([A-Za-z][A-Za-z0-9_]*)")

_KIND_WORDS = {"msg": "message", "srv": "service", "action": "action"}

_IDL_TO_PYROS = {
    "boolean": "bool",
    "float": "float32",
    "double": "float64",
    "long double": "float64",
    "octet": "octet",
    "char": "char",
    "wchar": "char",
    **{name: name for name in INT_RANGES},
}
"""IDL basic type name -> the name :mod:`pyros.message_types` checks it under."""

_TYPECODES = {
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
"""``array.array`` type codes rclpy uses for numeric sequences (and numpy dtypes by name)."""

_FLOAT32 = struct.Struct("<f")
_FLOAT32_MAX = 3.4028234663852886e38

_TIME_TYPES = {("builtin_interfaces", "Time"), ("builtin_interfaces", "Duration")}
_TIME_RANGES = {"sec": (-(2**31), 2**31 - 1), "nanosec": (0, 2**32 - 1)}

_classes: dict[tuple[str, str], Any] = {}


def split_type(type_name: str) -> tuple[str, str | None, str]:
    """Split ``"pkg/msg/Type"`` or ``"pkg/Type"`` into ``(pkg, "msg" or None, Type)``.

    Raises:
        MessageError: not a type name of that shape.
    """
    match = _TYPE_NAME.fullmatch(type_name) if isinstance(type_name, str) else None
    if match is None:
        raise MessageError(
            f"{type_name!r} is not a ROS type name like 'pkg/Type' or 'pkg/msg/Type'"
        )
    package, kind, name = match.groups()
    return package, kind, name


def message_class(type_name: str) -> Any:
    """Return the generated class of a message type, its type support loaded.

    Args:
        type_name: ``"std_msgs/msg/String"`` or ``"std_msgs/String"``.

    Raises:
        MessageError: the name is malformed, names a service or action type, or no installed
            ROS 2 package provides that type (the message says what to install).
    """
    return _classes.get(("msg", type_name)) or _load(type_name, "msg")


def service_class(type_name: str) -> Any:
    """Return the generated class of a service type (with ``Request`` and ``Response``).

    Args:
        type_name: ``"std_srvs/srv/SetBool"`` or ``"std_srvs/SetBool"``.

    Raises:
        MessageError: as :func:`message_class`.
    """
    return _classes.get(("srv", type_name)) or _load(type_name, "srv")


def action_class(type_name: str) -> Any:
    """Return the generated class of an action type (with ``Goal``, ``Result``, ``Feedback``).

    Args:
        type_name: ``"test_msgs/action/Fibonacci"`` or ``"test_msgs/Fibonacci"``.

    Raises:
        MessageError: as :func:`message_class`.
    """
    return _classes.get(("action", type_name)) or _load(type_name, "action")


def graph_name(cls: Any) -> str:
    """Return the type name of a generated class as the ROS 2 graph spells it.

    ``std_msgs.msg.String`` -> ``"std_msgs/msg/String"``.
    """
    parts = cls.__module__.split(".")
    return f"{parts[0]}/{parts[1]}/{cls.__name__}"


def _load(type_name: str, kind: str) -> Any:
    what = _KIND_WORDS[kind]
    package, given_kind, name = split_type(type_name)
    if given_kind is not None and given_kind != kind:
        raise MessageError(f"{type_name!r} is a {_KIND_WORDS[given_kind]} type, not a {what} type")
    installation = ros2_installation()
    # Look before importing: the package must be a ROS 2 interface package with generated
    # <package>/<kind>/__init__.py, so that a type name never imports an unrelated module.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError) as exc:
        raise MessageError(f"unknown {what} type {type_name!r}: {exc}") from exc
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any(os.path.isfile(os.path.join(d, kind, "__init__.py")) for d in locations):
        raise MessageError(
            f"unknown {what} type {type_name!r}: no ROS 2 package {package!r} with {kind} "
            f"definitions is installed ({installation.install_hint(package)})"
        )
    installation.load_package(package)
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError as exc:
        raise MessageError(f"unknown {what} type {type_name!r}: {exc}") from exc
    cls = getattr(module, name, None)
    needed = {"msg": ("SLOT_TYPES",), "srv": ("Request", "Response"), "action": ("Goal", "Result")}
    if not isinstance(cls, type) or not all(hasattr(cls, attr) for attr in needed[kind]):
        raise MessageError(f"unknown {what} type {type_name!r}: {package}.{kind} has no {name}")
    try:
        check_for_type_support(cls)
    except Exception as exc:  # rclpy raises its own NoTypeSupportImportedException
        raise MessageError(
            f"{what} type {type_name!r} has no usable type support: {exc} "
            f"(reinstall {installation.install_hint(package)})"
        ) from exc
    _classes[(kind, type_name)] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# Conversion plans, one per message class:
#   out_fields: [(attribute, converter or None)] for to_dict (None: the value is plain already);
#   in_fields:  {field: (attribute, converter(value, field_path))} for from_dict.

_Out = Callable[[Any], Any]
_In = Callable[[Any, str], Any]


class _Plan:
    __slots__ = ("cls", "type_name", "names", "out_fields", "in_fields", "is_time")

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.type_name = graph_name(cls)
        fields = list(cls.get_fields_and_field_types())
        self.names = tuple(fields)
        self.out_fields: list[tuple[str, str, _Out | None]] = []
        self.in_fields: dict[str, tuple[str, _In]] = {}
        parts = cls.__module__.split(".")
        self.is_time = (parts[0], cls.__name__) in _TIME_TYPES
        for name, slot_type in zip(fields, cls.SLOT_TYPES, strict=True):
            # rosidl appends "_" to field names that are Python keywords.
            attribute = name if hasattr(cls, name) else name + "_"
            out_conv, in_conv = _field_converters(slot_type)
            self.out_fields.append((name, attribute, out_conv))
            self.in_fields[name] = (attribute, in_conv)


_plans: dict[type, _Plan] = {}


def _plan(cls: Any) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        if not (isinstance(cls, type) and hasattr(cls, "SLOT_TYPES")):
            raise TypeError(f"{cls!r} is not a generated ROS 2 message class")
        plan = _plans[cls] = _Plan(cls)
    return plan


def _field_converters(slot_type: Any) -> tuple[_Out | None, _In]:
    """Return ``(to_dict converter, from_dict converter)`` for one field's IDL type."""
    if isinstance(slot_type, idl.AbstractNestedType):
        element = slot_type.value_type
        if isinstance(slot_type, idl.Array):
            length: int | None = slot_type.size
            bound: int | None = None
        else:
            length = None
            bound = slot_type.maximum_size if isinstance(slot_type, idl.BoundedSequence) else None
        fixed = isinstance(slot_type, idl.Array)
        if isinstance(element, idl.BasicType):
            base = _IDL_TO_PYROS.get(element.typename, element.typename)
            if base == "uint8":
                maker = _numpy_of("uint8") if fixed else _bytes_identity
                return _bytes_out, partial(_bytes_in, length, bound, maker)
            if base == "octet":
                return _octets_out, partial(_bytes_in, length, bound, _octets)
            if base in _TYPECODES:
                maker = _numpy_of(base) if fixed else partial(array.array, _TYPECODES[base])
                return _tolist, partial(_numbers_in, base, length, bound, maker)
            scalar_in = _scalar_in(base)
            return list, partial(_list_in, length, bound, partial(_each_in, scalar_in))
        element_in = _element_in(element)
        element_out = _element_out(element)
        out = list if element_out is None else partial(_each_out, element_out)
        return out, partial(_list_in, length, bound, partial(_each_in, element_in))
    return _element_out(slot_type), _element_in(slot_type)


def _element_out(slot_type: Any) -> _Out | None:
    if isinstance(slot_type, idl.NamespacedType):
        return partial(_message_out, _nested_plan(slot_type))
    if isinstance(slot_type, idl.BasicType) and slot_type.typename == "octet":
        return _octet_out
    return None


def _element_in(slot_type: Any) -> _In:
    if isinstance(slot_type, idl.NamespacedType):
        return partial(_message_in, _nested_plan(slot_type))
    if isinstance(slot_type, idl.AbstractGenericString):
        bound = getattr(slot_type, "maximum_size", None) if slot_type.has_maximum_size() else None
        return partial(_string_in, bound)
    if isinstance(slot_type, idl.BasicType):
        return _scalar_in(_IDL_TO_PYROS.get(slot_type.typename, slot_type.typename))
    raise TypeError(f"unsupported IDL field type {slot_type!r}")


def _nested_plan(slot_type: Any) -> _Plan:
    namespaces = list(slot_type.namespaces)
    kind = namespaces[1] if len(namespaces) > 1 else "msg"
    package = namespaces[0]
    if kind == "msg":
        return _plan(message_class(f"{package}/msg/{slot_type.name}"))
    # A type defined by a service or an action (Fibonacci_Goal inside
    # Fibonacci_SendGoal_Request): an inner class of one of the module's interfaces.
    module = importlib.import_module(f"{package}.{kind}")
    for outer in vars(module).values():
        for inner in vars(outer).values() if isinstance(outer, type) else ():
            if isinstance(inner, type) and inner.__name__ == slot_type.name:
                return _plan(inner)
    raise MessageError(f"unknown type {package}/{kind}/{slot_type.name} in a field")


def _scalar_in(base: str) -> _In:
    if base == "float32":
        return _float32_in
    if base == "octet":
        return _octet_in
    if base == "char":
        return _char_in
    return partial(coerce_primitive, base)


# --- to_dict ---------------------------------------------------------------------------------


def to_dict(msg: Any) -> dict[str, Any]:
    """Convert an rclpy message to a plain dict shaped like the ROS message.

    Args:
        msg: an instance of any generated ROS 2 message class (a service's ``Request`` or
            ``Response``, an action's ``Goal``, ``Result`` or ``Feedback`` included).

    Returns:
        ``{field: value}`` for every field: nested dicts, lists for arrays and sequences,
        ``bytes`` for ``uint8[]``/``byte[]``, ``{"sec", "nanosec"}`` for time and duration.
        The dict shares nothing mutable with ``msg``.

    Raises:
        TypeError: ``msg`` is not a generated message.
    """
    return _message_out(_plan(type(msg)), msg)


def _message_out(plan: _Plan, msg: Any) -> dict[str, Any]:
    out = {}
    for name, attribute, conv in plan.out_fields:
        value = getattr(msg, attribute)
        out[name] = value if conv is None else conv(value)
    return out


def _each_out(conv: _Out, values: Any) -> list[Any]:
    return [conv(value) for value in values]


def _bytes_out(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    tobytes = getattr(value, "tobytes", None)
    return cast(bytes, tobytes()) if tobytes is not None else bytes(value)


def _octets_out(value: Any) -> bytes:
    return b"".join(value)


def _octet_out(value: Any) -> int:
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def _tolist(value: Any) -> list[Any]:
    tolist = getattr(value, "tolist", None)
    return cast(list[Any], tolist()) if tolist is not None else list(value)


# --- from_dict -------------------------------------------------------------------------------


def from_dict(cls: Any, data: Any, field_prefix: str = "") -> Any:
    """Build an rclpy message from a plain dict, checking every field.

    Args:
        cls: the generated message class (from :func:`message_class`, or a service's
            ``Request``, an action's ``Goal``).
        data: ``{field: value}``; nested messages as dicts, arrays and sequences as lists (or
            tuples), ``uint8[]``/``byte[]`` as ``bytes``, ``bytearray``, a list of 0..255 or
            base64 text; time and duration as ``{"sec", "nanosec"}``, ``{"secs", "nsecs"}`` or
            a number of seconds. Missing fields keep the class's defaults.
        field_prefix: dotted path of this message inside an enclosing one, used in error
            fields.

    Returns:
        A new instance of ``cls``.

    Raises:
        MessageError: ``data`` is not a dict, names a field ``cls`` does not have, or holds a
            value of the wrong type, out of range, too long for a bounded field, or with the
            wrong fixed array length; ``field`` is the dotted path of the first bad field.
        TypeError: ``cls`` is not a generated message class.
    """
    return _message_in(_plan(cls), data, field_prefix)


def _message_in(plan: _Plan, data: Any, field: str) -> Any:
    if plan.is_time and (not isinstance(data, dict) or "secs" in data or "nsecs" in data):
        data = _time_fields(data, field)
    if not isinstance(data, dict):
        raise MessageError(
            f"{_where(field)}expected a dict for {plan.type_name}, got {type(data).__name__}",
            field=field or None,
        )
    prefix = f"{field}." if field else ""
    msg = plan.cls()
    fields = plan.in_fields
    for key, value in data.items():
        entry = fields.get(key)
        if entry is None:
            path = f"{prefix}{key}"
            raise MessageError(
                f"field {path!r}: {plan.type_name} has no field {key!r} "
                f"(fields: {', '.join(plan.names) or 'none'})",
                field=path,
            )
        attribute, conv = entry
        setattr(msg, attribute, conv(value, prefix + key))
    return msg


def _time_fields(data: Any, field: str) -> dict[str, int]:
    """``{"secs", "nsecs"}`` or seconds -> ``{"sec", "nanosec"}``, checked."""
    checked = coerce_time(data, field)
    result = {"sec": checked["secs"], "nanosec": checked["nsecs"]}
    for key, (low, high) in _TIME_RANGES.items():
        if not low <= result[key] <= high:
            raise MessageError(
                f"field {field!r}: {result[key]} is out of range for {key} [{low}, {high}]",
                field=field or None,
            )
    return result


def _where(field: str) -> str:
    return f"field {field!r}: " if field else ""


def _string_in(bound: int | None, value: Any, field: str) -> str:
    checked: str = coerce_primitive("string", value, field)
    if bound is not None and len(checked) > bound:
        raise MessageError(
            f"field {field!r}: {len(checked)} characters, more than the bound of {bound}",
            field=field,
        )
    return checked


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


def _octet_in(value: Any, field: str) -> bytes:
    if isinstance(value, (bytes, bytearray)) and len(value) == 1:
        return bytes(value)
    return bytes([coerce_primitive("octet", value, field)])


def _char_in(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise MessageError(
            f"field {field!r}: expected a 1-character str, got {value!r:.60}", field=field
        )
    return value


def _check_length(length: int | None, bound: int | None, size: int, field: str) -> None:
    if length is not None and size != length:
        raise MessageError(
            f"field {field!r}: expected exactly {length} elements, got {size}", field=field
        )
    if bound is not None and size > bound:
        raise MessageError(
            f"field {field!r}: {size} elements, more than the bound of {bound}", field=field
        )


def _bytes_identity(data: bytes) -> bytes:
    return data


def _octets(data: bytes) -> list[bytes]:
    return [bytes((byte,)) for byte in data]


def _numpy_of(base: str) -> Callable[[Any], Any]:
    dtype = numpy.dtype(base)

    def make(values: Any) -> Any:
        if isinstance(values, bytes):
            return numpy.frombuffer(values, dtype=dtype).copy()
        return numpy.array(values, dtype=dtype)

    return make


def _bytes_in(
    length: int | None, bound: int | None, make: Callable[[bytes], Any], value: Any, field: str
) -> Any:
    data = value if type(value) is bytes else coerce_bytes(value, field)
    _check_length(length, bound, len(data), field)
    return make(data)


def _list_in(
    length: int | None, bound: int | None, elements_in: _In, value: Any, field: str
) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise MessageError(
            f"field {field!r}: expected a list, got {type(value).__name__}", field=field
        )
    _check_length(length, bound, len(value), field)
    return elements_in(value, field)  # type: ignore[no-any-return]


def _each_in(element_in: _In, values: Any, field: str) -> list[Any]:
    return [element_in(value, f"{field}[{index}]") for index, value in enumerate(values)]


def _numbers_in(
    base: str,
    length: int | None,
    bound: int | None,
    make: Callable[[Any], Any],
    value: Any,
    field: str,
) -> Any:
    if not isinstance(value, (list, tuple)):
        raise MessageError(
            f"field {field!r}: expected a list, got {type(value).__name__}", field=field
        )
    _check_length(length, bound, len(value), field)
    return make(_primitives_in(base, value, field))


def _primitives_in(base: str, values: Any, field: str) -> list[Any]:
    # Fast path: values that are already canonical (all floats for a float array, all
    # in-range ints for an int array) are what the per-element checks would return.
    if base in FLOAT_TYPES:
        if all(type(value) is float for value in values):
            checked = list(values)
            if base == "float32" and checked:
                try:
                    struct.pack(f"<{len(checked)}f", *checked)
                except OverflowError:
                    for index, item in enumerate(checked):
                        _float32_in(item, f"{field}[{index}]")
            return checked
        scalar = _float32_in if base == "float32" else partial(coerce_primitive, base)
        return [scalar(value, f"{field}[{index}]") for index, value in enumerate(values)]
    if values and all(type(value) is int for value in values):
        low, high = INT_RANGES[base]
        if low <= min(values) and max(values) <= high:
            return list(values)
    return [
        coerce_primitive(base, value, f"{field}[{index}]") for index, value in enumerate(values)
    ]
