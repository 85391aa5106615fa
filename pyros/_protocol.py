"""The wire format between a client and a node process, with no I/O in it.

This module imports no zmq, no ROS and no asyncio, and never reads a clock: callers pass
``now`` (seconds, any monotonic origin) and feed it frames; it hands back frames to send and
events that say what happened. The sync client, the asyncio client and the node loop are thin
I/O layers around it (the design of h11 and of websockets' ``protocol.py``).

Sockets and frames::

    client DEALER  --request-->  ROUTER node      one frame: [version, id, op, args]
    client DEALER  <--reply----  ROUTER node      one frame: [version, id, ok, payload]
    client SUB     <--stream---  XPUB   node      three frames: [prefix, meta, body]
    client SUB     --control-->  XPUB   node      b"\\x01" + prefix (subscribe) / b"\\x00" + prefix

Every frame body is MessagePack (https://msgpack.org, ``bin`` type for ``bytes``), never
pickle: a node must not execute what a peer sends. ``id`` is a positive int unique per
connection, or 0 for a notification that gets no reply. ``ok`` is True with the op's result as
``payload``, or False with an error map ``{"type", "message", ...}``
(:func:`pyros.exceptions.from_wire`). Both sides check what they encode and what they decode
with the same rules (:func:`check_plain`, :func:`check_args`), so a request the client could
send is one the node can answer, and a malformed one is answered with an error naming the
argument or field, never left without a reply.

Stream prefixes:

* ``b"h"`` heartbeat; body ``[version, seq, info]``; every :data:`HEARTBEAT_INTERVAL` seconds.
* ``b"v"`` a node event for every client (the backend lost or regained its connection);
  body ``{"event": str, ...}``.
* ``b"s" + token``: something for the subscription or goal that the client named ``token``.
  ``meta`` is one kind byte (:data:`KIND_MESSAGE`, :data:`KIND_ERROR`, :data:`KIND_FEEDBACK`,
  :data:`KIND_RESULT`), followed, for messages, by the decimal count of messages the node has
  dropped for this token so far when that is not 0. Tokens are chosen by clients and unique,
  and each one has its own SUB socket, so the node can tell from the XPUB control frames the
  moment a client really listens (no "slow joiner" loss) and when it stopped (its process
  died: ZeroMQ drops its subscriptions).
* ``b"c" + client_id`` is never sent; clients subscribe to it so the node can count them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from pyros.exceptions import (
    MessageError,
    NotExposedError,
    ProtocolError,
    PyrosError,
    TimeoutError,
    from_wire,
)

__all__ = [
    "PROTOCOL_VERSION",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "MAX_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_TIMEOUT",
    "OPS",
    "HEARTBEAT_PREFIX",
    "EVENT_PREFIX",
    "MESSAGE_PREFIX",
    "CLIENT_PREFIX",
    "KIND_MESSAGE",
    "KIND_ERROR",
    "KIND_FEEDBACK",
    "KIND_RESULT",
    "QOS_VALUES",
    "encode",
    "decode",
    "check_plain",
    "check_args",
    "check_qos",
    "short",
    "Request",
    "Reply",
    "Failure",
    "Heartbeat",
    "StreamItem",
    "Event",
    "Subscribed",
    "Unsubscribed",
    "ClientProtocol",
    "Liveness",
    "NodeProtocol",
    "parse_stream",
]

PROTOCOL_VERSION = 2
"""Bumped on any incompatible change; a node answers other versions with ProtocolError.

Version 2: stream frames carry a ``meta`` frame (kinds, node-side drop counts)."""

HEARTBEAT_INTERVAL = 0.2
"""Seconds between two node heartbeats (sent from their own thread in the node)."""

HEARTBEAT_TIMEOUT = 3.0
"""Seconds of heartbeat silence after which a client counts a live node as stalled.

A node that exits is noticed from its process within 0.1 s (nodes always run on this
machine); silence from a live process (SIGSTOP, a machine under heavy load) never makes a
client give up on the node: calls wait for their own timeouts and work again once it answers."""

MAX_DEPTH = 100
"""Deepest nesting of lists and maps accepted in a payload (ROS messages nest far less)."""

MAX_NAME_LENGTH = 1024
"""Longest topic, service, parameter, action or type name accepted, in characters."""

MAX_TIMEOUT = 365 * 24 * 3600.0
"""Longest timeout in seconds a request may carry (one year: "forever" for any practical use)."""

HEARTBEAT_PREFIX = b"h"
EVENT_PREFIX = b"v"
MESSAGE_PREFIX = b"s"
CLIENT_PREFIX = b"c"

KIND_MESSAGE = b"m"
"""A topic message; body: the message dict."""
KIND_ERROR = b"e"
"""The subscription or goal failed for good; body: an error map (:func:`from_wire`)."""
KIND_FEEDBACK = b"f"
"""A goal's feedback; body: the feedback dict."""
KIND_RESULT = b"r"
"""A goal ended; body: ``{"status": str, "result": dict | None, "message": str}``."""

QOS_VALUES: dict[str, tuple[str, ...]] = {
    "reliability": ("reliable", "best_effort"),
    "durability": ("volatile", "transient_local"),
    "history": ("keep_last", "keep_all"),
}
"""Allowed values of the string QoS keys (``rclpy.qos`` policy names, lower case)."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_SCALARS = (type(None), bool, int, float, str, bytes)


def short(value: Any, limit: int = 80) -> str:
    """Return ``repr(value)`` cut to about ``limit`` characters, for error messages.

    Errors must never echo a 100 MB string back to whoever sent it.
    """
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
        return repr(value) + f"... ({type(value).__name__} cut at {limit})"
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def check_plain(value: Any, path: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Check that ``value`` is plain data that MessagePack carries and a peer can decode.

    Plain data: None, bool, int (-2**63 .. 2**64-1), float, str, bytes (bytearray and
    memoryview too), lists and tuples of it, dicts with ``str`` keys of it, nested at most
    ``max_depth`` deep.

    Args:
        value: what to check.
        path: dotted path of ``value`` in its message, for errors (``""`` for the top).
        max_depth: deepest nesting allowed.

    Raises:
        MessageError: something else is in there; ``field`` names where (``"a.b[2]"``).
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            if kind is int and not _INT_MIN <= item <= _INT_MAX:
                raise MessageError(
                    f"field {where or '(message)'!r}: integer {short(item, 40)} does not fit "
                    "in 64 bits",
                    field=where or None,
                )
            continue
        if depth >= max_depth and kind in (list, tuple, dict):
            raise MessageError(
                f"field {where or '(message)'!r}: nested deeper than {max_depth} levels",
                field=where or None,
            )
        if kind is list or kind is tuple:
            for index, element in enumerate(item):
                if type(element) in _SCALARS and type(element) is not int:
                    continue
                stack.append((element, f"{where}[{index}]", depth + 1))
        elif kind is dict:
            for key, element in item.items():
                if type(key) is not str:
                    raise MessageError(
                        f"field {where or '(message)'!r}: key {short(key, 40)} is not a string",
                        field=where or None,
                    )
                stack.append((element, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, (bytearray, memoryview)):
            continue
        elif isinstance(item, (bool, int, float, str, bytes, list, tuple, dict)):
            continue  # subclasses (IntEnum, OrderedDict...) pack as their base type
        else:
            raise MessageError(
                f"field {where or '(message)'!r}: {kind.__name__} is not plain data "
                "(dict, list, str, bytes, numbers, bool, None)",
                field=where or None,
            )


def encode(obj: Any) -> bytes:
    """Serialize plain data with MessagePack, checking it first (:func:`check_plain`).

    Raises:
        MessageError: ``obj`` holds something that is not plain data; ``field`` says where.
    """
    check_plain(obj)
    try:
        return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageError(f"not plain data (dict, list, str, bytes, numbers): {exc}") from exc


def decode(data: bytes) -> Any:
    """Deserialize one MessagePack frame.

    Maps with non-string keys decode (so that a node can answer them with an error that names
    the field, see :func:`check_plain`) as long as the keys are hashable.

    Raises:
        ProtocolError: the frame is not one valid MessagePack value.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # ValueError, ExtraData, FormatError, StackError, TypeError...
        raise ProtocolError(f"undecodable frame ({len(data)} bytes): {short(exc)}") from exc


# --- request arguments ----------------------------------------------------------------------


def _name(kind: str) -> Callable[[Any, str], Any]:
    def check(value: Any, arg: str) -> Any:
        if not isinstance(value, str):
            raise NotExposedError(f"{kind} name must be a string, got {type(value).__name__}")
        if not value:
            raise NotExposedError(f"'' is not a valid ROS {kind} name (it is empty)")
        if len(value) > MAX_NAME_LENGTH:
            raise NotExposedError(
                f"{short(value)} is not a valid ROS {kind} name: longer than "
                f"{MAX_NAME_LENGTH} characters ({len(value)})"
            )
        return value

    return check


def _type(value: Any, arg: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise MessageError(f"{arg} must be a type name 'pkg/Type', not {short(value)}")
    return value


def _payload(value: Any, arg: str) -> Any:
    if not isinstance(value, dict):
        raise MessageError(f"{arg} must be a dict, not {type(value).__name__}")
    check_plain(value)
    return value


def _optional_payload(value: Any, arg: str) -> Any:
    return {} if value is None else _payload(value, arg)


def _value(value: Any, arg: str) -> Any:
    if value is None:  # the ROS 1 parameter server (XML-RPC) has no nil; ROS 2 cannot set it
        raise MessageError("a parameter value cannot be None (delete the parameter instead)")
    check_plain(value, "", MAX_DEPTH)
    return value


def _token(value: Any, arg: str) -> Any:
    if not isinstance(value, bytes) or not 0 < len(value) <= 128:
        raise ProtocolError("a subscription or goal token must be 1 to 128 bytes")
    return value


def _client_id(value: Any, arg: str) -> Any:
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise ProtocolError("a client id must be a string of 1 to 128 characters")
    return value


def _timeout(value: Any, arg: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MessageError(f"{arg} must be a number of seconds, not {short(value)}")
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise MessageError(
            f"{arg} must be a positive number of seconds up to {MAX_TIMEOUT:g}, not {value!r}"
        )
    return float(value)


def check_qos(qos: Any) -> dict[str, Any] | None:
    """Check a QoS profile (see :data:`pyros.backends.base.QoS`) and return it.

    Args:
        qos: None, or a dict with any of ``reliability``, ``durability``, ``history`` (values
            in :data:`QOS_VALUES`) and ``depth`` (an int from 1 to 1,000,000).

    Raises:
        MessageError: an unknown key or value; ``field`` names it (``"qos.depth"``).
    """
    if qos is None:
        return None
    if not isinstance(qos, dict):
        raise MessageError(f"qos must be a dict, not {type(qos).__name__}", field="qos")
    for key, value in qos.items():
        if key == "depth":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10**6:
                raise MessageError(
                    f"qos depth must be an int from 1 to 1000000, not {short(value)}",
                    field="qos.depth",
                )
        elif key in QOS_VALUES:
            if value not in QOS_VALUES[key]:
                raise MessageError(
                    f"qos {key} must be one of {', '.join(QOS_VALUES[key])}, not {short(value)}",
                    field=f"qos.{key}",
                )
        else:
            raise MessageError(
                f"unknown qos key {short(key)}; known: depth, {', '.join(QOS_VALUES)}",
                field="qos",
            )
    return dict(qos)


def _qos(value: Any, arg: str) -> Any:
    return check_qos(value)


_Check = Callable[[Any, str], Any]

OPS: dict[str, dict[str, tuple[_Check, bool]]] = {
    "hello": {"client": (_client_id, True)},
    "info": {},
    "shutdown": {},
    "topics": {},
    "services": {},
    "params": {},
    "actions": {},
    "nodes": {},
    "publish": {
        "topic": (_name("topic"), True),
        "message": (_payload, True),
        "type": (_type, False),
        "qos": (_qos, False),
    },
    "subscribe": {
        "topic": (_name("topic"), True),
        "token": (_token, True),
        "qos": (_qos, False),
    },
    "unsubscribe": {"token": (_token, True)},
    "call": {
        "service": (_name("service"), True),
        "request": (_optional_payload, False),
        "type": (_type, False),
        "timeout": (_timeout, False),
    },
    "get_param": {"name": (_name("parameter"), True)},
    "set_param": {"name": (_name("parameter"), True), "value": (_value, True)},
    "delete_param": {"name": (_name("parameter"), True)},
    "send_goal": {
        "action": (_name("action"), True),
        "goal": (_optional_payload, False),
        "type": (_type, False),
        "token": (_token, True),
        "timeout": (_timeout, False),
    },
    "cancel_goal": {"token": (_token, True)},
    "topic_info": {"topic": (_name("topic"), True)},
    "service_info": {"service": (_name("service"), True)},
    "action_info": {"action": (_name("action"), True)},
    "node_info": {"node": (_name("node"), True)},
    "definition": {"type": (_type, True)},
}
"""Every request op a node understands, with its arguments: name -> (check, required).

See :class:`NodeProtocol` for what each op does and returns."""


def check_args(op: Any, args: Any) -> dict[str, Any]:
    """Check a request's op and arguments; return the arguments, normalised.

    The client calls this before it sends a request and the node after it decodes one, so
    both refuse exactly the same requests, with the same error.

    Args:
        op: the op name, one of :data:`OPS`.
        args: a dict of the op's arguments (unknown ones are refused, missing optional ones
            are None; a missing ``request`` or ``goal`` becomes ``{}``).

    Raises:
        ProtocolError: unknown op, args not a dict, unknown or missing argument, bad token.
        NotExposedError: a name argument is not a string of a sane length.
        MessageError: a payload is not a dict of plain data (``field`` names the spot), a
            type name or timeout is malformed, a QoS profile is wrong.
    """
    if not isinstance(op, str) or op not in OPS:
        raise ProtocolError(f"unknown op {short(op)}")
    if not isinstance(args, dict):
        raise ProtocolError(f"arguments of {op!r} must be a map, not {type(args).__name__}")
    spec = OPS[op]
    unknown = [key for key in args if key not in spec]
    if unknown:
        raise ProtocolError(f"unknown argument {short(unknown[0])} for {op!r}")
    checked: dict[str, Any] = {}
    for arg, (check, required) in spec.items():
        if arg not in args or (args[arg] is None and check is not _value):
            if check is _value:
                raise MessageError(
                    "a parameter value cannot be None (delete the parameter instead)"
                )
            if required:
                raise ProtocolError(f"{op!r} needs the argument {arg!r}")
            checked[arg] = check(None, arg) if check is _optional_payload else None
            continue
        checked[arg] = check(args[arg], arg)
    return checked


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request decoded and checked by the node. ``id`` 0 means no reply is expected."""

    id: int
    op: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A pending request completed with ``result``."""

    id: int
    result: Any


@dataclass(frozen=True)
class Failure:
    """A pending request failed; ``error`` is the exception to raise to the caller."""

    id: int
    error: PyrosError


@dataclass(frozen=True)
class Heartbeat:
    """The node is alive. ``info`` holds the node's name, pid and client count."""

    seq: int
    info: dict[str, Any]


@dataclass(frozen=True)
class StreamItem:
    """One item for the subscription or goal named ``token``.

    Attributes:
        token: whose it is.
        kind: :data:`KIND_MESSAGE`, :data:`KIND_ERROR`, :data:`KIND_FEEDBACK` or
            :data:`KIND_RESULT`.
        body: the MessagePack body, not decoded yet (a slow subscriber with a short queue
            decodes only what it keeps).
        dropped: messages the node has dropped for this token so far (its send queue to the
            client was full).
    """

    token: bytes
    kind: bytes
    body: bytes
    dropped: int = 0


@dataclass(frozen=True)
class Event:
    """A node event for every client, ``{"event": "disconnected", ...}``."""

    data: dict[str, Any]


@dataclass(frozen=True)
class Subscribed:
    """A client's SUB socket now listens to ``prefix`` (from an XPUB control frame)."""

    prefix: bytes


@dataclass(frozen=True)
class Unsubscribed:
    """No SUB socket listens to ``prefix`` any more."""

    prefix: bytes


def parse_stream(frames: list[bytes]) -> Heartbeat | Event | StreamItem | None:
    """Parse one stream message; None for frames that are not ours or are malformed."""
    if len(frames) != 3:
        return None
    prefix, meta, body = frames
    if prefix.startswith(MESSAGE_PREFIX) and meta:
        kind = meta[:1]
        dropped = 0
        if len(meta) > 1:
            digits = meta[1:]
            if not digits.isdigit() or len(digits) > 20:
                return None
            dropped = int(digits)
        return StreamItem(prefix[len(MESSAGE_PREFIX) :], kind, body, dropped)
    if prefix == HEARTBEAT_PREFIX:
        try:
            version, seq, info = decode(body)
        except (ProtocolError, TypeError, ValueError):
            return None
        if version != PROTOCOL_VERSION or not isinstance(info, dict):
            return None
        return Heartbeat(seq, info)
    if prefix == EVENT_PREFIX:
        try:
            data = decode(body)
        except ProtocolError:
            return None
        return Event(data) if isinstance(data, dict) else None
    return None


# --- client side ----------------------------------------------------------------------------


@dataclass
class _Pending:
    op: str
    deadline: float | None


class ClientProtocol:
    """One client connection's request side: ids, the pending-request table, deadlines.

    A connection is one DEALER socket. Use it from one thread at a time (the sync client keeps
    one per thread; the asyncio client one per event loop).
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.pending: dict[int, _Pending] = {}
        """Requests sent and not yet answered, by id."""

    def send_request(
        self, op: str, args: dict[str, Any], *, now: float, timeout: float | None
    ) -> tuple[int, bytes]:
        """Check and register a request; return ``(id, frame)`` to send on the DEALER socket.

        Args:
            op: one of :data:`OPS`.
            args: the op's arguments, plain data (checked by :func:`check_args`).
            now: the current time in seconds.
            timeout: seconds the caller will wait for the reply; None waits forever.

        Raises:
            ProtocolError, NotExposedError, MessageError: as :func:`check_args`; nothing is
                registered or sent then.
        """
        checked = check_args(op, args)
        request_id = next(self._ids)
        frame = encode([PROTOCOL_VERSION, request_id, op, checked])
        self.pending[request_id] = _Pending(op, None if timeout is None else now + timeout)
        return request_id, frame

    def receive_reply(self, frame: bytes) -> Reply | Failure | None:
        """Match a reply frame to its pending request.

        Returns:
            The completed request, or None for a reply nobody waits for any more (its caller
            timed out) or a malformed frame (the node is ours; this only happens if something
            else writes to the socket, and the waiting caller then times out).
        """
        try:
            version, request_id, ok, payload = decode(frame)
        except (ProtocolError, TypeError, ValueError):
            return None
        if not isinstance(request_id, int) or request_id not in self.pending:
            return None
        del self.pending[request_id]
        if version != PROTOCOL_VERSION:
            return Failure(request_id, ProtocolError(f"node speaks protocol version {version}"))
        if ok:
            return Reply(request_id, payload)
        return Failure(request_id, from_wire(payload))

    def expire(self, now: float) -> list[Failure]:
        """Fail, with :class:`~pyros.exceptions.TimeoutError`, every request past its deadline."""
        expired = [
            request_id
            for request_id, pending in self.pending.items()
            if pending.deadline is not None and pending.deadline <= now
        ]
        failures = []
        for request_id in expired:
            op = self.pending.pop(request_id).op
            failures.append(Failure(request_id, TimeoutError(f"no reply to {op!r} in time")))
        return failures

    def cancel(self, request_id: int) -> None:
        """Forget a request whose caller gave up; a late reply to it will be ignored."""
        self.pending.pop(request_id, None)

    def fail_all(self, error: PyrosError) -> list[Failure]:
        """Fail every pending request with ``error`` (the node died, the client closed)."""
        failures = [Failure(request_id, error) for request_id in self.pending]
        self.pending.clear()
        return failures

    def next_deadline(self) -> float | None:
        """Return the earliest deadline of a pending request, or None."""
        deadlines = [p.deadline for p in self.pending.values() if p.deadline is not None]
        return min(deadlines, default=None)


class Liveness:
    """A client's view of the node's heartbeat.

    Silence never means death here (the client checks the node's process for that); it means
    the node is stalled: stopped by a signal, or starved on a loaded machine.

    Args:
        now: the time the client connected, in seconds; the node has ``grace`` seconds from
            then to send its first heartbeat.
        timeout: seconds of silence after which the node counts as stalled.
        grace: seconds allowed for the first heartbeat.
    """

    def __init__(
        self, *, now: float, timeout: float = HEARTBEAT_TIMEOUT, grace: float = 3.0
    ) -> None:
        self.timeout = timeout
        self.last_heartbeat: float | None = None
        self.info: dict[str, Any] = {}
        self._started = now
        self._grace = grace

    def heard(self, heartbeat: Heartbeat, now: float) -> None:
        """Record a heartbeat received at ``now``."""
        self.last_heartbeat = now
        self.info = heartbeat.info

    def stalled(self, now: float) -> float | None:
        """Return how many seconds the node has been silent if that is too long, else None."""
        since = self._started + self._grace - self.timeout
        if self.last_heartbeat is not None:
            since = self.last_heartbeat
        silence = now - since
        return silence if silence > self.timeout else None


# --- node side ------------------------------------------------------------------------------


@dataclass
class NodeProtocol:
    """A node's side of the wire: decodes requests and control frames, encodes the rest.

    Request ops and their ``args`` (checked by :func:`check_args`):

    =============  ==============================================  ===========================
    op             args                                            result
    =============  ==============================================  ===========================
    hello          ``{"client": str}``                             node info dict
    topics         ``{}``                                          ``{name: type}``
    services       ``{}``                                          ``{name: type}``
    params         ``{}``                                          ``[name, ...]``
    actions        ``{}``                                          ``{name: type}``
    nodes          ``{}``                                          ``[node name, ...]``
    publish        ``{"topic", "message", "type"?, "qos"?}``       None
    subscribe      ``{"topic", "token", "qos"?}``                  ``{"topic", "type", "similar"}``
    unsubscribe    ``{"token"}``                                   None
    call           ``{"service", "request", "timeout"?}``          response dict
    get_param      ``{"name"}``                                    the value
    set_param      ``{"name", "value"}``                           None
    delete_param   ``{"name"}``                                    None
    send_goal      ``{"action", "goal", "token", "timeout"?}``     ``{"action", "type", "id"}``
    cancel_goal    ``{"token"}``                                   None
    topic_info     ``{"topic"}``                                   ``{"type", "publishers", ...}``
    service_info   ``{"service"}``                                 ``{"type", "providers"}``
    action_info    ``{"action"}``                                  ``{"type", "servers", ...}``
    node_info      ``{"node"}``                                    ``{"publishes", ...}``
    definition     ``{"type"}``                                    the definition text
    info           ``{}``                                          node status dict
    shutdown       ``{}``                                          None, then the node exits
    =============  ==============================================  ===========================

    ``subscribe`` and ``send_goal`` are answered once the client's SUB socket for ``token``
    listens; then topic messages, feedback and the result flow on the stream to ``token``.
    """

    heartbeats_sent: int = field(default=0)

    def receive_request(self, frame: bytes) -> Request | tuple[int, bytes]:
        """Decode and check a request frame.

        Returns:
            The :class:`Request`, or ``(id, reply_frame)`` with an error reply when the frame
            or its arguments are malformed (id 0 if even the id could not be read: send
            nothing then).
        """
        try:
            decoded = decode(frame)
        except ProtocolError as exc:
            return 0, self.fail(0, exc)
        if not (isinstance(decoded, list) and len(decoded) == 4):
            return 0, self.fail(0, ProtocolError("a request is [version, id, op, args]"))
        version, request_id, op, args = decoded
        if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 0:
            return 0, self.fail(0, ProtocolError(f"bad request id {short(request_id)}"))
        if request_id > 2**63:
            return 0, self.fail(0, ProtocolError("request id out of range"))
        if version != PROTOCOL_VERSION:
            error = ProtocolError(
                f"client speaks protocol version {short(version)}, node speaks {PROTOCOL_VERSION}"
            )
            return request_id, self.fail(request_id, error)
        try:
            checked = check_args(op, args)
        except PyrosError as exc:
            return request_id, self.fail(request_id, exc)
        return Request(request_id, op, checked)

    def reply(self, request_id: int, result: Any) -> bytes:
        """Encode a successful reply.

        Raises:
            MessageError: ``result`` is not plain data.
        """
        return encode([PROTOCOL_VERSION, request_id, True, result])

    def fail(self, request_id: int, error: PyrosError) -> bytes:
        """Encode a failed reply carrying ``error``."""
        return encode([PROTOCOL_VERSION, request_id, False, error.to_wire()])

    def heartbeat(self, info: dict[str, Any]) -> list[bytes]:
        """Encode the next heartbeat; ``info`` is plain data describing the node."""
        self.heartbeats_sent += 1
        return [HEARTBEAT_PREFIX, b"", encode([PROTOCOL_VERSION, self.heartbeats_sent, info])]

    @staticmethod
    def event(data: dict[str, Any]) -> list[bytes]:
        """Encode a node event for every client (``{"event": str, ...}``)."""
        return [EVENT_PREFIX, b"", encode(data)]

    @staticmethod
    def stream_frames(token: bytes, kind: bytes, body: bytes, dropped: int = 0) -> list[bytes]:
        """Return the stream frames carrying ``body`` (already :func:`encode`-d) to ``token``.

        Args:
            token: the subscription or goal.
            kind: one of the ``KIND_*`` bytes.
            body: the encoded body.
            dropped: messages dropped for ``token`` by the node so far.
        """
        meta = kind if not dropped else kind + b"%d" % dropped
        return [MESSAGE_PREFIX + token, meta, body]

    @staticmethod
    def receive_control(frame: bytes) -> Subscribed | Unsubscribed | None:
        """Decode an XPUB control frame (a SUB socket subscribing or unsubscribing)."""
        if frame[:1] == b"\x01":
            return Subscribed(frame[1:])
        if frame[:1] == b"\x00":
            return Unsubscribed(frame[1:])
        return None
