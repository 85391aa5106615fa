"""The operator side of the relay: rosbridge v2 messages, checked and built, with no I/O.

Message shapes come from the rosbridge v2 protocol specification (``ROSBRIDGE_PROTOCOL.md`` in
RobotWebTools/rosbridge_suite) and from what roslibpy and roslibjs really send: roslibpy's
``Topic.subscribe`` sends ``{"op": "subscribe", "id": "subscribe:/t:1", "type", "topic",
"compression": "none", "throttle_rate": 0, "queue_length": 0}``, ``Topic.publish`` sends an
``advertise`` first, ``Service.call`` sends ``{"op": "call_service", "id", "service", "args"}``
and waits for a ``service_response`` with that id, and ``Ros.get_topics()`` and friends are
``call_service`` requests to ``/rosapi/...`` services (answered by :func:`rosapi_response`).

Operator ops accepted by :func:`decode_operator`: ``auth`` (this relay's extension for browsers:
``{"op": "auth", "token": "..."}``), ``advertise``, ``unadvertise``, ``publish``, ``subscribe``
(``compression`` ``none``, ``cbor`` or ``png``; ``fragment_size``), ``unsubscribe``,
``call_service``, ``send_action_goal`` and ``cancel_action_goal`` (the ROS 2 action ops of the
specification), ``fragment`` (a message split by the client), ``set_level``
(``error``/``warning``/``info``/``none``, as in earlier versions of the specification) and
``status`` (accepted and ignored). Ids may be strings or integers (the specification allows
both) and are echoed as given. Type names are compared in either spelling (:func:`same_type`).

Outgoing encodings (:func:`encode_cbor`, :func:`encode_png`, :func:`fragments`) follow
rosbridge_suite: ``cbor`` sends the whole ``publish`` message as one binary CBOR frame (RFC 8949,
the ``cbor2`` library); ``png`` sends ``{"op": "png", "data": <base64 PNG>}`` whose RGB pixels
hold the JSON text (rosbridge's ``png_compression``, Pillow); a text message longer than the
subscription's ``fragment_size`` goes as ``{"op": "fragment", "id", "data", "num", "total"}``
pieces. ``cbor-raw`` (ROS-serialized bytes) is refused: the relay carries messages as data, never
as ROS-serialized bytes.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyros._names import is_valid
from pyros._rosbridge_wire import GOAL_STATUS_NAMES, encode
from pyros.cloud._frames import load_text_frame
from pyros.cloud.auth import valid_device_id
from pyros.cloud.typedefs import typedefs
from pyros.exceptions import ProtocolError

__all__ = [
    "GOAL_STATUS_CODES",
    "ROSAPI_DEVICE_SERVICES",
    "COMPRESSIONS",
    "FleetView",
    "NodeView",
    "same_type",
    "encode_cbor",
    "encode_png",
    "fragments",
    "action_feedback",
    "action_result",
    "Defragmenter",
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
        "send_action_goal",
        "cancel_action_goal",
        "fragment",
        "set_level",
        "status",
    }
)
"""Ops an operator may send."""

COMPRESSIONS = ("none", "cbor", "png")
"""``subscribe`` compressions the relay sends (``cbor-raw`` is refused, see the docstring)."""

GOAL_STATUS_CODES = {
    **{name: code for code, name in GOAL_STATUS_NAMES.items()},
    "rejected": 6,
}
"""pyros goal states -> ``action_msgs/msg/GoalStatus`` codes in ``action_result.status`` (ROS 2
has no "rejected" terminal code; a rejected goal reports ABORTED, 6, with ``result: false``)."""

UNSUPPORTED_OPS = frozenset(
    {
        "service_response",
        "advertise_service",
        "unadvertise_service",
        "advertise_action",
        "unadvertise_action",
        "action_feedback",
        "action_result",
        "png",
    }
)
"""rosbridge v2 ops the relay knows but does not offer to operators (a status error says so)."""

STATUS_LEVELS = ("info", "warning", "error", "none")
"""``set_level`` levels, most verbose first; a status is sent when its level is at or above the
operator's level (default ``warning``: drop warnings and errors)."""

ROSAPI_SERVICES = {
    "/rosapi/topics": "rosapi_msgs/srv/Topics",
    "/rosapi/topic_type": "rosapi_msgs/srv/TopicType",
    "/rosapi/topics_for_type": "rosapi_msgs/srv/TopicsForType",
    "/rosapi/topics_and_raw_types": "rosapi_msgs/srv/TopicsAndRawTypes",
    "/rosapi/services": "rosapi_msgs/srv/Services",
    "/rosapi/service_type": "rosapi_msgs/srv/ServiceType",
    "/rosapi/services_for_type": "rosapi_msgs/srv/ServicesForType",
    "/rosapi/service_node": "rosapi_msgs/srv/ServiceNode",
    "/rosapi/service_providers": "rosapi_msgs/srv/ServiceProviders",
    "/rosapi/nodes": "rosapi_msgs/srv/Nodes",
    "/rosapi/node_details": "rosapi_msgs/srv/NodeDetails",
    "/rosapi/publishers": "rosapi_msgs/srv/Publishers",
    "/rosapi/subscribers": "rosapi_msgs/srv/Subscribers",
    "/rosapi/action_servers": "rosapi_msgs/srv/GetActionServers",
    "/rosapi/get_param_names": "rosapi_msgs/srv/GetParamNames",
    "/rosapi/has_param": "rosapi_msgs/srv/HasParam",
    "/rosapi/search_param": "rosapi_msgs/srv/SearchParam",
    "/rosapi/get_time": "rosapi_msgs/srv/GetTime",
    "/rosapi/get_ros_version": "rosapi_msgs/srv/GetROSVersion",
    "/rosapi/message_details": "rosapi_msgs/srv/MessageDetails",
    "/rosapi/service_request_details": "rosapi_msgs/srv/ServiceRequestDetails",
    "/rosapi/service_response_details": "rosapi_msgs/srv/ServiceResponseDetails",
}
"""The rosapi services the relay answers itself from its registry (name -> type)."""

ROSAPI_DEVICE_SERVICES = {
    "/rosapi/get_param": "rosapi_msgs/srv/GetParam",
    "/rosapi/set_param": "rosapi_msgs/srv/SetParam",
    "/rosapi/delete_param": "rosapi_msgs/srv/DeleteParam",
}
"""The rosapi parameter services the relay answers by asking the device (its pyros params)."""


_MAX_COUNT = 1 << 31
"""Largest ``throttle_rate`` (ms) or ``queue_length`` accepted (NaN and infinities never are)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def same_type(a: str, b: str) -> bool:
    """Return whether two type names are the same type in either spelling.

    ``turtlesim/Pose`` (ROS 1 and rosbridge's ROS 1 form) and ``turtlesim/msg/Pose`` (ROS 2)
    are one type; so are ``std_srvs/Empty`` and ``std_srvs/srv/Empty``.
    """
    return _base_type(a) == _base_type(b)


def _base_type(name: str) -> str:
    parts = name.strip("/").split("/")
    if len(parts) == 3 and parts[1] in ("msg", "srv", "action"):
        return f"{parts[0]}/{parts[2]}"
    return name.strip("/")


def encode_cbor(message: Mapping[str, Any]) -> bytes:
    """Return ``message`` as one binary CBOR frame (RFC 8949), as rosbridge's ``cbor`` does.

    Non-finite floats are kept (CBOR has them). ``uint8[]`` fields stay as the base64 strings
    the relay carries (the relay does not know message definitions).
    """
    import cbor2  # a relay dependency; loaded on the first cbor subscriber

    return bytes(cbor2.dumps(dict(message)))


def encode_png(text: str) -> str:
    """Return the ``png`` frame for a JSON text, as rosbridge's ``png_compression.encode``.

    The UTF-8 bytes, padded with newlines (JSON whitespace), are the RGB pixels of an image
    ``floor(sqrt(n / 3))`` pixels wide, PNG-compressed and base64-encoded:
    ``{"op": "png", "data": "..."}``. roslibjs draws it on a canvas and reads the text back.

    Raises:
        ImportError: Pillow is not installed (``pip install 'pyros[relay]'``).
    """
    from PIL import Image  # optional: only png subscribers need it

    data = text.encode("utf-8")
    width = max(1, math.floor(math.sqrt(len(data) / 3)))
    height = max(1, math.ceil(len(data) / 3 / width))
    data += b"\n" * (width * height * 3 - len(data))  # trailing whitespace: still valid JSON
    image = Image.frombytes("RGB", (width, height), data)
    out = io.BytesIO()
    image.save(out, "PNG")
    return encode({"op": "png", "data": base64.b64encode(out.getvalue()).decode("ascii")})


def fragments(text: str, fragment_size: int, id: str) -> Iterator[str]:
    """Split a text frame into rosbridge ``fragment`` frames of at most ``fragment_size`` chars.

    Args:
        text: the whole message as JSON text.
        fragment_size: characters of ``text`` per fragment (> 0).
        id: the id that ties the fragments together.
    """
    total = max(1, math.ceil(len(text) / fragment_size))
    for num in range(total):
        data = text[num * fragment_size : (num + 1) * fragment_size]
        yield encode({"op": "fragment", "id": id, "data": data, "num": num, "total": total})


def action_feedback(id: Any, action: str, values: Any) -> dict[str, Any]:
    """Return an ``action_feedback`` for an operator's goal (ROS 2 rosbridge)."""
    return {"op": "action_feedback", "id": id, "action": action, "values": values}


def action_result(id: Any, action: str, values: Any, status: int, result: bool) -> dict[str, Any]:
    """Return an ``action_result`` for an operator's goal (ROS 2 rosbridge).

    Args:
        id: the operator's goal id.
        action: the action name as the operator gave it.
        values: the result message, or the error text when ``result`` is false.
        status: the ``action_msgs/msg/GoalStatus`` code (:data:`GOAL_STATUS_CODES`).
        result: false when the goal could not be run at all (refused, rejected, lost).
    """
    return {
        "op": "action_result",
        "id": id,
        "action": action,
        "values": values,
        "status": status,
        "result": result,
    }


class Defragmenter:
    """Reassembles ``fragment`` ops from one operator (rosbridge's defragmentation).

    Args:
        max_bytes: the largest reassembled message, in characters.
        max_pending: most messages being reassembled at once (the oldest is forgotten).
    """

    def __init__(self, max_bytes: int, max_pending: int = 16) -> None:
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self._pending: dict[Any, dict[int, str]] = {}
        self._sizes: dict[Any, int] = {}

    def add(self, message: Mapping[str, Any]) -> str | None:
        """Add one checked ``fragment``; return the whole message text once complete.

        Raises:
            OperatorProtocolError: the pieces disagree or exceed ``max_bytes``.
        """
        id, num, total, data = message["id"], message["num"], message["total"], message["data"]
        pieces = self._pending.get(id)
        if pieces is None:
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                del self._pending[oldest]
                del self._sizes[oldest]
            pieces = self._pending[id] = {}
            self._sizes[id] = 0
        if num >= total or (pieces and max(pieces) >= total):
            self._forget(id)
            raise OperatorProtocolError(f"fragment: num {num} is not below total {total}", id=id)
        self._sizes[id] += len(data) - len(pieces.get(num, ""))
        pieces[num] = data
        if self._sizes[id] > self.max_bytes:
            self._forget(id)
            raise OperatorProtocolError(
                f"fragment: the message is over {self.max_bytes} bytes", id=id
            )
        if len(pieces) < total:
            return None
        self._forget(id)
        return "".join(pieces[n] for n in range(total))

    def _forget(self, id: Any) -> None:
        self._pending.pop(id, None)
        self._sizes.pop(id, None)


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

    def fragment_size(self) -> int | None:
        value = self.message.get("fragment_size")
        if value is None:
            return None
        if not _is_int(value) or not 0 < value <= _MAX_COUNT:
            raise self.fail(f"{self.op}: field 'fragment_size' must be an integer > 0")
        return int(value)

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
    message = load_text_frame(frame, OperatorProtocolError)
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
        if compression == "cbor-raw":
            raise fields.fail(
                "subscribe: compression 'cbor-raw' (ROS-serialized bytes) is not offered by the "
                "pyros relay, which carries messages as data: use 'cbor'"
            )
        if compression not in COMPRESSIONS:
            raise fields.fail(
                f"subscribe: compression {compression!r} is not supported ({list(COMPRESSIONS)})"
            )
        out["compression"] = compression
        out["fragment_size"] = fields.fragment_size()
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
        out["fragment_size"] = fields.fragment_size()
    elif op == "send_action_goal":
        out["action"] = fields.ros_name("action")
        out["action_type"] = fields.string("action_type", required=False) or None
        args = message.get("args", {})
        if args is None or args == []:
            args = {}
        if not isinstance(args, dict):
            raise fields.fail("send_action_goal: field 'args' must be an object")
        out["args"] = args
        feedback = message.get("feedback", False)
        if not isinstance(feedback, bool):
            raise fields.fail("send_action_goal: field 'feedback' must be a boolean")
        out["feedback"] = feedback
        out["fragment_size"] = fields.fragment_size()
        if fields.id is None:
            raise fields.fail("send_action_goal: an 'id' is needed to answer the goal")
    elif op == "cancel_action_goal":
        out["action"] = fields.ros_name("action")
        if fields.id is None:
            raise fields.fail("cancel_action_goal: missing field 'id' (the goal's id)")
    elif op == "fragment":
        if fields.id is None:
            raise fields.fail("fragment: missing field 'id'")
        out["data"] = fields.string("data")
        num, total = message.get("num"), message.get("total")
        if not (
            isinstance(num, int)
            and _is_int(num)
            and isinstance(total, int)
            and _is_int(total)
            and 0 <= num < total <= 1 << 20
        ):
            raise fields.fail("fragment: 'num' and 'total' must be integers, 0 <= num < total")
        out["num"], out["total"] = num, total
    elif op == "set_level":
        level = fields.string("level")
        if level not in STATUS_LEVELS:
            raise fields.fail(f"set_level: level must be one of {list(STATUS_LEVELS)}")
        out["level"] = level
    return out


@dataclass
class NodeView:
    """One device as a node in the rosapi answers (``/robot1``).

    Attributes:
        publishing: the topics it forwards (full names).
        subscribing: the topics operators may publish to on it (full names).
        services: its callable services (full names).
    """

    publishing: list[str] = field(default_factory=list)
    subscribing: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


@dataclass
class FleetView:
    """What one operator may see of the fleet, for :func:`rosapi_response`.

    Attributes:
        topics: full topic name -> type, forwarded and command topics.
        services: full service name -> type (the relay's rosapi services included).
        actions: full action name -> type.
        params: full parameter names (``/robot1/turtlesim:background_r``).
        nodes: node name (``/robot1``) -> :class:`NodeView`.
        definitions: ``pkg/Type`` -> definition text, from the devices' hellos.
    """

    topics: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    nodes: dict[str, NodeView] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)


def rosapi_response(
    service: str, args: Mapping[str, Any], view: FleetView, now: float | None = None
) -> dict[str, Any]:
    """Answer one of :data:`ROSAPI_SERVICES` from the relay's view of the fleet.

    Response shapes are those of the rosapi package's services (``rosapi_msgs/srv/Topics``:
    ``topics`` and ``types`` lists in the same order; ``TopicType``: ``type``, empty when
    unknown; ``NodeDetails``: ``subscribing``, ``publishing``, ``services``;
    ``GetActionServers``: ``action_servers``; ``GetParamNames``: ``names``; ``HasParam``:
    ``exists``; ``GetROSVersion``: ``version`` 2 and ``distro``). Type arguments match in
    either spelling.

    Args:
        service: the rosapi service name (``/rosapi/topics``).
        args: the request.
        view: what the operator may see.
        now: wall-clock seconds for ``/rosapi/get_time``; None reads :func:`time.time`.

    Returns:
        The response values.

    Raises:
        KeyError: ``service`` is not one of :data:`ROSAPI_SERVICES`.
    """
    topics, services = view.topics, view.services
    names = sorted(topics)
    wanted = str(args.get("type", ""))
    if service == "/rosapi/topics":
        return {"topics": names, "types": [topics[name] for name in names]}
    if service == "/rosapi/topics_and_raw_types":
        return {
            "topics": names,
            "types": [topics[name] for name in names],
            "typedefs_full_text": ["" for _ in names],
        }
    if service == "/rosapi/topic_type":
        return {"type": topics.get(str(args.get("topic", "")), "")}
    if service == "/rosapi/topics_for_type":
        return {"topics": [name for name in names if same_type(topics[name], wanted)]}
    if service == "/rosapi/services":
        listed = sorted(services)
        return {"services": listed, "types": [services[name] for name in listed]}
    if service == "/rosapi/service_type":
        return {"type": services.get(str(args.get("service", "")), "")}
    if service == "/rosapi/services_for_type":
        return {"services": sorted(n for n, t in services.items() if same_type(t, wanted))}
    if service in ("/rosapi/service_node", "/rosapi/service_providers"):
        name = str(args.get("service", ""))
        providers = sorted(node for node, v in view.nodes.items() if name in v.services)
        if name.startswith("/rosapi/"):
            providers = ["/rosapi"]
        if service == "/rosapi/service_node":
            return {"node": providers[0] if providers else ""}
        return {"providers": providers}
    if service == "/rosapi/nodes":
        return {"nodes": sorted(view.nodes)}
    if service == "/rosapi/node_details":
        node = view.nodes.get(str(args.get("node", "")), NodeView())
        return {
            "subscribing": sorted(node.subscribing),
            "publishing": sorted(node.publishing),
            "services": sorted(node.services),
        }
    if service in ("/rosapi/publishers", "/rosapi/subscribers"):
        topic = str(args.get("topic", ""))
        if service == "/rosapi/publishers":
            found = [n for n, v in view.nodes.items() if topic in v.publishing]
            return {"publishers": sorted(found)}
        return {"subscribers": sorted(n for n, v in view.nodes.items() if topic in v.subscribing)}
    if service == "/rosapi/action_servers":
        return {"action_servers": sorted(view.actions)}
    if service == "/rosapi/get_param_names":
        return {"names": sorted(view.params)}
    if service == "/rosapi/has_param":
        return {"exists": str(args.get("name", "")) in view.params}
    if service == "/rosapi/search_param":
        name = str(args.get("name", ""))
        found = sorted(p for p in view.params if p == name or p.endswith("/" + name.strip("/")))
        return {"global_name": found[0] if found else ""}
    if service == "/rosapi/message_details":
        return {"typedefs": typedefs(wanted, view.definitions)}
    if service in ("/rosapi/service_request_details", "/rosapi/service_response_details"):
        part = "request" if "request" in service else "response"
        return {"typedefs": typedefs(wanted, view.definitions, part)}
    if service == "/rosapi/get_ros_version":
        return {"version": 2, "distro": ""}
    if service == "/rosapi/get_time":
        stamp = time.time() if now is None else now
        secs = int(stamp)
        return {"time": {"sec": secs, "nanosec": int((stamp - secs) * 1e9)}}
    raise KeyError(service)
