"""The operator side of the relay: rosbridge v2 messages, checked and built, with no I/O.

Message shapes come from the rosbridge v2 protocol specification (``ROSBRIDGE_PROTOCOL.md`` in
RobotWebTools/rosbridge_suite) and from what roslibpy and roslibjs really send: roslibpy's
``Topic.subscribe`` sends ``{"op": "subscribe", "id": "subscribe:/t:1", "type", "topic",
"compression": "none", "throttle_rate": 0, "queue_length": 0}``, ``Topic.publish`` sends an
``advertise`` first, ``Service.call`` sends ``{"op": "call_service", "id", "service", "args"}``
and waits for a ``service_response`` with that id, and ``Ros.get_topics()`` and friends are
``call_service`` requests to ``/rosapi/...`` services (answered by :func:`rosapi_response`).

Operator ops accepted by :func:`decode_operator`: ``auth`` (this relay's extension for browsers:
``{"op": "auth", "token": "..."}``), ``advertise``, ``unadvertise``, ``publish``, ``subscribe``,
``unsubscribe``, ``call_service``, ``set_level`` (``error``/``warning``/``info``/``none``, as in
earlier versions of the specification) and ``status`` (accepted and ignored). Ids may be strings
or integers (the specification allows both) and are echoed as given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pyros.cloud.auth import valid_device_id
from pyros.exceptions import ProtocolError
from pyros.names import is_valid

__all__ = [
    "OPERATOR_OPS",
    "UNSUPPORTED_OPS",
    "STATUS_LEVELS",
    "ROSAPI_SERVICES",
    "OperatorProtocolError",
    "decode_operator",
    "encode",
    "publish",
    "status",
    "service_response",
    "level_allows",
    "rosapi_response",
]

OPERATOR_OPS = frozenset(
    {
        "auth",
        "advertise",
        "unadvertise",
        "publish",
        "subscribe",
        "unsubscribe",
        "call_service",
        "set_level",
        "status",
    }
)
"""Ops an operator may send."""

UNSUPPORTED_OPS = frozenset(
    {
        "service_response",
        "advertise_service",
        "unadvertise_service",
        "send_action_goal",
        "cancel_action_goal",
        "advertise_action",
        "unadvertise_action",
        "action_feedback",
        "action_result",
        "fragment",
        "png",
    }
)
"""rosbridge v2 ops the relay knows but does not offer to operators (a status error says so)."""

STATUS_LEVELS = ("info", "warning", "error", "none")
"""``set_level`` levels, most verbose first; a status is sent when its level is at or above the
operator's level (default ``warning``: drop warnings and errors)."""

ROSAPI_SERVICES = {
    "/rosapi/topics": "rosapi/Topics",
    "/rosapi/topic_type": "rosapi/TopicType",
    "/rosapi/topics_for_type": "rosapi/TopicsForType",
    "/rosapi/services": "rosapi/Services",
    "/rosapi/service_type": "rosapi/ServiceType",
    "/rosapi/nodes": "rosapi/Nodes",
    "/rosapi/get_time": "rosapi/GetTime",
}
"""The rosapi listing services the relay answers itself (name -> type)."""


_MAX_COUNT = 1 << 31
"""Largest ``throttle_rate`` (ms) or ``queue_length`` accepted (NaN and infinities never are)."""


def _valid_name(name: str) -> bool:
    """A ROS name whose first component may also be a device id (``/robot-1.a/turtle1/pose``)."""
    if name != "/" and is_valid(name):
        return True
    device, slash, rest = name[1:].partition("/")
    return bool(slash) and valid_device_id(device) and is_valid("/" + rest) and rest != ""


class OperatorProtocolError(ProtocolError):
    """An operator frame is not JSON, not an object, has an unknown op or a wrong field.

    Attributes:
        id: the message's ``id`` (string or integer) when it had one, else None.
        op: the message's ``op`` when it was a string, else None.
    """

    def __init__(self, message: str, *, id: Any = None, op: str | None = None) -> None:
        super().__init__(message)
        self.id = id
        self.op = op


def encode(message: Mapping[str, Any]) -> str:
    """Return ``message`` as a compact JSON text frame."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def publish(topic: str, msg: Any) -> dict[str, Any]:
    """Return the ``publish`` the relay sends to a subscriber (rosbridge 3.2.3)."""
    return {"op": "publish", "topic": topic, "msg": msg}


def status(level: str, msg: str, id: Any = None) -> dict[str, Any]:
    """Return a ``status`` message: ``{"op": "status", "level", "msg", "id"?}``."""
    message: dict[str, Any] = {"op": "status", "level": level, "msg": msg}
    if id is not None:
        message["id"] = id
    return message


def service_response(id: Any, service: str, values: Any, result: bool) -> dict[str, Any]:
    """Return a ``service_response`` (rosbridge 3.2.9).

    Args:
        id: the operator's call id (omitted when None).
        service: the service name as the operator called it.
        values: the response dict, or the error text when ``result`` is false (what roslibpy
            hands to its errback).
        result: whether the call succeeded.
    """
    message: dict[str, Any] = {"op": "service_response", "service": service}
    if id is not None:
        message["id"] = id
    message["values"] = values
    message["result"] = result
    return message


def level_allows(current: str, level: str) -> bool:
    """Return whether a status of ``level`` passes an operator's ``set_level`` ``current``."""
    try:
        return STATUS_LEVELS.index(level) >= STATUS_LEVELS.index(current) and current != "none"
    except ValueError:
        return True


class _Fields:
    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        raw_id = message.get("id")
        self.id = (
            raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else None
        )
        raw_op = message.get("op")
        self.op = raw_op if isinstance(raw_op, str) else None

    def fail(self, text: str) -> OperatorProtocolError:
        return OperatorProtocolError(text, id=self.id, op=self.op)

    def string(self, name: str, required: bool = True) -> str | None:
        value = self.message.get(name)
        if value is None:
            if required:
                raise self.fail(f"{self.op}: missing field {name!r}")
            return None
        if not isinstance(value, str):
            raise self.fail(f"{self.op}: field {name!r} must be a string")
        return value

    def ros_name(self, name: str) -> str:
        value = self.string(name)
        assert value is not None
        if not value.startswith("/"):
            value = "/" + value  # rosbridge resolves relative names against the root
        if not _valid_name(value):
            shown = value if len(value) <= 200 else value[:200] + "..."
            raise self.fail(
                f"{self.op}: {name} {shown!r} is not a valid ROS name (tokens of letters, "
                "digits and '_' starting with a letter, separated by '/')"
            )
        return value

    def count(self, name: str) -> int:
        value = self.message.get(name, 0)
        if value is None:
            return 0
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 <= value <= _MAX_COUNT
        ):
            raise self.fail(
                f"{self.op}: field {name!r} must be a finite number from 0 to {_MAX_COUNT}"
            )
        return int(value)


def decode_operator(frame: str | bytes) -> dict[str, Any]:
    """Decode and check one frame an operator sent.

    Args:
        frame: the received websocket frame; binary frames are refused (rosbridge's CBOR is a
            server-to-client encoding only).

    Returns:
        The message with its fields checked and normalised: names get a leading ``/``;
        ``subscribe`` has int ``throttle_rate`` and ``queue_length``; ``call_service`` has
        ``args`` as a dict (an empty list, allowed by the specification, becomes ``{}``) and
        ``timeout`` as float seconds or None.

    Raises:
        OperatorProtocolError: binary frame, bad JSON, not an object, unknown or unsupported op,
            or a missing or wrongly typed field.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise OperatorProtocolError("binary frames are not accepted: send JSON in a text frame")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise OperatorProtocolError(f"bad JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise OperatorProtocolError("a rosbridge message must be a JSON object with an 'op'")
    fields = _Fields(message)
    if fields.op is None:
        raise fields.fail("missing or non-string field 'op'")
    op = fields.op
    if op in UNSUPPORTED_OPS:
        raise fields.fail(f"op {op!r} is not supported by the pyros relay")
    if op not in OPERATOR_OPS:
        raise fields.fail(f"unknown op {op!r}")
    out: dict[str, Any] = {"op": op, "id": fields.id}
    if op == "auth":
        out["token"] = fields.string("token")
    elif op in ("advertise", "unadvertise"):
        out["topic"] = fields.ros_name("topic")
        out["type"] = fields.string("type", required=op == "advertise")
    elif op == "publish":
        out["topic"] = fields.ros_name("topic")
        msg = message.get("msg", {})
        if not isinstance(msg, dict):
            raise fields.fail("publish: field 'msg' must be an object")
        out["msg"] = msg
    elif op == "subscribe":
        out["topic"] = fields.ros_name("topic")
        out["type"] = fields.string("type", required=False) or None
        out["throttle_rate"] = fields.count("throttle_rate")
        out["queue_length"] = fields.count("queue_length")
        compression = fields.string("compression", required=False) or "none"
        if compression != "none":
            raise fields.fail(f"subscribe: compression {compression!r} is not supported")
        out["compression"] = compression
    elif op == "unsubscribe":
        out["topic"] = fields.ros_name("topic")
    elif op == "call_service":
        out["service"] = fields.ros_name("service")
        args = message.get("args")
        if args is None or args == []:
            args = {}
        if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
            args = args[0]
        if not isinstance(args, dict):
            raise fields.fail("call_service: field 'args' must be an object")
        out["args"] = args
        timeout = message.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise fields.fail("call_service: field 'timeout' must be a number of seconds > 0")
        out["timeout"] = float(timeout) if timeout is not None else None
    elif op == "set_level":
        level = fields.string("level")
        if level not in STATUS_LEVELS:
            raise fields.fail(f"set_level: level must be one of {list(STATUS_LEVELS)}")
        out["level"] = level
    return out


def rosapi_response(
    service: str,
    args: Mapping[str, Any],
    topics: Mapping[str, str],
    services: Mapping[str, str],
    nodes: list[str],
    now: float | None = None,
) -> dict[str, Any]:
    """Answer one of :data:`ROSAPI_SERVICES` from the relay's view of the fleet.

    Response shapes are those of the rosapi package's services (``rosapi/Topics``: ``topics``
    and ``types`` lists in the same order, ``rosapi/TopicType``: ``type``, empty when unknown).

    Args:
        service: the rosapi service name (``/rosapi/topics``).
        args: the request.
        topics: every topic the operator may read, full name -> type.
        services: every service the operator may call, full name -> type (the rosapi services
            included).
        nodes: node names, one per online device (``/robot1``).
        now: wall-clock seconds for ``/rosapi/get_time``; None reads :func:`time.time`.

    Returns:
        The response values.

    Raises:
        KeyError: ``service`` is not one of :data:`ROSAPI_SERVICES`.
    """
    names = sorted(topics)
    if service == "/rosapi/topics":
        return {"topics": names, "types": [topics[name] for name in names]}
    if service == "/rosapi/topic_type":
        return {"type": topics.get(str(args.get("topic", "")), "")}
    if service == "/rosapi/topics_for_type":
        wanted = args.get("type")
        return {"topics": [name for name in names if topics[name] == wanted]}
    if service == "/rosapi/services":
        return {"services": sorted(services)}
    if service == "/rosapi/service_type":
        return {"type": services.get(str(args.get("service", "")), "")}
    if service == "/rosapi/nodes":
        return {"nodes": sorted(nodes)}
    if service == "/rosapi/get_time":
        stamp = time.time() if now is None else now
        secs = int(stamp)
        return {"time": {"secs": secs, "nsecs": int((stamp - secs) * 1e9)}}
    raise KeyError(service)
