"""The websocket relay (``pyros relay``): robots' connectors on one side, operators on the other.

One asyncio process, one port, routed by URL path (``websockets.asyncio.server``):

* ``/device``: cloud connectors speak the device protocol (:mod:`pyros.cloud.device_protocol`,
  whose docstring holds the agreed specification).
* ``/``: operators (roslibpy, roslibjs, browsers) speak rosbridge v2 (``ROSBRIDGE_PROTOCOL.md`` in
  RobotWebTools/rosbridge_suite; details in :mod:`pyros.cloud.rosbridge`). Device ``robot1``'s
  ``/turtle1/pose`` is ``/robot1/turtle1/pose``, so one connection sees the whole fleet.
* ``GET /api/devices``: plain HTTP, a JSON list of the devices the operator token may read
  (each with ``may_command``: whether that token may command it).
* ``GET /healthz`` (no credentials) and ``GET /metrics`` (Prometheus text, operator token;
  :mod:`pyros.cloud.metrics`).
* ``GET /dashboard``: a redirect to the fleet dashboard (``pyros relay --dashboard`` runs it as
  its own process on its own port, see :mod:`pyros.dashboard`), or 404 without one.

Authentication (:mod:`pyros.cloud.auth`) happens in the handshake (HTTP 401/403 on refusal):
``Authorization: Bearer <token>`` or ``?token=``; connectors also name their device with
``X-Pyros-Device`` or ``?device=``. An operator without credentials in the handshake (a browser
cannot set headers) must send ``{"op": "auth", "token": "..."}`` first; the relay answers
``{"op": "status", "level": "info", "msg": "authenticated", "id"}`` (whatever the status level):
until then the peer is a stranger, held to :attr:`Limits.preauth_frame_bytes` per frame, with no
permessage-deflate and :attr:`Limits.auth_timeout` seconds to sign in. Failed sign-ins count
per client address (:attr:`Limits.auth_failures` a minute, then HTTP 429). Without a tokens file
only loopback peers are accepted.

What the relay keeps (:mod:`pyros.cloud.store`): every device seen, online or not, its last-seen
time, topics, services, command globs and topics, actions, parameters, type definitions, its
connector's stats, and the latest value of each forwarded topic; a late subscriber gets it at
once only for a state topic (the hello's ``latest``), never an old event. With ``redis`` all of
it, each session's last accepted seq and the routing to devices on other relays go through Redis
(:mod:`pyros.cloud.cluster`): several relay processes are one relay.

Flow and limits (:mod:`pyros.cloud.limits`): each connection has one reader task and one writer
task with a bounded send queue that drops its oldest frames (counted exactly, reported to the
peer by the writer in a ``status`` warning at most once per :attr:`Limits.warning_interval`,
never queued behind the frames it counts), so a slow operator never
slows a device or another operator. Incoming frames are rate limited per connection (token
bucket). Bad JSON, unknown ops, wrong field types, binary frames, frames above
:attr:`Limits.max_message_bytes` and an operator's rate-limited messages get a ``status``
error to that peer only; the connection stays open. A device over its rate limit gets the
error and is disconnected with code 1013 (try again later) rather than losing a message: its
connector resends everything not acknowledged after it reconnects. Frames above
:attr:`Limits.max_frame_bytes` make websockets close the connection (code 1009). Nothing a
peer sends can stop the relay.

Device data flow: a connector's ``publish`` (seq n) is accepted once per session (duplicates after
a reconnect are dropped; with Redis the seq is stored there before anything is forwarded, so a
relay restart or a failover never delivers a message twice), stored as the latest value, sent
to every subscribed operator (rosbridge ``throttle_rate``, ``queue_length``, ``compression``
and ``fragment_size`` applied per operator and topic) and to every device that subscribed to it
(device-to-device broadcast, never back to its sender), then acknowledged with a cumulative
``ack`` at least every :data:`~pyros.cloud.device_protocol.ACK_INTERVAL` seconds or
:data:`~pyros.cloud.device_protocol.ACK_EVERY` messages.

Commands: an operator's ``publish`` to ``/robot1/<topic>`` needs command rights on ``robot1``
and a topic that matches the device's ``commands`` globs; ``call_service`` to
``/robot1/<service>`` needs command rights and a service the device announced. Calls are
forwarded with a relay-made id and answered to the operator with its own id; a call fails
(``service_response`` with ``result: false``) after :attr:`Limits.service_timeout` seconds or
when the device goes offline. Every refused ``call_service`` is answered with a
``service_response`` so a blocking roslibpy call never hangs. Goals (``send_action_goal``) and
the rosapi parameter services go to the device the same way (``send_goal``, ``param``); a goal
has no deadline, is cancelled on the device when its operator leaves, and a refused or lost one
ends with a failed ``action_result``. Only the device that was asked may answer, and request
ids are unguessable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
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
from websockets.datastructures import MultipleValuesError
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pyros._names import glob_match
from pyros.cloud import device_protocol as dp
from pyros.cloud import rosbridge as rb
from pyros.cloud.auth import (
    LOOPBACK_GRANT,
    AuthError,
    DeviceEntry,
    Grant,
    Tokens,
    TokensFileError,
    is_loopback,
    valid_device_id,
)
from pyros.cloud.cluster import Cluster
from pyros.cloud.cluster import spawn as cluster_spawn
from pyros.cloud.limits import Limits, SendQueue, TokenBucket
from pyros.cloud.metrics import CONTENT_TYPE, RelayMetrics
from pyros.cloud.store import DeviceRecord, Latest, Registry, full_name, split_name

__all__ = [
    "Relay",
    "run",
    "tls_context",
    "CLOSE_POLICY",
    "CLOSE_REPLACED",
    "DASHBOARD_PATH",
    "HEALTH_PATH",
    "METRICS_PATH",
]

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
"""Plain HTTP ``GET``: is the relay serving (no credentials needed)."""

METRICS_PATH = "/metrics"
"""Plain HTTP ``GET``: Prometheus metrics (an operator token, as ``/api/devices``)."""

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

_ADDRESSES_KEPT = 10000
"""Client addresses whose failed sign-ins are counted (least recently failed forgotten)."""


def _new_id(prefix: str) -> str:
    """Return an unguessable id for a command or call routed to a device (96 random bits)."""
    return prefix + secrets.token_urlsafe(12)


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
        self._queue_report = False
        self._warned_at: dict[str, float] = {}
        self._warn_timer: dict[str, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors = 0
        """Frames whose handling failed inside the relay (logged with a traceback once)."""
        self.writer = asyncio.create_task(self._write(), name=f"pyros-relay-writer-{name}")

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task tied to this peer (kept referenced until it ends)."""
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def send(self, frame: str | bytes) -> None:
        """Queue ``frame`` for this peer (dropping the oldest frames if the queue is full)."""
        if self.closed:
            return
        dropped = self.queue.put(frame)
        if dropped:
            self.relay.metrics.dropped.labels("send_queue").inc(dropped)
            self._warn("queue")
        self._wakeup.set()

    def status(self, level: str, msg: str, id: Any = None) -> None:
        """Queue a ``status`` message if this peer's level lets it through."""
        if rb.level_allows(self.level, level):
            self.send(rb.encode(rb.status(level, msg, id)))

    def admit(self, frame: str | bytes) -> bool:
        """Apply the rate limit and the size limit to a received frame; report refusals."""
        if not self.bucket.take(self.loop.time()):
            self.relay.metrics.dropped.labels("rate_limit").inc()
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
            # Not queued like a frame (the full queue would drop the report itself): the
            # writer sends it next, with every drop counted until then.
            self._queue_report = True
            self._wakeup.set()
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
                while not self.queue and not self._queue_report:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if self._queue_report:
                    self._queue_report = False
                    dropped = self.queue.take_dropped()
                    if dropped and rb.level_allows(self.level, "warning"):
                        text = (
                            f"dropped {dropped} outgoing messages: this connection reads too "
                            f"slowly (send queue limit {self.queue.max_frames} frames)"
                        )
                        await self.ws.send(rb.encode(rb.status("warning", text)))
                    continue
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


class _Outgoing:
    """One message for operators, encoded at most once per encoding however many receive it."""

    __slots__ = ("topic", "msg", "_text", "_cbor", "_png")

    def __init__(self, topic: str, msg: Any, text: str | None = None) -> None:
        self.topic = topic
        self.msg = msg  # None: decoded from text when an encoding needs it
        self._text = text
        self._cbor: bytes | None = None
        self._png: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = rb.encode(rb.publish(self.topic, self.msg))
        return self._text

    def encoded(self, compression: str) -> str | bytes:
        """Return the frame for a subscription's ``compression``."""
        if self.msg is None and compression != "none":
            self.msg = json.loads(self.text)["msg"]
        if compression == "cbor":
            if self._cbor is None:
                self._cbor = rb.encode_cbor(rb.publish(self.topic, self.msg))
            return self._cbor
        if compression == "png":
            if self._png is None:
                self._png = rb.encode_png(self.text)
            return self._png
        return self.text


class _Subscription:
    """One operator's subscription to one topic (rosbridge merges subscriptions by topic)."""

    def __init__(self, peer: _Operator, topic: str) -> None:
        self.peer = peer
        self.topic = topic
        self.ids: dict[Any, tuple[int, int]] = {}
        self.throttle = 0.0
        self.compression = "none"
        self.fragment_size: int | None = None
        parts = split_name(topic)
        metrics = peer.relay.metrics
        device = parts[0] if parts else ""
        self._messages_out = metrics.messages.labels(device, "out")
        self._bytes_out = metrics.bytes.labels(device, "out")
        self.buffer: deque[_Outgoing] = deque(maxlen=1)
        self.last_sent = -math.inf
        self.timer: asyncio.TimerHandle | None = None

    def update(self) -> None:
        """Apply rosbridge's merge rule: the lowest throttle_rate, the highest queue_length."""
        self.throttle = min(rate for rate, _ in self.ids.values()) / 1000.0
        length = max(1, max(length for _, length in self.ids.values()))
        if length != self.buffer.maxlen:
            self.buffer = deque(self.buffer, maxlen=length)

    def offer(self, out: _Outgoing) -> None:
        """Send ``out`` now, or queue it if the throttle says wait (oldest dropped)."""
        if self.throttle <= 0:
            self.send_now(out)
            return
        now = self.peer.loop.time()
        if self.timer is None and now - self.last_sent >= self.throttle:
            self.last_sent = now
            self.send_now(out)
            return
        self.buffer.append(out)
        if self.timer is None:
            self.timer = self.peer.loop.call_at(self.last_sent + self.throttle, self._flush)

    def send_now(self, out: _Outgoing) -> None:
        """Send ``out`` in this subscription's encoding, as fragments when it is too long."""
        try:
            frame = out.encoded(self.compression)
        except ImportError as exc:
            self.peer.status("error", f"{self.topic}: {self.compression} needs {exc.name}")
            return
        self._messages_out.inc()
        self._bytes_out.inc(len(frame))
        if isinstance(frame, str) and self.fragment_size and len(frame) > self.fragment_size:
            for piece in rb.fragments(frame, self.fragment_size, _new_id("f")):
                self.peer.send(piece)
            return
        self.peer.send(frame)

    def _flush(self) -> None:
        self.timer = None
        if self.buffer and not self.peer.closed:
            self.last_sent = self.peer.loop.time()
            self.send_now(self.buffer.popleft())
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
        self.defragmenter = rb.Defragmenter(relay.limits.max_message_bytes)


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
        self.messages_in = relay.metrics.messages.labels(record.id, "in")
        self.bytes_in = relay.metrics.bytes.labels(record.id, "in")
        self.acked = 0
        """The seq the next ack carries: accepted (and, with Redis, stored) messages."""
        self.refusing = False
        """Set when Redis failed: later messages would overtake the unstored ones, so none is
        accepted until the connector reconnects and resends them in order."""

    def may_read(self, device: str) -> bool:
        return any(fnmatchcase(device, pattern) for pattern in self.entry.read)

    async def measure_latency(self) -> None:
        """Ping the connector once and keep the round trip in the record (``stats``)."""
        try:
            pong = await self.ws.ping()
            self.record.latency = float(await asyncio.wait_for(pong, 10.0))
        except (ConnectionClosed, asyncio.TimeoutError):
            return  # gone, or no pong in 10 s: the latency stays unknown

    def stop(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None
        super().stop()


class _Link:
    """Where frames for a device go: its connection on this relay, or (``--redis``) the relay
    its connector is on."""

    __slots__ = ("relay", "record", "local", "remote")

    def __init__(
        self, relay: Relay, record: DeviceRecord, local: _Device | None, remote: str = ""
    ) -> None:
        self.relay = relay
        self.record = record
        self.local = local
        self.remote = remote

    @property
    def id(self) -> str:
        return self.record.id

    def send(self, frame: str, request_id: str | None = None) -> None:
        """Send a device-protocol frame; ``request_id`` names the request it carries, so that
        the device's answers find their way back to this relay."""
        if self.local is not None:
            self.local.send(frame)
        else:
            self.relay._to_remote(self.remote, self.record.id, frame, request_id)


@dataclass
class _Call:
    """A request forwarded to a device and waiting for its answer.

    ``kind`` is ``"service"`` (a ``call_service``), ``"param"`` (a rosapi parameter service)
    or ``"goal"`` (a ``send_action_goal``; no timer: a goal may run for long).
    """

    operator: _Operator
    operator_id: Any
    service: str
    device: _Link
    timer: asyncio.TimerHandle | None
    kind: str = "service"
    param_action: str = ""
    fragment_size: int | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Relay:
    """The relay server. Start it with :meth:`start` inside a running event loop.

    Args:
        tokens: the parsed tokens file; None accepts only loopback peers, granted everything.
        limits: every limit; defaults as in :class:`~pyros.cloud.limits.Limits`.
        dashboard_port: the TCP port of the fleet dashboard on this host; ``GET /dashboard``
            redirects there (None: no dashboard, 404).
        redis: ``redis://HOST:PORT/DB``: share the registry, latest values, sequence numbers
            and routing with the other relays on that Redis (:mod:`pyros.cloud.cluster`); None
            keeps everything in this process.

    Attributes:
        registry: every device seen (:class:`~pyros.cloud.store.Registry`).
        port: the bound TCP port after :meth:`start` (useful with port 0).
    """

    def __init__(
        self,
        tokens: Tokens | None = None,
        limits: Limits | None = None,
        dashboard_port: int | None = None,
        redis: str | None = None,
    ) -> None:
        self.tokens = tokens
        self.limits = limits or Limits()
        self.metrics = RelayMetrics(self._queue_depths)
        """The relay's Prometheus metrics (``GET /metrics``)."""
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
        self._commands: OrderedDict[str, tuple[_Operator, Any, str]] = OrderedDict()
        self._auth_failures: OrderedDict[str, TokenBucket] = OrderedDict()
        self._relayed: dict[str, tuple[str, str]] = {}  # request id -> (origin relay, device)
        self._batch: list[tuple[_Device, str, dict[str, Any], int]] = []
        self._flushing = False
        self._dirty: set[str] = set()  # local devices whose stats changed since the last save
        self._background: set[asyncio.Task[None]] = set()
        self.cluster: Cluster | None = None
        """The link to the other relays (``redis``), else None."""
        if redis is not None:
            self.cluster = Cluster(
                redis,
                on_data=self._cluster_data,
                on_event=self._cluster_event,
                on_message=self._cluster_message,
            )

    # --- lifecycle ----------------------------------------------------------------------------

    def _queue_depths(self) -> list[int]:
        peers: list[_Peer] = [*self._operators, *self._devices.values()]
        return [len(peer.queue) for peer in peers]

    def reload_tokens(self, path: str) -> bool:
        """Read the tokens file again (``SIGHUP``); open connections keep their rights.

        Returns:
            True if the new file is in force; False if it could not be read (the old tokens
            stay, and the error is logged).
        """
        try:
            tokens = Tokens.load(path)
        except TokensFileError as exc:
            log.error(
                "tokens file not reloaded, keeping the old one: %s",
                exc,
                extra={"event": "tokens_reload_failed"},
            )
            return False
        self.tokens = tokens
        log.warning("tokens file %s reloaded", path, extra={"event": "tokens_reloaded"})
        return True

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
            ClusterError: ``redis`` was given and Redis cannot be used.
        """
        if self.cluster is not None:
            await self.cluster.start()
            await self._load_cluster()
            self._background_task(self._watch_relays())
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            # Strangers get a few KiB: the cap rises once a peer has authenticated (_trust).
            max_size=self.limits.preauth_frame_bytes,
            ping_interval=self.limits.ping_interval,
            ping_timeout=self.limits.ping_interval,
            ssl=ssl_context,
            backlog=1024,
        )
        sockets = list(self._server.sockets)
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def close(self) -> None:
        """Close every connection and stop listening (and leave the cluster)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.cluster is not None:
            await self.cluster.close()

    def _background_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self.cluster is not None:
            cluster_spawn(coroutine, self._background)

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
        token = dp.bearer_token(_single_header(request, dp.AUTHORIZATION_HEADER))
        if token is None and query.get(dp.TOKEN_QUERY):
            token = query[dp.TOKEN_QUERY][0]
        self._check_local(request, peer_host)
        if url.path == dp.DEVICE_PATH:
            device = _single_header(request, dp.DEVICE_HEADER)
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
        token = dp.bearer_token(_single_header(request, dp.AUTHORIZATION_HEADER))
        if token is None:
            given = parse_qs(url.query).get(dp.TOKEN_QUERY)
            token = given[0] if given else None
        return self.tokens.operator(token)

    def health(self) -> dict[str, Any]:
        """Return ``GET /healthz``'s answer: ``{"status": "ok", "devices_online": n,
        "operators": n}`` (no credentials needed; no device names)."""
        health: dict[str, Any] = {
            "status": "ok",
            "devices_online": len(self._devices),
            "operators": len(self._operators),
        }
        if self.cluster is not None:
            health["relay"] = self.cluster.relay_id
            health["relays"] = sum(1 for r in self.cluster.relays if self.cluster.alive(r))
            health["redis_errors"] = self.cluster.errors
        return health

    @staticmethod
    def _json_response(connection: ServerConnection, status: int, body: Any) -> Response:
        response = connection.respond(status, json.dumps(body))
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    def _sign_in_allowed(self, host: str | None) -> bool:
        """Return False when ``host`` used up its failed sign-ins (then answer 429)."""
        bucket = self._auth_failures.get(host or "")
        return bucket is None or bucket.peek(asyncio.get_running_loop().time()) >= 1.0

    def _sign_in_failed(self, host: str | None) -> None:
        """Count one failed sign-in of ``host`` (operators and devices alike)."""
        self.metrics.auth_failures.inc()
        log.info("failed sign-in from %s", host, extra={"event": "auth_failed", "peer": host})
        key = host or ""
        now = asyncio.get_running_loop().time()
        bucket = self._auth_failures.pop(key, None)
        if bucket is None:
            per_minute = self.limits.auth_failures
            bucket = TokenBucket(per_minute / 60.0, per_minute, now)
        bucket.take(now)
        self._auth_failures[key] = bucket
        while len(self._auth_failures) > _ADDRESSES_KEPT:
            self._auth_failures.popitem(last=False)

    def _check_local(self, request: Request, peer_host: str | None) -> None:
        """Without a tokens file, serve only this machine's own clients.

        A request that came through a reverse proxy (``Forwarded``, ``X-Forwarded-For`` or
        ``X-Real-IP``) is refused too: the proxy's loopback address says nothing about who
        sent it.

        Raises:
            AuthError: (403) not a loopback peer, or a proxied request.
        """
        if self.tokens is not None:
            return
        if not is_loopback(peer_host):
            raise AuthError("this relay has no tokens file and accepts only loopback clients", 403)
        for header in _PROXY_HEADERS:
            if header in request.headers:
                raise AuthError(
                    f"this relay has no tokens file and refuses proxied requests ({header} "
                    "header): give it --tokens to serve clients behind a proxy",
                    403,
                )

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        host = _peer_host(connection)
        if not self._sign_in_allowed(host):
            response = connection.respond(
                429, "too many failed sign-ins from this address: try again in a minute\n"
            )
            response.headers["Retry-After"] = "60"
            return response
        path = urlsplit(request.path).path
        if path == HEALTH_PATH:
            return self._json_response(connection, 200, self.health())
        try:
            if path == METRICS_PATH:
                self._check_local(request, host)
                if self.tokens is not None:
                    self._operator_grant(request)
                response = connection.respond(200, "")
                response.body = self.metrics.render()
                del response.headers["Content-Type"]
                del response.headers["Content-Length"]
                response.headers["Content-Type"] = CONTENT_TYPE
                response.headers["Content-Length"] = str(len(response.body))
                return response
            identity = self._identify(request, host)
            if path in (DASHBOARD_PATH, DASHBOARD_PATH + "/"):
                return self._dashboard_redirect(connection, request)
            if path == dp.DEVICES_API_PATH:
                grant = self._operator_grant(request)
                devices = self.registry.describe(time.time(), grant.may_read)
                for device in devices:
                    device["may_command"] = grant.may_command(device["id"])
                body = json.dumps(devices)
                response = connection.respond(200, body)
                del response.headers["Content-Type"]
                response.headers["Content-Type"] = "application/json"
                return response
        except AuthError as exc:
            if exc.status in (401, 403):
                self._sign_in_failed(host)
            response = connection.respond(exc.status, f"{exc}\n")
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="pyros relay"'
            return response
        if identity is not None and identity.kind == "operator" and identity.grant is None:
            # Not authenticated yet: no permessage-deflate (a deflate bomb costs CPU before
            # the frame cap can refuse it); it may sign in with {"op": "auth"} only.
            connection.protocol.available_extensions = []
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
            self._trust(ws)
            await self._serve_device(ws, identity.device, identity.entry)
        else:
            await self._serve_operator(ws, identity.grant)

    def _trust(self, ws: ServerConnection) -> None:
        """Raise the frame cap of an authenticated connection from the pre-auth one."""
        ws.protocol.max_message_size = self.limits.max_frame_bytes

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
                    # Logged once per connection with its traceback: a peer repeating the
                    # frame must not flood the log.
                    peer.errors += 1
                    if peer.errors == 1:
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
        self.metrics.connections.labels("device").inc()
        self.metrics.devices_online.set(len(self._devices))
        log.info(
            "device %s connected from %s",
            device,
            ws.remote_address,
            extra={"event": "device_connected", "device": device},
        )
        try:
            await self._receive(peer, lambda frame: self._device_frame(peer, frame))
        finally:
            if self._devices.get(device) is peer:
                del self._devices[device]
                self.registry.disconnected(device, time.time())
                self._device_gone(peer, f"device {device} went offline")
                if self.cluster is not None and peer.said_hello:
                    self._background_task(self.cluster.mark_offline(device, time.time()))
            peer.stop()
            self.metrics.connections.labels("device").dec()
            self.metrics.devices_online.set(len(self._devices))
            log.info(
                "device %s disconnected",
                device,
                extra={"event": "device_disconnected", "device": device},
            )

    def _device_gone(self, peer: _Device, why: str) -> None:
        self._device_subscribers.discard(peer)
        self._fail_calls_to(peer.record.id, why)
        for request_id, (_, device) in list(self._relayed.items()):
            if device == peer.record.id:
                del self._relayed[request_id]  # the asking relay hears "offline" by event

    def _fail_calls_to(self, device: str, why: str) -> None:
        for call_id, call in list(self._calls.items()):
            if call.device.id == device:
                del self._calls[call_id]
                call.cancel_timer()
                self._fail_call(call, why)

    def _fail_call(self, call: _Call, why: str) -> None:
        """Answer a pending request in the form its client waits for, with ``result: false``."""
        if call.kind == "goal":
            frame = rb.action_result(
                call.operator_id, call.service, why, rb.GOAL_STATUS_CODES["aborted"], False
            )
        else:
            frame = rb.service_response(call.operator_id, call.service, why, False)
        call.operator.send(rb.encode(frame))

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
            lost = sum(message["dropped"].values())
            if lost:
                self.metrics.dropped.labels("connector").inc(lost)
            if not peer.said_hello:
                peer.spawn(peer.measure_latency())
            if self.cluster is not None:
                peer.spawn(self._cluster_hello(peer, message, now))
                return None
            resume_after = self.registry.hello(record.id, message, now)
            peer.acked = max(peer.acked, resume_after)
            peer.said_hello = True
            peer.send(dp.encode(dp.welcome(record.id, resume_after)))
            return None
        if not peer.said_hello:
            peer.status("error", f"{op}: send hello first", message.get("id"))
            return None
        if op == "publish":
            message["size"] = len(frame)
            self._device_publish(peer, message, now)
        elif op == "service_response":
            if not self._relay_reply(peer, message):
                self._device_service_response(record.id, message, peer.status)
        elif op == "status":
            if not self._relay_reply(peer, message):
                self._device_status(record, message, now)
        elif op == "subscribe":
            self._device_subscribe(peer, message["topic"])
        elif op == "stats":
            record.buffered = message["buffered"]
            record.connector_dropped = message["dropped"]
            if self.cluster is not None:
                self._dirty.add(record.id)  # stored with the others' once a second
        elif op in ("action_feedback", "action_result", "param_response"):
            if not self._relay_reply(peer, message):
                self._device_reply(record.id, message, peer.status)
        else:  # unsubscribe
            peer.patterns.discard(message["topic"])
            if not peer.patterns:
                self._device_subscribers.discard(peer)
        return None

    def _device_publish(self, peer: _Device, message: dict[str, Any], now: float) -> None:
        record = peer.record
        topic: str = message["topic"]
        if peer.refusing:
            return  # Redis failed for this connection: accept nothing until the device is back
        if topic not in record.topics:
            peer.status(
                "error",
                f"publish: topic {topic} is not among the topics of the last hello; dropped",
            )
            return
        if self.registry.accept(record, message["seq"], now):
            record.meter.add(now, message["size"])
            peer.messages_in.inc()
            peer.bytes_in.inc(message["size"])
            if self.cluster is not None:
                # Stored in Redis first, then forwarded and acked (see _flush).
                self._batch.append((peer, topic, message["msg"], message["seq"]))
                if not self._flushing:
                    self._flushing = True
                    task = asyncio.create_task(self._flush(), name="pyros-relay-flush")
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                return
            self._deliver(record, topic, message["msg"], None, peer, now)
            peer.acked = message["seq"]
        self._count_for_ack(peer)

    def _count_for_ack(self, peer: _Device) -> None:
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
        peer.send(dp.encode(dp.ack(peer.acked)))

    def _deliver(
        self,
        record: DeviceRecord,
        topic: str,
        msg: dict[str, Any] | None,
        text: str | None,
        sender: _Device | None,
        now: float,
    ) -> str:
        """Give an accepted message to the subscribed operators and devices here and keep it as
        the latest value; return its operator frame when it was made (else "").

        ``msg`` may be None when ``text`` (its operator frame) is given: it is decoded only if
        something here needs it.
        """
        name = full_name(record.id, topic)
        out = _Outgoing(name, msg, text)
        subscribers = self._subscribers.get(name, ())
        for subscription in subscribers:
            subscription.offer(out)
        self.registry.store(record, topic, msg, out.text if subscribers or text else None, now)
        device_frame = None  # devices get the type too: they publish it on their robot
        for other in self._device_subscribers:
            if (
                other is not sender
                and other.record.id != record.id
                and other.may_read(record.id)
                and _any_match(name, other.patterns)
            ):
                if device_frame is None:
                    if msg is None:
                        msg = out.msg if out.msg is not None else json.loads(out.text)["msg"]
                    device_frame = dp.encode(dp.command(name, msg, None, record.topics.get(topic)))
                other.send(device_frame)
        return out.text if subscribers or text else ""

    # --- the cluster (--redis) ----------------------------------------------------------------

    async def _load_cluster(self) -> None:
        """Take the registry, latest values and sequence numbers stored in Redis."""
        assert self.cluster is not None
        for stored in await self.cluster.load():
            record = self.registry.devices.get(stored["id"])
            if record is None:
                record = self.registry.devices[stored["id"]] = DeviceRecord(stored["id"])
            self._apply_stored(record, stored)
            for topic, msg in stored["latest"].items():
                record.latest[topic] = Latest(msg, None, record.last_seen)
            for session, seq in stored["seqs"].items():
                record.remember_seq(session, seq)

    def _apply_stored(self, record: DeviceRecord, stored: dict[str, Any]) -> None:
        assert self.cluster is not None
        data = stored["record"]
        if isinstance(data, str):
            data = json.loads(data)
        record.apply_stored(data)
        record.relay = stored["relay"]
        record.last_seen = float(stored["last_seen"])
        online = stored["online"] in (True, "1")
        record.online = online and self.cluster.alive(record.relay)

    async def _cluster_hello(self, peer: _Device, message: dict[str, Any], now: float) -> None:
        """A hello with Redis: the session's last seq may be known from another relay."""
        assert self.cluster is not None
        record = peer.record
        try:
            known = await self.cluster.last_seq(record.id, message["session"])
            resume_after = self.registry.hello(record.id, message, now, known)
            record.relay = self.cluster.relay_id
            await self.cluster.save_device(record.id, record.to_stored(), True, now)
        except Exception as exc:  # Redis failed: this device cannot be served exactly once
            log.error("device %s: Redis: %s", record.id, exc, extra={"event": "redis_error"})
            await peer.close(CLOSE_TRY_AGAIN, "the relay's Redis failed: try again later")
            return
        peer.acked = max(peer.acked, resume_after)
        peer.said_hello = True
        peer.send(dp.encode(dp.welcome(record.id, resume_after)))

    async def _flush(self) -> None:
        """Store the accepted messages of every device in Redis (one transaction per batch),
        then forward and ack them, each device's in order."""
        assert self.cluster is not None
        while self._batch:
            batch, self._batch = self._batch, []
            now = time.time()
            seqs: dict[tuple[str, str], int] = {}
            latest: dict[str, dict[str, str]] = {}
            frames: list[tuple[str, str, str]] = []
            for peer, topic, msg, seq in batch:
                record = peer.record
                seqs[(record.id, record.session or "")] = seq
                text = rb.encode(rb.publish(full_name(record.id, topic), msg))
                frames.append((record.id, topic, text))
                if topic in record.latest_topics:
                    latest.setdefault(record.id, {})[topic] = json.dumps(msg)
            try:
                await self.cluster.persist(seqs, latest, frames, now)
            except Exception as exc:  # Redis failed: unacked, so the connectors resend them
                log.error("Redis: %s", exc, extra={"event": "redis_error"})
                for peer in {item[0] for item in [*batch, *self._batch]}:
                    peer.refusing = True
                    if peer.record.session is not None:  # back to what Redis holds
                        peer.record.remember_seq(peer.record.session, peer.acked, force=True)
                    peer.spawn(peer.close(CLOSE_TRY_AGAIN, "the relay's Redis failed"))
                self._batch.clear()
                break
            for (peer, topic, msg, seq), (_, _, text) in zip(batch, frames, strict=True):
                self._deliver(peer.record, topic, msg, text, peer, now)
                peer.acked = seq
                self._count_for_ack(peer)
        self._flushing = False

    def _cluster_data(self, device: str, topic: str, frame: str) -> None:
        """A message another relay accepted (and stored): deliver it here."""
        record = self.registry.get(device)
        if record is None:
            record = self.registry.devices[device] = DeviceRecord(device)
        now = time.time()
        record.last_seen = now
        self._deliver(record, topic, None, frame, None, now)

    def _cluster_event(self, event: dict[str, Any]) -> None:
        """Another relay changed a device's registry entry."""
        device = event["device"]
        record = self.registry.get(device)
        if record is None:
            record = self.registry.devices[device] = DeviceRecord(device)
        if event["type"] == "record":
            self._apply_stored(record, event)
            local = self._devices.get(device)
            if local is not None and event["relay"] != (self.cluster and self.cluster.relay_id):
                # The device's connector is on another relay now: this connection is stale.
                local.spawn(local.ws.close(CLOSE_REPLACED, "replaced"))
        elif event["type"] == "offline" and record.relay == event["relay"]:
            record.online = False
            record.last_seen = float(event["last_seen"])
            self._fail_calls_to(device, f"device {device} went offline")

    def _cluster_message(self, message: dict[str, Any]) -> None:
        """Another relay asks this one: a frame for a device here, or a device's answer."""
        assert self.cluster is not None
        if message["type"] == "to_device":
            device = self._devices.get(message["device"])
            request_id = message.get("id")
            if device is None or not device.said_hello:
                if request_id:
                    self._background_task(
                        self.cluster.send(
                            message["origin"],
                            {"type": "gone", "device": message["device"], "id": request_id},
                        )
                    )
                return
            if request_id:
                self._relayed[request_id] = (message["origin"], message["device"])
                while len(self._relayed) > _COMMAND_IDS_KEPT:
                    del self._relayed[next(iter(self._relayed))]
            device.send(message["frame"])
        elif message["type"] == "reply":
            self._handle_reply(message["device"], message["message"])
        elif message["type"] == "gone":
            call = self._calls.pop(message["id"], None)
            if call is not None and call.device.id == message["device"]:
                call.cancel_timer()
                self._fail_call(call, f"device {message['device']} is offline")

    def _to_remote(self, relay: str, device: str, frame: str, request_id: str | None) -> None:
        assert self.cluster is not None
        message = {
            "type": "to_device",
            "device": device,
            "frame": frame,
            "origin": self.cluster.relay_id,
            "id": request_id,
        }
        self._background_task(self.cluster.send(relay, message))

    def _relay_reply(self, peer: _Device, message: dict[str, Any]) -> bool:
        """Send a device's answer to the relay whose operator asked; False if it asked here."""
        request_id = message.get("id")
        origin = self._relayed.get(request_id) if isinstance(request_id, str) else None
        if origin is None or origin[1] != peer.record.id or self.cluster is None:
            return False
        if message["op"] != "action_feedback":
            del self._relayed[str(request_id)]
        reply = {"type": "reply", "device": peer.record.id, "message": message}
        self._background_task(self.cluster.send(origin[0], reply))
        return True

    def _handle_reply(self, device: str, message: dict[str, Any]) -> None:
        """A device's answer that another relay forwarded (checked there already)."""
        record = self.registry.get(device)
        op = message.get("op")
        if op == "service_response":
            self._device_service_response(device, message, _ignore_status)
        elif op == "status" and record is not None:
            self._device_status(record, message, time.time())
        elif op in ("action_feedback", "action_result", "param_response"):
            self._device_reply(device, message, _ignore_status)

    async def _watch_relays(self) -> None:
        """Mark the devices of relays that stopped renewing their liveness offline."""
        assert self.cluster is not None
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            if self._dirty:
                dirty, self._dirty = self._dirty, set()
                records = {
                    device: (peer.record.to_stored(), True, peer.record.last_seen)
                    for device in dirty
                    if (peer := self._devices.get(device)) is not None and peer.said_hello
                }
                if records:
                    self._background_task(self.cluster.save_devices(records))
            for record in list(self.registry.devices.values()):
                if (
                    record.online
                    and record.id not in self._devices
                    and not self.cluster.alive(record.relay, now)
                ):
                    record.online = False
                    self._fail_calls_to(record.id, f"device {record.id}: its relay is gone")

    def _link(self, device: str) -> _Link | None:
        """Return where frames for ``device`` go, or None when it is offline."""
        local = self._devices.get(device)
        if local is not None and local.said_hello:
            return _Link(self, local.record, local)
        record = self.registry.get(device)
        if (
            self.cluster is not None
            and record is not None
            and record.online
            and record.relay
            and record.relay != self.cluster.relay_id
            and self.cluster.alive(record.relay)
        ):
            return _Link(self, record, None, record.relay)
        return None

    def _device_service_response(
        self, device: str, message: dict[str, Any], warn: Callable[[str, str, Any], None]
    ) -> None:
        call = self._calls.get(message["id"])
        if call is None or call.device.id != device or call.kind != "service":
            warn(
                "warning",
                f"service_response: no pending call {message['id']!r} (timed out or unknown)",
                message["id"],
            )
            return
        del self._calls[message["id"]]
        call.cancel_timer()
        call.operator.send(
            rb.encode(
                rb.service_response(
                    call.operator_id, call.service, message["values"], message["result"]
                )
            )
        )

    def _device_reply(
        self, device: str, message: dict[str, Any], warn: Callable[[str, str, Any], None]
    ) -> None:
        """Route a goal's feedback or result, or a parameter answer, to the operator that asked
        (only from the device that was asked, as for service responses)."""
        op = message["op"]
        call = self._calls.get(message["id"])
        kind = "param" if op == "param_response" else "goal"
        if call is None or call.device.id != device or call.kind != kind:
            warn("warning", f"{op}: no pending request {message['id']!r}", message["id"])
            return
        if op == "action_feedback":
            frame = rb.action_feedback(call.operator_id, call.service, message["feedback"])
            call.operator.send(rb.encode(frame))
            return
        del self._calls[message["id"]]
        call.cancel_timer()
        if op == "action_result":
            status = message["status"]
            values = message["result"] if message["result"] is not None else message["msg"]
            ok = status != "rejected"
            if not ok:
                call.operator.status("error", f"{call.service}: {message['msg']}", call.operator_id)
            reply = rb.action_result(
                call.operator_id, call.service, values, rb.GOAL_STATUS_CODES[status], ok
            )
            call.operator.send(rb.encode(reply))
            return
        if not message["result"]:
            self._fail_call(call, f"{device}: {message['value']}")
            return
        answer: dict[str, Any] = {}
        if call.param_action == "get":
            answer = {"value": json.dumps(message["value"])}
        call.operator.send(
            rb.encode(rb.service_response(call.operator_id, call.service, answer, True))
        )

    def _device_status(self, record: DeviceRecord, message: dict[str, Any], now: float) -> None:
        key = message.get("id") or ""
        origin = self._commands.get(key)
        if origin is not None and origin[2] == record.id:
            # Only the device that was commanded may answer: another device cannot inject a
            # status into an operator's conversation with this one (ids are unguessable too).
            del self._commands[key]
            operator, operator_id, _ = origin
            operator.status(message["level"], f"{record.id}: {message['msg']}", operator_id)
            return
        record.last_status = dict(message, stamp=now)

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
                if topic in other.latest_topics and glob_match(pattern, full_name(other_id, topic)):
                    peer.send(
                        dp.encode(
                            dp.command(
                                full_name(other_id, topic),
                                latest.message(),
                                None,
                                other.topics.get(topic),
                            )
                        )
                    )

    # --- operators ----------------------------------------------------------------------------

    async def _serve_operator(self, ws: ServerConnection, grant: Grant | None) -> None:
        peer = _Operator(self, ws, grant)
        self._operators.add(peer)
        self.metrics.connections.labels("operator").inc()
        timer = None
        if grant is not None:
            self._trust(ws)
        else:
            timer = peer.loop.call_later(self.limits.auth_timeout, self._auth_timeout, peer)
        try:
            await self._receive(peer, lambda frame: self._operator_frame(peer, frame))
        finally:
            if timer is not None:
                timer.cancel()
            self._operators.discard(peer)
            self.metrics.connections.labels("operator").dec()
            for subscription in peer.subscriptions.values():
                subscription.cancel()
                self._unindex(subscription)
            for call_id in [key for key, call in self._calls.items() if call.operator is peer]:
                call = self._calls.pop(call_id)
                call.cancel_timer()
                if call.kind == "goal":  # nobody waits for it any more
                    call.device.send(dp.encode(dp.cancel_goal(call_id)), call_id)
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
        if op == "fragment":
            try:
                whole = peer.defragmenter.add(message)
            except rb.OperatorProtocolError as exc:
                peer.status("error", str(exc), exc.id)
                return None
            return None if whole is None else self._operator_frame(peer, whole)
        handler = getattr(self, f"_op_{op}")
        handler(peer, peer.grant, message)
        return None

    def _operator_auth(self, peer: _Operator, message: dict[str, Any]) -> tuple[int, str] | None:
        if self.tokens is None:
            return None  # loopback relay: everyone is granted everything already
        host = _peer_host(peer.ws)
        if not self._sign_in_allowed(host):
            peer.status("error", "auth: too many failed sign-ins from this address", message["id"])
            return (CLOSE_POLICY, "too many failed sign-ins")
        try:
            peer.grant = self.tokens.operator(message["token"])
        except AuthError as exc:
            self._sign_in_failed(host)
            peer.status("error", f"auth: {exc}", message["id"])
            return (CLOSE_POLICY, "authentication failed")
        self._trust(peer.ws)
        # Whatever the status level: a client must wait for this before sending large frames
        # (until the relay has read the auth message, the pre-auth frame cap applies).
        peer.send(rb.encode(rb.status("info", "authenticated", message["id"])))
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
        if message["type"] and known and not rb.same_type(message["type"], known):
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
        subscription.compression = message["compression"]
        subscription.fragment_size = message["fragment_size"]
        subscription.update()
        # A late subscriber gets the latest value only where ROS would deliver it (a latched or
        # transient-local topic) or where the connector marks the topic as state; never an
        # old event.
        latest = record.latest.get(local) if record is not None else None
        if latest is not None and record is not None and local in record.latest_topics:
            subscription.last_sent = peer.loop.time()
            subscription.send_now(
                _Outgoing(topic, latest.msg, latest.frame)
            )  # msg None: decoded if needed

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
        device = self._link(record.id)
        if device is None:
            peer.status("error", f"publish: device {record.id} is offline; dropped", message["id"])
            return
        command_id = _new_id("p")
        self._commands[command_id] = (peer, message["id"], record.id)
        while len(self._commands) > _COMMAND_IDS_KEPT:
            self._commands.popitem(last=False)
        type_name = peer.advertised.get(message["topic"])
        device.send(dp.encode(dp.command(local, message["msg"], command_id, type_name)), command_id)

    def _op_call_service(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        service: str = message["service"]
        op_id = message["id"]

        def fail(text: str) -> None:
            peer.status("error", f"call_service {service}: {text}", op_id)
            peer.send(rb.encode(rb.service_response(op_id, service, text, False)))

        if service in rb.ROSAPI_SERVICES:
            values = rb.rosapi_response(service, message["args"], self._view(grant))
            peer.send(rb.encode(rb.service_response(op_id, service, values, True)))
            return
        if service in rb.ROSAPI_DEVICE_SERVICES:
            self._rosapi_param(peer, grant, message, fail)
            return
        if service.startswith("/rosapi/"):
            provided = sorted([*rb.ROSAPI_SERVICES, *rb.ROSAPI_DEVICE_SERVICES])
            fail(f"{service} is not provided by the pyros relay ({provided})")
            return
        target = self._commanded_link(grant, service, "service", fail)
        if target is None:
            return
        device, local = target
        if local not in device.record.services:
            fail(f"device {device.record.id} offers no service {local}")
            return
        call_id = _new_id("c")
        timeout = self.limits.service_timeout
        if message["timeout"] is not None:
            timeout = min(timeout, message["timeout"])
        timer = peer.loop.call_later(timeout, self._call_timeout, call_id, timeout)
        self._calls[call_id] = _Call(peer, op_id, service, device, timer)
        device.send(dp.encode(dp.call_service(call_id, local, message["args"])), call_id)

    def _rosapi_param(
        self, peer: _Operator, grant: Grant, message: dict[str, Any], fail: Callable[[str], None]
    ) -> None:
        """``/rosapi/get_param|set_param|delete_param``: ask the device's pyros params."""
        service: str = message["service"]
        args = message["args"]
        name = args.get("name")
        if not isinstance(name, str) or not name:
            fail(f"{service}: 'name' must be a parameter name /<device>/<name>")
            return
        parts = split_name(name if name.startswith("/") else "/" + name)
        if parts is None:
            fail(f"{service}: {name} is not a device parameter (use /<device>/<name>)")
            return
        device_id, local = parts
        action = service.rsplit("_", 1)[0].rsplit("/", 1)[1]  # get, set, delete
        allowed = grant.may_read(device_id) if action == "get" else grant.may_command(device_id)
        if not allowed:
            verb = "read" if action == "get" else "command"
            fail(f"{service}: not allowed to {verb} device {device_id!r}")
            return
        device = self._link(device_id)
        if device is None:
            fail(f"{service}: device {device_id!r} is offline or unknown")
            return
        value = None
        if action == "set":
            try:
                value = json.loads(args.get("value", ""))
            except (TypeError, ValueError) as exc:
                fail(f"{service}: 'value' must be a JSON text: {exc}")
                return
        elif action == "get" and local not in device.record.params:
            default = args.get("default")
            if isinstance(default, str) and default:
                peer.send(
                    rb.encode(rb.service_response(message["id"], service, {"value": default}, True))
                )
                return
        call_id = _new_id("q")
        timeout = self.limits.service_timeout
        timer = peer.loop.call_later(timeout, self._call_timeout, call_id, timeout)
        self._calls[call_id] = _Call(
            peer, message["id"], service, device, timer, kind="param", param_action=action
        )
        device.send(dp.encode(dp.param(call_id, action, local, value)), call_id)

    def _commanded_link(
        self, grant: Grant, name: str, kind: str, fail: Callable[[str], None]
    ) -> tuple[_Link, str] | None:
        """The online device behind ``/<device>/<local>`` (a ``kind``: service, action) that
        ``grant`` may command, and ``local``; None once ``fail(reason)`` said why not."""
        parts = split_name(name)
        if parts is None:
            fail(f"{name} is not a device {kind} (use /<device>/<{kind}>)")
            return None
        device_id, local = parts
        if not grant.may_command(device_id):
            fail(f"not allowed to command device {device_id!r}")
            return None
        device = self._link(device_id)
        if device is None:
            fail(f"device {device_id!r} is offline or unknown")
            return None
        return device, local

    def _op_send_action_goal(self, peer: _Operator, grant: Grant, message: dict[str, Any]) -> None:
        action: str = message["action"]
        op_id = message["id"]

        def fail(text: str) -> None:
            peer.status("error", f"send_action_goal: {text}", op_id)
            peer.send(
                rb.encode(
                    rb.action_result(op_id, action, text, rb.GOAL_STATUS_CODES["aborted"], False)
                )
            )

        target = self._commanded_link(grant, action, "action", fail)
        if target is None:
            return
        device, local = target
        known = device.record.actions.get(local)
        if known is None:
            fail(f"device {device.record.id} offers no action {local}")
            return
        if message["action_type"] and not rb.same_type(message["action_type"], known):
            fail(f"{action} has type {known}, not {message['action_type']}")
            return
        goal_id = _new_id("g")
        self._calls[goal_id] = _Call(
            peer, op_id, action, device, None, kind="goal", fragment_size=message["fragment_size"]
        )
        device.send(
            dp.encode(dp.send_goal(goal_id, local, message["args"], known, message["feedback"])),
            goal_id,
        )

    def _op_cancel_action_goal(
        self, peer: _Operator, grant: Grant, message: dict[str, Any]
    ) -> None:
        for goal_id, call in self._calls.items():
            if call.kind == "goal" and call.operator is peer and call.operator_id == message["id"]:
                call.device.send(dp.encode(dp.cancel_goal(goal_id)), goal_id)
                return
        peer.status(
            "warning", f"cancel_action_goal: no running goal {message['id']!r}", message["id"]
        )

    def _call_timeout(self, call_id: str, timeout: float) -> None:
        call = self._calls.pop(call_id, None)
        if call is not None:
            self._fail_call(
                call, f"{call.service}: no response from the device within {timeout:g} s"
            )

    def _view(self, grant: Grant) -> rb.FleetView:
        """Return what an operator sees of the online fleet, for the rosapi answers."""
        view = rb.FleetView(services=dict(rb.ROSAPI_SERVICES))
        view.services.update(rb.ROSAPI_DEVICE_SERVICES)
        for device, record in self.registry.devices.items():
            if not record.online or not grant.may_read(device):
                continue
            node = rb.NodeView(
                [full_name(device, t) for t in record.topics],
                [full_name(device, t) for t in record.command_topics],
                [full_name(device, s) for s in record.services],
            )
            view.nodes[f"/{device}"] = node
            view.topics.update({full_name(device, t): k for t, k in record.command_topics.items()})
            view.topics.update({full_name(device, t): k for t, k in record.topics.items()})
            view.services.update({full_name(device, s): k for s, k in record.services.items()})
            view.actions.update({full_name(device, a): k for a, k in record.actions.items()})
            view.params.extend(full_name(device, p) for p in record.params)
            view.definitions.update(record.definitions)
        return view


def _ignore_status(level: str, msg: str, id: Any = None) -> None:
    """The warning about a forwarded answer stays on the relay that got it from the device."""


def _any_match(name: str, patterns: Iterable[str]) -> bool:
    return any(glob_match(pattern, name) for pattern in patterns)


def _single_header(request: Request, name: str) -> str | None:
    """Return the value of header ``name``, None when absent.

    Raises:
        AuthError: HTTP 400, the header is given more than once (which one would count?).
    """
    try:
        return request.headers.get(name)
    except MultipleValuesError as exc:
        raise AuthError(f"the {name} header is given more than once", 400) from exc


_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
"""Headers a reverse proxy adds: a request that has one did not come from the proxy itself."""


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
    tokens_path: str | None = None,
    redis: str | None = None,
    dashboard_port: int | None = None,
    dashboard_scheme: str = "http",
) -> None:
    """Run a relay until SIGINT or SIGTERM (what ``pyros relay`` does; SIGINT then raises
    KeyboardInterrupt once the relay is closed, so Ctrl-C exits 130); SIGHUP reloads the
    tokens file (``tokens_path``) without dropping a connection.

    Args:
        host: address to bind.
        port: TCP port; 0 picks a free one.
        tokens: the parsed tokens file, or None for a loopback-only relay.
        limits: every limit (defaults in :class:`~pyros.cloud.limits.Limits`).
        ssl_context: TLS for ``wss://`` (see :func:`tls_context`).
        announce: called once listening with a line such as
            ``"listening on ws://127.0.0.1:9090"`` (the bound port, also for port 0).
        tokens_path: the file ``tokens`` came from, read again on SIGHUP.
        redis: ``redis://HOST:PORT/DB`` to be one relay with the others on it.
        dashboard_port: where ``GET /dashboard`` redirects (see :class:`Relay`).
        dashboard_scheme: ``http`` or ``https``, the dashboard's scheme.

    Raises:
        OSError: the address cannot be bound.
        ClusterError: Redis cannot be used.
    """

    async def main() -> None:
        relay = Relay(tokens, limits, dashboard_port, redis)
        relay.dashboard_scheme = dashboard_scheme
        await relay.start(host, port, ssl_context=ssl_context)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signalled: list[int] = []

        def on_signal(signum: int) -> None:
            signalled.append(signum)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        if tokens_path is not None:
            loop.add_signal_handler(signal.SIGHUP, relay.reload_tokens, tokens_path)
        scheme = "wss" if ssl_context is not None else "ws"
        if announce is not None:
            announce(f"listening on {scheme}://{host}:{relay.port}")
        try:
            await stop.wait()
        finally:
            await relay.close()
        if signalled and signalled[0] == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C, after a clean close: the command exits 130

    asyncio.run(main())
