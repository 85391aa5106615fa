"""ROS field types and the checks that turn user data into valid field values.

The primitive types and their ranges come from the ROS message description spec
(http://wiki.ros.org/msg, "Field Types"); ROS 2 adds ``boolean``, ``octet``, ``wstring`` and
``float``/``double`` aliases in its IDL mapping, accepted here too. Time and duration are plain
dicts ``{"secs": int, "nsecs": int}`` on pyros's side of every backend.

Every check raises :class:`~pyros.exceptions.MessageError` naming the field path it was given.
"""

from __future__ import annotations

import math
from typing import Any

from pyros.exceptions import MessageError

__all__ = [
    "INT_RANGES",
    "FLOAT_TYPES",
    "PRIMITIVE_TYPES",
    "split_array",
    "is_primitive",
    "coerce_primitive",
    "coerce_bytes",
    "coerce_time",
]

INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    # ROS 1 aliases (deprecated in the spec but still in use) and ROS 2 names.
    "byte": (-(2**7), 2**7 - 1),
    "char": (0, 2**8 - 1),
    "octet": (0, 2**8 - 1),
}
"""Inclusive ``(min, max)`` of every integer type."""

FLOAT_TYPES = frozenset({"float32", "float64", "float", "double"})
_BOOL_TYPES = frozenset({"bool", "boolean"})
_STRING_TYPES = frozenset({"string", "wstring"})
_TIME_TYPES = frozenset({"time", "duration"})
_BYTE_ARRAY_TYPES = frozenset({"uint8", "char", "octet", "byte"})

PRIMITIVE_TYPES = frozenset(INT_RANGES) | FLOAT_TYPES | _BOOL_TYPES | _STRING_TYPES | _TIME_TYPES
"""Every built-in (non-message) field type name."""

_NSECS_PER_SEC = 1_000_000_000


def split_array(field_type: str) -> tuple[str, bool, int | None]:
    """Split ``"float64[3]"`` into ``("float64", True, 3)`` and ``"string"`` into
    ``("string", False, None)``; ``"uint8[]"`` gives ``("uint8", True, None)``.

    ROS 2 bounded forms (``int32[<=5]``, ``string<=10``) keep their bound out of the base type.
    """
    bracket = field_type.find("[")
    if bracket < 0:
        return field_type.split("<=", 1)[0], False, None
    base = field_type[:bracket].split("<=", 1)[0]
    inside = field_type[bracket + 1 : field_type.rindex("]")]
    if inside and not inside.startswith("<="):
        return base, True, int(inside)
    return base, True, None


def is_primitive(base_type: str) -> bool:
    """Return True if ``base_type`` (no array suffix) is a built-in field type."""
    return base_type in PRIMITIVE_TYPES


def coerce_primitive(base_type: str, value: Any, field: str) -> Any:
    """Check ``value`` against one primitive type and return it in canonical form.

    Args:
        base_type: a name from :data:`PRIMITIVE_TYPES` (no array suffix).
        value: the user's value.
        field: dotted path used in the error message (``"linear.x"``).

    Returns:
        ``bool``, ``int``, ``float`` or ``str``; for time/duration a ``{"secs", "nsecs"}`` dict.

    Raises:
        MessageError: wrong Python type, integer out of range, or non-finite time.
    """
    if base_type in INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(field, base_type, value)
        low, high = INT_RANGES[base_type]
        if not low <= value <= high:
            raise MessageError(
                f"field {field!r}: {value} is out of range for {base_type} [{low}, {high}]",
                field=field,
            )
        return value
    if base_type in FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(field, base_type, value)
        return float(value)
    if base_type in _BOOL_TYPES:
        if not isinstance(value, bool):
            raise _type_error(field, base_type, value)
        return value
    if base_type in _STRING_TYPES:
        if not isinstance(value, str):
            raise _type_error(field, base_type, value)
        return value
    if base_type in _TIME_TYPES:
        return coerce_time(value, field)
    raise MessageError(f"field {field!r}: unknown primitive type {base_type!r}", field=field)


def coerce_bytes(value: Any, field: str, length: int | None = None) -> bytes:
    """Check a ``uint8[]``/``char[]`` value: ``bytes``, ``bytearray`` or a list of 0..255.

    Args:
        value: the user's value.
        field: dotted path used in the error message.
        length: the fixed array length, or None for a variable-length array.

    Raises:
        MessageError: not bytes-like, an element out of 0..255, or the wrong fixed length.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            coerce_primitive("uint8", item, f"{field}[{index}]")
        data = bytes(value)
    else:
        raise MessageError(
            f"field {field!r}: expected bytes or a list of 0..255, got {type(value).__name__}",
            field=field,
        )
    if length is not None and len(data) != length:
        raise MessageError(
            f"field {field!r}: expected exactly {length} bytes, got {len(data)}", field=field
        )
    return data


def coerce_time(value: Any, field: str) -> dict[str, int]:
    """Check a time or duration: ``{"secs": int, "nsecs": int}``, or a number of seconds.

    ``nsecs`` outside 0..999999999 is normalised into ``secs`` (as ``genpy.Time`` does).

    Raises:
        MessageError: not a dict of ints or a finite number, or a dict with other keys.
    """
    if isinstance(value, dict):
        extra = set(value) - {"secs", "nsecs"}
        if extra:
            name = sorted(map(str, extra))[0]
            raise MessageError(
                f"field {field + '.' + name!r}: time and duration have only 'secs' and 'nsecs'",
                field=f"{field}.{name}",
            )
        secs = value.get("secs", 0)
        nsecs = value.get("nsecs", 0)
        for key, item in (("secs", secs), ("nsecs", nsecs)):
            if isinstance(item, bool) or not isinstance(item, int):
                raise _type_error(f"{field}.{key}", "int", item)
        extra_secs, nsecs = divmod(nsecs, _NSECS_PER_SEC)
        return {"secs": secs + extra_secs, "nsecs": nsecs}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise MessageError(f"field {field!r}: time must be finite, got {value}", field=field)
        total = round(value * _NSECS_PER_SEC)
        secs, nsecs = divmod(total, _NSECS_PER_SEC)
        return {"secs": secs, "nsecs": nsecs}
    raise MessageError(
        f"field {field!r}: expected {{'secs': int, 'nsecs': int}}, got {type(value).__name__}",
        field=field,
    )


def _type_error(field: str, expected: str, value: Any) -> MessageError:
    return MessageError(
        f"field {field!r}: expected {expected}, got {type(value).__name__} {value!r:.60}",
        field=field,
    )
