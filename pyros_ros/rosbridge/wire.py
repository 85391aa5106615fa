"""rosbridge v2 messages for the ``rosbridge`` backend, with no I/O.

Message shapes come from the rosbridge v2 protocol specification (``ROSBRIDGE_PROTOCOL.md`` in
RobotWebTools/rosbridge_suite): ``advertise``/``publish``/``subscribe``/``unsubscribe``
(3.2.1-3.2.5), ``call_service``/``service_response`` (3.2.8-3.2.9), ``send_action_goal``/
``cancel_action_goal``/``action_feedback``/``action_result`` (3.2.12-3.2.15), ``status``, and
the CBOR encoding of 3.1.3 (a subscriber asking for ``compression: "cbor"`` gets binary frames
in which ``uint8[]`` is a byte string and numeric arrays may be RFC 8746 typed arrays).

Data rules, from section 4.6 of the specification: ``uint8[]``/``char[]`` travel as base64
strings in JSON (pyros's ``bytes`` are encoded on the way out); in CBOR frames they are byte
strings, which pyros hands over as ``bytes`` unchanged. A JSON frame carries no type
information, so a base64 string received in JSON (service responses, action results, topics on
a server without CBOR) stays a string.

ROS 2 parameters are read and written through each node's own parameter services
(``/<node>/get_parameters``, ``rcl_interfaces/srv/GetParameters``, and ``set_parameters``,
ROS 2 design "Parameters", https://design.ros2.org/articles/ros_parameters.html), whose
``ParameterValue`` is converted by :func:`parameter_value` and :func:`to_parameter_value`.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from collections.abc import Mapping
from typing import Any

from pyros._rosbridge_wire import GOAL_STATUS_NAMES
from pyros.backends.base import GOAL_STATUSES
from pyros.exceptions import MessageError, ProtocolError

__all__ = [
    "GOAL_STATUS_BY_CODE",
    "encode_json",
    "encode_cbor",
    "decode",
    "to_wire",
    "goal_status",
    "parameter_value",
    "to_parameter_value",
    "split_param_name",
    "ros2_type",
    "status_field",
]

GOAL_STATUS_BY_CODE = {
    code: "aborted" if name == "unknown" else name  # STATUS_UNKNOWN: the server lost the goal
    for code, name in GOAL_STATUS_NAMES.items()
}
"""``action_msgs/msg/GoalStatus`` codes (rosbridge 3.2.15 ``status``) -> pyros goal states."""

assert set(GOAL_STATUS_BY_CODE.values()) <= set(GOAL_STATUSES)

# RFC 8746 typed arrays: tag -> (struct format character, big endian?). Tag 68 (clamped uint8)
# is bytes-like; 64 (uint8) stays bytes, as ``uint8[]`` is ``bytes`` in pyros.
_TYPED_ARRAYS: dict[int, tuple[str, bool]] = {
    65: ("H", True),
    66: ("I", True),
    67: ("Q", True),
    69: ("H", False),
    70: ("I", False),
    71: ("Q", False),
    72: ("b", False),
    73: ("h", True),
    74: ("i", True),
    75: ("q", True),
    77: ("h", False),
    78: ("i", False),
    79: ("q", False),
    80: ("e", True),
    81: ("f", True),
    82: ("d", True),
    84: ("e", False),
    85: ("f", False),
    86: ("d", False),
}
_LITTLE = sys.byteorder == "little"


def encode_json(message: Mapping[str, Any]) -> str:
    """Return a rosbridge message as a compact JSON text frame; ``bytes`` become base64.

    Raises:
        MessageError: a value is not JSON data (names its Python type).
    """
    try:
        return json.dumps(message, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError) as exc:
        raise MessageError(f"message cannot be sent as JSON: {exc}") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def encode_cbor(message: Mapping[str, Any]) -> bytes:
    """Return a rosbridge message as a binary CBOR frame (``bytes`` stay byte strings).

    Raises:
        MessageError: a value cannot be encoded.
    """
    import cbor2

    try:
        return bytes(cbor2.dumps(message))
    except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
        raise MessageError(f"message cannot be sent as CBOR: {exc}") from exc


def _tag_hook(first: Any, second: Any) -> Any:
    # cbor2 >= 6 calls tag_hook(tag, immutable); cbor2 5 called tag_hook(decoder, tag).
    import cbor2

    tag = first if isinstance(first, cbor2.CBORTag) else second
    spec = _TYPED_ARRAYS.get(tag.tag)
    if spec is None:
        if tag.tag in (64, 68) and isinstance(tag.value, bytes):
            return tag.value
        return tag
    fmt, big = spec
    data = tag.value
    if not isinstance(data, bytes):
        return tag
    size = struct.calcsize(fmt)
    if len(data) % size:
        raise ProtocolError(f"CBOR typed array tag {tag.tag}: {len(data)} bytes")
    if big == (not _LITTLE) and fmt != "e":
        return memoryview(data).cast(fmt).tolist()  # type: ignore[call-overload]
    order = ">" if big else "<"
    return list(struct.unpack(f"{order}{len(data) // size}{fmt}", data))


def decode(frame: str | bytes) -> dict[str, Any]:
    """Decode one frame from the server: JSON text, or CBOR binary (rosbridge 3.1.3).

    Returns:
        The message, a dict with a string ``op``.

    Raises:
        ProtocolError: not JSON/CBOR, not an object, or no ``op`` (the message quotes the
            start of the frame).
    """
    try:
        if isinstance(frame, str):
            message = json.loads(frame)
        else:
            import cbor2

            message = cbor2.loads(frame, tag_hook=_tag_hook)
    except Exception as exc:  # json and cbor2 raise several types; all mean "not a message"
        raise ProtocolError(
            f"the rosbridge server sent an undecodable frame ({exc}): {frame[:80]!r}"
        ) from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError(f"the rosbridge server sent a frame with no 'op': {frame[:80]!r}")
    return message


def to_wire(value: Any) -> Any:
    """Return ``value`` with every ``bytes`` as base64 text (for a JSON frame built later).

    Only needed where a message is inspected before encoding; :func:`encode_json` does it too.
    """
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    return value


def goal_status(message: Mapping[str, Any]) -> tuple[str, str]:
    """Return ``(pyros goal status, text)`` of an ``action_result`` (rosbridge 3.2.15).

    A failed result whose ``values`` is text (rosbridge-server-rs sends ``"goal rejected"``
    with status 6 for a goal the server refused) is ``"rejected"`` when the text says so.
    """
    code = message.get("status")
    values = message.get("values")
    text = values if isinstance(values, str) else ""
    if message.get("result") is True and code in (None, 4):
        return "succeeded", ""
    if isinstance(code, bool) or not isinstance(code, int):
        return ("succeeded", "") if message.get("result") else ("aborted", text)
    if text and "reject" in text.lower():
        return "rejected", text
    return GOAL_STATUS_BY_CODE.get(code, "aborted"), text


_PARAM_FIELDS = {
    1: "bool_value",
    2: "integer_value",
    3: "double_value",
    4: "string_value",
    5: "byte_array_value",
    6: "bool_array_value",
    7: "integer_array_value",
    8: "double_array_value",
    9: "string_array_value",
}
"""``rcl_interfaces/msg/ParameterType`` codes -> the ``ParameterValue`` field holding the value."""


def parameter_value(value: Mapping[str, Any]) -> Any:
    """Return the Python value of an ``rcl_interfaces/msg/ParameterValue`` dict.

    Raises:
        KeyError: the value is ``PARAMETER_NOT_SET`` (type 0).
        ProtocolError: an unknown type code.
    """
    code = value.get("type")
    if code == 0:
        raise KeyError("not set")
    field = _PARAM_FIELDS.get(code) if isinstance(code, int) else None
    if field is None:
        raise ProtocolError(f"unknown ROS 2 parameter type {code!r}")
    result = value.get(field)
    if code == 5 and isinstance(result, str):
        return base64.b64decode(result)
    if code == 5 and isinstance(result, list):
        return bytes(result)
    return result


def to_parameter_value(name: str, value: Any) -> dict[str, Any]:
    """Return an ``rcl_interfaces/msg/ParameterValue`` dict holding ``value``.

    Raises:
        MessageError: ROS 2 parameters cannot hold this value (None, dicts, mixed lists).
    """
    if isinstance(value, bool):
        return {"type": 1, "bool_value": value}
    if isinstance(value, int):
        return {"type": 2, "integer_value": value}
    if isinstance(value, float):
        return {"type": 3, "double_value": value}
    if isinstance(value, str):
        return {"type": 4, "string_value": value}
    if isinstance(value, (bytes, bytearray)):
        return {"type": 5, "byte_array_value": list(value)}
    if isinstance(value, (list, tuple)):
        items = list(value)
        for code, kind in ((6, bool), (7, int), (8, float), (9, str)):
            if items and all(type(item) is kind for item in items):
                return {"type": code, _PARAM_FIELDS[code]: items}
        if items and all(
            isinstance(item, (int, float)) and not isinstance(item, bool) for item in items
        ):
            return {"type": 8, "double_array_value": [float(item) for item in items]}
    raise MessageError(
        f"parameter {name}: a ROS 2 parameter holds a bool, int, float, str, bytes or a "
        f"list of one of those, not {value!r:.60}"
    )


def split_param_name(name: str) -> tuple[str, str]:
    """Split a ROS 2 parameter name ``/node:param`` into ``("/node", "param")``.

    Raises:
        MessageError: no ``:`` (ROS 2 parameters belong to a node).
    """
    node, sep, param = name.partition(":")
    if not sep or not node or not param:
        raise MessageError(
            f"parameter {name!r}: ROS 2 parameters are named '<node>:<param>', "
            "e.g. '/talker:gains.p'"
        )
    if not node.startswith("/"):
        node = "/" + node
    return node, param


def ros2_type(type_name: str, kind: str) -> str:
    """Return ``pkg/<kind>/Type`` for ``pkg/Type`` or ``pkg/<kind>/Type`` (ROS 2 spelling)."""
    parts = type_name.split("/")
    if len(parts) == 2:
        return f"{parts[0]}/{kind}/{parts[1]}"
    return type_name


def status_field(text: str) -> str | None:
    """Guess the field a server's ``status`` error names, for :class:`MessageError`.

    rosbridge-server-rs says ``"field std_msgs/msg/String.data"`` or ``"... has no field
    datum"``; rosbridge_suite says ``"... has no field 'x'"``. None when no field is named.
    """
    if "has no field " in text:
        return text.rsplit("has no field ", 1)[1].strip(" '\"")
    if text.startswith("field "):
        path = text[len("field ") :].split()[0]
        # "std_msgs/msg/String.data" -> "data"; nested "pkg/msg/A.b.c" -> "b.c"
        head, _, rest = path.partition(".")
        return rest or None
    return None
