"""Forms generated from ROS message types: the fields to show, and typed values from text.

No I/O and no UI library: the dashboard's pages (:mod:`pyros.dashboard.app`) draw one input per
:class:`FormField` and hand the texts back to :func:`build_message`, which either returns the
complete message or says, per field, what is wrong, so that nothing is sent while any field is
malformed.

Definitions come from pyros's type registry (:data:`pyros.message_types.REGISTRY`: the
``.msg``/``.srv`` texts of :mod:`pyros._message_definitions`). Nested messages are flattened
into dotted paths (``linear.x``); arrays other than ``uint8[]`` are typed as JSON lists; a type
the registry does not know is edited as one JSON object (:data:`JSON_FIELD`). Whole messages
are checked with :func:`pyros.message_types.check_message`, so the rules (integer ranges,
field names) are those of the ROS message description spec (http://wiki.ros.org/msg).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyros.exceptions import MessageError
from pyros.message_types import (
    FLOAT_TYPES,
    INT_RANGES,
    REGISTRY,
    MessageSpec,
    TypeRegistry,
)

__all__ = [
    "JSON_FIELD",
    "FormField",
    "FieldError",
    "message_form",
    "service_form",
    "parse_field",
    "build_message",
    "format_default",
    "twist",
    "joystick_twist",
    "KEY_TWISTS",
]

JSON_FIELD = ""
"""The path of the single JSON field of a form for a type the registry does not know."""

_MAX_DEPTH = 8  # nested message levels flattened into fields (deeper ones are JSON)


@dataclass(frozen=True)
class FormField:
    """One input of a generated form.

    Attributes:
        path: the dotted path of the field in the message (``"linear.x"``), or
            :data:`JSON_FIELD` for a whole-message JSON editor.
        kind: how the text is read: ``"float"``, ``"int"``, ``"bool"`` (``true``/``false``),
            ``"string"``, ``"time"`` (seconds as a decimal number, for ``time`` and
            ``duration``), ``"bytes"`` (base64, for ``uint8[]``) or ``"json"`` (arrays and
            unknown types).
        ros_type: the field's ROS type (``"float64"``, ``"int32[]"``), or the message type for
            a JSON field.
        default: the text the input starts with (the ROS default value).
    """

    path: str
    kind: str
    ros_type: str
    default: str


class FieldError(ValueError):
    """A field's text cannot be read as its type; the message says why, for the user."""


def _kind(ros_type: str, base: str, is_array: bool) -> str:
    if is_array:
        return "bytes" if base in ("uint8", "char", "octet") else "json"
    if base in FLOAT_TYPES:
        return "float"
    if base in INT_RANGES:
        return "int"
    if base in ("bool", "boolean"):
        return "bool"
    if base in ("string", "wstring"):
        return "string"
    if base in ("time", "duration"):
        return "time"
    return "json"


def format_default(kind: str, value: Any) -> str:
    """Return the text an input of ``kind`` shows for ``value`` (a ROS default value).

    Args:
        kind: a :attr:`FormField.kind`.
        value: a value as pyros messages hold it (``bytes`` for ``uint8[]``, ``{"secs",
            "nsecs"}`` for time).
    """
    if kind == "bool":
        return "true" if value else "false"
    if kind == "time" and isinstance(value, Mapping):
        return f"{int(value.get('secs', 0)) + int(value.get('nsecs', 0)) / 1e9:g}"
    if kind == "bytes" and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "json":
        return json.dumps(_jsonable(value))
    if kind == "float":
        return repr(float(value))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _fields(
    spec: MessageSpec, defaults: Mapping[str, Any], registry: TypeRegistry, prefix: str, depth: int
) -> list[FormField]:
    found: list[FormField] = []
    for field in spec.fields:
        path = f"{prefix}{field.name}"
        default = defaults.get(field.name)
        if not field.is_primitive and not field.is_array and depth < _MAX_DEPTH:
            nested = registry.message_spec(field.base_type)
            found.extend(
                _fields(nested, default or {}, registry, f"{path}.", depth + 1),
            )
            continue
        kind = _kind(field.type, field.base_type, field.is_array)
        found.append(FormField(path, kind, field.type, format_default(kind, default)))
    return found


def message_form(type_name: str, registry: TypeRegistry = REGISTRY) -> list[FormField]:
    """Return the inputs of a form for one message of ``type_name``.

    Args:
        type_name: ``pkg/Type`` or ``pkg/msg/Type``.
        registry: where definitions come from.

    Returns:
        One field per primitive leaf (nested messages flattened), in declaration order; for a
        type the registry does not know (or a malformed name), one :data:`JSON_FIELD` field
        whose default is ``{}``. An empty list for a message without fields
        (``std_msgs/Empty``).
    """
    try:
        spec = registry.message_spec(type_name)
        defaults = registry.default_message(type_name)
    except MessageError:
        return [FormField(JSON_FIELD, "json", type_name, "{}")]
    return _fields(spec, defaults, registry, "", 0)


def service_form(type_name: str, registry: TypeRegistry = REGISTRY) -> list[FormField]:
    """Return the inputs of a form for the request of service type ``type_name``.

    Args:
        type_name: ``pkg/Type`` or ``pkg/srv/Type``.
        registry: where definitions come from.

    Returns:
        As :func:`message_form`, for the request part (``pkg/TypeRequest``).
    """
    try:
        request = registry.service_spec(type_name).request
    except MessageError:
        return [FormField(JSON_FIELD, "json", type_name, "{}")]
    return message_form(request.type, registry)


def parse_field(field: FormField, text: str) -> Any:
    """Read one input's text as the value of its field.

    Args:
        field: the field.
        text: what the user typed.

    Returns:
        The value as a pyros message holds it (``float``, ``int``, ``bool``, ``str``,
        ``{"secs", "nsecs"}``, ``bytes``, or parsed JSON).

    Raises:
        FieldError: the text is not a value of that kind (the message names the kind).
    """
    text = text if isinstance(text, str) else str(text)
    stripped = text.strip()
    if field.kind == "string":
        return text
    if field.kind == "float":
        try:
            value = float(stripped)
        except ValueError:
            raise FieldError(f"not a number: {stripped!r}") from None
        return value
    if field.kind == "int":
        try:
            value = (
                int(stripped, 0) if stripped[:2].lower() in ("0x", "0b", "0o") else int(stripped)
            )
        except ValueError:
            raise FieldError(f"not an integer: {stripped!r}") from None
        low, high = INT_RANGES[field.ros_type.split("[", 1)[0]]
        if not low <= value <= high:
            raise FieldError(f"out of range for {field.ros_type}: {low}..{high}")
        return value
    if field.kind == "bool":
        if stripped.lower() in ("true", "1", "yes", "on"):
            return True
        if stripped.lower() in ("false", "0", "no", "off", ""):
            return False
        raise FieldError(f"not true or false: {stripped!r}")
    if field.kind == "time":
        try:
            seconds = float(stripped)
        except ValueError:
            raise FieldError(f"not a number of seconds: {stripped!r}") from None
        if not math.isfinite(seconds):
            raise FieldError("not a finite number of seconds")
        secs = math.floor(seconds)
        return {"secs": secs, "nsecs": int(round((seconds - secs) * 1e9)) % 1_000_000_000}
    if field.kind == "bytes":
        try:
            return base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            raise FieldError("not base64 data") from None
    try:
        value = json.loads(stripped or "null")
    except ValueError as exc:
        raise FieldError(f"not JSON: {exc}") from None
    if field.path == JSON_FIELD and not isinstance(value, dict):
        raise FieldError('must be a JSON object: {"field": value, ...}')
    if field.path != JSON_FIELD and "[" in field.ros_type and not isinstance(value, list):
        raise FieldError("must be a JSON list: [1, 2, 3]")
    return value


def _put(message: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = message
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def build_message(
    type_name: str,
    fields: list[FormField],
    texts: Mapping[str, str],
    registry: TypeRegistry = REGISTRY,
    *,
    service: bool = False,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Turn a form's texts into a checked message, or say which fields are wrong.

    Args:
        type_name: the message type (or, with ``service``, the service type).
        fields: the form's fields (:func:`message_form` or :func:`service_form`).
        texts: path -> the text typed in that field; a missing path takes the default.
        registry: where definitions come from.
        service: ``type_name`` is a service type and the form is its request.

    Returns:
        ``(message, {})`` when every field reads and the whole message passes
        :func:`pyros.message_types.check_message` (for a type the registry does not know, any
        JSON object passes), else ``(None, {path: error})``: each malformed field, or the
        field the type check names (:data:`JSON_FIELD` when it names none).
    """
    errors: dict[str, str] = {}
    message: dict[str, Any] = {}
    for field in fields:
        text = texts.get(field.path, field.default)
        try:
            value = parse_field(field, text)
        except FieldError as exc:
            errors[field.path] = str(exc)
            continue
        if field.path == JSON_FIELD:
            message = dict(value)
        else:
            _put(message, field.path, value)
    if errors:
        return None, errors
    if len(fields) == 1 and fields[0].path == JSON_FIELD:
        return message, {}  # a type pyros does not know: the robot's node checks it
    try:
        if service:
            registry.check_request(type_name, message)
        else:
            registry.check_message(type_name, message)
    except MessageError as exc:
        path = exc.field or JSON_FIELD
        known = {field.path for field in fields}
        while path not in known and "." in path:
            path = path.rsplit(".", 1)[0]
        return None, {path if path in known else JSON_FIELD: str(exc)}
    return message, {}


def twist(linear_x: float = 0.0, angular_z: float = 0.0) -> dict[str, Any]:
    """Return a geometry_msgs/Twist: ``linear_x`` in m/s forward, ``angular_z`` in rad/s
    counter-clockwise (REP 103 axes), every other component 0."""
    return {
        "linear": {"x": float(linear_x), "y": 0.0, "z": 0.0},
        "angular": {"x": 0.0, "y": 0.0, "z": float(angular_z)},
    }


def joystick_twist(x: float, y: float, max_linear: float, max_angular: float) -> dict[str, Any]:
    """Return the Twist of a joystick position.

    Args:
        x: right (-1..1, nipple.js vector; 1 is full right).
        y: up (-1..1; 1 is full forward).
        max_linear: m/s at full forward.
        max_angular: rad/s at full left (turning left is positive about z, REP 103).
    """
    x = max(-1.0, min(1.0, x))
    y = max(-1.0, min(1.0, y))
    return twist(y * max_linear, -x * max_angular)


KEY_TWISTS: dict[str, tuple[float, float]] = {
    "ArrowUp": (1.0, 0.0),
    "ArrowDown": (-1.0, 0.0),
    "ArrowLeft": (0.0, 1.0),
    "ArrowRight": (0.0, -1.0),
}
"""Arrow key -> (fraction of the top linear speed, fraction of the top angular speed)."""
