"""The ``rosbridge`` backend: a ROS graph (ROS 1 or 2, local or remote) through a rosbridge v2
server, or a whole fleet through the pyros relay.

It speaks the rosbridge v2 protocol (``ROSBRIDGE_PROTOCOL.md``; message shapes in
:mod:`pyros_ros.rosbridge.wire`) over one websocket (:mod:`pyros_ros.rosbridge.connection`)
with the ``websockets`` library, not roslibpy: roslibpy drops ``status`` errors (its handler
for them is a TODO), leaves calls in flight waiting when the connection drops, cannot take a
CA file for ``wss://``, logs and swallows exceptions raised in its callbacks, and cannot read
the binary (CBOR) frames that carry ``uint8[]`` as bytes. ``websockets`` is already a pyros
dependency (the relay), so this adds only ``cbor2``.

What goes through which rosbridge operation:

* topics: ``advertise`` then ``publish`` (the first publish on a topic waits for a round trip
  so that a refused type or message raises :class:`MessageError` at once); ``subscribe`` with
  ``compression: "cbor"`` where the server offers it (``uint8[]`` arrive as ``bytes``), else
  JSON;
* services: ``call_service`` with ``timeout``;
* actions: ``send_action_goal`` with ``feedback: true``, ``action_feedback``,
  ``action_result``, ``cancel_action_goal``. rosbridge v2 has no "goal accepted" message, so
  :meth:`RosbridgeBackend.send_goal` waits for the first sign of one: feedback, a result, or
  the goal appearing in the action's ``_action/status`` topic (subscribed to once per action);
* messages, requests and goals are checked against the server's own type definitions
  (rosapi ``message_details``..., :mod:`pyros_ros.rosbridge.typedefs`) before they are sent,
  so an error names the field (``linear.x``) as on the other backends;
* a ROS 2 service server that leaves the graph while a call waits for it (a crash, or a
  ``/fail`` service that cannot answer with an error) is noticed by a watcher thread: each
  call first asks rosapi's ``service_node`` which node serves it (pipelined, not waited for),
  and a call still waiting after :data:`WATCH_PERIOD` s fails with :class:`ServiceError` once
  ``/rosapi/nodes`` no longer lists that node, instead of waiting for the server's timeout.
  An action server that dies mid-goal is not noticed: rosapi hides the action's endpoints
  (hidden ``_action`` names), and rosbridge v2 says nothing; the goal waits;
* listing and graph queries: the rosapi services (``/rosapi/topics``, ``/rosapi/nodes``...)
  where the server has them (rosbridge_suite's rosapi node; the pyros relay answers them from
  its registry); where it has none, a :class:`RosapiUnavailableError` says so at once;
* parameters: ROS 2 names ``/node:param`` through the node's own parameter services
  (``/node/get_parameters``, ``/node/set_parameters``; no rosapi needed), ROS 1 names through
  rosapi's ``get_param``/``set_param``/``has_param``/``delete_param``; the names list through
  rosapi's ``get_param_names``.

Reconnects need no user code: the connection comes back by itself, every advertisement and
subscription is sent again, calls in flight fail with :class:`ConnectionLostError`, and every
client hears each change as a backend event (``Backend.events``, ``client.on_event``).

Threads: the backend's methods run on the node's threads; frames from the server are handled
on the connection's loop thread. That thread takes only ``_lock``, and only for dict updates;
what waits for the server (the first publish on a topic, a subscribe) holds ``_setup``
instead, which the loop thread never takes, so a reply can always be read while a caller
waits for it.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyros import _rosbridge_wire as rb
from pyros.backends.base import (
    Backend,
    BackendGoal,
    DoneCallback,
    FeedbackCallback,
    GoalOutcome,
    MessageCallback,
    QoS,
)
from pyros.exceptions import (
    ActionError,
    ConnectionLostError,
    MessageError,
    NotExposedError,
    ParamNotSetError,
    ProtocolError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)
from pyros_ros.rosbridge import wire
from pyros_ros.rosbridge.connection import Connection, Frame
from pyros_ros.rosbridge.typedefs import Typedefs

__all__ = [
    "RosbridgeBackend",
    "RosapiUnavailableError",
    "ROSAPI_TIMEOUT",
    "BARRIER_SERVICE",
    "BARRIER_TIMEOUT",
    "WATCH_PERIOD",
    "ACCEPT_GRACE",
    "LATE_TOPIC_RETRY",
    "ROSAPI_WINDOW",
]

ROSAPI_TIMEOUT = 5.0
"""Seconds a rosapi query (listing, graph info, parameters) may take."""

BARRIER_TIMEOUT = 5.0
"""Seconds the first publish or a subscribe waits for the server to have processed it."""

BARRIER_SERVICE = "/pyros_rosbridge/barrier"
"""A service nobody offers. Calling it (without a type) makes the server answer at once with a
failure; as a server answers one connection's operations in order, that answer means every
``status`` error about the operations sent before it has arrived."""

WATCH_PERIOD = 0.5
"""Seconds between two checks that the servers of waiting calls are still in the graph
(``/rosapi/nodes``); a call is checked once it has waited this long."""

ACCEPT_GRACE = 1.0
"""Seconds :meth:`RosbridgeBackend.send_goal` waits for feedback or a result before it returns
a goal whose acceptance it cannot see (no ``_action/status`` topic to watch, e.g. the relay)."""

ROSAPI_WINDOW = 8
"""rosapi queries in flight at once when listing (``/rosapi/service_type`` per service): ROS 2
services keep 10 requests by default (``rmw_qos_profile_services_default``), and requests
beyond that are lost, not queued."""

LATE_TOPIC_RETRY = 0.1
"""Seconds between two subscribe requests for a topic that is not in the graph yet (type
``""``, no rosapi): the server refuses those at once, so this is how soon a late topic is
delivered."""

ROSAPI_RECHECK = 10.0
"""Seconds during which a server found without rosapi is not asked again: listing fails at
once (the node lists before each call of a service whose type it does not know)."""

PROVIDER_TTL = 5.0
"""Seconds a service's "it has a server" answer is reused before a call probes it again."""

_ERRORS_KEPT = 20
"""Server ``status`` errors and undecodable frames kept for :meth:`connection_info`."""


class RosapiUnavailableError(PyrosError):
    """The rosbridge server offers no rosapi service for this query (listing, graph info).

    rosbridge-server-rs started with ``--no-rosapi`` and rosbridge_suite without its rosapi
    node answer topic and service queries with nothing; publishing, subscribing with a type,
    calls and actions work all the same.
    """


@dataclass
class _Subscription:
    topic: str
    type: str
    callback: MessageCallback
    qos: QoS | None
    id: str
    compression: str
    received: int = 0
    waiting: bool = False  # type "" and the topic is not in the graph yet: asked again


@dataclass
class _Advertisement:
    topic: str
    type: str
    qos: QoS | None
    id: str
    publish_id: str


class _Goal(BackendGoal):
    """A goal sent with ``send_action_goal``; its rosbridge id is its :attr:`id`.

    Until :meth:`RosbridgeBackend.send_goal` returns it, how it ended is kept (``outcome``)
    rather than reported: send_goal raises for a refused or rejected goal instead.
    """

    def __init__(
        self,
        backend: RosbridgeBackend,
        id: str,
        action: str,
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
    ) -> None:
        self.backend = backend
        self.id = id
        self.action = action
        self.on_feedback = on_feedback
        self.on_done = on_done
        self.done = False
        self.lock = threading.Lock()
        self.verdict = threading.Event()  # feedback, a result or the status topic came
        self.returned = False  # send_goal returned this handle
        self.abandoned = False  # send_goal gave up waiting: cancel it once it shows up
        self.outcome: GoalOutcome | None = None  # how it ended before send_goal returned
        self.cancel_wanted = False
        self.cancel_tries = 0
        self.started = time.monotonic()

    def cancel(self) -> None:
        """Send ``cancel_action_goal``; ``on_done`` follows with the goal's final status."""
        if self.done:
            return
        self.cancel_wanted = True
        self.backend._send_cancel(self)

    def shown(self) -> None:
        """The server took the goal (feedback, or a new entry in the status topic)."""
        self.verdict.set()
        if self.abandoned and not self.cancel_wanted and not self.done:
            self.cancel()

    def finish(self, outcome: GoalOutcome) -> bool:
        with self.lock:
            if self.done:
                return False
            self.done = True
            deliver = self.returned and not self.abandoned
            if not self.returned:
                self.outcome = outcome
        self.verdict.set()
        if deliver:
            self.on_done(outcome)
        return True


@dataclass
class _Call:
    """A ``call_service`` waiting for its response (for the watcher)."""

    service: str
    future: Future[dict[str, Any]]
    started: float
    server: str  # the node serving it when the call was made; "" unknown
    missed: int = 0  # watcher checks in a row that did not find that node


class RosbridgeBackend(Backend):
    """A ROS graph through a rosbridge v2 server (or the pyros relay).

    Args:
        node_name: the node's name (rosbridge has no node registration; it names the
            connection in errors).
        url: the server, ``ws://HOST:PORT[/path]`` or ``wss://...``; default
            ``ws://127.0.0.1:9090`` (rosbridge's default port).
        token: sent as ``Authorization: Bearer <token>`` in the handshake (the pyros relay's
            operator token); None sends no credentials.
        cafile: PEM file of the CA (or self-signed certificate) to trust for ``wss://``;
            None uses the system's trust store.
        ready_timeout: seconds :meth:`start` waits for the websocket handshake.
        compression: ``"cbor"`` (default: ask for CBOR frames where the server offers them,
            so ``uint8[]`` arrives as ``bytes``) or ``"none"`` (JSON only).

    Events (``self.events``, set by the node; every client gets them through
    ``client.on_event``): ``{"event": "disconnected", "backend": "rosbridge", "url", "error"}``,
    ``{"event": "reconnected", ..., "attempts", "down_for" (seconds), "resubscribed"
    (topics)}``, ``{"event": "status", ..., "level", "msg", "id"}`` for a server ``status``
    warning or error that no caller was waiting for, and ``{"event": "error", ..., "error"}``
    for an undecodable frame.

    Raises:
        TypeError: an option has the wrong type or value.
    """

    name = "rosbridge"
    resolves_types = True  # subscribe, call_service and send_action_goal work with type ""

    def __init__(
        self,
        node_name: str,
        *,
        url: str = "ws://127.0.0.1:9090",
        token: str | None = None,
        cafile: str | None = None,
        ready_timeout: float = 10.0,
        compression: str = "cbor",
    ) -> None:
        super().__init__(node_name)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("ws", "wss"):
            raise TypeError(f"url must be a ws:// or wss:// URL, not {url!r}")
        if token is not None and not isinstance(token, str):
            raise TypeError("token must be a str")
        if cafile is not None and not isinstance(cafile, str):
            raise TypeError("cafile must be a path (str)")
        if compression not in ("cbor", "none"):
            raise TypeError(f"compression must be 'cbor' or 'none', not {compression!r}")
        self.url = url
        self._token = token
        self._cafile = cafile
        self._ready_timeout = float(ready_timeout)
        self._want_cbor = compression == "cbor"
        self._cbor_in = False  # the server reads binary CBOR frames
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # the dicts below; never held while waiting
        self._setup = threading.Lock()  # an advertise or subscribe waiting for the server
        self._subs: dict[str, _Subscription] = {}
        self._ads: dict[str, _Advertisement] = {}
        self._goals: dict[str, _Goal] = {}
        self._refused: dict[str, str] = {}  # op id -> the server's status error text
        self._errors: deque[str] = deque(maxlen=_ERRORS_KEPT)
        self._stopped = False
        self._types = Typedefs(self._rosapi_values)
        self._calls: dict[str, _Call] = {}  # call id -> what the watcher needs
        self._providers: dict[str, tuple[str, float]] = {}  # service -> (its node, when asked)
        self._status_watched: dict[str, bool] = {}  # action -> its status topic is subscribed
        self._status_seen: dict[str, set[str]] = {}  # action -> goal ids seen in its status
        self._awaiting: dict[str, list[_Goal]] = {}  # action -> goals not yet seen taken
        self._watching = True  # False once rosapi turned out missing
        self._version: int | None = None  # the graph's ROS version (rosapi); 0: unknown
        self._no_rosapi: tuple[float, str] | None = None  # (when rosapi was found missing, why)
        self._watch_wake = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the server and learn what it offers.

        Raises:
            SpawnError: the server is unreachable, refused the token (HTTP 401/403), did not
                answer within ``ready_timeout``, or TLS failed; the message says which.
        """
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        context: ssl.SSLContext | None = None
        if self.url.startswith("wss://"):
            try:
                context = ssl.create_default_context(cafile=self._cafile)
            except (OSError, ssl.SSLError) as exc:
                raise SpawnError(f"cannot load cafile {self._cafile!r}: {exc}") from exc
        self._conn = Connection(
            self.url,
            headers=headers,
            ssl_context=context,
            on_frame=self._on_frame,
            on_reconnect=self._replay,
            on_state=self._on_state,
        )
        self._conn.start(self._ready_timeout)
        try:
            self._cbor_in = self._want_cbor and self._probe_cbor()
        except PyrosError as exc:
            self.stop()
            raise SpawnError(f"the rosbridge server at {self.url} does not answer: {exc}") from exc
        self._watcher = threading.Thread(
            target=self._watch, name="pyros-rosbridge-watch", daemon=True
        )
        self._watcher.start()

    def _probe_cbor(self) -> bool:
        """Does the server read binary CBOR frames? (rosbridge-server-rs does; the relay and
        rosbridge_suite answer a ``status`` error or nothing.)"""
        conn = self._connection()
        probe = conn.next_id("cbor")
        answer = conn.request(rb.call_service(probe, BARRIER_SERVICE), binary=True)
        try:
            self._barrier()
        finally:
            conn.forget(probe)
        return answer.done() and answer.result().get("op") == "service_response"

    def stop(self) -> None:
        """Close the connection; pending calls fail, goals end as aborted. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            conn = self._conn
        self._watch_wake.set()
        if conn is not None:
            conn.stop()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(5.0)
        self._end_goals("the rosbridge backend stopped")

    def _connection(self) -> Connection:
        if self._conn is None or self._stopped:
            raise PyrosError(
                "the rosbridge backend is not running (start() not called, or stopped)"
            )
        return self._conn

    # --- connection events -------------------------------------------------------------------

    def connection_info(self) -> dict[str, Any]:
        """Return the connection's state for ``client.info()``.

        ``{"url", "connected": bool, "connects": int (1 + reconnects), "disconnects": int,
        "down_since": monotonic seconds or None, "last_error": str or None, "errors": [str]
        (recent server status errors and bad frames), "subscriptions": {topic: messages
        received}}``.
        """
        conn = self._conn
        with self._lock:
            received = {topic: sub.received for topic, sub in self._subs.items()}
        return {
            "url": self.url,
            "connected": bool(conn and conn.connected),
            "connects": conn.connects if conn else 0,
            "disconnects": conn.disconnects if conn else 0,
            "down_since": conn.down_since if conn else None,
            "last_error": conn.last_error if conn else None,
            "cbor": self._cbor_in,
            "errors": list(self._errors),
            "subscriptions": received,
        }

    def _on_state(self, event: dict[str, Any]) -> None:
        if event["event"] == "disconnected":
            self._end_goals(f"lost the connection to {self.url}: {event.get('error')}")
        elif event["event"] == "reconnected":
            with self._lock:
                event["resubscribed"] = sorted(self._subs)
                waiting = [sub for sub in self._subs.values() if sub.waiting]
            for sub in waiting:
                self._connection().call_later(
                    LATE_TOPIC_RETRY, functools.partial(self._resubscribe, sub)
                )
        elif event["event"] == "error":
            self._errors.append(str(event.get("error")))
        elif event["event"] == "connected":
            return  # the first connection: start() succeeding says so
        self._emit(event)

    def _emit(self, event: dict[str, Any]) -> None:
        """Hand an event to the node (every client gets it); never raises into the loop."""
        events = self.events
        if events is not None:
            events({**event, "backend": self.name})

    def _replay(self) -> list[Frame]:
        """Frames that restore this connection's state on a new websocket (loop thread)."""
        with self._lock:
            frames: list[Frame] = [self._advertise_frame(ad) for ad in self._ads.values()]
            frames += [self._subscribe_frame(sub) for sub in self._subs.values()]
        return frames

    def _end_goals(self, why: str) -> None:
        with self._lock:
            goals, self._goals = self._goals, {}
            self._awaiting.clear()
        for goal in goals.values():
            goal.finish(GoalOutcome("aborted", None, why))

    # --- frames from the server (connection thread) -----------------------------------------

    def _on_frame(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "publish":
            sub = self._subs.get(message.get("topic"))  # type: ignore[arg-type]
            msg = message.get("msg")
            if sub is not None and isinstance(msg, dict):
                sub.received += 1
                sub.callback(msg)
        elif op == "action_feedback":
            goal = self._goals.get(str(message.get("id")))
            values = message.get("values")
            if goal is not None:
                goal.shown()
                if isinstance(values, dict) and not goal.abandoned:
                    goal.on_feedback(values)
        elif op == "action_result":
            with self._lock:
                goal = self._goals.pop(str(message.get("id")), None)
            if goal is not None:
                status, text = wire.goal_status(message)
                values = message.get("values")
                goal.finish(GoalOutcome(status, values if isinstance(values, dict) else None, text))
        elif op == "status":
            level, text = str(message.get("level")), str(message.get("msg"))
            ident = message.get("id")
            if ident is not None and level == "error":
                goal = self._goals.get(str(ident))
                if goal is not None and goal.cancel_wanted:
                    # About our cancel_action_goal (it carries the goal's id): rosbridge-server-rs
                    # refuses one before the goal is accepted, so ask again a little later.
                    if "not accepted" in text and goal.cancel_tries < 50:
                        self._connection().call_later(0.1, lambda: self._send_cancel(goal))
                elif goal is not None:  # the server refused the goal itself (unknown action...)
                    with self._lock:
                        self._goals.pop(str(ident), None)
                    goal.finish(GoalOutcome("rejected", None, f"the server refused it: {text}"))
                else:
                    self._refused[str(ident)] = text
            if level in ("error", "warning"):
                self._errors.append(f"{level}: {text}" + (f" (id {ident})" if ident else ""))
                self._emit(
                    {"event": "status", "url": self.url, "level": level, "msg": text, "id": ident}
                )
        else:
            raise ProtocolError(f"the rosbridge server sent an unexpected op {op!r}")

    def _barrier(self) -> None:
        """Wait until the server has answered everything sent so far (see BARRIER_SERVICE).

        Raises:
            ConnectionLostError: the connection dropped meanwhile.
            TimeoutError: no answer within :data:`BARRIER_TIMEOUT` seconds.
        """
        conn = self._connection()
        ident = conn.next_id("barrier")
        future = conn.request(rb.call_service(ident, BARRIER_SERVICE))
        _wait(future, BARRIER_TIMEOUT, conn, ident, f"the rosbridge server at {self.url}")

    def _take_refusal(self, *ids: str) -> str | None:
        for ident in ids:
            text = self._refused.pop(ident, None)
            if text is not None:
                return text
        return None

    # --- topics ------------------------------------------------------------------------------

    def _advertise_frame(self, ad: _Advertisement) -> str:
        message = rb.advertise(ad.id, ad.topic, ad.type)
        # Volatile unless asked: rosbridge-server-rs makes publishers transient-local by
        # default, so a late subscriber would get a message pyros published before it.
        qos = ad.qos or {}
        message["latch"] = qos.get("durability") == "transient_local"
        if "depth" in qos:
            message["queue_size"] = qos["depth"]
        return wire.encode_json(message)

    def _subscribe_frame(self, sub: _Subscription) -> str:
        return wire.encode_json(
            rb.subscribe(sub.id, sub.topic, sub.type, compression=sub.compression)
        )

    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message; the first on a topic advertises it and waits for the server.

        ``qos``: ``durability: transient_local`` asks for a latched publisher (``latch``)
        and ``depth`` sets the server's ``queue_size``, where the server supports them.

        Raises:
            MessageError: the message does not fit its type (checked against the server's
                definition where it has rosapi; ``field`` names the field), the server refused
                the type or the message, an earlier message on this topic was refused after
                its publish returned, or ``type`` differs from the advertised one.
            ConnectionLostError: not connected now (the backend is reconnecting).
        """
        conn = self._connection()
        self._types.check("msg", type, message)
        wanted = wire.ros2_type(type, "msg")
        ad = self._ads.get(topic)
        if ad is None:
            with self._setup:  # one advertisement per topic, even from concurrent callers
                ad = self._ads.get(topic)
                if ad is None:
                    self._advertise(conn, topic, wanted, type, message, qos)
                    return
        if ad.type != wanted:
            raise MessageError(f"topic {topic} is published here as {ad.type}, not {type}")
        refused = self._refused.pop(ad.publish_id, None)
        if refused is not None:
            raise MessageError(
                f"the server refused a message on {topic}: {refused}",
                field=wire.status_field(refused),
            )
        conn.send(self._publish_frame(ad, message))

    def _advertise(
        self,
        conn: Connection,
        topic: str,
        type: str,
        spelled: str,
        message: dict[str, Any],
        qos: QoS | None,
    ) -> None:
        """Advertise ``topic`` as ``type`` (``pkg/msg/Type``; the caller ``spelled`` it),
        publish the first message and wait for the server's verdict (caller holds
        ``_setup``)."""
        ad = _Advertisement(topic, type, qos, conn.next_id("advertise"), conn.next_id("publish"))
        conn.send(self._advertise_frame(ad))
        # The first message goes as JSON: rosbridge-server-rs 0.1.6 stops answering a
        # connection that sent a CBOR publish for a topic it refused to advertise.
        conn.send(wire.encode_json(rb.publish(ad.publish_id, topic, message)))
        self._barrier()
        refused = self._take_refusal(ad.id)
        if refused is not None:
            self._refused.pop(ad.publish_id, None)
            raise MessageError(f"the server refused to advertise {topic} as {spelled}: {refused}")
        with self._lock:
            self._ads[topic] = ad
        refused = self._take_refusal(ad.publish_id)
        if refused is not None:
            raise MessageError(
                f"the server refused the message on {topic}: {refused}",
                field=wire.status_field(refused),
            )

    def _publish_frame(self, ad: _Advertisement, message: dict[str, Any]) -> Frame:
        envelope = rb.publish(ad.publish_id, ad.topic, message)
        if self._cbor_in:
            return wire.encode_cbor(envelope)
        return wire.encode_json(envelope)

    def subscribe(
        self, topic: str, type: str, callback: MessageCallback, qos: QoS | None = None
    ) -> None:
        """Subscribe; ``callback`` gets each message as a dict on the connection's thread.

        QoS: rosbridge servers choose the subscription's QoS themselves (rosbridge_suite and
        rosbridge-server-rs adapt to the publishers, so a latched topic's last message
        arrives); ``qos`` is accepted and not sent. Messages are not throttled or queued by
        the server (``throttle_rate: 0``, ``queue_length: 0``). ``type`` may be ``""`` to let
        the server find the topic's type in the graph; when the topic is not in the graph yet
        (a server without rosapi cannot tell the node its type), the subscription waits: it is
        sent again every :data:`LATE_TOPIC_RETRY` s until the topic exists.

        Raises:
            MessageError: the server refused the subscription (unknown type, type mismatch).
            ConnectionLostError: not connected now.
        """
        conn = self._connection()
        with self._setup:
            with self._lock:
                self._unsubscribe_locked(topic)
                compression = "cbor" if self._cbor_in else "none"
                sub = _Subscription(
                    topic, type, callback, qos, conn.next_id("subscribe"), compression
                )
                self._subs[topic] = sub
                conn.send(self._subscribe_frame(sub))
            try:
                self._barrier()
                refused = self._take_refusal(sub.id)
            except BaseException:
                self._forget_subscription(sub)
                raise
            if refused is not None and not type and "absent" in refused:
                sub.waiting = True
                conn.call_later(LATE_TOPIC_RETRY, lambda: self._resubscribe(sub))
            elif refused is not None:
                self._forget_subscription(sub)
                raise MessageError(f"the server refused to subscribe to {topic}: {refused}")

    def _resubscribe(self, sub: _Subscription) -> None:
        """Ask again for a subscription whose topic was not in the graph (loop thread)."""
        if not sub.waiting or self._subs.get(sub.topic) is not sub or self._stopped:
            return
        conn = self._connection()
        if not conn.connected:
            conn.call_later(LATE_TOPIC_RETRY, lambda: self._resubscribe(sub))
            return
        self._refused.pop(sub.id, None)
        sub.id = conn.next_id("subscribe")
        try:
            conn.send(self._subscribe_frame(sub))
        except PyrosError:
            pass
        conn.call_later(LATE_TOPIC_RETRY, lambda: self._check_resubscribed(sub))

    def _check_resubscribed(self, sub: _Subscription) -> None:
        if self._refused.pop(sub.id, None) is None and self._conn and self._conn.connected:
            sub.waiting = False  # accepted: the topic exists now
        else:
            self._resubscribe(sub)

    def _forget_subscription(self, sub: _Subscription) -> None:
        with self._lock:
            if self._subs.get(sub.topic) is sub:
                del self._subs[sub.topic]

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``. Idempotent; works while disconnected too."""
        with self._lock:
            self._unsubscribe_locked(topic)

    def _unsubscribe_locked(self, topic: str) -> None:
        sub = self._subs.pop(topic, None)
        if sub is None or self._conn is None:
            return
        try:
            self._conn.send(wire.encode_json(rb.unsubscribe(sub.id, topic)))
        except ConnectionLostError:
            pass  # the server forgot it with the connection; the replay will not send it

    # --- services ----------------------------------------------------------------------------

    def call(
        self, service: str, type: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service with ``call_service`` (rosbridge 3.2.8) and its ``timeout``.

        ``type`` is sent along (a rosbridge-server-rs extension) so that a server the bridge has
        not discovered yet is waited for; with ``type=""`` the server looks the type up and a
        service it does not know fails at once with ``NotExposedError``.

        Raises:
            NotExposedError: the server says the service does not exist.
            ServiceError: the call failed (the server's text).
            TimeoutError: no response within ``timeout`` seconds.
            ConnectionLostError: the connection dropped before the response came.
        """
        return self._call(service, request, timeout, type)

    def _call(
        self,
        service: str,
        request: dict[str, Any],
        timeout: float,
        type: str = "",
        watch: bool = True,
    ) -> dict[str, Any]:
        conn = self._connection()
        if type:
            self._types.check("request", type, request)
        if watch and self._watching:
            self._probe_provider(conn, service)
        ident = conn.next_id("call")
        # With the type, rosbridge-server-rs waits up to ``timeout`` for a server that it has
        # not seen yet instead of failing at once; other servers ignore the field.
        future = conn.request(
            rb.call_service(ident, service, request, timeout=timeout, type=type or None)
        )
        if watch:
            known = self._providers.get(service)
            with self._lock:
                self._calls[ident] = _Call(
                    service, future, time.monotonic(), known[0] if known else ""
                )
        try:
            reply = _wait(future, timeout + 0.5, conn, ident, f"service {service}")
        finally:
            with self._lock:
                self._calls.pop(ident, None)
        if reply.get("op") == "status":
            raise ServiceError(f"service {service}: {reply.get('msg')}")
        values = reply.get("values")
        if reply.get("result") is False:
            text = values if isinstance(values, str) else json.dumps(values)
            low = text.lower()
            if "timeout" in low or "timed out" in low:
                raise TimeoutError(
                    f"service {service} did not answer within {timeout:g} s (is it offered?): "
                    f"{text}"
                )
            if "absent from ros graph" in low or "does not exist" in low or "no such" in low:
                raise NotExposedError(f"service {service} does not exist: {text}")
            if text.startswith("field "):
                raise MessageError(
                    f"service {service} refused the request: {text}", field=wire.status_field(text)
                )
            raise ServiceError(f"service {service} failed: {text}")
        if values is None or values == []:
            return {}
        if not isinstance(values, dict):
            raise ProtocolError(f"service {service} answered {values!r:.80}, not an object")
        return values

    def _probe_provider(self, conn: Connection, service: str) -> None:
        """Ask rosapi, without waiting, which node serves ``service`` now (for the watcher),
        unless it was asked within :data:`PROVIDER_TTL` seconds. Sent before the call itself,
        so the answer describes the graph before the call reached the server."""
        known = self._providers.get(service)
        now = time.monotonic()
        if known is not None and now - known[1] < PROVIDER_TTL:
            return
        self._providers[service] = (known[0] if known else "", now)
        ident = conn.next_id("probe")
        try:
            future = conn.request(
                rb.call_service(
                    ident, "/rosapi/service_node", {"service": service}, timeout=ROSAPI_TIMEOUT
                )
            )
        except PyrosError:
            return

        def record(done: Future[dict[str, Any]]) -> None:
            try:
                reply = done.result()
            except Exception:  # noqa: BLE001 - a lost connection: nothing to record
                return
            values = reply.get("values")
            if reply.get("result") is False:
                text = str(values).lower()
                if "absent from ros graph" in text or "does not exist" in text:
                    self._watching = False  # no rosapi: nothing to watch with
            elif isinstance(values, dict) and values.get("node"):
                node = str(values["node"])
                self._providers[service] = (node, now)
                with self._lock:
                    for call in self._calls.values():
                        if call.service == service and not call.server:
                            call.server = node

        future.add_done_callback(record)

    # --- the watcher: servers that leave while a call or goal waits ------------------------

    def _watch(self) -> None:
        """Every :data:`WATCH_PERIOD` s, fail calls and goals whose server left the graph."""
        while not self._watch_wake.wait(WATCH_PERIOD):
            if self._stopped:
                return
            if not self._watching or self._conn is None or not self._conn.connected:
                continue
            try:
                self._watch_once()
            except RosapiUnavailableError:
                self._watching = False
            except PyrosError:
                continue  # a lost connection or a slow server: try again next time

    def _watch_once(self) -> None:
        now = time.monotonic()
        with self._lock:
            calls = [
                (ident, call)
                for ident, call in self._calls.items()
                if call.server and now - call.started >= WATCH_PERIOD
            ]
        if not calls:
            return
        nodes = set(self.nodes())
        for ident, call in calls:
            call.missed = 0 if call.server in nodes else call.missed + 1
            # Twice in a row: a node that is between two DDS announcements is not "gone".
            if call.missed >= 2 and not call.future.done():
                self._connection().forget(ident)
                call.future.set_exception(
                    ServiceError(
                        f"service {call.service}: its server {call.server} left the graph "
                        "while answering"
                    )
                )

    # --- rosapi ------------------------------------------------------------------------------

    def _rosapi(self, service: str, request: dict[str, Any], what: str) -> dict[str, Any]:
        missing = self._no_rosapi
        if missing is not None and time.monotonic() - missing[0] < ROSAPI_RECHECK:
            raise RosapiUnavailableError(
                f"the rosbridge server at {self.url} cannot {what}: {missing[1]}"
            )
        try:
            return self._call(f"/rosapi/{service}", request, ROSAPI_TIMEOUT, watch=False)
        except (NotExposedError, ServiceError) as exc:
            if isinstance(exc, NotExposedError):  # not there at all: say so at once next time
                self._no_rosapi = (
                    time.monotonic(),
                    f"it offers no rosapi (/rosapi/{service} does not exist; asked again "
                    f"every {ROSAPI_RECHECK:g} s). Publishing, subscribing with a type, calls "
                    "and actions still work",
                )
            raise RosapiUnavailableError(
                f"the rosbridge server at {self.url} cannot {what}: /rosapi/{service} failed "
                f"({exc}). It offers no rosapi (rosbridge-server-rs with --no-rosapi, or "
                "rosbridge_suite without its rosapi node); publishing, subscribing with a type, "
                "calls and actions still work"
            ) from exc

    def _rosapi_values(self, service: str, request: dict[str, Any]) -> dict[str, Any]:
        return self._rosapi(service, request, "describe types")

    def topics(self) -> dict[str, str]:
        """Return every topic with its type, from ``/rosapi/topics``.

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        reply = self._rosapi("topics", {}, "list topics")
        names, types = reply.get("topics") or [], reply.get("types") or []
        if len(types) != len(names):  # old rosapi: names only
            return {name: self._topic_type(name) for name in names}
        return dict(zip(names, types, strict=True))

    def _topic_type(self, topic: str) -> str:
        return str(
            self._rosapi("topic_type", {"topic": topic}, "tell a topic's type").get("type", "")
        )

    def services(self) -> dict[str, str]:
        """Return every service with its type (``/rosapi/services``, then
        ``/rosapi/service_type`` per service, :data:`ROSAPI_WINDOW` at a time).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        names = self._rosapi("services", {}, "list services").get("services") or []
        types = self._rosapi_many("service_type", [{"service": name} for name in names], "type")
        return dict(zip(names, types, strict=True))

    def _rosapi_many(self, service: str, requests: list[dict[str, Any]], key: str) -> list[str]:
        """Call ``/rosapi/<service>`` once per request, :data:`ROSAPI_WINDOW` in flight, and
        return each answer's ``key`` (``""`` where there is none)."""
        conn = self._connection()
        answers: list[str] = []
        for first in range(0, len(requests), ROSAPI_WINDOW):
            batch = []
            for request in requests[first : first + ROSAPI_WINDOW]:
                ident = conn.next_id("call")
                message = rb.call_service(
                    ident, f"/rosapi/{service}", request, timeout=ROSAPI_TIMEOUT
                )
                batch.append((ident, conn.request(message)))
            for ident, future in batch:
                reply = _wait(future, ROSAPI_TIMEOUT + 0.5, conn, ident, f"/rosapi/{service}")
                values = reply.get("values")
                answers.append(str(values.get(key, "")) if isinstance(values, dict) else "")
        return answers

    def nodes(self) -> list[str]:
        """Return every node, sorted (``/rosapi/nodes``).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        return sorted(self._rosapi("nodes", {}, "list nodes").get("nodes") or [])

    def actions(self) -> dict[str, str]:
        """Return every action with its type: ``/rosapi/action_servers`` and
        ``/rosapi/action_type`` (rosbridge-server-rs), else the graph's hidden action topics
        (``<action>/_action/feedback`` of type ``pkg/action/Name_FeedbackMessage``).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        found: dict[str, str] = {}
        for name, type_name in self.topics().items():
            if name.endswith("/_action/feedback") and type_name.endswith("_FeedbackMessage"):
                found[name[: -len("/_action/feedback")]] = type_name[: -len("_FeedbackMessage")]
        try:
            servers = self._rosapi("action_servers", {}, "list actions").get("action_servers")
        except RosapiUnavailableError:
            servers = None
        missing = [name for name in servers or [] if not found.get(name)]
        try:
            types = self._rosapi_many("action_type", [{"action": n} for n in missing], "type")
        except PyrosError:  # an older rosapi without action_type: the types stay unknown
            types = [""] * len(missing)
        found.update(zip(missing, types, strict=True))
        return found

    def _action_type(self, action: str) -> str:
        """Return an action's type from ``/rosapi/action_type``.

        Raises:
            NotExposedError: no server offers it.
        """
        try:
            type_name = self._rosapi("action_type", {"action": action}, "find action types")
        except RosapiUnavailableError as exc:
            raise MessageError(
                f"the type of action {action} is unknown and the server cannot tell it "
                f"(no rosapi): pass its type"
            ) from exc
        found = str(type_name.get("type") or "")
        if not found:
            raise NotExposedError(f"action {action} has no server in the graph")
        return found

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: type, publishing and subscribing nodes (rosapi).

        Raises:
            NotExposedError: the topic is unknown to the graph.
            RosapiUnavailableError: the server has no rosapi.
        """
        type_name = self._topic_type(topic)
        if not type_name:
            raise NotExposedError(f"topic {topic} does not exist in the graph")
        publishers = self._rosapi("publishers", {"topic": topic}, "describe topics")
        subscribers = self._rosapi("subscribers", {"topic": topic}, "describe topics")
        return {
            "type": type_name,
            "publishers": sorted(publishers.get("publishers") or []),
            "subscribers": sorted(subscribers.get("subscribers") or []),
        }

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: type and providing node (rosapi).

        Raises:
            NotExposedError: the service is unknown to the graph.
            RosapiUnavailableError: the server has no rosapi.
        """
        type_name = str(
            self._rosapi("service_type", {"service": service}, "describe services").get("type", "")
        )
        if not type_name:
            raise NotExposedError(f"service {service} does not exist in the graph")
        try:
            node = self._rosapi("service_node", {"service": service}, "describe services")
            providers = [node["node"]] if node.get("node") else []
        except RosapiUnavailableError:
            providers = []
        return {"type": type_name, "providers": providers}

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node: what it publishes, subscribes to and serves (``node_details``).

        Raises:
            NotExposedError: no such node.
            RosapiUnavailableError: the server has no rosapi.
        """
        if node not in self.nodes():
            raise NotExposedError(f"node {node} does not exist in the graph")
        details = self._rosapi("node_details", {"node": node}, "describe nodes")
        topics = self.topics()
        return {
            "publishes": {t: topics.get(t, "") for t in details.get("publishing") or []},
            "subscribes": {t: topics.get(t, "") for t in details.get("subscribing") or []},
            "services": {s: "" for s in details.get("services") or []},
        }

    def definition(self, type: str) -> str:
        """Return the ``.msg`` (or ``.srv``) text of a type, rebuilt from rosapi's
        ``message_details`` (``service_request_details``/``service_response_details``).

        Raises:
            MessageError: the server does not know the type.
            RosapiUnavailableError: the server has no rosapi.
        """
        if "/srv/" in type:
            request = self._rosapi("service_request_details", {"type": type}, "show types")
            response = self._rosapi("service_response_details", {"type": type}, "show types")
            return _typedef_text(request) + "---\n" + _typedef_text(response)
        details = self._rosapi("message_details", {"type": type}, "show types")
        if not details.get("typedefs"):
            raise MessageError(f"the rosbridge server does not know type {type!r}")
        return _typedef_text(details)

    # --- parameters --------------------------------------------------------------------------

    def params(self) -> list[str]:
        """Return every parameter name.

        ROS 2 (rosapi's ``get_ros_version`` says 2): ``/node:param`` from each node's own
        ``list_parameters`` service, :data:`ROSAPI_WINDOW` nodes at a time; a node that does
        not answer is asked once more, then left out. (rosapi's ``get_param_names`` asks every
        node too, but fails as a whole when one does not answer.) ROS 1, or a server that
        cannot tell: ``/rosapi/get_param_names``.

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        if self._ros_version() == 2:
            return self._ros2_params()
        return list(self._rosapi("get_param_names", {}, "list parameters").get("names") or [])

    def _ros_version(self) -> int | None:
        if self._version is None:
            try:
                reply = self._rosapi("get_ros_version", {}, "tell the ROS version")
                self._version = int(reply.get("version") or 0)
            except (PyrosError, ValueError, TypeError):
                self._version = 0
        return self._version or None

    def _ros2_params(self) -> list[str]:
        names: list[str] = []
        pending = self.nodes()
        for _attempt in range(2):
            unanswered = []
            for first in range(0, len(pending), ROSAPI_WINDOW):
                batch = pending[first : first + ROSAPI_WINDOW]
                conn = self._connection()
                calls = []
                for node in batch:
                    ident = conn.next_id("call")
                    message = rb.call_service(
                        ident,
                        f"{node.rstrip('/')}/list_parameters",
                        {"prefixes": [], "depth": 0},
                        timeout=2.0,
                    )
                    calls.append((node, ident, conn.request(message)))
                for node, ident, future in calls:
                    try:
                        reply = _wait(future, 2.5, conn, ident, f"{node}/list_parameters")
                    except TimeoutError:
                        unanswered.append(node)
                        continue
                    values = reply.get("values")
                    if reply.get("result") is not True or not isinstance(values, dict):
                        text = str(values).lower()
                        if "timeout" in text:
                            unanswered.append(node)
                        continue  # no parameter services (the bridge's own node...)
                    result = values.get("result") or {}
                    names += [f"{node}:{name}" for name in result.get("names") or []]
            pending = unanswered
            if not pending:
                break
        return sorted(names)

    def get_param(self, name: str) -> Any:
        """Return a parameter: ROS 2 ``/node:param`` from the node's ``get_parameters``
        service, ROS 1 ``/name`` from rosapi (``has_param`` then ``get_param``, JSON values).

        Raises:
            ParamNotSetError: not set (or no such node).
        """
        if ":" in name:
            node, param = wire.split_param_name(name)
            try:
                reply = self._call(
                    f"{node}/get_parameters", {"names": [param]}, ROSAPI_TIMEOUT, watch=False
                )
            except NotExposedError as exc:
                raise ParamNotSetError(f"parameter {name} is not set: no node {node}") from exc
            values = reply.get("values") or []
            try:
                return wire.parameter_value(values[0])
            except (IndexError, KeyError):
                raise ParamNotSetError(f"parameter {name} is not set") from None
        if not self._rosapi("has_param", {"name": name}, "read parameters").get("exists"):
            raise ParamNotSetError(f"parameter {name} is not set")
        value = self._rosapi("get_param", {"name": name, "default": ""}, "read parameters")
        try:
            return json.loads(value.get("value") or "null")
        except ValueError as exc:
            raise ProtocolError(f"rosapi returned a non-JSON value for {name}") from exc

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter (ROS 2: ``/node:param`` through ``set_parameters``).

        Raises:
            MessageError: the value cannot be a parameter, or the node refused it (its reason).
            ParamNotSetError: no such node (ROS 2).
        """
        if ":" in name:
            node, param = wire.split_param_name(name)
            parameter = {"name": param, "value": wire.to_parameter_value(name, value)}
            try:
                reply = self._call(
                    f"{node}/set_parameters",
                    {"parameters": [parameter]},
                    ROSAPI_TIMEOUT,
                    watch=False,
                )
            except NotExposedError as exc:
                raise ParamNotSetError(f"cannot set {name}: no node {node}") from exc
            results = reply.get("results") or [{}]
            if not results[0].get("successful"):
                raise MessageError(
                    f"{node} refused {name} = {value!r:.60}: "
                    f"{results[0].get('reason') or 'no reason given'}"
                )
            return
        text = json.dumps(wire.to_wire(value))
        self._rosapi("set_param", {"name": name, "value": text}, "set parameters")

    def delete_param(self, name: str) -> None:
        """Delete a parameter: ROS 2 ``/node:param`` by setting it to ``PARAMETER_NOT_SET``
        through the node's ``set_parameters`` (what ``ros2 param delete`` does; the node must
        allow it, as nodes with undeclared parameters do), ROS 1 names through rosapi.

        Raises:
            ParamNotSetError: not set (or no such node).
            MessageError: the node refused (a declared, read-only parameter...).
        """
        if ":" in name:
            self.get_param(name)  # ParamNotSetError when there is nothing to delete
            node, param = wire.split_param_name(name)
            reply = self._call(
                f"{node}/set_parameters",
                {"parameters": [{"name": param, "value": {"type": 0}}]},
                ROSAPI_TIMEOUT,
                watch=False,
            )
            results = reply.get("results") or [{}]
            if not results[0].get("successful"):
                raise MessageError(
                    f"{node} refused to delete {name}: "
                    f"{results[0].get('reason') or 'no reason given'}"
                )
            return
        if not self._rosapi("has_param", {"name": name}, "delete parameters").get("exists"):
            raise ParamNotSetError(f"parameter {name} is not set")
        self._rosapi("delete_param", {"name": name}, "delete parameters")

    # --- actions -----------------------------------------------------------------------------

    def send_goal(
        self,
        action: str,
        type: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal with ``send_action_goal`` (rosbridge 3.2.12), feedback on, and wait
        until the server shows it took the goal.

        rosbridge v2 has no message for "accepted". This waits for the first of: feedback, a
        result, or a new goal in the action's ``_action/status`` topic (subscribed to on the
        first goal of each action; a goal the server rejects never appears there and ends
        with a failed ``action_result``, "goal rejected"). Where the status topic cannot be
        watched (the relay), it waits at most :data:`ACCEPT_GRACE` s for feedback or a result,
        and a rejection after that ends the goal through ``on_done`` with ``"rejected"``. A
        goal whose connection drops ends ``"aborted"`` with a message saying so.

        Raises:
            MessageError: the goal does not fit the type (``field``: the dotted path), or the
                type is unknown.
            NotExposedError: ``type`` is ``""`` and no server offers the action.
            ActionError: the server refused or rejected the goal (``status="rejected"``).
            TimeoutError: nothing showed the goal taken within ``timeout`` seconds (it is
                cancelled if it shows up later).
            ConnectionLostError: not connected now.
        """
        conn = self._connection()
        if not type:
            type = self._action_type(action)
        self._types.check("goal", type, goal)
        watched = self._watch_status(action, type)
        handle = _Goal(self, conn.next_id("goal"), action, on_feedback, on_done)
        message = rb.send_action_goal(handle.id, action, type, goal)
        with self._lock:
            self._goals[handle.id] = handle
            self._awaiting.setdefault(action, []).append(handle)
        try:
            conn.send(wire.encode_json(message))
            self._barrier()  # a refusal of the message itself arrives before the barrier
            handle.verdict.wait(timeout if watched else min(timeout, ACCEPT_GRACE))
        except BaseException:
            self._drop_goal(handle)
            raise
        finally:
            with self._lock:
                waiting = self._awaiting.get(action, [])
                if handle in waiting:
                    waiting.remove(handle)
        with handle.lock:
            outcome = handle.outcome
            if outcome is None and watched and not handle.verdict.is_set():
                handle.abandoned = True  # kept: it is cancelled if it ever shows up
            else:
                handle.returned = True
        if handle.abandoned:
            raise TimeoutError(
                f"the action server of {action} did not take the goal within {timeout:g} s"
            )
        if outcome is not None:
            with self._lock:
                self._goals.pop(handle.id, None)
            refusal = _goal_refusal(action, outcome)
            if refusal is not None:
                raise refusal
            conn.call_later(0, lambda: on_done(outcome))  # after the node has the handle
        return handle

    def _drop_goal(self, handle: _Goal) -> None:
        with self._lock:
            self._goals.pop(handle.id, None)
        with handle.lock:
            handle.done = True

    def _send_cancel(self, goal: _Goal) -> None:
        if goal.done:
            return
        goal.cancel_tries += 1
        try:
            self._connection().send(wire.encode_json(rb.cancel_action_goal(goal.id, goal.action)))
        except PyrosError:
            pass  # the goal ends with the connection (on_done says so)

    def _watch_status(self, action: str, type: str) -> bool:
        """Subscribe to ``<action>/_action/status`` once; True if it is watched."""
        watched = self._status_watched.get(action)
        if watched is not None:
            return watched
        topic = f"{action}/_action/status"
        try:
            self.subscribe(
                topic,
                "action_msgs/msg/GoalStatusArray",
                lambda message: self._on_goal_status(action, message),
            )
            watched = True
        except MessageError:
            watched = False  # the relay, or a server that hides the topic
        self._status_watched[action] = watched
        return watched

    def _on_goal_status(self, action: str, message: dict[str, Any]) -> None:
        """A new goal in the status list: the oldest goal waiting for a verdict was taken."""
        seen = self._status_seen.setdefault(action, set())
        fresh = 0
        for entry in message.get("status_list") or []:
            try:
                uuid = entry["goal_info"]["goal_id"]["uuid"]
            except (KeyError, TypeError):
                continue
            key = bytes(uuid).hex() if isinstance(uuid, (bytes, list)) else str(uuid)
            if key not in seen:
                seen.add(key)
                if entry.get("status") in (1, 2, 3):  # accepted, executing, canceling
                    fresh += 1
        for _ in range(fresh):
            with self._lock:
                waiting = self._awaiting.get(action) or []
                goal = waiting.pop(0) if waiting else None
            if goal is not None:
                goal.shown()


def _goal_refusal(action: str, outcome: GoalOutcome) -> PyrosError | None:
    """The error :meth:`RosbridgeBackend.send_goal` raises for a goal that ended before it
    returned, or None for a goal that simply ended quickly."""
    text = outcome.message
    if outcome.status == "rejected":
        why = text or "by the action server"
        return ActionError(f"goal on {action} rejected: {why}", "rejected")
    if outcome.result is None and text.startswith("field "):
        return MessageError(f"goal on {action} refused: {text}", field=wire.status_field(text))
    if outcome.result is None and text and outcome.status == "aborted":
        return ActionError(f"goal on {action} refused: {text}", "rejected")
    return None


def _wait(
    future: Future[dict[str, Any]], timeout: float, conn: Connection, ident: str, what: str
) -> dict[str, Any]:
    try:
        return future.result(timeout)
    except FutureTimeout:
        conn.forget(ident)
        raise TimeoutError(f"{what} did not answer within {timeout:g} s") from None


def _typedef_text(details: dict[str, Any]) -> str:
    typedefs = details.get("typedefs") or []
    if not typedefs:
        return ""
    top = typedefs[0]
    lines = []
    for kind, name, length in zip(
        top.get("fieldtypes", []),
        top.get("fieldnames", []),
        top.get("fieldarraylen", []),
        strict=False,
    ):
        suffix = "" if length == -1 else ("[]" if length == 0 else f"[{length}]")
        lines.append(f"{kind}{suffix} {name}")
    for cname, cvalue in zip(top.get("constnames", []), top.get("constvalues", []), strict=False):
        lines.append(f"{cname}={cvalue}")
    return "".join(line + "\n" for line in lines)
