"""The wire format between a client and a node process, with no I/O in it.

This module imports no zmq, no ROS and no asyncio, and never reads a clock: callers pass
``now`` (seconds, any monotonic origin) and feed it frames; it hands back frames to send and
events that say what happened. The sync client, the asyncio client and the node loop are thin
I/O layers around it (the design of h11 and of websockets' ``protocol.py``).

Sockets and frames::

    client DEALER  --request-->  ROUTER node      one frame: [version, id, op, args]
    client DEALER  <--reply----  ROUTER node      one frame: [version, id, ok, payload]
    client SUB     <--stream---  XPUB   node      two frames: [prefix, body]
    client SUB     --control-->  XPUB   node      b"\\x01" + prefix (subscribe) / b"\\x00" + prefix

Every frame body is MessagePack (https://msgpack.org, ``bin`` type for ``bytes``), never
pickle: a node must not execute what a peer sends. ``id`` is a positive int unique per
connection, or 0 for a notification that gets no reply. ``ok`` is True with the op's result as
``payload``, or False with an error map ``{"type", "message", "field"?}``
(:func:`pyros.exceptions.from_wire`).

Stream prefixes:

* ``b"h"`` heartbeat, body ``[version, seq, info]``, sent every ``HEARTBEAT_INTERVAL`` seconds.
* ``b"s" + token`` one topic message for the subscription the client named ``token``; the body
  is the message dict. Tokens are chosen by clients and unique, so the node can tell, from the
  XPUB control frames, the moment a client's SUB socket really listens (no "slow joiner" loss)
  and when it stopped listening (its process died: ZeroMQ drops its subscriptions).
* ``b"c" + client_id`` is never sent; clients subscribe to it so the node can count them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import msgpack

from pyros.exceptions import (
    MessageError,
    NodeDiedError,
    ProtocolError,
    PyrosError,
    TimeoutError,
    from_wire,
)

__all__ = [
    "PROTOCOL_VERSION",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "OPS",
    "HEARTBEAT_PREFIX",
    "MESSAGE_PREFIX",
    "CLIENT_PREFIX",
    "encode",
    "decode",
    "Request",
    "Reply",
    "Failure",
    "Heartbeat",
    "Message",
    "Subscribed",
    "Unsubscribed",
    "ClientProtocol",
    "StreamProtocol",
    "NodeProtocol",
]

PROTOCOL_VERSION = 1
"""Bumped on any incompatible change; a node answers other versions with ProtocolError."""

HEARTBEAT_INTERVAL = 0.2
"""Seconds between two node heartbeats."""

HEARTBEAT_TIMEOUT = 3.0
"""Seconds of heartbeat silence after which a client declares the node dead.

A node that exits is noticed sooner, from its process (see ``pyros.client.node_exited``); this
catches a node that is alive but stuck, and is long enough that a busy 2-core machine does not
make a healthy node look dead."""

OPS = frozenset(
    {
        "hello",
        "topics",
        "services",
        "params",
        "publish",
        "subscribe",
        "unsubscribe",
        "call",
        "get_param",
        "set_param",
        "info",
        "shutdown",
    }
)
"""Every request op a node understands. See :class:`NodeProtocol` for their arguments."""

HEARTBEAT_PREFIX = b"h"
MESSAGE_PREFIX = b"s"
CLIENT_PREFIX = b"c"


def encode(obj: Any) -> bytes:
    """Serialize plain data (None, bool, int, float, str, bytes, list, dict) with MessagePack.

    Raises:
        MessageError: ``obj`` holds something that is not plain data (a set, an object...).
    """
    try:
        return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageError(f"not plain data (dict, list, str, bytes, numbers): {exc}") from exc


def decode(data: bytes) -> Any:
    """Deserialize one MessagePack frame.

    Raises:
        ProtocolError: the frame is not one valid MessagePack value.
    """
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises ValueError, ExtraData, FormatError, StackError...
        raise ProtocolError(f"undecodable frame ({len(data)} bytes): {exc}") from exc


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request decoded by the node. ``id`` 0 means no reply is expected."""

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
class Message:
    """A topic message for the subscription named ``token``."""

    token: bytes
    message: Any


@dataclass(frozen=True)
class Subscribed:
    """A client's SUB socket now listens to ``prefix`` (from an XPUB control frame)."""

    prefix: bytes


@dataclass(frozen=True)
class Unsubscribed:
    """No SUB socket listens to ``prefix`` any more."""

    prefix: bytes


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
        """Register a request and return ``(id, frame)`` to send on the DEALER socket.

        Args:
            op: one of :data:`OPS`.
            args: the op's arguments, plain data.
            now: the current time in seconds.
            timeout: seconds the caller will wait for the reply; None waits forever.

        Raises:
            ProtocolError: unknown op.
            MessageError: ``args`` holds something that is not plain data.
        """
        if op not in OPS:
            raise ProtocolError(f"unknown op {op!r}")
        request_id = next(self._ids)
        frame = encode([PROTOCOL_VERSION, request_id, op, args])
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
        if request_id not in self.pending:
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


class StreamProtocol:
    """A client's SUB side: decodes stream frames and watches the node's heartbeat.

    Args:
        now: the time the client connected, in seconds; the node has ``grace`` seconds from
            then to send its first heartbeat.
        timeout: seconds of heartbeat silence after which the node counts as dead.
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

    def receive(self, frames: list[bytes], now: float) -> Heartbeat | Message | None:
        """Decode one stream message; returns None for frames that are not ours."""
        if len(frames) != 2:
            return None
        prefix, body = frames
        if prefix.startswith(MESSAGE_PREFIX):
            try:
                message = decode(body)
            except ProtocolError:
                return None
            self.last_heartbeat = now  # any traffic proves the node alive
            return Message(prefix[len(MESSAGE_PREFIX) :], message)
        if prefix == HEARTBEAT_PREFIX:
            try:
                version, seq, info = decode(body)
            except (ProtocolError, TypeError, ValueError):
                return None
            if version != PROTOCOL_VERSION or not isinstance(info, dict):
                return None
            self.last_heartbeat = now
            self.info = info
            return Heartbeat(seq, info)
        return None

    def node_dead(self, now: float) -> NodeDiedError | None:
        """Return the error to raise if the node has been silent too long, else None."""
        if self.last_heartbeat is None:
            if now - self._started > self._grace:
                return NodeDiedError(f"no heartbeat from the node within {self._grace:.1f} s")
            return None
        silence = now - self.last_heartbeat
        if silence > self.timeout:
            return NodeDiedError(f"the node sent no heartbeat for {silence:.1f} s")
        return None

    def next_check(self, now: float) -> float:
        """Return when :meth:`node_dead` could first become true, for a poll timeout."""
        if self.last_heartbeat is None:
            return self._started + self._grace
        return self.last_heartbeat + self.timeout


# --- node side ------------------------------------------------------------------------------


@dataclass
class NodeProtocol:
    """A node's side of the wire: decodes requests and control frames, encodes the rest.

    Request ops and their ``args``:

    ============  ==================================================  =========================
    op            args                                                result
    ============  ==================================================  =========================
    hello         ``{"client": str}``                                 node info dict
    topics        ``{}``                                              ``{name: "pkg/Type"}``
    services      ``{}``                                              ``{name: "pkg/Type"}``
    params        ``{}``                                              ``[name, ...]``
    publish       ``{"topic", "message": dict, "type": str|None}``    None
    subscribe     ``{"topic", "token": bytes}``                       ``{"type": str|None}``
    unsubscribe   ``{"token": bytes}``                                None
    call          ``{"service", "request": dict, "timeout": s}``      response dict
    get_param     ``{"name"}``                                        the value
    set_param     ``{"name", "value"}``                               None
    info          ``{}``                                              node status dict
    shutdown      ``{}``                                              None, then the node exits
    ============  ==================================================  =========================
    """

    heartbeats_sent: int = field(default=0)

    def receive_request(self, frame: bytes) -> Request | tuple[int, bytes]:
        """Decode a request frame.

        Returns:
            The :class:`Request`, or ``(id, reply_frame)`` with a ProtocolError reply when the
            frame is malformed (id 0 if even the id could not be read: send nothing then).
        """
        try:
            decoded = decode(frame)
        except ProtocolError as exc:
            return 0, self.fail(0, exc)
        if not (isinstance(decoded, list) and len(decoded) == 4):
            return 0, self.fail(0, ProtocolError("a request is [version, id, op, args]"))
        version, request_id, op, args = decoded
        if isinstance(request_id, bool) or not isinstance(request_id, int) or request_id < 0:
            return 0, self.fail(0, ProtocolError(f"bad request id {request_id!r}"))
        if version != PROTOCOL_VERSION:
            error = ProtocolError(
                f"client speaks protocol version {version!r}, node speaks {PROTOCOL_VERSION}"
            )
            return request_id, self.fail(request_id, error)
        if op not in OPS:
            return request_id, self.fail(request_id, ProtocolError(f"unknown op {op!r}"))
        if not isinstance(args, dict):
            return request_id, self.fail(request_id, ProtocolError("request args must be a map"))
        return Request(request_id, op, args)

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
        return [HEARTBEAT_PREFIX, encode([PROTOCOL_VERSION, self.heartbeats_sent, info])]

    @staticmethod
    def message_frames(token: bytes, body: bytes) -> list[bytes]:
        """Return the stream frames carrying ``body`` (an :func:`encode`-d message) to ``token``."""
        return [MESSAGE_PREFIX + token, body]

    @staticmethod
    def receive_control(frame: bytes) -> Subscribed | Unsubscribed | None:
        """Decode an XPUB control frame (a SUB socket subscribing or unsubscribing)."""
        if frame[:1] == b"\x01":
            return Subscribed(frame[1:])
        if frame[:1] == b"\x00":
            return Unsubscribed(frame[1:])
        return None
