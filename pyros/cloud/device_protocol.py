"""The device protocol: the wire format between a cloud connector and the relay, with no I/O.

This module imports no websockets and no asyncio and never reads a clock. It holds the
constants both sides share, plain-data constructors for every message, and two decoders that
turn one received text frame into a checked ``dict`` or raise :class:`DeviceProtocolError`:
:func:`decode_from_device` (used by the relay) and :func:`decode_from_relay` (used by the
connector). :func:`encode` turns a message dict into the text frame to send.

The agreed specification (the contract between the relay and the connector; changes must stay
backwards compatible) follows. Message shapes follow the rosbridge v2 protocol
(``ROSBRIDGE_PROTOCOL.md`` in RobotWebTools/rosbridge_suite) where one exists.

Transport: websocket (the ``websockets`` library, asyncio API ``websockets.asyncio.server`` /
``client``), one JSON object per text frame, UTF-8. Relay URL path ``/device`` for connectors;
``/`` for operators (rosbridge v2); plain HTTP ``GET /api/devices`` on the same port.

Message values are JSON: plain dicts shaped like the ROS message, with ``uint8[]`` as base64
strings (rosbridge v2 convention; pyros's node accepts base64 strings for ``uint8[]`` fields),
time/duration as ``{"secs", "nsecs"}``. The connector converts bytes to base64 before sending.

Authentication (device side):

* The connector sends HTTP headers on the websocket handshake: ``Authorization: Bearer <device
  token>`` and ``X-Pyros-Device: <device id>`` (also accepted: ``?device=<id>&token=<token>`` in
  the URL). See :func:`handshake_headers`.
* The relay checks the tokens file ``{"devices": {"robot1": "device-secret"}, "operators":
  {...}}``: the token must be the one of that device id (constant-time compare). Else the
  handshake is refused with HTTP 401 (unknown/bad token) or 403, so a device can never
  impersonate another id.
* Without ``--tokens`` the relay accepts only loopback peers (any device id) and says so at
  start.
* A second connection for a device id that is already online replaces the first (the old one
  is closed with code 4000 "replaced", :data:`REPLACED_CLOSE_CODE`): a reconnecting robot is
  never locked out by its own half-dead previous connection.

Connector -> relay:

* ``{"op": "hello", "device": "robot1", "session": "<uuid of this connector process>",
  "topics": {"/turtle1/pose": "turtlesim/Pose"}, "services": {"/reset": "std_srvs/Empty"},
  "commands": ["/turtle1/cmd_vel"], "dropped": {"/turtle1/pose": 12}, "version": 1}``:
  first message after each (re)connect. ``topics``: the forwarded topics (device-local names);
  ``services``: callable services; ``commands``: globs of topics operators may publish to;
  ``dropped``: messages dropped from the offline buffer since the last hello, per topic (exact
  counts). Re-sent (as a new hello) whenever the forwarded topic/service set changes.
  Optional (backwards-compatible additions): ``"command_topics": {"/turtle1/cmd_vel":
  "geometry_msgs/Twist"}`` (the existing topics that match ``commands``, with their types) and
  ``"actions": {"/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute"}`` (action
  servers operators may send goals to).
  ``"params": ["/turtlesim:background_r"]`` (parameters operators may read, device-local
  names) and ``"latest": ["/turtle1/pose"]`` (forwarded topics whose latest value a late
  subscriber gets at once: latched or transient-local topics and the connector's ``--latest``
  globs; other topics are events and are never replayed), and ``"definitions":
  {"geometry_msgs/Twist": "Vector3 linear\\nVector3 angular\\n", ...}`` (the ``.msg``/``.srv``/
  ``.action`` text of the exposed types and of the message types nested in them, for rosapi's
  message details).
* ``{"op": "action_feedback", "id": "<relay's goal id>", "feedback": {...}}`` and
  ``{"op": "action_result", "id": ..., "status": "succeeded"|"canceled"|"aborted"|"rejected",
  "result": {...} | null, "msg": "why, when it did not succeed"}``: the progress and the end of
  a goal the relay sent (``send_goal``); a goal the connector refuses ends at once with
  ``status: "rejected"``.
* ``{"op": "param_response", "id": ..., "result": true, "value": <value>}`` or ``"result":
  false, "value": "<error text>"``: the answer to a ``param`` request.
* ``{"op": "stats", "buffered": 12, "dropped": 3}`` (optional, about once a second): messages
  waiting in the connector's buffer and messages it dropped since it started (exact), shown in
  ``GET /api/devices``.
* ``{"op": "publish", "topic": "/turtle1/pose", "msg": {...}, "seq": 17}``: forwarded topic
  data. ``seq`` is a per-session counter starting at 1, strictly increasing, across reconnects.
* ``{"op": "service_response", "id": "<relay's call id>", "values": {...}, "result": true}``
  or with ``"result": false, "values": "<error text>"`` (rosbridge shape).
* ``{"op": "status", "level": "error"|"warning"|"info", "msg": "...", "id": "<related id?>"}``,
  e.g. a refused command ("topic /x is not a command topic of robot1").
* ``{"op": "subscribe", "topic": "/robot2/chat"}`` / ``{"op": "unsubscribe", ...}``:
  device-to-device broadcast (robot chat): ask the relay for another device's forwarded topic
  (full namespaced name); the relay then sends it ``publish`` frames for it (only if the tokens
  file allows; by default devices may read all devices).

Relay -> connector:

* ``{"op": "welcome", "device": "robot1", "resume_after": <last seq this relay accepted for this
  session, or 0>}`` after hello. The connector drops from its buffer everything with seq <=
  resume_after and (re)sends the rest, in order.
* ``{"op": "ack", "seq": 120}``: cumulative, everything up to 120 is accepted (sent at least
  every :data:`ACK_INTERVAL` seconds while messages flow, or every :data:`ACK_EVERY`
  messages). The connector keeps unacked messages in its bounded buffer and re-sends them after
  a reconnect, so nothing accepted is lost and (the relay drops seq <= last accepted for the
  session) nothing arrives twice.
* ``{"op": "publish", "topic": "/turtle1/cmd_vel", "msg": {...}, "id": "..."}``: a command from
  an operator (device-local name). The connector publishes it only if the topic matches its
  ``--commands`` globs, else replies with a ``status`` error (id echoed). Also used for
  device-to-device broadcast data (then ``topic`` is the full ``/robot2/chat`` name).
* ``{"op": "call_service", "id": "c42", "service": "/reset", "args": {...}}``: the connector
  calls it only if it matches its ``--services`` globs and answers ``service_response`` with the
  same id; refusal or failure -> ``service_response`` with ``result: false`` and the error text.
* ``{"op": "send_goal", "id": "g...", "action": "/turtle1/rotate_absolute", "type":
  "turtlesim/action/RotateAbsolute" | null, "goal": {...}, "feedback": true}``: an operator's
  goal (rosbridge ``send_action_goal``); the connector starts it only if the action matches its
  ``--actions`` globs and reports ``action_feedback`` (when ``feedback``) and one
  ``action_result``. ``{"op": "cancel_goal", "id": "g..."}`` cancels it (the result follows).
* ``{"op": "param", "id": "q...", "action": "get"|"set"|"delete", "name": "/run_id", "value":
  ...}``: read or change a parameter on the robot (``value`` only for ``set``); answered by
  ``param_response``.
* ``{"op": "status", "level": "error", "msg": "...", "id": ...}``: errors about what the device
  sent (bad JSON, unknown op, oversize frame, rate limit); the connection stays open.

Relay <-> operators: rosbridge v2 at ``/`` (see :mod:`pyros.cloud.relay`).

Relay behaviour the specification leaves open (backwards-compatible additions):

* A device's ``subscribe`` topic may be a glob (``/*/chat``: every other device's chat); a device
  never receives its own topics back. The tokens file's device entry may be an object
  ``{"token": ..., "read": [device globs]}`` to restrict what that device may subscribe to.
* Before the first ``hello`` every other op gets a ``status`` error; a ``hello`` naming another
  device than the handshake gets a ``status`` error and close code 1008.
* A ``publish`` whose topic is not among the last hello's ``topics`` gets a ``status`` error and
  is not forwarded.
* Messages dropped by the rate limit are reported in one ``status`` error per second (with the
  count) and are not forwarded; later acks still cover their seqs (acks are cumulative), so the
  connector forgets them: the status error is the record of the loss.
* A frame above the relay's hard cap (``--max-frame-bytes``) closes the connection with 1009;
  above ``--max-message-bytes`` it gets a ``status`` error and the connection stays.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from pyros.cloud._frames import load_text_frame
from pyros.exceptions import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "DEVICE_PATH",
    "OPERATOR_PATH",
    "DEVICES_API_PATH",
    "AUTHORIZATION_HEADER",
    "DEVICE_HEADER",
    "DEVICE_QUERY",
    "TOKEN_QUERY",
    "REPLACED_CLOSE_CODE",
    "ACK_INTERVAL",
    "ACK_EVERY",
    "STATUS_LEVELS",
    "DEVICE_OPS",
    "RELAY_OPS",
    "DeviceProtocolError",
    "encode",
    "decode_from_device",
    "decode_from_relay",
    "handshake_headers",
    "device_query",
    "bearer_token",
    "hello",
    "stats",
    "action_feedback",
    "action_result",
    "param_response",
    "send_goal",
    "cancel_goal",
    "param",
    "GOAL_END_STATUSES",
    "PARAM_ACTIONS",
    "publish",
    "service_response",
    "status",
    "subscribe",
    "unsubscribe",
    "welcome",
    "ack",
    "command",
    "call_service",
]

PROTOCOL_VERSION = 1
"""Version of this protocol carried in ``hello``; a relay refuses other versions."""

DEVICE_PATH = "/device"
"""URL path where connectors open their websocket."""

OPERATOR_PATH = "/"
"""URL path where operators (roslibpy, roslibjs) open their rosbridge websocket."""

DEVICES_API_PATH = "/api/devices"
"""URL path of the plain HTTP ``GET`` that lists devices as JSON."""

AUTHORIZATION_HEADER = "Authorization"
"""Handshake header carrying ``Bearer <token>`` (devices and operators)."""

DEVICE_HEADER = "X-Pyros-Device"
"""Handshake header carrying the device id of a connector."""

DEVICE_QUERY = "device"
"""URL query parameter accepted instead of :data:`DEVICE_HEADER`."""

TOKEN_QUERY = "token"
"""URL query parameter accepted instead of :data:`AUTHORIZATION_HEADER`."""

REPLACED_CLOSE_CODE = 4000
"""Websocket close code sent to a device connection replaced by a newer one of the same id."""

ACK_INTERVAL = 0.5
"""Seconds: the relay acks at least this often while a device's messages flow."""

ACK_EVERY = 100
"""The relay acks at least every this many accepted messages."""

STATUS_LEVELS = frozenset({"error", "warning", "info"})
"""Levels of a ``status`` message (rosbridge v2 also has ``none`` for ``set_level``)."""

DEVICE_OPS = frozenset(
    {
        "hello",
        "publish",
        "service_response",
        "status",
        "subscribe",
        "unsubscribe",
        "stats",
        "action_feedback",
        "action_result",
        "param_response",
    }
)
"""Ops a connector may send to the relay."""

RELAY_OPS = frozenset(
    {"welcome", "ack", "publish", "call_service", "status", "send_goal", "cancel_goal", "param"}
)

GOAL_END_STATUSES = ("succeeded", "canceled", "aborted", "rejected")
"""How a goal may end in an ``action_result`` (pyros's final goal states)."""

PARAM_ACTIONS = ("get", "set", "delete")
"""What a ``param`` request may do."""
"""Ops the relay may send to a connector."""


class DeviceProtocolError(ProtocolError):
    """A device-protocol frame is not JSON, not an object, or has a missing or wrong field.

    Attributes:
        id: the ``id`` field of the offending message when it had a usable one, else None, so
            a ``status`` error can echo it.
        op: the ``op`` field when it was a string, else None.
    """

    def __init__(self, message: str, *, id: str | None = None, op: str | None = None) -> None:
        super().__init__(message)
        self.id = id
        self.op = op


# --- encoding ---------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> str:
    """Return ``message`` as one text frame: compact JSON.

    Args:
        message: a message dict made by one of this module's constructors (plain JSON data).

    Returns:
        The JSON text. Non-finite floats are written as ``NaN``/``Infinity`` as Python's json
        and roslibpy do.

    Raises:
        DeviceProtocolError: ``message`` holds something JSON cannot carry (bytes must already
            be base64 strings).
    """
    try:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise DeviceProtocolError(f"cannot encode message: {exc}") from exc


# --- constructors: connector -> relay ----------------------------------------------------------


def hello(
    device: str,
    session: str,
    *,
    topics: Mapping[str, str] | None = None,
    services: Mapping[str, str] | None = None,
    commands: Sequence[str] = (),
    dropped: Mapping[str, int] | None = None,
    command_topics: Mapping[str, str] | None = None,
    actions: Mapping[str, str] | None = None,
    params: Sequence[str] = (),
    latest: Sequence[str] = (),
    definitions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a ``hello``: the first message after each (re)connect, and on every change.

    Args:
        device: the device id (also sent in the handshake; the two must agree).
        session: a unique id of this connector process (a uuid4 string); the relay keys its
            "last accepted seq" by it.
        topics: forwarded topics, device-local name -> ROS type (``"/turtle1/pose":
            "turtlesim/Pose"``).
        services: callable services, device-local name -> ROS type.
        commands: globs of device-local topics operators may publish to.
        dropped: messages dropped from the offline buffer since the last hello, per topic.
        command_topics: existing topics matching ``commands``, name -> type.
        actions: action servers operators may use, name -> type.
        params: parameters operators may read, device-local names.
        latest: forwarded topics whose latest value is replayed to a late subscriber.
        definitions: ``pkg/Type`` -> definition text of the exposed and nested types.
    """
    return {
        "op": "hello",
        "device": device,
        "session": session,
        "topics": dict(topics or {}),
        "services": dict(services or {}),
        "commands": list(commands),
        "dropped": dict(dropped or {}),
        "command_topics": dict(command_topics or {}),
        "actions": dict(actions or {}),
        "params": list(params),
        "latest": list(latest),
        "definitions": dict(definitions or {}),
        "version": PROTOCOL_VERSION,
    }


def action_feedback(id: str, feedback: Mapping[str, Any]) -> dict[str, Any]:
    """Return a connector's ``action_feedback`` for the relay's goal ``id``."""
    return {"op": "action_feedback", "id": id, "feedback": dict(feedback)}


def action_result(
    id: str, status: str, result: Mapping[str, Any] | None = None, msg: str = ""
) -> dict[str, Any]:
    """Return a connector's ``action_result``: how the relay's goal ``id`` ended.

    Args:
        id: the relay's goal id.
        status: one of :data:`GOAL_END_STATUSES`.
        result: the action's result message; None when there is none.
        msg: why it did not succeed (empty when it did).
    """
    return {
        "op": "action_result",
        "id": id,
        "status": status,
        "result": None if result is None else dict(result),
        "msg": msg,
    }


def param_response(id: str, value: Any, result: bool = True) -> dict[str, Any]:
    """Return a connector's ``param_response``: the value (or None), or the error text."""
    return {"op": "param_response", "id": id, "result": result, "value": value}


def stats(buffered: int, dropped: int) -> dict[str, Any]:
    """Return a connector's ``stats``.

    Args:
        buffered: messages in its buffer now (unsent plus unacknowledged).
        dropped: messages it dropped since it started (buffer overflow, queue overflow,
            oversize), exact.
    """
    return {"op": "stats", "buffered": buffered, "dropped": dropped}


def publish(topic: str, msg: Mapping[str, Any], seq: int) -> dict[str, Any]:
    """Return a connector's ``publish``: one forwarded topic message.

    Args:
        topic: device-local topic name (``/turtle1/pose``).
        msg: the message as plain JSON data (``uint8[]`` as base64 strings).
        seq: per-session counter starting at 1, strictly increasing across reconnects.
    """
    return {"op": "publish", "topic": topic, "msg": dict(msg), "seq": seq}


def service_response(id: str, values: Any, result: bool = True) -> dict[str, Any]:
    """Return a ``service_response`` to the relay's ``call_service`` of the same ``id``.

    Args:
        id: the relay's call id.
        values: the response dict when ``result`` is true, else the error text.
        result: whether the call succeeded (rosbridge v2 ``service_response``).
    """
    return {"op": "service_response", "id": id, "values": values, "result": result}


def status(level: str, msg: str, id: str | None = None) -> dict[str, Any]:
    """Return a ``status`` message (both directions; rosbridge v2 shape).

    Args:
        level: ``"error"``, ``"warning"`` or ``"info"``.
        msg: human-readable text.
        id: the id of the message this status is about, if any.
    """
    message: dict[str, Any] = {"op": "status", "level": level, "msg": msg}
    if id is not None:
        message["id"] = id
    return message


def subscribe(topic: str) -> dict[str, Any]:
    """Return a device's ``subscribe`` to another device's topic (``/robot2/chat``)."""
    return {"op": "subscribe", "topic": topic}


def unsubscribe(topic: str) -> dict[str, Any]:
    """Return a device's ``unsubscribe`` from another device's topic."""
    return {"op": "unsubscribe", "topic": topic}


# --- constructors: relay -> connector ----------------------------------------------------------


def welcome(device: str, resume_after: int) -> dict[str, Any]:
    """Return the relay's ``welcome``, its answer to each ``hello``.

    Args:
        device: the device id.
        resume_after: the last seq the relay accepted for this session, or 0.
    """
    return {"op": "welcome", "device": device, "resume_after": resume_after}


def ack(seq: int) -> dict[str, Any]:
    """Return a cumulative ``ack``: every message of the session up to ``seq`` is accepted."""
    return {"op": "ack", "seq": seq}


def command(
    topic: str, msg: Mapping[str, Any], id: str | None = None, type: str | None = None
) -> dict[str, Any]:
    """Return the relay's ``publish`` to a device: an operator command or broadcast data.

    Args:
        topic: device-local name for a command (``/turtle1/cmd_vel``); the full namespaced
            name (``/robot2/chat``) for device-to-device broadcast data.
        msg: the message as plain JSON data.
        id: the operator's message id, echoed in a ``status`` error if the device refuses.
        type: the message type ``pkg/Type`` the operator advertised, if any; a device needs it
            to publish on a topic that does not exist on the robot yet.
    """
    message: dict[str, Any] = {"op": "publish", "topic": topic, "msg": dict(msg)}
    if id is not None:
        message["id"] = id
    if type is not None:
        message["type"] = type
    return message


def call_service(id: str, service: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the relay's ``call_service`` to a device.

    Args:
        id: a relay-generated call id; the device answers ``service_response`` with it.
        service: device-local service name (``/reset``).
        args: the request as plain JSON data.
    """
    return {"op": "call_service", "id": id, "service": service, "args": dict(args or {})}


def send_goal(
    id: str,
    action: str,
    goal: Mapping[str, Any],
    type: str | None = None,
    feedback: bool = True,
) -> dict[str, Any]:
    """Return the relay's ``send_goal`` to a device.

    Args:
        id: a relay-generated goal id (the device's replies carry it).
        action: device-local action name (``/turtle1/rotate_absolute``).
        goal: the goal message as plain JSON data.
        type: the action type the operator gave (``turtlesim/action/RotateAbsolute``), if any.
        feedback: whether the operator wants feedback.
    """
    return {
        "op": "send_goal",
        "id": id,
        "action": action,
        "type": type,
        "goal": dict(goal),
        "feedback": feedback,
    }


def cancel_goal(id: str) -> dict[str, Any]:
    """Return the relay's ``cancel_goal`` for the goal it sent with ``id``."""
    return {"op": "cancel_goal", "id": id}


def param(id: str, action: str, name: str, value: Any = None) -> dict[str, Any]:
    """Return the relay's ``param`` request.

    Args:
        id: a relay-generated request id.
        action: one of :data:`PARAM_ACTIONS`.
        name: device-local parameter name (``/run_id``, ``/turtlesim:background_r``).
        value: the new value, for ``set``.
    """
    message: dict[str, Any] = {"op": "param", "id": id, "action": action, "name": name}
    if action == "set":
        message["value"] = value
    return message


# --- handshake helpers -----------------------------------------------------------------------


def handshake_headers(device: str, token: str) -> dict[str, str]:
    """Return the HTTP headers a connector sends on its websocket handshake.

    Args:
        device: the device id.
        token: the device's secret token from the relay's tokens file.
    """
    return {AUTHORIZATION_HEADER: f"Bearer {token}", DEVICE_HEADER: device}


def device_query(device: str, token: str) -> str:
    """Return the URL query (``device=...&token=...``) alternative to the headers."""
    return f"{DEVICE_QUERY}={quote(device, safe='')}&{TOKEN_QUERY}={quote(token, safe='')}"


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or None.

    Args:
        authorization: the header value, or None when the header is absent.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --- decoding --------------------------------------------------------------------------------


def _load(frame: str | bytes) -> dict[str, Any]:
    message = load_text_frame(frame, DeviceProtocolError)
    if not isinstance(message, dict):
        raise DeviceProtocolError(f"a frame must hold a JSON object, not {type(message).__name__}")
    return message


class _Checker:
    """Field checks for one message; errors carry its id and op."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        raw_id = message.get("id")
        self.id = raw_id if isinstance(raw_id, str) else None
        raw_op = message.get("op")
        self.op = raw_op if isinstance(raw_op, str) else None

    def fail(self, text: str) -> DeviceProtocolError:
        return DeviceProtocolError(text, id=self.id, op=self.op)

    def get(self, name: str, kind: type | tuple[type, ...], what: str, default: Any = ...) -> Any:
        if name not in self.message:
            if default is ...:
                raise self.fail(f"{self.op}: missing field {name!r}")
            return default
        value = self.message[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            raise self.fail(f"{self.op}: field {name!r} must be {what}, not {_kind_name(value)}")
        return value

    def name(self, field: str) -> str:
        value: str = self.get(field, str, "a string")
        if not value.startswith("/"):
            raise self.fail(f"{self.op}: field {field!r} must be a name starting with '/'")
        return value

    def text(self, field: str) -> str:
        value: str = self.get(field, str, "a string")
        if not value:
            raise self.fail(f"{self.op}: field {field!r} must not be empty")
        return value

    def name_map(self, field: str) -> dict[str, str]:
        value: dict[str, Any] = self.get(field, dict, "an object", {})
        for key, item in value.items():
            if not key.startswith("/") or not isinstance(item, str):
                raise self.fail(f"{self.op}: {field!r} must map '/names' to type strings")
        return dict(value)

    def counter(self, field: str, minimum: int) -> int:
        value: int = self.get(field, int, "an integer")
        if value < minimum:
            raise self.fail(f"{self.op}: field {field!r} must be >= {minimum}")
        return value

    def text_map(self, field: str) -> dict[str, str]:
        value: dict[str, Any] = self.get(field, dict, "an object", {})
        if not all(isinstance(item, str) for item in value.values()):
            raise self.fail(f"{self.op}: {field!r} must map type names to definition texts")
        return dict(value)

    def names(self, field: str) -> list[str]:
        value: list[Any] = self.get(field, list, "an array", [])
        if not all(isinstance(item, str) and item.startswith("/") for item in value):
            raise self.fail(f"{self.op}: {field!r} must be an array of '/names'")
        return list(value)

    def optional_id(self) -> None:
        if "id" in self.message and not isinstance(self.message["id"], str):
            raise self.fail(f"{self.op}: field 'id' must be a string")


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _check_status(check: _Checker) -> dict[str, Any]:
    level = check.get("level", str, "a string")
    if level not in STATUS_LEVELS:
        raise check.fail(f"status: level must be one of {sorted(STATUS_LEVELS)}, not {level!r}")
    msg = check.get("msg", str, "a string")
    check.optional_id()
    return status(level, msg, check.id)


def _check_op(check: _Checker, allowed: frozenset[str], sender: str) -> str:
    if "op" not in check.message:
        raise check.fail("missing field 'op'")
    if check.op is None:
        raise check.fail("field 'op' must be a string")
    if check.op not in allowed:
        raise check.fail(f"unknown op {check.op!r} from a {sender} (known: {sorted(allowed)})")
    return check.op


def decode_from_device(frame: str | bytes) -> dict[str, Any]:
    """Decode and check one frame a connector sent to the relay.

    Args:
        frame: the received websocket frame (``str`` for text; ``bytes`` for binary, which is
            always refused).

    Returns:
        A checked message with every field of its op present: ``hello`` gets empty
        ``topics``/``services``/``commands``/``dropped`` defaults; ``subscribe`` and
        ``unsubscribe`` keep ``topic`` only. Unknown extra fields are dropped.

    Raises:
        DeviceProtocolError: binary frame, bad JSON, not an object, unknown op, or a missing or
            wrongly typed field (``id``/``op`` attributes set when known).
    """
    message = _load(frame)
    check = _Checker(message)
    op = _check_op(check, DEVICE_OPS, "device")
    if op == "hello":
        version = check.get("version", int, "an integer", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise check.fail(
                f"hello: protocol version {version} is not supported (this relay speaks "
                f"{PROTOCOL_VERSION})"
            )
        commands = check.get("commands", list, "an array of globs", [])
        if not all(isinstance(item, str) for item in commands):
            raise check.fail("hello: 'commands' must be an array of strings")
        dropped = check.get("dropped", dict, "an object", {})
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in dropped.values()):
            raise check.fail("hello: 'dropped' must map topic names to integer counts")
        return hello(
            check.text("device"),
            check.text("session"),
            topics=check.name_map("topics"),
            services=check.name_map("services"),
            commands=commands,
            dropped=dropped,
            command_topics=check.name_map("command_topics"),
            actions=check.name_map("actions"),
            params=check.names("params"),
            latest=check.names("latest"),
            definitions=check.text_map("definitions"),
        )
    if op == "action_feedback":
        return action_feedback(check.text("id"), check.get("feedback", dict, "an object"))
    if op == "action_result":
        status = check.get("status", str, "a string")
        if status not in GOAL_END_STATUSES:
            raise check.fail(f"action_result: status must be one of {list(GOAL_END_STATUSES)}")
        result = check.get("result", (dict, type(None)), "an object or null", None)
        return action_result(
            check.text("id"), status, result, check.get("msg", str, "a string", "")
        )
    if op == "param_response":
        ok = check.get("result", bool, "a boolean")
        value = message.get("value")
        if not ok and not isinstance(value, str):
            raise check.fail("param_response: 'value' must be the error text when result is false")
        return param_response(check.text("id"), value, ok)
    if op == "stats":
        return stats(check.counter("buffered", 0), check.counter("dropped", 0))
    if op == "publish":
        msg = check.get("msg", dict, "an object")
        return publish(check.name("topic"), msg, check.counter("seq", 1))
    if op == "service_response":
        call_id = check.text("id")
        result = check.get("result", bool, "a boolean")
        values = message.get("values", {} if result else "")
        if result and not isinstance(values, dict):
            raise check.fail("service_response: 'values' must be an object when result is true")
        if not result and not isinstance(values, str):
            values = encode({"values": values})
        return service_response(call_id, values, result)
    if op == "status":
        return _check_status(check)
    return {"op": op, "topic": check.name("topic")}


def decode_from_relay(frame: str | bytes) -> dict[str, Any]:
    """Decode and check one frame the relay sent to a connector.

    Args:
        frame: the received websocket frame.

    Returns:
        A checked message: ``publish`` has ``topic``, ``msg`` and ``id`` (None when absent);
        ``call_service`` has ``id``, ``service`` and ``args`` (``{}`` when absent).

    Raises:
        DeviceProtocolError: as :func:`decode_from_device`.
    """
    message = _load(frame)
    check = _Checker(message)
    op = _check_op(check, RELAY_OPS, "relay")
    if op == "welcome":
        return welcome(check.text("device"), check.counter("resume_after", 0))
    if op == "ack":
        return ack(check.counter("seq", 0))
    if op == "publish":
        check.optional_id()
        msg = check.get("msg", dict, "an object")
        type_name = message.get("type")
        if type_name is not None and not isinstance(type_name, str):
            raise check.fail("publish: 'type' must be a string 'pkg/Type'")
        result = command(check.name("topic"), msg, check.id, type_name)
        result.setdefault("id", None)
        result.setdefault("type", None)
        return result
    if op == "call_service":
        args = check.get("args", dict, "an object", {})
        return call_service(check.text("id"), check.name("service"), args)
    if op == "send_goal":
        type_name = check.get("type", (str, type(None)), "a string or null", None)
        return send_goal(
            check.text("id"),
            check.name("action"),
            check.get("goal", dict, "an object"),
            type_name,
            check.get("feedback", bool, "a boolean", True),
        )
    if op == "cancel_goal":
        return cancel_goal(check.text("id"))
    if op == "param":
        action = check.get("action", str, "a string")
        if action not in PARAM_ACTIONS:
            raise check.fail(f"param: action must be one of {list(PARAM_ACTIONS)}")
        if action == "set" and "value" not in message:
            raise check.fail("param: missing field 'value'")
        return param(check.text("id"), action, check.name("name"), message.get("value"))
    return _check_status(check)
