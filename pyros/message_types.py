"""ROS field types, message definitions, and the checks that turn user data into valid messages.

Two layers live here:

* **Primitive checks** (:func:`coerce_primitive`, :func:`coerce_bytes`, :func:`coerce_time`,
  :func:`split_array`): one field value at a time. The primitive types and their ranges come from
  the ROS message description spec (http://wiki.ros.org/msg, "Field Types"); ROS 2 adds
  ``boolean``, ``octet``, ``wstring`` and ``float``/``double`` aliases in its IDL mapping,
  accepted here too. Time and duration are plain dicts ``{"secs": int, "nsecs": int}`` on
  pyros's side of every backend.
* **Whole messages** (:func:`check_message`, :func:`default_message`, :func:`check_request`...):
  a :class:`TypeRegistry` of ``.msg``/``.srv`` definitions parsed by :func:`parse_message` and
  :func:`parse_service` (ROS message description language, http://wiki.ros.org/msg and
  http://wiki.ros.org/srv). :data:`REGISTRY` holds the built-in types of
  :mod:`pyros._message_definitions`; the module-level functions use it.

Messages are plain dicts: nested dicts for nested messages, lists for arrays, ``bytes`` for
``uint8[]``/``char[]`` (and ROS 2 ``octet[]``; ``byte[]``, a signed ``int8`` alias, stays a list
of ints), ``{"secs", "nsecs"}`` for ``time``/``duration``. Checking a message returns a new,
complete dict with every missing field set to its ROS default (0, 0.0, ``""``, False, ``b""``,
``[]``, fixed-length arrays filled with defaults, zero time).

Every check raises :class:`~pyros.exceptions.MessageError` whose ``field`` is the dotted path of
the offending field (``"linear.x"``, ``"data[3]"``, or ``"linear.w"`` for a field the type does
not have); ``field`` is ``None`` when the message as a whole is wrong (not a dict, unknown type).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
    "Field",
    "Constant",
    "MessageSpec",
    "ServiceSpec",
    "ActionSpec",
    "parse_message",
    "parse_service",
    "parse_action",
    "canonical_type",
    "TypeRegistry",
    "REGISTRY",
    "message_spec",
    "service_spec",
    "message_fields",
    "is_message_type",
    "is_service_type",
    "default_message",
    "check_message",
    "default_request",
    "default_response",
    "check_request",
    "check_response",
    "check_param_value",
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
_FLOAT32_TYPES = frozenset({"float32", "float"})
_FLOAT32_MAX = 3.4028234663852886e38
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
        try:
            number = float(value)
        except OverflowError:
            raise MessageError(
                f"field {field!r}: {base_type} cannot hold an integer this large", field=field
            ) from None
        if base_type in _FLOAT32_TYPES and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise MessageError(
                f"field {field!r}: {number:g} is out of range for {base_type} "
                f"(largest {_FLOAT32_MAX:g})",
                field=field,
            )
        return number
    if base_type in _BOOL_TYPES:
        if not isinstance(value, bool):
            raise _type_error(field, base_type, value)
        return value
    if base_type in _STRING_TYPES:
        if not isinstance(value, str):
            raise _type_error(field, base_type, value)
        return value
    if base_type in _TIME_TYPES:
        return coerce_time(value, field, base_type)
    raise MessageError(f"field {field!r}: unknown primitive type {base_type!r}", field=field)


def coerce_bytes(value: Any, field: str, length: int | None = None) -> bytes:
    """Check a ``uint8[]``/``char[]`` value: ``bytes``, ``bytearray``, a list of 0..255, or a
    base64 string (the form the rosbridge v2 protocol uses for ``uint8[]`` in JSON).

    Args:
        value: the user's value.
        field: dotted path used in the error message.
        length: the fixed array length, or None for a variable-length array.

    Raises:
        MessageError: not bytes-like, an element out of 0..255, invalid base64, or the wrong
            fixed length.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MessageError(
                f"field {field!r}: a string for uint8[] must be base64: {exc}", field=field
            ) from exc
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


def coerce_time(value: Any, field: str, kind: str = "duration") -> dict[str, int]:
    """Check a time or duration: ``{"secs": int, "nsecs": int}``, or a number of seconds.

    ``nsecs`` outside 0..999999999 is normalised into ``secs`` (as ``genpy.Time`` does). The
    ROS 2 spelling ``{"sec": int, "nanosec": int}`` (builtin_interfaces) is accepted too.

    Args:
        value: the user's value.
        field: dotted path used in the error message.
        kind: ``"time"`` (``secs`` a uint32, as in ROS 1's wire format) or ``"duration"``
            (``secs`` an int32).

    Raises:
        MessageError: not a dict of ints or a finite number, a dict with other keys, or
            ``secs`` out of range for ``kind``.
    """
    if isinstance(value, dict) and set(value) <= {"sec", "nanosec"} and value:
        value = {"secs": value.get("sec", 0), "nsecs": value.get("nanosec", 0)}
    checked = _coerce_time(value, field)
    low, high = INT_RANGES["uint32" if kind == "time" else "int32"]
    if not low <= checked["secs"] <= high:
        raise MessageError(
            f"field {field!r}: {checked['secs']} s is out of range for a ROS {kind} "
            f"[{low}, {high}] s",
            field=field,
        )
    return checked


def _coerce_time(value: Any, field: str) -> dict[str, int]:
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
        if not math.isfinite(value) or abs(value) > 2**62 / _NSECS_PER_SEC:
            raise MessageError(
                f"field {field!r}: time must be a finite number of seconds within "
                f"+-{2**62 / _NSECS_PER_SEC:.3g}, got {value}",
                field=field,
            )
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


# ---------------------------------------------------------------------------------------------
# Definitions: the parsed form of .msg and .srv text
# ---------------------------------------------------------------------------------------------

_BYTES_ARRAY_BASES = frozenset({"uint8", "char", "octet"})
"""Base types whose arrays are ``bytes`` on pyros's side (``uint8[]``, ``char[]``, ``octet[]``)."""

_CONSTANT_TYPES = (frozenset(INT_RANGES) | FLOAT_TYPES | _BOOL_TYPES | _STRING_TYPES) - {"wstring"}
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_TYPE_NAME_RE = re.compile(
    r"([A-Za-z][A-Za-z0-9_]*)/(?:(?:msg|srv|action)/)?([A-Za-z][A-Za-z0-9_]*)\Z"
)
_FIELD_TYPE_RE = re.compile(
    r"(?:([A-Za-z][A-Za-z0-9_]*)/)?([A-Za-z][A-Za-z0-9_]*)(\[([0-9]*)\])?\Z"
)
_SERVICE_SEPARATOR = "---"


@dataclass(frozen=True)
class Field:
    """One field of a message type.

    Attributes:
        name: the field name, e.g. ``"linear"``.
        type: the field type with package names resolved and the array suffix kept, e.g.
            ``"geometry_msgs/Vector3"``, ``"float64[9]"``, ``"std_msgs/Header"`` (for
            ``Header``).
        base_type: ``type`` without the array suffix (``"float64"``).
        is_array: True for ``T[]`` and ``T[N]``.
        length: ``N`` for a fixed-length array ``T[N]``, else None.
    """

    name: str
    type: str
    base_type: str
    is_array: bool
    length: int | None

    @property
    def is_primitive(self) -> bool:
        """True if :attr:`base_type` is a built-in field type, False for a message type."""
        return self.base_type in PRIMITIVE_TYPES


@dataclass(frozen=True)
class Constant:
    """A constant declared in a definition (``uint8 RED=1``); not part of message dicts.

    Attributes:
        name: the constant's name (``"RED"``).
        type: its primitive type (``"uint8"``); never an array, time or duration.
        value: the value, already converted (``bool``, ``int``, ``float`` or ``str``).
    """

    name: str
    type: str
    value: bool | int | float | str


@dataclass(frozen=True)
class MessageSpec:
    """A parsed message definition.

    Attributes:
        type: ``pkg/Type``.
        fields: the fields in declaration order (the order of the dicts pyros builds).
        constants: the constants in declaration order.
    """

    type: str
    fields: tuple[Field, ...]
    constants: tuple[Constant, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        """The field names in declaration order."""
        return tuple(field.name for field in self.fields)


@dataclass(frozen=True)
class ServiceSpec:
    """A parsed service definition.

    Attributes:
        type: ``pkg/Type``.
        request: the request part, named ``pkg/TypeRequest`` as in ROS 1.
        response: the response part, named ``pkg/TypeResponse``.
    """

    type: str
    request: MessageSpec
    response: MessageSpec


@dataclass(frozen=True)
class ActionSpec:
    """A parsed action definition (``.action``: goal ``---`` result ``---`` feedback).

    Attributes:
        type: ``pkg/Type``.
        goal: the goal part, named ``pkg/TypeGoal`` as in ROS 1 actionlib.
        result: the result part, ``pkg/TypeResult``.
        feedback: the feedback part, ``pkg/TypeFeedback``.
    """

    type: str
    goal: MessageSpec
    result: MessageSpec
    feedback: MessageSpec


def canonical_type(type_name: str) -> str:
    """Return a type name as ``pkg/Type``, accepting the ROS 2 form ``pkg/msg/Type``.

    Args:
        type_name: ``"geometry_msgs/Twist"``, ``"geometry_msgs/msg/Twist"`` or
            ``"std_srvs/srv/SetBool"``.

    Returns:
        ``"geometry_msgs/Twist"`` (``"std_srvs/SetBool"``).

    Raises:
        MessageError: not a type name of that shape (``field`` is None).
    """
    match = _TYPE_NAME_RE.match(type_name) if isinstance(type_name, str) else None
    if match is None:
        raise MessageError(f"{type_name!r} is not a ROS type name of the form 'pkg/Type'")
    return f"{match.group(1)}/{match.group(2)}"


def parse_message(type_name: str, text: str) -> MessageSpec:
    """Parse ``.msg`` text (ROS message description language, http://wiki.ros.org/msg).

    Understood: ``type name`` fields; ``type NAME=value`` constants of the primitive types
    (string constants take the rest of the line, ``#`` included, as the spec says); ``#``
    comments and blank lines; arrays ``T[]`` and ``T[N]``; ``Header`` meaning
    ``std_msgs/Header``; short names of message types from the same package (``Vector3`` in
    ``geometry_msgs``). Referenced message types are not looked up here; the registry does that
    when the type is first used.

    Args:
        type_name: the type being defined, ``pkg/Type`` (``pkg/msg/Type`` is accepted).
        text: the definition.

    Returns:
        The parsed definition.

    Raises:
        ValueError: the text is not a valid definition (the message gives the line), or
            ``type_name`` is malformed.
    """
    try:
        type_name = canonical_type(type_name)
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    package = type_name.split("/", 1)[0]
    fields: list[Field] = []
    constants: list[Constant] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{type_name} line {number}"
        parsed = _parse_line(raw, package, where)
        if parsed is None:
            continue
        if parsed.name in seen:
            raise ValueError(f"{where}: {parsed.name!r} is declared twice")
        seen.add(parsed.name)
        if isinstance(parsed, Constant):
            constants.append(parsed)
        else:
            fields.append(parsed)
    return MessageSpec(type_name, tuple(fields), tuple(constants))


def parse_service(type_name: str, text: str) -> ServiceSpec:
    """Parse ``.srv`` text: a request definition, a ``---`` line, a response definition.

    Format from http://wiki.ros.org/srv; each half follows :func:`parse_message`.

    Args:
        type_name: the service type ``pkg/Type`` (``pkg/srv/Type`` is accepted).
        text: the definition.

    Returns:
        The parsed definition, its parts named ``pkg/TypeRequest`` and ``pkg/TypeResponse``.

    Raises:
        ValueError: no ``---`` line or more than one, or either half is invalid.
    """
    try:
        type_name = canonical_type(type_name)
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    lines = text.splitlines()
    separators = [i for i, line in enumerate(lines) if line.strip() == _SERVICE_SEPARATOR]
    if len(separators) != 1:
        raise ValueError(
            f"{type_name}: a service definition needs exactly one '---' line, "
            f"found {len(separators)}"
        )
    cut = separators[0]
    request = parse_message(f"{type_name}Request", "\n".join(lines[:cut]))
    # Keep line numbers in errors meaningful for the response half too.
    response = parse_message(f"{type_name}Response", "\n" * (cut + 1) + "\n".join(lines[cut + 1 :]))
    return ServiceSpec(type_name, request, response)


def parse_action(type_name: str, text: str) -> ActionSpec:
    """Parse ``.action`` text: goal, ``---``, result, ``---``, feedback.

    Format from http://wiki.ros.org/actionlib and the ROS 2 action design
    (https://design.ros2.org/articles/actions.html); each part follows :func:`parse_message`.

    Raises:
        ValueError: not exactly two ``---`` lines, or a part is invalid.
    """
    try:
        type_name = canonical_type(type_name)
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    lines = text.splitlines()
    cuts = [i for i, line in enumerate(lines) if line.strip() == _SERVICE_SEPARATOR]
    if len(cuts) != 2:
        raise ValueError(
            f"{type_name}: an action definition needs exactly two '---' lines, found {len(cuts)}"
        )
    first, second = cuts
    goal = parse_message(f"{type_name}Goal", "\n".join(lines[:first]))
    result = parse_message(
        f"{type_name}Result", "\n" * (first + 1) + "\n".join(lines[first + 1 : second])
    )
    feedback = parse_message(
        f"{type_name}Feedback", "\n" * (second + 1) + "\n".join(lines[second + 1 :])
    )
    return ActionSpec(type_name, goal, result, feedback)


def _parse_line(raw: str, package: str, where: str) -> Field | Constant | None:
    """Parse one definition line into a field or a constant; None for blanks and comments."""
    stripped = raw.strip()
    if not stripped or stripped.startswith("#"):
        return None
    type_token, _, rest = stripped.partition(" ")
    if "\t" in type_token:
        type_token, _, more = type_token.partition("\t")
        rest = more + " " + rest
    rest = rest.strip()
    # String constants keep '#' as part of their value: decide before dropping comments.
    if type_token == "string" and "=" in rest:
        name, _, value = rest.partition("=")
        if _NAME_RE.match(name.strip()):
            return _constant(type_token, name.strip(), value.strip(), where)
    rest = rest.split("#", 1)[0].strip()
    if not rest:
        raise ValueError(f"{where}: expected 'type name' or 'type NAME=value', got {stripped!r}")
    if "=" in rest:
        name, _, value = rest.partition("=")
        return _constant(type_token, name.strip(), value.strip(), where)
    if len(rest.split()) != 1:
        raise ValueError(f"{where}: expected 'type name', got {stripped!r}")
    if not _NAME_RE.match(rest):
        raise ValueError(f"{where}: {rest!r} is not a valid field name")
    return _field(type_token, rest, package, where)


def _field(type_token: str, name: str, package: str, where: str) -> Field:
    match = _FIELD_TYPE_RE.match(type_token)
    if match is None:
        raise ValueError(f"{where}: {type_token!r} is not a valid field type")
    field_package, short, array, length_text = match.groups()
    if field_package is not None:
        base = f"{field_package}/{short}"
    elif short in PRIMITIVE_TYPES:
        base = short
    elif short == "Header":
        base = "std_msgs/Header"
    else:
        base = f"{package}/{short}"
    length = int(length_text) if length_text else None
    full = base if array is None else f"{base}[{length_text}]"
    return Field(name, full, base, array is not None, length)


def _constant(type_token: str, name: str, text: str, where: str) -> Constant:
    if type_token not in _CONSTANT_TYPES:
        raise ValueError(f"{where}: constants must have a primitive type, not {type_token!r}")
    if not _NAME_RE.match(name):
        raise ValueError(f"{where}: {name!r} is not a valid constant name")
    value: bool | int | float | str
    try:
        if type_token in INT_RANGES:
            value = int(text)
            low, high = INT_RANGES[type_token]
            if not low <= value <= high:
                raise ValueError(f"{value} is out of range for {type_token}")
        elif type_token in FLOAT_TYPES:
            value = float(text)
        elif type_token in _BOOL_TYPES:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(f"{text!r} is not a bool")
            value = lowered in ("true", "1")
        else:
            value = text
    except ValueError as exc:
        raise ValueError(f"{where}: bad value for constant {name}: {exc}") from None
    return Constant(name, type_token, value)


# ---------------------------------------------------------------------------------------------
# Compiled checkers: one closure per field, built once per type, so a check costs microseconds
# ---------------------------------------------------------------------------------------------

_Check = Callable[[Any, str], Any]
"""``check(value, path) -> normalised value``; raises MessageError naming ``path``."""
_Default = Callable[[], Any]
"""Returns a fresh default value (a new object when it is mutable)."""


@dataclass(frozen=True)
class _Compiled:
    check: _Check
    default: _Default


def _primitive_check(base: str) -> _Check:
    """A checker with a fast path for values that are already canonical."""
    if base in INT_RANGES:
        low, high = INT_RANGES[base]

        def check_int(value: Any, path: str) -> Any:
            if type(value) is int and low <= value <= high:
                return value
            return coerce_primitive(base, value, path)

        return check_int
    if base in FLOAT_TYPES:
        limit = _FLOAT32_MAX if base in _FLOAT32_TYPES else math.inf

        def check_float(value: Any, path: str) -> Any:
            if type(value) is float and -limit <= value <= limit:
                return value
            return coerce_primitive(base, value, path)

        return check_float
    if base in _BOOL_TYPES:

        def check_bool(value: Any, path: str) -> Any:
            if value is True or value is False:
                return value
            return coerce_primitive(base, value, path)

        return check_bool
    if base in _STRING_TYPES:

        def check_str(value: Any, path: str) -> Any:
            if type(value) is str:
                return value
            return coerce_primitive(base, value, path)

        return check_str

    def check_time(value: Any, path: str) -> Any:
        return coerce_time(value, path, base)

    return check_time


def _primitive_default(base: str) -> _Default:
    if base in INT_RANGES:
        return int
    if base in FLOAT_TYPES:
        return float
    if base in _BOOL_TYPES:
        return bool
    if base in _STRING_TYPES:
        return str
    return lambda: {"secs": 0, "nsecs": 0}


def _all_canonical(base: str) -> Callable[[Iterable[Any]], bool]:
    """A predicate that is True when every element already has canonical form (fast path)."""
    if base in INT_RANGES:
        low, high = INT_RANGES[base]
        return lambda items: all(type(x) is int and low <= x <= high for x in items)
    if base in FLOAT_TYPES:
        return lambda items: all(type(x) is float for x in items)
    if base in _BOOL_TYPES:
        return lambda items: all(x is True or x is False for x in items)
    if base in _STRING_TYPES:
        return lambda items: all(type(x) is str for x in items)
    return lambda items: False


def _array_check(field: Field, element: _Check) -> _Check:
    base, length = field.base_type, field.length
    if base in _BYTES_ARRAY_BASES:
        return lambda value, path: coerce_bytes(value, path, length)
    canonical = _all_canonical(base) if base in PRIMITIVE_TYPES else None

    def check_array(value: Any, path: str) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise MessageError(
                f"field {path!r}: expected a list for {field.type}, got {type(value).__name__}",
                field=path,
            )
        if length is not None and len(value) != length:
            raise MessageError(
                f"field {path!r}: expected exactly {length} elements, got {len(value)}",
                field=path,
            )
        if canonical is not None and canonical(value):
            return list(value)
        return [element(item, f"{path}[{index}]") for index, item in enumerate(value)]

    return check_array


def _array_default(field: Field, element: _Default) -> _Default:
    length = field.length
    if field.base_type in _BYTES_ARRAY_BASES:
        filled = bytes(length or 0)
        return lambda: filled
    if length is None:
        return list
    return lambda: [element() for _ in range(length)]


def _message_check(spec: MessageSpec, parts: list[tuple[str, _Check, _Default]]) -> _Check:
    names = frozenset(name for name, _, _ in parts)
    type_name = spec.type

    def check_message(value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            if not isinstance(value, Mapping):
                where = f"field {path!r}" if path else "message"
                raise MessageError(
                    f"{where}: expected a dict for {type_name}, got {type(value).__name__}",
                    field=path or None,
                )
        if not names.issuperset(value):
            _raise_unknown_field(spec, value, path)
        prefix = f"{path}." if path else ""
        return {
            name: check(value[name], prefix + name) if name in value else default()
            for name, check, default in parts
        }

    return check_message


def _raise_unknown_field(spec: MessageSpec, value: Mapping[Any, Any], path: str) -> None:
    known = spec.field_names
    for key in value:
        if key not in known:
            field = f"{path}.{key}" if path else str(key)
            listing = ", ".join(known) if known else "no fields"
            raise MessageError(
                f"field {field!r}: {spec.type} has no field {key!r} (it has {listing})",
                field=field,
            )


def _message_default(parts: list[tuple[str, _Check, _Default]]) -> _Default:
    defaults = [(name, default) for name, _, default in parts]
    return lambda: {name: default() for name, default in defaults}


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


class TypeRegistry:
    """Message and service definitions by type name, with fast checks built from them.

    Service halves are looked up as messages too, under their ROS 1 names
    (``std_srvs/SetBoolRequest``, ``std_srvs/SetBoolResponse``).

    Lookups are thread-safe; registering while other threads check messages is safe too (a
    check sees the old or the new definition).

    Args:
        messages: ``pkg/Type`` -> ``.msg`` text to register at once.
        services: ``pkg/Type`` -> ``.srv`` text to register at once.

    Raises:
        ValueError: a definition does not parse.
    """

    def __init__(
        self,
        messages: Mapping[str, str] | None = None,
        services: Mapping[str, str] | None = None,
        actions: Mapping[str, str] | None = None,
    ) -> None:
        self._messages: dict[str, MessageSpec] = {}
        self._services: dict[str, ServiceSpec] = {}
        self._actions: dict[str, ActionSpec] = {}
        self._texts: dict[str, str] = {}
        self._compiled: dict[str, _Compiled] = {}
        for type_name, text in (messages or {}).items():
            self.register_message(type_name, text)
        for type_name, text in (services or {}).items():
            self.register_service(type_name, text)
        for type_name, text in (actions or {}).items():
            self.register_action(type_name, text)

    # -- definitions ----------------------------------------------------------------------

    def register_message(self, type_name: str, text: str) -> MessageSpec:
        """Parse and add (or replace) a message definition.

        Args:
            type_name: ``pkg/Type``.
            text: ``.msg`` text; see :func:`parse_message`.

        Returns:
            The parsed definition.

        Raises:
            ValueError: the text does not parse.
        """
        spec = parse_message(type_name, text)
        self._messages[spec.type] = spec
        self._texts[spec.type] = text
        self._compiled = {}  # types that use this one must be rebuilt
        return spec

    def register_service(self, type_name: str, text: str) -> ServiceSpec:
        """Parse and add (or replace) a service definition.

        Args:
            type_name: ``pkg/Type``.
            text: ``.srv`` text; see :func:`parse_service`.

        Returns:
            The parsed definition.

        Raises:
            ValueError: the text does not parse.
        """
        spec = parse_service(type_name, text)
        self._services[spec.type] = spec
        self._texts[spec.type] = text
        self._compiled = {}
        return spec

    def register_action(self, type_name: str, text: str) -> ActionSpec:
        """Parse and add (or replace) an action definition.

        Its goal, result and feedback become message types ``pkg/TypeGoal``,
        ``pkg/TypeResult`` and ``pkg/TypeFeedback`` (ROS 1 actionlib's names).

        Raises:
            ValueError: the text does not parse.
        """
        spec = parse_action(type_name, text)
        self._actions[spec.type] = spec
        for part in (spec.goal, spec.result, spec.feedback):
            self._messages[part.type] = part
        self._texts[spec.type] = text
        self._compiled = {}
        return spec

    def action_types(self) -> list[str]:
        """Return every registered action type, sorted."""
        return sorted(self._actions)

    def is_action_type(self, type_name: str) -> bool:
        """Return True if ``type_name`` is a registered action type."""
        try:
            return canonical_type(type_name) in self._actions
        except MessageError:
            return False

    def definition(self, type_name: str) -> str:
        """Return the ``.msg``/``.srv``/``.action`` text a type was registered with.

        Raises:
            MessageError: the type is not registered (the message suggests close names).
        """
        canonical = canonical_type(type_name)
        text = self._texts.get(canonical)
        if text is None:
            raise MessageError(f"unknown type {type_name!r}{self.suggest(canonical)}")
        return text

    def knows_package(self, type_name: str) -> bool:
        """Return True if some registered type lives in ``type_name``'s package."""
        package = canonical_type(type_name).split("/", 1)[0] + "/"
        return any(name.startswith(package) for name in self._texts)

    def suggest(self, type_name: str) -> str:
        """Return ``"; did you mean pkg/Type?"`` for the closest registered types, or ``""``."""
        import difflib

        close = difflib.get_close_matches(type_name, list(self._texts), n=3, cutoff=0.6)
        return f"; did you mean {', '.join(close)}?" if close else ""

    def message_types(self) -> list[str]:
        """Return every registered message type, sorted (service and action parts not included)."""
        parts = {
            part.type
            for spec in self._actions.values()
            for part in (spec.goal, spec.result, spec.feedback)
        }
        return sorted(name for name in self._messages if name not in parts)

    def service_types(self) -> list[str]:
        """Return every registered service type, sorted."""
        return sorted(self._services)

    def is_message_type(self, type_name: str) -> bool:
        """Return True if ``type_name`` is a registered message type or a service half."""
        try:
            self.message_spec(type_name)
        except MessageError:
            return False
        return True

    def is_service_type(self, type_name: str) -> bool:
        """Return True if ``type_name`` is a registered service type."""
        try:
            self.service_spec(type_name)
        except MessageError:
            return False
        return True

    def message_spec(self, type_name: str) -> MessageSpec:
        """Return the definition of a message type.

        Args:
            type_name: ``pkg/Type`` or ``pkg/msg/Type``; service halves as ``pkg/TypeRequest``.

        Raises:
            MessageError: the type is not registered (``field`` is None).
        """
        spec = self._messages.get(type_name)
        if spec is not None:
            return spec
        name = canonical_type(type_name)
        spec = self._messages.get(name)
        if spec is not None:
            return spec
        for suffix in ("Request", "Response"):
            if name.endswith(suffix):
                service = self._services.get(name[: -len(suffix)])
                if service is not None:
                    return service.request if suffix == "Request" else service.response
        raise MessageError(f"unknown message type {type_name!r}: pyros has no definition for it")

    def service_spec(self, type_name: str) -> ServiceSpec:
        """Return the definition of a service type.

        Args:
            type_name: ``pkg/Type`` or ``pkg/srv/Type``.

        Raises:
            MessageError: the type is not registered (``field`` is None).
        """
        spec = self._services.get(type_name) or self._services.get(canonical_type(type_name))
        if spec is None:
            raise MessageError(
                f"unknown service type {type_name!r}: pyros has no definition for it"
            )
        return spec

    # -- messages -------------------------------------------------------------------------

    def default_message(self, type_name: str) -> dict[str, Any]:
        """Return a new message dict with every field at its ROS default.

        Defaults: 0 for integers, 0.0 for floats, False, ``""``, ``b""`` for byte arrays,
        ``[]`` for other variable-length arrays, fixed-length arrays filled with their element
        default, ``{"secs": 0, "nsecs": 0}`` for time and duration, nested messages filled the
        same way.

        Raises:
            MessageError: the type (or a type it uses) is not registered.
        """
        result: dict[str, Any] = self._compile(type_name).default()
        return result

    def check_message(self, type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
        """Check a message dict against its type and return it complete and normalised.

        Missing fields take their defaults (see :meth:`default_message`); ints become floats
        in float fields; tuples become lists; ``bytearray`` and lists of 0..255 become ``bytes``
        in byte arrays; times given as seconds become ``{"secs", "nsecs"}``. The input is not
        modified and shares no mutable object with the result.

        Args:
            type_name: ``pkg/Type`` (or ``pkg/msg/Type``).
            data: the message as a dict.
            field_prefix: dotted path of this message inside an enclosing one (``"goal"``), put
                in front of every field path in errors (``"goal.linear.x"``); ``""`` at top level.

        Returns:
            A new dict with exactly the type's fields, in declaration order.

        Raises:
            MessageError: ``field`` names the bad field: a wrong Python type or an integer out
                of range (``"linear.x"``), an array element (``"data[3]"``), a fixed-length
                array of the wrong length (``"data"``), a key the type does not have
                (``"linear.w"``). ``field`` is None (or ``field_prefix``) when ``data`` is not
                a dict or the type is unknown.
        """
        compiled = self._compiled.get(type_name)
        if compiled is None:
            try:
                compiled = self._compile(type_name)
            except MessageError as exc:
                raise MessageError(str(exc), field=field_prefix or None) from None
        result: dict[str, Any] = compiled.check(data, field_prefix)
        return result

    def message_fields(self, type_name: str) -> tuple[Field, ...]:
        """Return the fields of a message type in declaration order.

        Raises:
            MessageError: the type is not registered.
        """
        return self.message_spec(type_name).fields

    # -- services -------------------------------------------------------------------------

    def default_request(self, type_name: str) -> dict[str, Any]:
        """Return a service request with every field at its default (see default_message).

        Raises:
            MessageError: the service type is not registered.
        """
        return self.default_message(self.service_spec(type_name).request.type)

    def default_response(self, type_name: str) -> dict[str, Any]:
        """Return a service response with every field at its default.

        Raises:
            MessageError: the service type is not registered.
        """
        return self.default_message(self.service_spec(type_name).response.type)

    def check_request(self, type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
        """Check a service request dict; like :meth:`check_message` for the request half.

        Raises:
            MessageError: the request does not fit, or the service type is unknown.
        """
        return self.check_message(self.service_spec(type_name).request.type, data, field_prefix)

    def check_response(self, type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
        """Check a service response dict; like :meth:`check_message` for the response half.

        Raises:
            MessageError: the response does not fit, or the service type is unknown.
        """
        return self.check_message(self.service_spec(type_name).response.type, data, field_prefix)

    # -- compiling ------------------------------------------------------------------------

    def _compile(self, type_name: str, using: tuple[str, ...] = ()) -> _Compiled:
        compiled = self._compiled.get(type_name)
        if compiled is not None:
            return compiled
        spec = self.message_spec(type_name)
        if spec.type in using:
            chain = " -> ".join((*using, spec.type))
            raise MessageError(f"message type {spec.type} contains itself: {chain}")
        parts: list[tuple[str, _Check, _Default]] = []
        for field in spec.fields:
            if field.is_primitive:
                check, default = (
                    _primitive_check(field.base_type),
                    _primitive_default(field.base_type),
                )
            else:
                try:
                    nested = self._compile(field.base_type, (*using, spec.type))
                except MessageError as exc:
                    raise MessageError(
                        f"{spec.type} field {field.name!r} cannot be used: {exc}"
                    ) from None
                check, default = nested.check, nested.default
            if field.is_array:
                check, default = _array_check(field, check), _array_default(field, default)
            parts.append((field.name, check, default))
        compiled = _Compiled(_message_check(spec, parts), _message_default(parts))
        self._compiled[type_name] = compiled
        self._compiled[spec.type] = compiled
        return compiled


def _builtin_registry() -> TypeRegistry:
    from pyros._message_definitions import (
        ACTION_DEFINITIONS,
        MESSAGE_DEFINITIONS,
        SERVICE_DEFINITIONS,
    )

    return TypeRegistry(MESSAGE_DEFINITIONS, SERVICE_DEFINITIONS, ACTION_DEFINITIONS)


REGISTRY: TypeRegistry = _builtin_registry()
"""The built-in types of :mod:`pyros._message_definitions`; the module functions below use it.

Register further types with ``REGISTRY.register_message(...)`` / ``register_service(...)``.
"""


def message_spec(type_name: str) -> MessageSpec:
    """Return a message type's definition from :data:`REGISTRY`.

    Raises:
        MessageError: unknown type.
    """
    return REGISTRY.message_spec(type_name)


def service_spec(type_name: str) -> ServiceSpec:
    """Return a service type's definition from :data:`REGISTRY`.

    Raises:
        MessageError: unknown type.
    """
    return REGISTRY.service_spec(type_name)


def message_fields(type_name: str) -> tuple[Field, ...]:
    """Return a message type's fields in declaration order (see :class:`Field`).

    Raises:
        MessageError: unknown type.
    """
    return REGISTRY.message_fields(type_name)


def is_message_type(type_name: str) -> bool:
    """Return True if :data:`REGISTRY` defines the message type ``type_name``."""
    return REGISTRY.is_message_type(type_name)


def is_service_type(type_name: str) -> bool:
    """Return True if :data:`REGISTRY` defines the service type ``type_name``."""
    return REGISTRY.is_service_type(type_name)


def default_message(type_name: str) -> dict[str, Any]:
    """Return a new dict of ``type_name`` with every field at its ROS default.

    See :meth:`TypeRegistry.default_message`.

    Raises:
        MessageError: unknown type.
    """
    return REGISTRY.default_message(type_name)


def check_message(type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
    """Check ``data`` against ``type_name`` and return it complete and normalised.

    See :meth:`TypeRegistry.check_message`, e.g.
    ``check_message("geometry_msgs/Twist", {"linear": {"x": 1}})`` returns
    ``{"linear": {"x": 1.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}``.

    Raises:
        MessageError: with ``field`` the dotted path of the bad field.
    """
    return REGISTRY.check_message(type_name, data, field_prefix)


def default_request(type_name: str) -> dict[str, Any]:
    """Return a default request of service ``type_name``.

    Raises:
        MessageError: unknown service type.
    """
    return REGISTRY.default_request(type_name)


def default_response(type_name: str) -> dict[str, Any]:
    """Return a default response of service ``type_name``.

    Raises:
        MessageError: unknown service type.
    """
    return REGISTRY.default_response(type_name)


def check_request(type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
    """Check a request of service ``type_name``; see :meth:`TypeRegistry.check_message`.

    Raises:
        MessageError: with ``field`` the dotted path of the bad field.
    """
    return REGISTRY.check_request(type_name, data, field_prefix)


def check_response(type_name: str, data: Any, field_prefix: str = "") -> dict[str, Any]:
    """Check a response of service ``type_name``; see :meth:`TypeRegistry.check_message`.

    Raises:
        MessageError: with ``field`` the dotted path of the bad field.
    """
    return REGISTRY.check_response(type_name, data, field_prefix)


_PARAM_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def check_param_value(value: Any, name: str) -> Any:
    """Check a value for the ROS 1 parameter server and return a copy of it.

    The server speaks XML-RPC (http://wiki.ros.org/Parameter%20Server), so a value is a bool,
    an int that fits in 32 bits (XML-RPC ``i4``), a float, a str, bytes (``base64``), a list
    of values (mixed types allowed) or a dict of values whose keys are ROS name tokens (a
    namespace). None is nowhere allowed. The mock backend applies the same rules, so what
    works on the mock works on ROS 1.

    Args:
        value: the value to store.
        name: the parameter's name, for errors.

    Returns:
        A deep copy (tuples become lists, bytearrays bytes).

    Raises:
        MessageError: something the server cannot hold; ``field`` names where (``"a.b[2]"``).
    """
    return _param_copy(value, name, "")


def _param_copy(value: Any, name: str, path: str) -> Any:
    where = path or "(value)"
    if value is None:
        raise MessageError(
            f"parameter {name}: {where} is None, which the parameter server cannot hold",
            field=path or None,
        )
    if isinstance(value, bool) or isinstance(value, (float, str, bytes)):
        return value
    if isinstance(value, int):
        low, high = INT_RANGES["int32"]
        if not low <= value <= high:
            raise MessageError(
                f"parameter {name}: {where} = {value} does not fit in 32 bits (the ROS 1 "
                "parameter server's XML-RPC int); store it as a float or a string",
                field=path or None,
            )
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_param_copy(item, name, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        copied = {}
        for key, item in value.items():
            if not isinstance(key, str) or not _PARAM_KEY.match(key):
                raise MessageError(
                    f"parameter {name}: key {key!r} is not a valid ROS name token "
                    "(a letter, then letters, digits and '_')",
                    field=path or None,
                )
            copied[key] = _param_copy(item, name, f"{path}.{key}" if path else key)
        return copied
    raise MessageError(
        f"parameter {name}: {where} is a {type(value).__name__}, not plain data",
        field=path or None,
    )
