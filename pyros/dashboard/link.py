"""The dashboard's connection to the relay, as one operator: rosbridge v2 at ``/`` and
``GET /api/devices``, with the operator token the user signed in with (asyncio I/O).

A :class:`RelayLink` is the I/O shell around
:class:`~pyros.dashboard.rosbridge_client.RosbridgeClient` (websockets for the operator
endpoint, httpx for the device list). It reconnects by itself
after the relay restarts (exponential backoff with jitter, at most a few seconds), restores its
subscriptions and advertisements, and fails calls in flight when the connection is lost. It
polls ``GET /api/devices`` every ``poll_interval`` seconds, so a device going offline shows
within that time. The token goes in the ``Authorization: Bearer`` header only, never in a URL.

Pages listen with :meth:`RelayLink.listen`: a listener is called (synchronously, on the event
loop) with ``("link", None)`` when the connection state changes, ``("fleet", None)`` after
each device list, ``("topic", full_topic_name)`` for each message and ``("status",
Status)`` for a relay ``status`` that answers none of this link's requests.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from pyros.cloud.connector import Backoff
from pyros.dashboard.fleet import (
    IMAGE_TYPES,
    Device,
    DevicesFormatError,
    TopicStream,
    parse_devices,
)
from pyros.dashboard.rosbridge_client import (
    ActionFeedback,
    ActionResult,
    RosbridgeClient,
    ServiceResult,
    Status,
    TopicMessage,
)
from pyros.exceptions import PyrosError

__all__ = [
    "SignInError",
    "RelayUnreachableError",
    "RelayUrls",
    "relay_urls",
    "fetch_devices",
    "relay_is_open",
    "tls_context",
    "GoalHandle",
    "LinkState",
    "RelayLink",
    "Listener",
]

log = logging.getLogger(__name__)

Listener = Callable[[str, Any], None]
"""A page's callback: ``(kind, detail)``, see the module docstring."""

_STATUSES_KEPT = 200
_PUBLISH_CALLBACKS_KEPT = 1000
_MAX_FRAME = 16 << 20  # the relay's default --max-frame-bytes


class SignInError(PyrosError):
    """The relay refused the operator token (its reason in the message), or the dashboard
    refuses this browser (a relay without tokens serves loopback browsers only)."""


class RelayUnreachableError(PyrosError):
    """The relay did not answer (not running, wrong URL, TLS failure); the message says why."""


@dataclass(frozen=True)
class RelayUrls:
    """Where the relay's endpoints are.

    Attributes:
        operator: the rosbridge v2 websocket URL (``ws://HOST:PORT/``).
        devices: the ``GET /api/devices`` URL (``http://HOST:PORT/api/devices``).
        display: the relay URL as the user gave it.
    """

    operator: str
    devices: str
    display: str


def relay_urls(relay: str) -> RelayUrls:
    """Return the endpoints of a relay given as ``ws://HOST:PORT`` or ``wss://HOST:PORT``.

    Raises:
        ValueError: another scheme, or no host.
    """
    parts = urlsplit(relay)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"the relay URL must be ws://HOST:PORT or wss://HOST:PORT, not {relay!r}")
    http = "https" if parts.scheme == "wss" else "http"
    base = parts.netloc
    return RelayUrls(f"{parts.scheme}://{base}/", f"{http}://{base}/api/devices", relay)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def fetch_devices(
    http: httpx.AsyncClient, urls: RelayUrls, token: str
) -> list[dict[str, Any]]:
    """Ask the relay for the devices ``token`` may read (``GET /api/devices``).

    Args:
        http: the HTTP client (its TLS settings are used).
        urls: the relay's endpoints.
        token: the operator token; empty sends none (a relay without tokens file).

    Returns:
        The parsed JSON list.

    Raises:
        SignInError: the relay answered 401 or 403 (its reason in the message).
        RelayUnreachableError: no answer, another status, or not JSON.
    """
    try:
        response = await http.get(urls.devices, headers=_headers(token))
    except httpx.HTTPError as exc:
        raise RelayUnreachableError(f"cannot reach the relay at {urls.display}: {exc}") from exc
    if response.status_code in (401, 403):
        reason = response.text.strip() or f"HTTP {response.status_code}"
        raise SignInError(f"the relay refused the token: {reason}")
    if response.status_code != 200:
        raise RelayUnreachableError(
            f"the relay at {urls.display} answered HTTP {response.status_code} to "
            f"GET /api/devices: {response.text.strip()[:200]}"
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise RelayUnreachableError(f"GET /api/devices did not answer JSON: {exc}") from exc
    if not isinstance(data, list):
        raise RelayUnreachableError("GET /api/devices did not answer a JSON list")
    return data


async def relay_is_open(http: httpx.AsyncClient, urls: RelayUrls) -> bool | None:
    """Return whether the relay serves operators without a token (no tokens file), or None
    when it cannot be asked now."""
    try:
        await fetch_devices(http, urls, "")
    except SignInError:
        return False
    except RelayUnreachableError:
        return None
    return True


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Return the client TLS context for a ``wss://`` relay (``cafile``: extra CA, PEM)."""
    return ssl.create_default_context(cafile=cafile)


@dataclass
class GoalHandle:
    """An action goal in flight, as a page follows it.

    Attributes:
        id: the goal's request id.
        action: the full action name.
        on_feedback: called with each feedback.
        on_result: called once with the :class:`~pyros.dashboard.rosbridge_client.ActionResult`.
    """

    id: str
    action: str
    on_feedback: Callable[[Any], None]
    on_result: Callable[[ActionResult], None]


@dataclass
class _Subscription:
    type: str | None
    throttle_ms: int
    users: int = 0


@dataclass
class LinkState:
    """What pages show about the link.

    Attributes:
        connected: the rosbridge websocket is open.
        error: why it is not (or why the device list failed), for people; None when fine.
        devices_error: why the last ``GET /api/devices`` failed, or None.
        devices_at: wall-clock seconds of the last good device list, or None.
    """

    connected: bool = False
    error: str | None = None
    devices_error: str | None = None
    devices_at: float | None = None
    statuses: deque[Status] = field(default_factory=lambda: deque(maxlen=_STATUSES_KEPT))


class RelayLink:
    """One operator connection to the relay, shared by every page signed in with one token.

    Args:
        relay: ``ws://HOST:PORT`` or ``wss://HOST:PORT``.
        token: the operator token (empty for a relay without tokens file).
        cafile: CA certificates (PEM) for a ``wss://`` relay with a self-signed certificate.
        poll_interval: seconds between two ``GET /api/devices``.

    Attributes:
        devices: the last device list, id -> :class:`~pyros.dashboard.fleet.Device`.
        streams: full topic name -> :class:`~pyros.dashboard.fleet.TopicStream` of every
            subscribed topic (kept after unsubscribing, with their last values).
        state: :class:`LinkState`.
    """

    def __init__(
        self, relay: str, token: str, *, cafile: str | None = None, poll_interval: float = 0.5
    ) -> None:
        self.urls = relay_urls(relay)
        self.token = token
        self.poll_interval = poll_interval
        self._ssl = tls_context(cafile) if self.urls.operator.startswith("wss:") else None
        self.devices: dict[str, Device] = {}
        self.streams: dict[str, TopicStream] = {}
        self.state = LinkState()
        self._core = RosbridgeClient()
        self._ws: ClientConnection | None = None
        self._listeners: set[Listener] = set()
        self._subscriptions: dict[str, _Subscription] = {}
        self._calls: dict[str, asyncio.Future[tuple[bool, Any]]] = {}
        self._goals: dict[str, GoalHandle] = {}
        self._publish_callbacks: OrderedDict[str, Callable[[str], None]] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._previous_poll: float | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting and polling (inside a running event loop)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._connect_forever(), name="pyros-dashboard-rosbridge"),
                asyncio.create_task(self._poll_forever(), name="pyros-dashboard-devices"),
            ]

    async def close(self) -> None:
        """Stop: close the websocket, stop polling, fail what is in flight."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._lost("the dashboard closed the connection")

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every change; return the function that stops it."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def _notify(self, kind: str, detail: Any = None) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, detail)
            except Exception:  # a page's bug must not stop the link; it is logged with its trace
                log.exception("dashboard listener failed on %s %r", kind, detail)

    # --- the device list ---------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        async with httpx.AsyncClient(verify=self._ssl or True, timeout=5.0) as http:
            while not self._closed:
                started = time.monotonic()
                try:
                    data = await fetch_devices(http, self.urls, self.token)
                    elapsed = started - self._previous_poll if self._previous_poll else 0.0
                    self.devices = parse_devices(data, time.time(), self.devices, elapsed)
                    self._previous_poll = started
                    self.state.devices_error = None
                    self.state.devices_at = time.time()
                except (SignInError, RelayUnreachableError, DevicesFormatError) as exc:
                    self.state.devices_error = str(exc)
                    self._previous_poll = None
                self._notify("fleet")
                await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    # --- the rosbridge connection --------------------------------------------------------------

    async def _connect_forever(self) -> None:
        backoff = Backoff(initial=0.25, maximum=3.0)
        while not self._closed:
            why = "the relay closed the connection"
            try:
                async with connect(
                    self.urls.operator,
                    additional_headers=_headers(self.token),
                    ssl=self._ssl,
                    open_timeout=5.0,
                    max_size=_MAX_FRAME,
                    max_queue=None,
                ) as ws:
                    self._ws = ws
                    self.state.connected = True
                    self.state.error = None
                    backoff.reset()
                    self._notify("link")
                    for resumed in self._core.resume():
                        await ws.send(resumed)
                    async for frame in ws:
                        self._receive(frame)
            except InvalidStatus as exc:
                body = (
                    exc.response.body.decode("utf-8", "replace").strip()
                    if exc.response.body
                    else ""
                )
                why = f"the relay refused the connection (HTTP {exc.response.status_code}): {body}"
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
                why = f"cannot reach the relay at {self.urls.display}: {exc}"
            self._lost(why)
            if not self._closed:
                await asyncio.sleep(backoff.next_delay())

    def _lost(self, why: str) -> None:
        was_connected = self._ws is not None or self.state.error != why
        self._ws = None
        self.state.connected = False
        self.state.error = why
        for event in self._core.connection_lost(why):
            self._dispatch(event)
        if was_connected:
            self._notify("link")

    def _receive(self, frame: str | bytes) -> None:
        for event in self._core.receive(frame):
            self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, TopicMessage):
            stream = self.streams.get(event.topic)
            if stream is None:
                return  # a message already on its way when we unsubscribed
            stream.add(event.msg, time.time(), keep_history=_plotted(stream.type))
            self._notify("topic", event.topic)
        elif isinstance(event, ServiceResult):
            future = self._calls.pop(event.id, None)
            if future is not None and not future.done():
                future.set_result((event.ok, event.values))
        elif isinstance(event, ActionFeedback):
            goal = self._goals.get(event.id)
            if goal is not None:
                goal.on_feedback(event.values)
        elif isinstance(event, ActionResult):
            goal = self._goals.pop(event.id, None)
            if goal is not None:
                goal.on_result(event)
        elif isinstance(event, Status):
            callback = self._publish_callbacks.pop(event.id, None) if event.id else None
            if callback is not None and event.level == "error":
                callback(event.msg)
                return
            self.state.statuses.append(event)
            self._notify("status", event)

    async def _send(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise RelayUnreachableError(
                f"not connected to the relay: {self.state.error or 'connecting'}"
            )
        try:
            await ws.send(frame)
        except WebSocketException as exc:
            raise RelayUnreachableError(f"the connection to the relay broke: {exc}") from exc

    # --- what pages ask for ---------------------------------------------------------------------

    async def subscribe(self, topic: str, type: str | None, throttle_ms: int = 0) -> TopicStream:
        """Subscribe ``topic`` for one more page; return its stream (shared by the pages).

        Args:
            topic: the full name at the relay.
            type: its type if known.
            throttle_ms: the least time between two messages (rosbridge ``throttle_rate``).
        """
        stream = self.streams.get(topic)
        if stream is None or (type and stream.type != type):
            stream = self.streams[topic] = TopicStream(topic, type or "")
        subscription = self._subscriptions.get(topic)
        if subscription is None:
            subscription = self._subscriptions[topic] = _Subscription(type, throttle_ms)
            frame = self._core.subscribe(topic, type, throttle_ms)
            if self._ws is not None:
                try:
                    await self._send(frame)
                except RelayUnreachableError:
                    pass  # resubscribed by the reconnect
        subscription.users += 1
        return stream

    async def unsubscribe(self, topic: str) -> None:
        """Release one page's subscription of ``topic`` (the last one unsubscribes)."""
        subscription = self._subscriptions.get(topic)
        if subscription is None:
            return
        subscription.users -= 1
        if subscription.users > 0:
            return
        del self._subscriptions[topic]
        frame = self._core.unsubscribe(topic)
        if self._ws is not None:
            try:
                await self._send(frame)
            except RelayUnreachableError:
                pass  # a new connection starts without it

    async def publish(
        self,
        topic: str,
        type: str,
        msg: Mapping[str, Any],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Publish ``msg`` on command topic ``topic`` (full name) as ``type``.

        Args:
            topic: the full name at the relay.
            type: the message type (advertised first, so the device can create the topic).
            msg: the message.
            on_error: called with the text of a ``status`` error about this message (the relay
                or the device refused it).

        Raises:
            RelayUnreachableError: not connected.
        """
        advertise = self._core.advertise(topic, type)
        if advertise is not None:
            await self._send(advertise)
        request_id, frame = self._core.publish(topic, msg)
        if on_error is not None:
            self._publish_callbacks[request_id] = on_error
            while len(self._publish_callbacks) > _PUBLISH_CALLBACKS_KEPT:
                self._publish_callbacks.popitem(last=False)
        await self._send(frame)

    async def call_service(
        self, service: str, args: Mapping[str, Any], timeout: float | None = None
    ) -> tuple[bool, Any]:
        """Call ``service`` (full name); return ``(ok, response or error text)``.

        Args:
            service: the full name at the relay.
            args: the request.
            timeout: seconds the relay waits for the device (None: the relay's limit).

        Raises:
            RelayUnreachableError: not connected.
        """
        request_id, frame = self._core.call_service(service, args, timeout)
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._calls[request_id] = future
        try:
            await self._send(frame)
        except RelayUnreachableError:
            self._calls.pop(request_id, None)
            self._core.pending.pop(request_id, None)
            raise
        return await future

    async def send_goal(
        self,
        action: str,
        action_type: str,
        goal: Mapping[str, Any],
        on_feedback: Callable[[Any], None],
        on_result: Callable[[ActionResult], None],
    ) -> GoalHandle:
        """Send an action goal (rosbridge ``send_action_goal`` with feedback).

        Raises:
            RelayUnreachableError: not connected.
        """
        request_id, frame = self._core.send_action_goal(action, action_type, goal)
        handle = GoalHandle(request_id, action, on_feedback, on_result)
        self._goals[request_id] = handle
        try:
            await self._send(frame)
        except RelayUnreachableError:
            self._goals.pop(request_id, None)
            self._core.pending.pop(request_id, None)
            raise
        return handle

    async def cancel_goal(self, handle: GoalHandle) -> None:
        """Ask the relay to cancel a goal (its result still comes as an ``action_result``).

        Raises:
            RelayUnreachableError: not connected.
        """
        await self._send(self._core.cancel_action_goal(handle.action, handle.id))


def _plotted(type_name: str) -> bool:
    kind = type_name.replace("/msg/", "/")
    return kind not in IMAGE_TYPES
