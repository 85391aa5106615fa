"""The cloud connector: a robot-side process that forwards topics to a relay and takes commands.

.. code-block:: text

    ROS <-> pyros node <-> pyros.asyncio.Client <-> Connector ==ws(s)==> relay <== operators

The connector dials out to the relay (robots sit behind NAT) at ``ws(s)://HOST:PORT/device``
and speaks the device protocol of :mod:`pyros.cloud.device_protocol` (the agreed relay <->
connector contract; message shapes follow the rosbridge v2 protocol, ``ROSBRIDGE_PROTOCOL.md``
of rosbridge_suite). It:

* **forwards** every topic matching its topic globs: it polls :meth:`Client.topics` every
  ``poll_interval`` seconds, subscribes each new match and sends a new ``hello`` when the set of
  forwarded topics or callable services changes. A per-topic rate limit (``rates``, Hz) keeps the
  latest message and sends at most that many per second; other topics send every message, in
  order. ``uint8[]`` fields travel as base64 strings (the rosbridge convention).
* **buffers** what it forwards in a bounded :class:`~pyros.cloud.connector_buffer.SendBuffer`
  until the relay acknowledges it; while offline the buffer fills, the oldest messages are
  dropped when it is full, and the exact per-topic counts go to the relay in the next ``hello``.
  After a reconnect it resends what the relay did not accept (``welcome.resume_after``), so
  every message arrives once and in order per topic (one FIFO for all topics).
* **keeps its buffer on disk** with ``buffer_dir`` (``--buffer-dir``): SQLite in WAL mode
  (:mod:`pyros.cloud.connector_disk`), so a killed and restarted connector resumes the same
  session and loses nothing within the buffer's bounds.
* **reports** its buffer and drop counts to the relay in a ``stats`` message about once a
  :data:`STATS_INTERVAL` (shown in the relay's ``GET /api/devices``).
* **reconnects** with exponential backoff and full jitter (:class:`Backoff`: the n-th retry
  waits a uniform random time in ``[0, min(5 s, 0.2 s * 2**n)]``), reset once a welcomed
  connection has stayed up for :data:`STABLE_AFTER` seconds, so a relay that restarts often
  (every few seconds) is rejoined within the first, short delays.
* **injects commands**: a relay ``publish`` is published on the robot only if its topic matches
  the command globs, a ``call_service`` is called only if the service matches the service globs.
  Anything else is refused with a ``status`` error (``publish``) or a failed
  ``service_response`` (``call_service``) naming the reason, so the operator learns why.

Errors: :class:`ConnectorError` (a :class:`~pyros.exceptions.PyrosError`) for what retrying
cannot fix: the relay refused the device's token (HTTP 401/403), another connection took over
the device id (close code 4000), or the relay URL is malformed. A node that dies ends
:meth:`Connector.run` with :class:`~pyros.exceptions.NodeDiedError`. Network failures are never
raised: they are logged (logger ``pyros.cloud.connector``) and retried, and so is a look for new
topics that times out (a busy ROS master). A refused command or call is reported to the relay.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import math
import random
import signal
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import CloseCode

import pyros.asyncio
from pyros._exposure import Exposure
from pyros._names import glob_match, is_valid
from pyros.cloud import device_protocol
from pyros.cloud.connector_buffer import SendBuffer
from pyros.cloud.connector_disk import BufferDirError, DiskSendBuffer
from pyros.cloud.device_protocol import DeviceProtocolError
from pyros.cloud.typedefs import needed_types
from pyros.exceptions import ActionError, MessageError, NodeDiedError, PyrosError
from pyros.exceptions import TimeoutError as PyrosTimeoutError
from pyros.message_types import canonical_type

__all__ = [
    "Connector",
    "ConnectorError",
    "Backoff",
    "run_connector",
    "run_until_signal",
    "device_url",
    "parse_rate",
    "to_json_data",
    "BUFFER_SIZE",
    "BUFFER_BYTES",
    "MAX_MESSAGE_BYTES",
    "POLL_INTERVAL",
    "CALL_TIMEOUT",
    "RECONNECT_INITIAL",
    "RECONNECT_MAX",
    "STABLE_AFTER",
    "STATS_INTERVAL",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "OPEN_TIMEOUT",
]

logger = logging.getLogger("pyros.cloud.connector")

BUFFER_SIZE = 10_000
"""Default bound of the outgoing buffer, in messages (unacknowledged plus unsent)."""

BUFFER_BYTES = 64 << 20
"""Default bound of the outgoing buffer, in characters of encoded JSON (about bytes)."""

MAX_MESSAGE_BYTES = 16 << 20
"""Default largest forwarded message, in bytes of JSON: the relay's default limit."""

POLL_INTERVAL = 1.0
"""Seconds between two looks for new topics and services."""

CALL_TIMEOUT = 10.0
"""Seconds a service call from the relay may take on the robot."""

RECONNECT_INITIAL = 0.2
"""Seconds: the ceiling of the first reconnect delay; it doubles after each failure."""

RECONNECT_MAX = 5.0
"""Seconds: the highest ceiling of a reconnect delay (the longest a connector stays away from a
relay that is up again)."""

STABLE_AFTER = 1.0
"""Seconds a welcomed connection must last for the backoff to start again from the bottom (a
relay that welcomes and drops at once still gets growing delays)."""

STATS_INTERVAL = 1.0
"""Seconds between two ``stats`` messages to the relay (sent only when something changed)."""

PING_INTERVAL = 10.0
"""Seconds between websocket pings (a half-open connection is noticed within about 20 s)."""

PING_TIMEOUT = 10.0
"""Seconds to wait for a pong before the connection counts as lost."""

OPEN_TIMEOUT = 10.0
"""Seconds the TCP, TLS and websocket handshakes together may take."""

_MAX_DEFINITIONS = 500  # type definitions a connector fetches at most (nested ones included)
_FORWARD_QUEUE = 10_000  # subscription queue of an unthrottled topic: never the bottleneck
_CLOSE_TIMEOUT = 2.0


class ConnectorError(PyrosError):
    """A failure that retrying cannot fix: a refused token, a replaced device, a bad URL."""


class Backoff:
    """Exponential backoff with full jitter (the AWS architecture blog's "Full Jitter").

    The n-th consecutive delay (from 0) is uniform in ``[0, min(maximum, initial * factor**n)]``.

    Args:
        initial: seconds, the ceiling of the first delay.
        maximum: seconds, the highest ceiling.
        factor: how much the ceiling grows after each failure.
        random: a function returning floats in ``[0, 1)`` (tests pass a fixed one).
    """

    def __init__(
        self,
        initial: float = RECONNECT_INITIAL,
        maximum: float = RECONNECT_MAX,
        factor: float = 2.0,
        random: Callable[[], float] = random.random,
    ) -> None:
        if not (0 < initial <= maximum) or factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempts = 0
        self._random = random

    def ceiling(self) -> float:
        """Return the ceiling of the next delay, in seconds."""
        return min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))

    def next_delay(self) -> float:
        """Return the next delay in seconds and count one more failure."""
        delay = self._random() * self.ceiling()
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start again from the smallest ceiling (after a stable connection)."""
        self.attempts = 0


def to_json_data(value: Any) -> Any:
    """Return ``value`` (a pyros message) as JSON data: ``bytes`` become base64 strings.

    The rosbridge v2 protocol sends ``uint8[]`` as base64; pyros nodes accept that form back.
    """
    if isinstance(value, dict):
        return {key: to_json_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_data(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def parse_rate(text: str) -> tuple[str, float]:
    """Parse a ``--rate`` option, ``TOPIC=HZ`` (``TOPIC`` may be a glob), into ``(glob, hz)``.

    Raises:
        ValueError: no ``=``, an empty topic, or a rate that is not a positive finite number.
    """
    topic, sep, hz_text = text.rpartition("=")
    if not sep or not topic:
        raise ValueError(f"expected TOPIC=HZ, got {text!r}")
    try:
        hz = float(hz_text)
    except ValueError as exc:
        raise ValueError(f"rate {hz_text!r} of {topic} is not a number of Hz") from exc
    if not (0 < hz < float("inf")):
        raise ValueError(f"rate of {topic} must be a positive number of Hz, got {hz_text}")
    if not topic.startswith(("/", "*", "?", "[")):
        topic = "/" + topic
    return topic, hz


def device_url(relay: str) -> str:
    """Return the connector URL for a relay address: ``ws://host:port`` -> ``.../device``.

    A URL with a path other than ``/`` is used as given (a relay behind a reverse proxy).

    Raises:
        ConnectorError: not a ``ws://`` or ``wss://`` URL with a host.
    """
    parts = urlsplit(relay)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConnectorError(
            f"the relay URL must look like ws://HOST:PORT or wss://HOST, not {relay!r}"
        )
    path = parts.path if parts.path not in ("", "/") else device_protocol.DEVICE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Connector:
    """Forwards a robot's topics to a relay and injects the relay's commands (module docstring).

    Args:
        client: an open :class:`pyros.asyncio.Client` to the robot's node; the connector does
            not close it.
        relay: the relay's URL, ``ws://HOST:PORT`` or ``wss://HOST:PORT`` (``/device`` is added),
            or several relays' URLs (relays sharing a Redis): after a lost connection or a
            failed attempt the next one is tried.
        device: this robot's device id at the relay.
        token: the device's secret token (sent as ``Authorization: Bearer``).
        topics: globs of topics to forward (``/turtle1/pose``, ``/camera/*``).
        commands: globs of topics operators may publish to.
        services: globs of services operators may call.
        actions: globs of action servers operators may send goals to.
        params: globs of parameters operators may read (and, with command rights, set).
        latest: globs of forwarded topics that hold state (a pose, a map): the relay replays
            their latest value to a late subscriber. Other topics are events, never replayed.
        listen: globs of other devices' topics by their full relay name (``/robot2/chat``,
            ``/*/chat``): the relay sends them here (device-to-device broadcast, as the robot
            chat of seed 002) and they are published on this robot under that name. They are
            never forwarded back.
        rates: glob -> highest rate in Hz for the matching topics (the first match wins); the
            latest message is kept and sent at most that often.
        buffer: the bound of the outgoing buffer, in messages.
        buffer_bytes: the bound of the outgoing buffer, in characters of JSON (about bytes).
        max_message_bytes: larger messages are not forwarded (counted as dropped and reported
            in a ``status`` error); keep it at or below the relay's ``--max-message-bytes``.
        poll_interval: seconds between two looks for new topics and services.
        call_timeout: seconds a service call from the relay may take.
        backoff: the reconnect delays (default :class:`Backoff` ``()``).
        open_timeout: seconds the websocket opening handshake may take.
        ping_interval: seconds between keepalive pings.
        ping_timeout: seconds to wait for a pong.
        ssl_context: TLS settings for a ``wss://`` relay (default: the system's CAs, with
            hostname checks); ignored for ``ws://``.
        buffer_dir: keep the buffer in ``buffer_dir/<device>.sqlite3`` (SQLite, WAL) so a
            restarted connector resumes its session; None keeps it in memory.

    Raises:
        ConnectorError: a malformed relay URL, or an unusable ``buffer_dir``.
        ValueError: ``buffer`` or ``buffer_bytes`` below 1, ``poll_interval`` not a positive
            finite number of seconds, or an empty ``token``.
    """

    def __init__(
        self,
        client: pyros.asyncio.Client,
        *,
        relay: str | Sequence[str],
        device: str,
        token: str,
        topics: Iterable[str] = (),
        commands: Iterable[str] = (),
        services: Iterable[str] = (),
        actions: Iterable[str] = (),
        params: Iterable[str] = (),
        latest: Iterable[str] = (),
        listen: Iterable[str] = (),
        rates: Mapping[str, float] | None = None,
        buffer: int = BUFFER_SIZE,
        buffer_bytes: int = BUFFER_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        poll_interval: float = POLL_INTERVAL,
        call_timeout: float = CALL_TIMEOUT,
        backoff: Backoff | None = None,
        open_timeout: float = OPEN_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        buffer_dir: str | None = None,
    ) -> None:
        if not token:
            raise ValueError("the device token must not be empty")
        if not (0 < poll_interval < math.inf):
            raise ValueError(f"poll_interval must be a positive number of seconds: {poll_interval}")
        self.client = client
        relays = [relay] if isinstance(relay, str) else list(relay)
        if not relays:
            raise ConnectorError("at least one relay URL is needed")
        self.urls = [device_url(url) for url in relays]
        """The relays' connector URLs, tried in turn (failover)."""
        self._current = 0
        self.device = device
        self.buffer: SendBuffer
        """The outgoing buffer (seq numbers, acks, drop counts)."""
        if buffer_dir is not None:
            try:
                disk = DiskSendBuffer(
                    buffer_dir,
                    device,
                    buffer,
                    max_bytes=buffer_bytes,
                    max_message=max_message_bytes,
                )
            except BufferDirError as exc:
                raise ConnectorError(str(exc)) from exc
            self.buffer = disk
            self.session = disk.session
        else:
            self.buffer = SendBuffer(buffer, max_bytes=buffer_bytes, max_message=max_message_bytes)
            self.session = str(uuid.uuid4())
        """This connector's session id: the relay keys its last accepted seq by it."""
        self.connections = 0
        """Connections that got a ``welcome`` so far."""
        self.forwarded: dict[str, str] = {}
        """Forwarded topics: name -> type."""
        self.callable_services: dict[str, str] = {}
        """Services operators may call, as last seen: name -> type."""
        self.command_topics: dict[str, str] = {}
        """Existing topics matching the command globs, as last seen: name -> type."""
        self.actions: dict[str, str] = {}
        """Action servers operators may use, as last seen: name -> type."""
        self.params: list[str] = []
        """Parameters operators may read, as last seen."""
        self.definitions: dict[str, str] = {}
        """Definition texts of the exposed types and their nested types (``pkg/Type``)."""
        self._undefined: set[str] = set()
        self._token = token
        self._topics = Exposure(topics, "topic")
        self._commands = Exposure(commands, "topic")
        self._services = Exposure(services, "service")
        self._actions = Exposure(actions, "action")
        self._params = Exposure(params, "parameter")
        self._latest = Exposure(latest, "topic")
        self._goals: dict[str, pyros.asyncio.Goal] = {}
        self._listen = Exposure(listen, "topic")
        self._rates = [(pattern, hz) for pattern, hz in (rates or {}).items()]
        self._poll_interval = poll_interval
        self._call_timeout = call_timeout
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._tls: dict[str, Any] = (
            {"ssl": ssl_context} if ssl_context and self.url.startswith("wss:") else {}
        )
        self._advertised: tuple[dict[str, str], ...] | None = None
        self._stats_sent: tuple[int, int] | None = None
        self._hello_due = True
        self._control: deque[str] = deque()
        self._wake = asyncio.Event()
        self._online = asyncio.Event()
        self._welcomed_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscriptions: list[pyros.asyncio.Subscription] = []
        self._failure: asyncio.Future[None] | None = None

    # --- public --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL of the relay in use (or tried next)."""
        return self.urls[self._current]

    @property
    def online(self) -> bool:
        """True while a connection to the relay is open and welcomed."""
        return self._online.is_set()

    async def wait_online(self, timeout: float | None = None) -> None:
        """Wait until the relay has welcomed this connector.

        Raises:
            TimeoutError: not online within ``timeout`` seconds (builtin ``TimeoutError``).
        """
        await asyncio.wait_for(self._online.wait(), timeout)

    async def run(self) -> None:
        """Forward and take commands until cancelled; never returns normally.

        Raises:
            ConnectorError: the relay refused the token, or the device id was taken over.
            NodeDiedError: the robot's node died.
            PyrosError: the node refused a subscription the connector needs.
        """
        if self._failure is not None:
            raise RuntimeError("Connector.run() may be called only once")
        self._failure = asyncio.get_running_loop().create_future()
        try:
            await self._discover()
            self._spawn(self._discovery_loop(), "discovery")
            self._spawn(self._connection_loop(), "connection")
            self._spawn(self._stats_loop(), "stats")
            await self._failure
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for subscription in self._subscriptions:
                try:
                    await subscription.close()
                except PyrosError:
                    pass  # the client closed or the node died meanwhile: nothing to unsubscribe
            if isinstance(self.buffer, DiskSendBuffer):
                self.buffer.close()

    # --- tasks ---------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str, *, forever: bool = True) -> None:
        """Run ``coro`` as a task whose error ends :meth:`run` (and its return, if ``forever``)."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"pyros-connector-{name}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(done, forever))

    def _task_done(self, task: asyncio.Task[None], forever: bool) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._failure is None or self._failure.done():
            return
        error = task.exception()
        if error is not None:
            self._failure.set_exception(error)
        elif forever:
            self._failure.set_exception(RuntimeError(f"{task.get_name()} ended unexpectedly"))

    async def _stats_loop(self) -> None:
        """Send ``stats`` (buffered, dropped) about once a second while something changes."""
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            figures = (len(self.buffer), self.buffer.dropped_total)
            if self._online.is_set() and figures != self._stats_sent:
                self._stats_sent = figures
                self._reply(device_protocol.stats(*figures))

    async def _discovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self._discover()
                _raise_if_cancelling()
            except PyrosTimeoutError as exc:  # a busy node or ROS master: look again later
                logger.warning("looking for new topics and services: %s; trying again", exc)

    async def _discover(self) -> None:
        """Subscribe new matching topics; schedule a hello if what is offered changed."""
        topics = await self.client.topics()
        for name, type_name in sorted(topics.items()):
            if name in self.forwarded or not self._topics.matches(name):
                continue
            if self._listen.matches(name):  # another device's topic, published here: no echo
                continue
            await self._start_forwarding(name, type_name)
        self.command_topics = {
            name: kind for name, kind in topics.items() if self._commands.matches(name)
        }
        self.callable_services = self._services.filter(await self.client.services())
        if self._actions.patterns:
            self.actions = self._actions.filter(await self.client.actions())
        if self._params.patterns:
            self.params = self._params.filter_list(await self.client.params())
        await self._define(
            [
                *self.forwarded.values(),
                *self.command_topics.values(),
                *self.callable_services.values(),
                *self.actions.values(),
            ]
        )
        offer = (
            dict(self.forwarded),
            dict(self.callable_services),
            dict(self.command_topics),
            dict(self.actions),
            {name: "" for name in self.params},
            dict(self.definitions),
        )
        if offer != self._advertised:
            self._advertised = offer
            self._hello_due = True
            self._wake.set()

    async def _define(self, types: Iterable[str]) -> None:
        """Fetch the definitions of ``types`` and of the message types nested in them (once)."""
        pending = [t for t in types if t]
        while pending and len(self.definitions) + len(self._undefined) < _MAX_DEFINITIONS:
            name = pending.pop()
            try:
                key = canonical_type(name)
            except MessageError:
                continue
            if key in self.definitions or key in self._undefined:
                continue
            try:
                text = await self.client.definition(name)
                nested = needed_types(key, text)
            except NodeDiedError:
                raise
            except PyrosError as exc:  # the backend does not know it: no details for it
                self._undefined.add(key)
                logger.info("no definition of %s for rosapi message details: %s", key, exc)
                continue
            self.definitions[key] = text
            pending.extend(nested)

    async def _start_forwarding(self, name: str, type_name: str | None) -> None:
        """Subscribe ``name`` on the robot and forward what arrives (in order)."""
        period = self._period(name)
        queue_size = 1 if period is not None else _FORWARD_QUEUE
        subscription = await self.client.subscribe(name, queue_size=queue_size)
        self._subscriptions.append(subscription)
        self.forwarded[name] = subscription.type or type_name or ""
        self._spawn(self._forward(subscription, period), f"forward{name}")
        logger.info(
            "forwarding %s (%s)%s",
            name,
            self.forwarded[name],
            f" at most {1 / period:g} Hz" if period else "",
        )

    def _period(self, topic: str) -> float | None:
        for pattern, hz in self._rates:
            if glob_match(pattern, topic):
                return 1.0 / hz
        return None

    async def _forward(
        self, subscription: pyros.asyncio.Subscription, period: float | None
    ) -> None:
        """Move one topic's messages into the buffer, in order (at most 1/period per second)."""
        topic = subscription.topic
        seen_dropped = 0
        while True:
            message = await subscription.get()
            _raise_if_cancelling()
            if period is None and subscription.dropped != seen_dropped:
                self.buffer.count_lost(topic, subscription.dropped - seen_dropped)
                seen_dropped = subscription.dropped
            taken = time.monotonic()
            self._add(topic, message)
            if period is not None:
                await asyncio.sleep(max(0.0, taken + period - time.monotonic()))

    def _add(self, topic: str, message: dict[str, Any]) -> None:
        try:
            self.buffer.add(topic, to_json_data(message))
        except DeviceProtocolError as exc:
            self.buffer.count_lost(topic, 1)
            text = f"connector {self.device}: cannot forward a message of {topic}: {exc}"
            logger.error("%s", text)
            self._control.append(device_protocol.encode(device_protocol.status("error", text)))
        self._wake.set()

    # --- the connection ------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        headers = device_protocol.handshake_headers(self.device, self._token)
        while True:
            reason = "?"
            try:
                async with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=self._open_timeout,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_timeout,
                    close_timeout=_CLOSE_TIMEOUT,
                    proxy=None if _is_loopback(self.url) else True,
                    **self._tls,
                ) as websocket:
                    logger.info("connected to %s as device %s", self.url, self.device)
                    try:
                        reason = await self._serve(websocket)
                    except asyncio.CancelledError:
                        await websocket.close(CloseCode.GOING_AWAY, "connector stopped")
                        raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise ConnectorError(
                        f"the relay at {self.url} refused device {self.device!r} "
                        f"(HTTP {status}): check the device id and token"
                    ) from exc
                reason = f"HTTP {status} from the relay"
            except InvalidURI as exc:
                raise ConnectorError(f"bad relay URL {self.url}: {exc}") from exc
            except ConnectionClosed as exc:
                reason = self._closed_reason(exc.rcvd.code if exc.rcvd else None, str(exc))
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._online.clear()
                self.buffer.connection_lost()
            if (
                self._welcomed_at is not None
                and time.monotonic() - self._welcomed_at >= STABLE_AFTER
            ):
                self._backoff.reset()
            self._welcomed_at = None
            delay = self._backoff.next_delay()
            failed = self.url
            self._current = (self._current + 1) % len(self.urls)
            logger.warning(
                "relay %s: %s; acked through seq %d, %d messages buffered, %d dropped so far; "
                "retrying in %.2f s%s",
                failed,
                reason,
                self.buffer.acked,
                len(self.buffer),
                self.buffer.dropped_total,
                delay,
                f" at {self.url}" if self.url != failed else "",
            )
            await asyncio.sleep(delay)

    def _closed_reason(self, code: int | None, text: str) -> str:
        if code == device_protocol.REPLACED_CLOSE_CODE:
            raise ConnectorError(
                f"another connection took over device {self.device!r} at {self.url} "
                "(close code 4000): is a second connector running with this id?"
            )
        return f"connection closed ({text})"

    async def _serve(self, websocket: ClientConnection) -> str:
        """Run one connection until it closes; return why it closed."""
        self._hello_due = True
        sender = asyncio.ensure_future(self._send_loop(websocket))
        receiver = asyncio.ensure_future(self._receive_loop(websocket))
        try:
            done, _ = await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, ConnectionClosed):
                raise error
        return self._closed_reason(websocket.close_code, f"code {websocket.close_code}")

    async def _send_loop(self, websocket: ClientConnection) -> None:
        while True:
            self._wake.clear()
            frame = self._next_frame()
            while frame is not None:
                await websocket.send(frame)
                frame = self._next_frame()
            await self._wake.wait()

    def _next_frame(self) -> str | None:
        """The hello first, then replies and statuses, then forwarded data in seq order."""
        if self._hello_due:
            self._hello_due = False
            hello = device_protocol.hello(
                self.device,
                self.session,
                topics=self.forwarded,
                services=self.callable_services,
                commands=self._commands.patterns,
                dropped=self.buffer.take_dropped(),
                command_topics=self.command_topics,
                actions=self.actions,
                params=self.params,
                latest=[name for name in self.forwarded if self._latest.matches(name)],
                definitions=self.definitions,
            )
            if hello["dropped"]:
                logger.warning("reporting dropped messages to the relay: %s", hello["dropped"])
            # Other devices' topics to receive (device-to-device broadcast), after each hello.
            for pattern in self._listen.patterns:
                self._control.append(device_protocol.encode(device_protocol.subscribe(pattern)))
            return device_protocol.encode(hello)
        if self._control:
            return self._control.popleft()
        entry = self.buffer.next_to_send()
        return None if entry is None else entry.frame

    async def _receive_loop(self, websocket: ClientConnection) -> None:
        async for frame in websocket:
            await self._handle(frame)
            _raise_if_cancelling()

    async def _handle(self, frame: str | bytes) -> None:
        try:
            message = device_protocol.decode_from_relay(frame)
        except DeviceProtocolError as exc:
            logger.error("bad frame from the relay: %s", exc)
            self._reply(device_protocol.status("error", f"connector {self.device}: {exc}", exc.id))
            return
        op = message["op"]
        if op == "welcome":
            self._welcome(message["resume_after"])
        elif op == "ack":
            self.buffer.ack(message["seq"])
        elif op == "publish":
            await self._command(message["topic"], message["msg"], message["id"], message["type"])
        elif op == "call_service":
            self._spawn(
                self._call(message["id"], message["service"], message["args"]),
                f"call{message['service']}",
                forever=False,
            )
        elif op == "send_goal":
            self._spawn(self._goal(message), f"goal{message['action']}", forever=False)
        elif op == "cancel_goal":
            self._spawn(self._cancel_goal(message["id"]), "cancel-goal", forever=False)
        elif op == "param":
            self._spawn(self._param(message), f"param{message['name']}", forever=False)
        else:
            level = {"error": logging.ERROR, "warning": logging.WARNING}.get(
                message["level"], logging.INFO
            )
            logger.log(level, "relay says: %s", message["msg"])

    def _welcome(self, resume_after: int) -> None:
        first = not self._online.is_set()
        before = len(self.buffer)
        self.buffer.welcome(resume_after)
        if first:
            self._stats_sent = None
            self.connections += 1
            self._welcomed_at = time.monotonic()
            self._online.set()
            logger.info(
                "welcomed by the relay: resuming after seq %d, sending %d buffered messages "
                "(%d already accepted)",
                resume_after,
                len(self.buffer),
                before - len(self.buffer),
            )
        if self.buffer.has_unreported_drops():
            self._hello_due = True
        self._wake.set()

    async def _command(
        self, topic: str, message: dict[str, Any], id: str | None, type_name: str | None
    ) -> None:
        if self._listen.matches(topic):  # another device's topic (``/robot2/chat``)
            try:
                await self.client.publish(topic, message, type=type_name)
            except NodeDiedError:
                raise
            except PyrosError as exc:
                logger.warning("cannot publish %s from another device here: %s", topic, exc)
            return
        if not is_valid(topic) or not self._commands.matches(topic):
            shown = ", ".join(self._commands.patterns) or "none"
            self._refuse(
                f"topic {topic} is not a command topic of {self.device} (commands: {shown})", id
            )
            return
        if topic not in self.forwarded and self._topics.matches(topic):
            # A command topic that is forwarded too (an operator advertises and publishes, another
            # subscribes): subscribe before the first publish so that no message is missed.
            try:
                await self._start_forwarding(topic, type_name)
            except NodeDiedError:
                raise
            except PyrosError as exc:
                logger.warning("cannot forward %s: %s", topic, exc)
            else:
                self._hello_due = True
        try:
            await self.client.publish(topic, message, type=type_name)
        except NodeDiedError:
            raise
        except PyrosError as exc:
            self._refuse(f"{self.device} could not publish to {topic}: {exc}", id)

    async def _call(self, id: str, service: str, args: dict[str, Any]) -> None:
        if not is_valid(service) or not self._services.matches(service):
            shown = ", ".join(self._services.patterns) or "none"
            text = f"service {service} is not callable on {self.device} (services: {shown})"
            logger.warning("refused: %s", text)
            self._reply(device_protocol.service_response(id, text, False))
            return
        try:
            values = await self.client.call(service, args, timeout=self._call_timeout)
        except NodeDiedError:
            raise
        except PyrosError as exc:
            text = f"{service} on {self.device} failed: {type(exc).__name__}: {exc}"
            self._reply(device_protocol.service_response(id, text, False))
            return
        self._reply(device_protocol.service_response(id, to_json_data(values), True))

    async def _goal(self, message: dict[str, Any]) -> None:
        """Run an operator's goal through the pyros client; report feedback and the end."""
        id, action = message["id"], message["action"]
        if not is_valid(action) or not self._actions.matches(action):
            shown = ", ".join(self._actions.patterns) or "none"
            text = f"action {action} is not offered by {self.device} (actions: {shown})"
            self._reply(device_protocol.action_result(id, "rejected", None, text))
            return

        def feedback(values: dict[str, Any]) -> None:
            if message["feedback"]:
                self._reply(device_protocol.action_feedback(id, to_json_data(values)))

        try:
            goal = await self.client.start_goal(action, message["goal"], feedback=feedback)
        except NodeDiedError:
            raise
        except PyrosError as exc:
            text = f"{action} on {self.device}: {type(exc).__name__}: {exc}"
            self._reply(device_protocol.action_result(id, "rejected", None, text))
            return
        self._goals[id] = goal
        status, text = "succeeded", ""
        result: dict[str, Any] | None = None
        try:
            result = await goal.result()
        except NodeDiedError:
            raise
        except ActionError as exc:
            status = exc.status if exc.status in device_protocol.GOAL_END_STATUSES else "aborted"
            result, text = exc.result, str(exc)
        except PyrosError as exc:
            status, text = "aborted", f"{type(exc).__name__}: {exc}"
        finally:
            self._goals.pop(id, None)
        payload = to_json_data(result) if isinstance(result, dict) else None
        self._reply(device_protocol.action_result(id, status, payload, text))

    async def _cancel_goal(self, id: str) -> None:
        goal = self._goals.get(id)
        if goal is None:
            return  # already over: its result is on its way
        try:
            await goal.cancel()
        except NodeDiedError:
            raise
        except PyrosError as exc:
            logger.warning("cancelling goal %s: %s", id, exc)

    async def _param(self, message: dict[str, Any]) -> None:
        """Get, set or delete a parameter that matches the parameter globs."""
        id, action, name = message["id"], message["action"], message["name"]
        if not self._params.matches(name) or ".." in name.split("/"):
            shown = ", ".join(self._params.patterns) or "none"
            text = f"parameter {name} is not exposed by {self.device} (params: {shown})"
            self._reply(device_protocol.param_response(id, text, False))
            return
        try:
            if action == "get":
                value = await self.client.get_param(name)
            elif action == "set":
                await self.client.set_param(name, message["value"])
                value = None
            else:
                await self.client.delete_param(name)
                value = None
        except NodeDiedError:
            raise
        except KeyError:
            self._reply(device_protocol.param_response(id, f"parameter {name} is not set", False))
            return
        except PyrosError as exc:
            text = f"{action} {name} on {self.device}: {type(exc).__name__}: {exc}"
            self._reply(device_protocol.param_response(id, text, False))
            return
        self._reply(device_protocol.param_response(id, to_json_data(value), True))

    def _refuse(self, text: str, id: str | None) -> None:
        logger.warning("refused: %s", text)
        self._reply(device_protocol.status("error", text, id))

    def _reply(self, message: dict[str, Any]) -> None:
        self._control.append(device_protocol.encode(message))
        self._wake.set()


def _raise_if_cancelling() -> None:
    """Raise CancelledError if this task was asked to stop.

    On Python 3.11, ``asyncio.wait_for`` (used by the pyros client) swallows a cancellation
    that arrives as its future completes; a loop around client calls would then never stop.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError


async def run_connector(
    *,
    relay: str | Sequence[str],
    device: str,
    token: str,
    backend: str = "mock",
    name: str | None = None,
    topics: Iterable[str] = (),
    commands: Iterable[str] = (),
    services: Iterable[str] = (),
    actions: Iterable[str] = (),
    params: Iterable[str] = (),
    latest: Iterable[str] = (),
    listen: Iterable[str] = (),
    rates: Mapping[str, float] | None = None,
    buffer: int = BUFFER_SIZE,
    ready_timeout: float = 10.0,
    backend_options: Mapping[str, Any] | None = None,
    cafile: str | None = None,
    **connector_options: Any,
) -> None:
    """Open the robot's node, then run a :class:`Connector` on it until cancelled.

    The node is spawned with ``backend`` exposing ``topics`` plus ``commands`` and ``services``,
    or, with ``name``, the running shared node of that name is used (and left running).

    Args:
        relay, device, token, topics, commands, services, actions, params, latest, listen,
            rates, buffer: as :class:`Connector`.
        backend: the backend to spawn (``mock``, ``ros1``, ``ros2``, ``rosbridge``).
        name: use the running shared node of this name instead of spawning one.
        ready_timeout: seconds to wait for the node.
        backend_options: ``master_uri``, ``domain_id``, ``url``... as :func:`pyros.spawn`.
        cafile: PEM file of the CA certificates that a ``wss://`` relay's certificate must
            chain to (a self-signed relay); None uses the system's CAs.
        **connector_options: more :class:`Connector` arguments (``poll_interval``...).

    Raises:
        SpawnError, NodeDiedError, TimeoutError: the node could not be started or reached.
        ConnectorError, NodeDiedError: as :meth:`Connector.run`.
    """
    topics, commands, services = list(topics), list(commands), list(services)
    actions = list(actions)
    listen = list(listen)
    if cafile is not None:
        try:
            connector_options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectorError(f"cannot load the CA file {cafile}: {exc}") from exc
    if name:
        client = await pyros.asyncio.connect(name, timeout=ready_timeout)
    else:
        client = await pyros.asyncio.spawn(
            backend,
            topics=topics + commands + listen,
            services=services,
            params=list(params),
            actions=actions,
            ready_timeout=ready_timeout,
            **dict(backend_options or {}),
        )
    async with client:
        connector = Connector(
            client,
            relay=relay,
            device=device,
            token=token,
            topics=topics,
            commands=commands,
            services=services,
            actions=actions,
            params=params,
            latest=latest,
            listen=listen,
            rates=rates,
            buffer=buffer,
            **connector_options,
        )
        logger.info("device %s session %s: connecting to %s", device, connector.session, relay)
        await connector.run()


async def run_until_signal(coro: Coroutine[Any, Any, None]) -> bool:
    """Run ``coro`` until it ends or SIGINT/SIGTERM arrives (then cancel it and wait).

    Returns:
        True if SIGTERM stopped it, False if it returned by itself.

    Raises:
        KeyboardInterrupt: SIGINT (Ctrl-C) stopped it, once it has cleaned up (the command
            line then exits 130, as for any Ctrl-C).
        Whatever ``coro`` raised.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    signalled: list[int] = []

    def stop(signum: int) -> None:
        signalled.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not signalled:
            raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if signalled and signalled[0] == signal.SIGINT:
        raise KeyboardInterrupt
    return bool(signalled)
