"""The websocket relay (``pyros relay``): robots' connectors on one side, operators on the other.

One asyncio process, one port, routed by URL path (``websockets.asyncio.server``):

* ``/device``: cloud connectors speak the device protocol (:mod:`pyros.cloud.device_protocol`,
  whose docstring holds the agreed specification).
* ``/``: operators (roslibpy, roslibjs, browsers) speak rosbridge v2 (``ROSBRIDGE_PROTOCOL.md`` in
  RobotWebTools/rosbridge_suite; details in :mod:`pyros.cloud.rosbridge`). Device ``robot1``'s
  ``/turtle1/pose`` is ``/robot1/turtle1/pose``, so one connection sees the whole fleet.
* ``GET /api/devices``: plain HTTP, a JSON list of the devices the operator token may read
  (each with ``may_command``: whether that token may command it).
* ``GET /dashboard``: a redirect to the fleet dashboard (``pyros relay --dashboard`` runs it as
  its own process on its own port, see :mod:`pyros.dashboard`), or 404 without one.

Authentication (:mod:`pyros.cloud.auth`) happens in the handshake (HTTP 401/403 on refusal):
``Authorization: Bearer <token>`` or ``?token=``; connectors also name their device with
``X-Pyros-Device`` or ``?device=``. An operator without credentials in the handshake (a browser
cannot set headers) must send ``{"op": "auth", "token": "..."}`` first. Without a tokens file
only loopback peers are accepted.

What the relay keeps (:mod:`pyros.cloud.store`): every device seen, online or not, its last-seen
time, topics, services, command globs, and the latest value of each forwarded topic, so a late
subscriber gets it at once.

Flow and limits (:mod:`pyros.cloud.limits`): each connection has one reader task and one writer
task with a bounded send queue that drops its oldest frames (counted, reported to the peer in a
``status`` warning at most once per :attr:`Limits.warning_interval`), so a slow operator never
slows a device or another operator. Incoming frames are rate limited per connection (token
bucket). Bad JSON, unknown ops, wrong field types, binary frames, frames above
:attr:`Limits.max_message_bytes` and an operator's rate-limited messages get a ``status``
error to that peer only; the connection stays open. A device over its rate limit gets the
error and is disconnected with code 1013 (try again later) rather than losing a message: its
connector resends everything not acknowledged after it reconnects. Frames above
:attr:`Limits.max_frame_bytes` make websockets close the connection (code 1009). Nothing a
peer sends can stop the relay.

Device data flow: a connector's ``publish`` (seq n) is accepted once per session (duplicates after
a reconnect are dropped), stored as the latest value, sent to every subscribed operator (rosbridge
``throttle_rate`` and ``queue_length`` applied per operator and topic) and to every device that
subscribed to it (device-to-device broadcast, never back to its sender), then acknowledged with
a cumulative ``ack`` at least every :data:`~pyros.cloud.device_protocol.ACK_INTERVAL` seconds or
:data:`~pyros.cloud.device_protocol.ACK_EVERY` messages.

Commands: an operator's ``publish`` to ``/robot1/<topic>`` needs command rights on ``robot1``
and a topic that matches the device's ``commands`` globs; ``call_service`` to
``/robot1/<service>`` needs command rights and a service the device announced. Calls are
forwarded with a relay-made id and answered to the operator with its own id; a call fails
(``service_response`` with ``result: false``) after :attr:`Limits.service_timeout` seconds or
when the device goes offline. Every refused ``call_service`` is answered with a
``service_response`` so a blocking roslibpy call never hangs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import signal
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pyros.cloud import device_protocol as dp
from pyros.cloud import rosbridge as rb
from pyros.cloud.auth import (
    LOOPBACK_GRANT,
    AuthError,
    DeviceEntry,
    Grant,
    Tokens,
    is_loopback,
    valid_device_id,
)
from pyros.cloud.limits import Limits, SendQueue, TokenBucket
from pyros.cloud.store import DeviceRecord, Registry, full_name, split_name

__all__ = ["Relay", "run", "tls_context", "CLOSE_POLICY", "CLOSE_REPLACED", "DASHBOARD_PATH"]

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
"""RFC 6455 "Try Again Later": a device over its rate limit; it reconnects and resends."""
"""Websocket close code for a peer that broke the rules (wrong hello device, failed auth)."""

DASHBOARD_PATH = "/dashboard"
"""``GET`` it for a redirect to the fleet dashboard (when the relay runs one)."""

CLOSE_REPLACED = dp.REPLACED_CLOSE_CODE
"""Close code for a device connection replaced by a newer one of the same device id."""

_COMMAND_IDS_KEPT = 10000
"""Operator publishes remembered for routing a device's refusal back (oldest forgotten)."""


def tls_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """Return a server TLS context (``wss://``) from a PEM certificate chain and key.

    Args:
        certfile: PEM file with the certificate (and chain); may hold the key too.
        keyfile: PEM file with the private key, when not in ``certfile``.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: the files do not hold a matching certificate and key.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


@dataclass(frozen=True)
class _Identity:
    kind: str  # "device" or "operator"
    device: str = ""
    entry: DeviceEntry | None = None
    grant: Grant | None = None


class _Peer:
    """One connection: send queue, writer task, rate limit, warnings."""

    def __init__(self, relay: Relay, ws: ServerConnection, name: str) -> None:
        self.relay = relay
        self.ws = ws
        self.name = name
        limits = relay.limits
        self.queue = SendQueue(limits.send_queue, limits.send_queue_bytes)
        self.loop = asyncio.get_running_loop()
        self.bucket = TokenBucket(limits.rate, limits.burst, self.loop.time())
        self.rate_limited = False
        self.level = "info"
        self.closed = False
        self._wakeup = asyncio.Event()
        self._rate_dropped = 0
        self._warned_at: dict[str, float] = {}
        self._warn_timer: dict[str, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.writer = asyncio.create_task(self._write(), name=f"pyros-relay-writer-{name}")

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task tied to this peer (kept referenced until it ends)."""
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def send(self, frame: str) -> None:
        """Queue ``frame`` for this peer (dropping the oldest frames if the queue is full)."""
        if self.closed:
            return
        if self.queue.put(frame):
            self._warn("queue")
        self._wakeup.set()

    def status(self, level: str, msg: str, id: Any = None) -> None:
        """Queue a ``status`` message if this peer's level lets it through."""
        if rb.level_allows(self.level, level):
            self.send(rb.encode(rb.status(level, msg, id)))

    def admit(self, frame: str | bytes) -> bool:
        """Apply the rate limit and the size limit to a received frame; report refusals."""
        if not self.bucket.take(self.loop.time()):
            self._rate_dropped += 1
            self._warn("rate")
            self.rate_limited = True
            return False
        limit = self.relay.limits.max_message_bytes
        size = len(frame)
        if isinstance(frame, str) and size * 4 > limit:
            size = len(frame.encode("utf-8", "surrogatepass"))
        if size > limit:
            self.status("error", f"frame of {size} bytes dropped: the limit is {limit} bytes")
            return False
        return True

    def _warn(self, kind: str) -> None:
        """Report queue drops or rate limiting, at most once per warning interval per kind."""
        now = self.loop.time()
        interval = self.relay.limits.warning_interval
        due = self._warned_at.get(kind, -math.inf) + interval
        if now < due:
            if kind not in self._warn_timer:
                self._warn_timer[kind] = self.loop.call_at(due, self._warn_due, kind)
            return
        self._warned_at[kind] = now
        if kind == "queue":
            dropped = self.queue.take_dropped()
            if dropped:
                self.status(
                    "warning",
                    f"dropped {dropped} outgoing messages: this connection reads too slowly "
                    f"(send queue limit {self.queue.max_frames} frames)",
                )
        else:
            dropped, self._rate_dropped = self._rate_dropped, 0
            if dropped:
                limits = self.relay.limits
                self.status(
                    "error",
                    f"rate limit: dropped {dropped} messages (limit {limits.rate:g} messages/s, "
                    f"burst {limits.burst:g})",
                )

    def _warn_due(self, kind: str) -> None:
        self._warn_timer.pop(kind, None)
        if not self.closed:
            self._warn(kind)

    async def _write(self) -> None:
        try:
            while True:
                while not self.queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await self.ws.send(self.queue.pop())
        except ConnectionClosed:
            return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued (for at most one second), then close the websocket."""
        if not self.closed:
            deadline = self.loop.time() + 1.0
            while self.queue and self.loop.time() < deadline and not self.writer.done():
                await asyncio.sleep(0.01)
        await self.ws.close(code, reason)

    def stop(self) -> None:
        """Stop the writer and the timers (the connection is gone)."""
        self.closed = True
        self.writer.cancel()
        for timer in self._warn_timer.values():
            timer.cancel()
        self._warn_timer.clear()


class _Subscription:
    """One operator's subscription to one topic (rosbridge merges subscriptions by topic)."""

    def __init__(self, peer: _Operator, topic: str) -> None:
        self.peer = peer
        self.topic = topic
        self.ids: dict[Any, tuple[int, int]] = {}
        self.throttle = 0.0
        self.buffer: deque[str] = deque(maxlen=1)
        self.last_sent = -math.inf
        self.timer: asyncio.TimerHandle | None = None

    def update(self) -> None:
        """Apply rosbridge's merge rule: the lowest throttle_rate, the highest queue_length."""
        self.throttle = min(rate for rate, _ in self.ids.values()) / 1000.0
        length = max(1, max(length for _, length in self.ids.values()))
        if length != self.buffer.maxlen:
            self.buffer = deque(self.buffer, maxlen=length)

    def offer(self, frame: str) -> None:
        """Send ``frame`` now, or queue it if the throttle says wait (oldest dropped)."""
        if self.throttle <= 0:
            self.peer.send(frame)
            return
        now = self.peer.loop.time()
        if self.timer is None and now - self.last_sent >= self.throttle:
            self.last_sent = now
            self.peer.send(frame)
            return
        self.buffer.append(frame)
        if self.timer is None:
            self.timer = self.peer.loop.call_at(self.last_sent + self.throttle, self._flush)

    def _flush(self) -> None:
        self.timer = None
        if self.buffer and not self.peer.closed:
            self.last_sent = self.peer.loop.time()
            self.peer.send(self.buffer.popleft())
        if self.buffer:
            self.timer = self.peer.loop.call_at(self.last_sent + self.throttle, self._flush)

    def cancel(self) -> None:
        """Stop the pending throttled send."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Operator(_Peer):
    def __init__(self, relay: Relay, ws: ServerConnection, grant: Grant | None) -> None:
        super().__init__(relay, ws, f"operator@{ws.remote_address}")
        self.grant = grant
        self.level = "warning"
        self.subscriptions: dict[str, _Subscription] = {}
        self.advertised: dict[str, str] = {}


class _Device(_Peer):
    def __init__(
        self, relay: Relay, ws: ServerConnection, record: DeviceRecord, entry: DeviceEntry
    ) -> None:
        super().__init__(relay, ws, f"device {record.id}")
        self.record = record
        self.entry = entry
        self.said_hello = False
        self.unacked = 0
        self.ack_timer: asyncio.TimerHandle | None = None
        self.patterns: set[str] = set()

    def may_read(self, device: str) -> bool:
        return any(fnmatchcase(device, pattern) for pattern in self.entry.read)

    def stop(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        super().stop()


@dataclass
class _Call:
    operator: _Operator
    operator_id: Any
    service: str
    device: _Device
    timer: asyncio.TimerHandle


class Relay:
    """The relay server. Start it with :meth:`start` inside a running event loop.

    Args:
        tokens: the parsed tokens file; None accepts only loopback peers, granted everything.
        limits: every limit; defaults as in :class:`~pyros.cloud.limits.Limits`.
        dashboard_port: the TCP port of the fleet dashboard on this host; ``GET /dashboard``
            redirects there (None: no dashboard, 404).

    Attributes:
        registry: every device seen (:class:`~pyros.cloud.store.Registry`).
        port: the bound TCP port after :meth:`start` (useful with port 0).
    """

    def __init__(
        self,
        tokens: Tokens | None = None,
        limits: Limits | None = None,
        dashboard_port: int | None = None,
    ) -> None:
        self.tokens = tokens
        self.limits = limits or Limits()
        self.dashboard_port = dashboard_port
        self.dashboard_scheme = "http"
        """``https`` when the dashboard serves TLS (``GET /dashboard`` redirects there)."""
        self.registry = Registry()
        self.port = 0
        self._server: Server | None = None
        self._devices: dict[str, _Device] = {}
        self._operators: set[_Operator] = set()
        self._subscribers: dict[str, set[_Subscription]] = {}
        self._device_subscribers: set[_Device] = set()
        self._calls: dict[str, _Call] = {}
        self._commands: OrderedDict[str, tuple[_Operator, Any]] = OrderedDict()
        self._ids = itertools.count(1)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Bind and start serving.

        Args:
            host: address to bind (``127.0.0.1`` keeps it on this machine).
            port: TCP port; 0 picks a free one (read :attr:`port` after).
            ssl_context: a server context for ``wss://`` (see :func:`tls_context`).

        Raises:
            OSError: the address cannot be bound.
        """
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            max_size=self.limits.max_frame_bytes,
            ping_interval=self.limits.ping_interval,
            ping_timeout=self.limits.ping_interval,
            ssl=ssl_context,
            backlog=1024,
        )
        sockets = list(self._server.sockets)
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def close(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until cancelled (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("call start() first")
        await self._server.serve_forever()

    # --- handshake ----------------------------------------------------------------------------

    def _identify(self, request: Request, peer_host: str | None) -> _Identity | None:
        """Authenticate a handshake; return None for ``GET /api/devices`` and unknown paths.

        Raises:
            AuthError: refused (its ``status`` is the HTTP status to answer).
        """
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        token = dp.bearer_token(request.headers.get(dp.AUTHORIZATION_HEADER))
        if token is None and query.get(dp.TOKEN_QUERY):
            token = query[dp.TOKEN_QUERY][0]
        if self.tokens is None and not is_loopback(peer_host):
            raise AuthError("this relay has no tokens file and accepts only loopback clients", 403)
        if url.path == dp.DEVICE_PATH:
            device = request.headers.get(dp.DEVICE_HEADER)
            if device is None and query.get(dp.DEVICE_QUERY):
                device = query[dp.DEVICE_QUERY][0]
            if self.tokens is None:
                if not device or not valid_device_id(device):
                    raise AuthError(f"a device must name a valid device id, not {device!r}")
                return _Identity("device", device, DeviceEntry("", ("*",)))
            entry = self.tokens.device(device, token)
            assert device is not None
            return _Identity("device", device, entry)
        if url.path in (dp.OPERATOR_PATH, ""):
            if self.tokens is None:
                return _Identity("operator", grant=LOOPBACK_GRANT)
            if token is None:
                return _Identity("operator")  # must send {"op": "auth"} first
            return _Identity("operator", grant=self.tokens.operator(token))
        return None

    def _operator_grant(self, request: Request) -> Grant:
        if self.tokens is None:
            return LOOPBACK_GRANT
        url = urlsplit(request.path)
        token = dp.bearer_token(request.headers.get(dp.AUTHORIZATION_HEADER))
        if token is None:
            given = parse_qs(url.query).get(dp.TOKEN_QUERY)
            token = given[0] if given else None
        return self.tokens.operator(token)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        host = _peer_host(connection)
        try:
            identity = self._identify(request, host)
            path = urlsplit(request.path).path
            if path in (DASHBOARD_PATH, DASHBOARD_PATH + "/"):
                return self._dashboard_redirect(connection, request)
            if path == dp.DEVICES_API_PATH:
                grant = self._operator_grant(request)
                devices = self.registry.describe(grant.may_read)
                for device in devices:
                    device["may_command"] = grant.may_command(device["id"])
                body = json.dumps(devices)
                response = connection.respond(200, body)
                del response.headers["Content-Type"]
                response.headers["Content-Type"] = "application/json"
                return response
        except AuthError as exc:
            response = connection.respond(exc.status, f"{exc}\n")
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="pyros relay"'
            return response
        if identity is None:
            return connection.respond(
                404, "not found: operators use /, connectors /device, GET /api/devices lists\n"
            )
        return None

    def _dashboard_redirect(self, connection: ServerConnection, request: Request) -> Response:
        if self.dashboard_port is None:
            return connection.respond(404, "no dashboard: start the relay with --dashboard\n")
        host = request.headers.get("Host", "127.0.0.1")
        hostname = urlsplit(f"//{host}").hostname or "127.0.0.1"
        if ":" in hostname:
            hostname = f"[{hostname}]"  # an IPv6 literal
        location = f"{self.dashboard_scheme}://{hostname}:{self.dashboard_port}/"
        response = connection.respond(302, f"the dashboard is at {location}\n")
        response.headers["Location"] = location
        return response

    # --- connections --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            identity = self._identify(ws.request, _peer_host(ws)) if ws.request else None
        except AuthError as exc:  # checked in _process_request already; the tokens are fixed
            await ws.close(CLOSE_POLICY, str(exc)[:120])
            return
        if identity is None:
            await ws.close(CLOSE_POLICY, "unknown path")
        elif identity.kind == "device":
            assert identity.entry is not None
            await self._serve_device(ws, identity.device, identity.entry)
        else:
            await self._serve_operator(ws, identity.grant)

    async def _receive(
        self, peer: _Peer, handle: Callable[[str | bytes], tuple[int, str] | None]
    ) -> None:
        """Read frames until the connection ends; ``handle`` may return (code, reason) to close."""
        try:
            async for frame in peer.ws:
                if not peer.admit(frame):
                    if isinstance(peer, _Device) and peer.rate_limited:
                        # Dropping a device's message would lose it for good: the next
                        # cumulative ack would cover its seq. Close instead; the connector
                        # reconnects after its backoff and resends from this message on.
                        await peer.close(CLOSE_TRY_AGAIN, "rate limit exceeded: resend later")
                        return
                    continue
                try:
                    close = handle(frame)
                except Exception as exc:  # a relay bug must not end the relay: report it
                    log.exception("error handling a frame from %s", peer.name)
                    peer.status("error", f"relay error handling this message: {exc!r}")
                    continue
                if close is not None:
                    await peer.close(*close)
                    return
        except ConnectionClosed:
            return

    # --- devices ------------------------------------------------------------------------------

    async def _serve_device(self, ws: ServerConnection, device: str, entry: DeviceEntry) -> None:
        record = self.registry.connected(device, time.time())
        peer = _Device(self, ws, record, entry)
        old = self._devices.get(device)
        self._devices[device] = peer
        if old is not None:
            self._device_gone(old, f"device {device} reconnected")
            old.spawn(old.ws.close(CLOSE_REPLACED, "replaced"))
        log.info("device %s connected from %s", device, ws.remote_address)
        try:
            await self._receive(peer, lambda frame: self._device_frame(peer, frame))
        finally:
            if self._devices.get(device) is peer:
                del self._devices[device]
                self.registry.disconnected(device, time.time())
                self._device_gone(peer, f"device {device} went offline")
            peer.stop()
            log.info("device %s disconnected", device)

    def _device_gone(self, peer: _Device, why: str) -> None:
        self._device_subscribers.discard(peer)
        for call_id, call in list(self._calls.items()):
            if call.device is peer:
                del self._calls[call_id]
                call.timer.cancel()
                call.operator.send(
                    rb.encode(rb.service_response(call.operator_id, call.service, why, False))
                )

    def _device_frame(self, peer: _Device, frame: str | bytes) -> tuple[int, str] | None:
        record = peer.record
        now = time.time()
        record.last_seen = now
        try:
            message = dp.decode_from_device(frame)
        except dp.DeviceProtocolError as exc:
            peer.status("error", str(exc), exc.id)
            return None
        op = message["op"]
        if op == "hello":
            if message["device"] != record.id:
                peer.status(
                    "error",
                    f"hello names device {message['device']!r} but this connection "
                    f"authenticated as {record.id!r}",
                )
                return (CLOSE_POLICY, "device id mismatch")
            resume_after = self.registry.hello(record.id, message, now)
            peer.said_hello = True
            peer.send(dp.encode(dp.welcome(record.id, resume_after)))
            return None
        if not peer.said_hello:
            peer.status("error", f"{op}: send hello first", message.get("id"))
            return None
        if op == "publish":
            self._device_publish(peer, message, now)
        elif op == "service_response":
            self._device_service_response(peer, message)
        elif op == "status":
            self._device_status(peer, message, now)
        elif op == "subscribe":
            self._device_subscribe(peer, message["topic"])
        else:  # unsubscribe
            peer.patterns.discard(message["topic"])
            if not peer.patterns:
                self._device_subscribers.discard(peer)
        return None

    def _device_publish(self, peer: _Device, message: dict[str, Any], now: float) -> None:
        record = peer.record
        topic: str = message["topic"]
        if topic not in record.topics:
            peer.status(
                "error",
                f"publish: topic {topic} is not among the topics of the last hello; dropped",
            )
            return
        if self.registry.accept(record, message["seq"], now):
            msg = message["msg"]
            name = full_name(record.id, topic)
            frame = rb.encode(rb.publish(name, msg))
            self.registry.store(record, topic, msg, frame, now)
            for subscription in self._subscribers.get(name, ()):
                subscription.offer(frame)
            device_frame = None  # devices get the type too: they publish it on their robot
            for other in self._device_subscribers:
                if (
                    other is not peer
                    and other.may_read(record.id)
                    and _any_match(name, other.patterns)
                ):
                    if device_frame is None:
                        device_frame = dp.encode(dp.command(name, msg, None, record.topics[topic]))
                    other.send(device_frame)
        peer.unacked += 1
        if peer.unacked >= dp.ACK_EVERY:
            self._ack(peer)
        elif peer.ack_timer is None:
            peer.ack_timer = peer.loop.call_later(dp.ACK_INTERVAL, self._ack, peer)

    def _ack(self, peer: _Device) -> None:
        if peer.ack_timer is not None:
            peer.ack_timer.cancel()
            peer.ack_timer = None
        peer.unacked = 0
        peer.send(dp.encode(dp.ack(peer.record.last_seq())))

    def _device_service_response(self, peer: _Device, message: dict[str, Any]) -> None:
        call = self._calls.get(message["id"])
        if call is None or call.device is not peer:
            peer.status(
                "warning",
                f"service_response: no pending call {message['id']!r} (timed out or unknown)",
                message["id"],
            )
            return
        del self._calls[message["id"]]
        call.timer.cancel()
        call.operator.send(
            rb.encode(
                rb.service_response(
                    call.operator_id, call.service, message["values"], message["result"]
                )
            )
        )

    def _device_status(self, peer: _Device, message: dict[str, Any], now: float) -> None:
        origin = self._commands.pop(message.get("id") or "", None)
        if origin is not None:
            operator, operator_id = origin
            operator.status(message["level"], f"{peer.record.id}: {message['msg']}", operator_id)
            return
        peer.record.last_status = dict(message, stamp=now)

    def _device_subscribe(self, peer: _Device, pattern: str) -> None:
        parts = split_name(pattern)
        if parts is None:
            peer.status("error", f"subscribe: {pattern} is not a /<device>/<topic> name or glob")
            return
        source = parts[0]
        if not any(char in source for char in "*?[") and not peer.may_read(source):
            peer.status("error", f"subscribe: not allowed to read device {source!r}")
            return
        peer.patterns.add(pattern)
        self._device_subscribers.add(peer)
        for other_id, other in self.registry.devices.items():
            if other_id == peer.record.id or not peer.may_read(other_id):
                continue
            for topic, latest in other.latest.items():
                if fnmatchcase(full_name(other_id, topic), pattern):
                    peer.send(latest.frame)

    # --- operators ----------------------------------------------------------------------------

    async def _serve_operator(self, ws: ServerConnection, grant: Grant | None) -> None:
        peer = _Operator(self, ws, grant)
        self._operators.add(peer)
        timer = None
        if grant is None:
            timer = peer.loop.call_later(self.limits.auth_timeout, self._auth_timeout, peer)
        try:
            await self._receive(peer, lambda frame: self._operator_frame(peer, frame))
        finally:
            if timer is not None:
                timer.cancel()
            self._operators.discard(peer)
            for subscription in peer.subscriptions.values():
                subscription.cancel()
                self._unindex(subscription)
            for call_id in [key for key, call in self._calls.items() if call.operator is peer]:
                self._calls.pop(call_id).timer.cancel()
            peer.stop()

    def _auth_timeout(self, peer: _Operator) -> None:
        if peer.grant is None and not peer.closed:
            peer.status("error", "no {'op': 'auth', 'token': ...} message in time")
            peer.spawn(peer.close(CLOSE_POLICY, "authentication timeout"))

    def _unindex(self, subscription: _Subscription) -> None:
        subscribers = self._subscribers.get(subscription.topic)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.topic]

    def _operator_frame(self, peer: _Operator, frame: str | bytes) -> tuple[int, str] | None:
        try:
            message = rb.decode_operator(frame)
        except rb.OperatorProtocolError as exc:
            if peer.grant is None:
                peer.status("error", f"{exc}; authenticate first with {{'op': 'auth'}}", exc.id)
                return (CLOSE_POLICY, "authentication required")
            if exc.op == "call_service" and exc.id is not None:
                peer.send(rb.encode(rb.service_response(exc.id, "", str(exc), False)))
            peer.status("error", str(exc), exc.id)
            return None
        op = message["op"]
        if op == "auth":
            return self._operator_auth(peer, message)
        if peer.grant is None:
            peer.status("error", "authenticate first: {'op': 'auth', 'token': ...}", message["id"])
            return (CLOSE_POLICY, "authentication required")
        handler = getattr(self, f"_op_{op}")
        handler(peer, peer.grant, message)
        return None

    def _operator_auth(self, peer: _Operator, message: dict[str, Any]) -> tuple[int, str] | None:
        if self.tokens is None:
            return None  # loopback relay: everyone is granted everything already
        try:
            peer.grant = self.tokens.operator(message["token"])
        except AuthError as exc:
            peer.status("error", f"auth: {exc}", message["id"])
            return (CLOSE_POLICY, "authentication failed")
        return None

    def _resolve(self, peer: _Operator, name: str, id: Any, what: str) -> tuple[str, str] | None:
        parts = split_name(name)
        if parts is None:
            peer.status("error", f"{what}: {name} is not a device name (use /<device>/...)", id)
        return parts

    def _op_set_level(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        peer.level = message["level"]

    def _op_status(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        return  # a client's status message carries nothing for the relay to do

    def _op_subscribe(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        topic = message["topic"]
        parts = self._resolve(peer, topic, message["id"], "subscribe")
        if parts is None:
            return
        device, local = parts
        if not grant.may_read(device):
            peer.status("error", f"subscribe: not allowed to read device {device!r}", message["id"])
            return
        record = self.registry.get(device)
        known = record.topics.get(local) if record is not None else None
        if message["type"] and known and message["type"] != known:
            peer.status(
                "error",
                f"subscribe: {topic} has type {known}, not {message['type']}",
                message["id"],
            )
            return
        subscription = peer.subscriptions.get(topic)
        if subscription is None:
            subscription = peer.subscriptions[topic] = _Subscription(peer, topic)
            self._subscribers.setdefault(topic, set()).add(subscription)
        subscription.ids[message["id"]] = (message["throttle_rate"], message["queue_length"])
        subscription.update()
        latest = record.latest.get(local) if record is not None else None
        if latest is not None:
            subscription.last_sent = peer.loop.time()
            peer.send(latest.frame)

    def _op_unsubscribe(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        subscription = peer.subscriptions.get(message["topic"])
        if subscription is None:
            return  # unsubscribing twice is harmless, as in rosbridge
        if message["id"] is not None and message["id"] in subscription.ids:
            del subscription.ids[message["id"]]
        else:
            subscription.ids.clear()
        if subscription.ids:
            subscription.update()
            return
        subscription.cancel()
        del peer.subscriptions[message["topic"]]
        self._unindex(subscription)

    def _command_target(
        self, peer: _Operator, grant: Grant, topic: str, id: Any, what: str
    ) -> tuple[DeviceRecord, str] | None:
        parts = self._resolve(peer, topic, id, what)
        if parts is None:
            return None
        device, local = parts
        if not grant.may_command(device):
            peer.status("error", f"{what}: not allowed to command device {device!r}", id)
            return None
        record = self.registry.get(device)
        if record is None:
            peer.status("error", f"{what}: unknown device {device!r}", id)
            return None
        if not _any_match(local, record.commands):
            peer.status(
                "error",
                f"{what}: {local} is not a command topic of {device} ({record.commands})",
                id,
            )
            return None
        return record, local

    def _op_advertise(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        if self._command_target(peer, grant, message["topic"], message["id"], "advertise"):
            peer.advertised[message["topic"]] = message["type"]

    def _op_unadvertise(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        if peer.advertised.pop(message["topic"], None) is None:
            peer.status(
                "warning", f"unadvertise: {message['topic']} is not advertised", message["id"]
            )

    def _op_publish(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        target = self._command_target(peer, grant, message["topic"], message["id"], "publish")
        if target is None:
            return
        record, local = target
        device = self._devices.get(record.id)
        if device is None or not device.said_hello:
            peer.status("error", f"publish: device {record.id} is offline; dropped", message["id"])
            return
        command_id = f"p{next(self._ids)}"
        self._commands[command_id] = (peer, message["id"])
        while len(self._commands) > _COMMAND_IDS_KEPT:
            self._commands.popitem(last=False)
        type_name = peer.advertised.get(message["topic"])
        device.send(dp.encode(dp.command(local, message["msg"], command_id, type_name)))

    def _op_call_service(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        service: str = message["service"]
        op_id = message["id"]

        def fail(text: str) -> None:
            peer.send(rb.encode(rb.service_response(op_id, service, text, False)))

        if service in rb.ROSAPI_SERVICES:
            values = rb.rosapi_response(service, message["args"], *self._view(grant))
            peer.send(rb.encode(rb.service_response(op_id, service, values, True)))
            return
        if service.startswith("/rosapi/"):
            fail(f"{service} is not provided by the pyros relay ({sorted(rb.ROSAPI_SERVICES)})")
            return
        parts = split_name(service)
        if parts is None:
            fail(f"{service} is not a device service (use /<device>/<service>)")
            return
        device_id, local = parts
        if not grant.may_command(device_id):
            fail(f"not allowed to command device {device_id!r}")
            return
        device = self._devices.get(device_id)
        if device is None or not device.said_hello:
            fail(f"device {device_id!r} is offline or unknown")
            return
        if local not in device.record.services:
            fail(f"device {device_id} offers no service {local}")
            return
        call_id = f"c{next(self._ids)}"
        timeout = self.limits.service_timeout
        if message["timeout"] is not None:
            timeout = min(timeout, message["timeout"])
        timer = peer.loop.call_later(timeout, self._call_timeout, call_id, timeout)
        self._calls[call_id] = _Call(peer, op_id, service, device, timer)
        device.send(dp.encode(dp.call_service(call_id, local, message["args"])))

    def _call_timeout(self, call_id: str, timeout: float) -> None:
        call = self._calls.pop(call_id, None)
        if call is not None:
            text = f"{call.service}: no response from the device within {timeout:g} s"
            call.operator.send(
                rb.encode(rb.service_response(call.operator_id, call.service, text, False))
            )

    def _view(self, grant: Grant) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """Return (topics, services, nodes) an operator sees, for the rosapi answers."""
        topics: dict[str, str] = {}
        services: dict[str, str] = dict(rb.ROSAPI_SERVICES)
        nodes: list[str] = []
        for device, record in self.registry.devices.items():
            if not record.online or not grant.may_read(device):
                continue
            nodes.append(f"/{device}")
            topics.update({full_name(device, t): kind for t, kind in record.topics.items()})
            services.update({full_name(device, s): kind for s, kind in record.services.items()})
        return topics, services, nodes


def _any_match(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def _peer_host(connection: ServerConnection) -> str | None:
    try:
        address = connection.remote_address
    except (AttributeError, OSError):
        return None
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None


def run(
    host: str = "127.0.0.1",
    port: int = 9090,
    *,
    tokens: Tokens | None = None,
    limits: Limits | None = None,
    ssl_context: ssl.SSLContext | None = None,
    announce: Callable[[str], None] | None = None,
    dashboard_port: int | None = None,
    dashboard_scheme: str = "http",
) -> None:
    """Run a relay until SIGINT or SIGTERM (what ``pyros relay`` does).

    Args:
        host: address to bind.
        port: TCP port; 0 picks a free one.
        tokens: the parsed tokens file, or None for a loopback-only relay.
        limits: every limit (defaults in :class:`~pyros.cloud.limits.Limits`).
        ssl_context: TLS for ``wss://`` (see :func:`tls_context`).
        announce: called once listening with a line such as
            ``"listening on ws://127.0.0.1:9090"`` (the bound port, also for port 0).
        dashboard_port: where ``GET /dashboard`` redirects (see :class:`Relay`).
        dashboard_scheme: ``http`` or ``https``, the dashboard's scheme.

    Raises:
        OSError: the address cannot be bound.
    """

    async def main() -> None:
        relay = Relay(tokens, limits, dashboard_port)
        relay.dashboard_scheme = dashboard_scheme
        await relay.start(host, port, ssl_context=ssl_context)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        scheme = "wss" if ssl_context is not None else "ws"
        if announce is not None:
            announce(f"listening on {scheme}://{host}:{relay.port}")
        try:
            await stop.wait()
        finally:
            await relay.close()

    asyncio.run(main())
