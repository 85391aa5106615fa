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
  ``action_result``, ``cancel_action_goal``;
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

import json
import ssl
import threading
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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

__all__ = [
    "RosbridgeBackend",
    "RosapiUnavailableError",
    "ROSAPI_TIMEOUT",
    "BARRIER_SERVICE",
    "BARRIER_TIMEOUT",
]

ROSAPI_TIMEOUT = 5.0
"""Seconds a rosapi query (listing, graph info, parameters) may take."""

BARRIER_TIMEOUT = 5.0
"""Seconds the first publish or a subscribe waits for the server to have processed it."""

BARRIER_SERVICE = "/pyros_rosbridge/barrier"
"""A service nobody offers. Calling it (without a type) makes the server answer at once with a
failure; as a server answers one connection's operations in order, that answer means every
``status`` error about the operations sent before it has arrived."""

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


@dataclass
class _Advertisement:
    topic: str
    type: str
    qos: QoS | None
    id: str
    publish_id: str


class _Goal(BackendGoal):
    """A goal sent with ``send_action_goal``; its rosbridge id is its :attr:`id`."""

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

    def cancel(self) -> None:
        """Send ``cancel_action_goal``; ``on_done`` follows with the goal's final status."""
        if self.done:
            return
        try:
            self.backend._connection().send(
                wire.encode_json({"op": "cancel_action_goal", "id": self.id, "action": self.action})
            )
        except ConnectionLostError:
            pass  # the goal already ended with the connection (on_done said so)

    def finish(self, outcome: GoalOutcome) -> bool:
        with self.lock:
            if self.done:
                return False
            self.done = True
        self.on_done(outcome)
        return True


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

    def _probe_cbor(self) -> bool:
        """Does the server read binary CBOR frames? (rosbridge-server-rs does; the relay and
        rosbridge_suite answer a ``status`` error or nothing.)"""
        conn = self._connection()
        probe = conn.next_id("cbor")
        answer = conn.request(
            {"op": "call_service", "id": probe, "service": BARRIER_SERVICE}, binary=True
        )
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
        if conn is not None:
            conn.stop()
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
            if goal is not None and isinstance(values, dict):
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
                with self._lock:
                    goal = self._goals.pop(str(ident), None)
                if goal is not None:  # the server refused the goal itself (unknown action...)
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
        future = conn.request({"op": "call_service", "id": ident, "service": BARRIER_SERVICE})
        _wait(future, BARRIER_TIMEOUT, conn, ident, f"the rosbridge server at {self.url}")

    def _take_refusal(self, *ids: str) -> str | None:
        for ident in ids:
            text = self._refused.pop(ident, None)
            if text is not None:
                return text
        return None

    # --- topics ------------------------------------------------------------------------------

    def _advertise_frame(self, ad: _Advertisement) -> str:
        message: dict[str, Any] = {
            "op": "advertise",
            "id": ad.id,
            "topic": ad.topic,
            "type": ad.type,
        }
        if ad.qos:
            if ad.qos.get("durability") == "transient_local":
                message["latch"] = True
            if "depth" in ad.qos:
                message["queue_size"] = ad.qos["depth"]
        return wire.encode_json(message)

    def _subscribe_frame(self, sub: _Subscription) -> str:
        message: dict[str, Any] = {
            "op": "subscribe",
            "id": sub.id,
            "topic": sub.topic,
            "compression": sub.compression,
            "throttle_rate": 0,
            "queue_length": 0,
        }
        if sub.type:
            message["type"] = sub.type
        return wire.encode_json(message)

    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message; the first on a topic advertises it and waits for the server.

        ``qos``: ``durability: transient_local`` asks for a latched publisher (``latch``)
        and ``depth`` sets the server's ``queue_size``, where the server supports them.

        Raises:
            MessageError: the server refused the type or the message (``field`` names the
                field when the server did), or an earlier message on this topic was refused
                after its publish returned, or ``type`` differs from the advertised one.
            ConnectionLostError: not connected now (the backend is reconnecting).
        """
        conn = self._connection()
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
        envelope = {"op": "publish", "id": ad.publish_id, "topic": topic, "msg": message}
        conn.send(wire.encode_json(envelope))
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
        envelope = {"op": "publish", "id": ad.publish_id, "topic": ad.topic, "msg": message}
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
        the server find the topic's type in the graph.

        Raises:
            MessageError: the server refused the subscription (unknown type, no such topic
                and no type given).
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
            if refused is not None:
                self._forget_subscription(sub)
                raise MessageError(f"the server refused to subscribe to {topic}: {refused}")

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
            self._conn.send(wire.encode_json({"op": "unsubscribe", "id": sub.id, "topic": topic}))
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
        self, service: str, request: dict[str, Any], timeout: float, type: str = ""
    ) -> dict[str, Any]:
        conn = self._connection()
        ident = conn.next_id("call")
        message: dict[str, Any] = {
            "op": "call_service",
            "id": ident,
            "service": service,
            "args": request,
            "timeout": timeout,
        }
        if type:
            # rosbridge-server-rs then waits up to ``timeout`` for a server that it has not
            # seen yet instead of failing at once; other servers ignore the field.
            message["type"] = type
        future = conn.request(message)
        reply = _wait(future, timeout + 0.5, conn, ident, f"service {service}")
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
            raise ServiceError(f"service {service} failed: {text}")
        if values is None or values == []:
            return {}
        if not isinstance(values, dict):
            raise ProtocolError(f"service {service} answered {values!r:.80}, not an object")
        return values

    # --- rosapi ------------------------------------------------------------------------------

    def _rosapi(self, service: str, request: dict[str, Any], what: str) -> dict[str, Any]:
        try:
            return self._call(f"/rosapi/{service}", request, ROSAPI_TIMEOUT)
        except (NotExposedError, ServiceError, TimeoutError) as exc:
            raise RosapiUnavailableError(
                f"the rosbridge server at {self.url} cannot {what}: /rosapi/{service} failed "
                f"({exc}). It offers no rosapi (rosbridge-server-rs with --no-rosapi, or "
                "rosbridge_suite without its rosapi node); publishing, subscribing with a type, "
                "calls and actions still work"
            ) from exc

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
        """Return every service with its type (``/rosapi/services``, then one pipelined
        ``/rosapi/service_type`` per service).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        names = self._rosapi("services", {}, "list services").get("services") or []
        conn = self._connection()
        futures = []
        for name in names:
            ident = conn.next_id("call")
            futures.append(
                (
                    name,
                    ident,
                    conn.request(
                        {
                            "op": "call_service",
                            "id": ident,
                            "service": "/rosapi/service_type",
                            "args": {"service": name},
                            "timeout": ROSAPI_TIMEOUT,
                        }
                    ),
                )
            )
        found = {}
        for name, ident, future in futures:
            reply = _wait(future, ROSAPI_TIMEOUT, conn, ident, "/rosapi/service_type")
            values = reply.get("values")
            found[name] = str(values.get("type", "")) if isinstance(values, dict) else ""
        return found

    def nodes(self) -> list[str]:
        """Return every node, sorted (``/rosapi/nodes``).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        return sorted(self._rosapi("nodes", {}, "list nodes").get("nodes") or [])

    def actions(self) -> dict[str, str]:
        """Return every action with its type, found from the graph's hidden action topics
        (``<action>/_action/feedback`` of type ``pkg/action/Name_FeedbackMessage``), or from
        ``/rosapi/action_servers`` (type unknown, ``""``) where rosapi lists those.

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
        for name in servers or []:
            found.setdefault(name, "")
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
        """Return every parameter name (``/rosapi/get_param_names``; ROS 2: ``/node:param``).

        Raises:
            RosapiUnavailableError: the server has no rosapi.
        """
        return list(self._rosapi("get_param_names", {}, "list parameters").get("names") or [])

    def get_param(self, name: str) -> Any:
        """Return a parameter: ROS 2 ``/node:param`` from the node's ``get_parameters``
        service, ROS 1 ``/name`` from rosapi (``has_param`` then ``get_param``, JSON values).

        Raises:
            ParamNotSetError: not set (or no such node).
        """
        if ":" in name:
            node, param = wire.split_param_name(name)
            try:
                reply = self._call(f"{node}/get_parameters", {"names": [param]}, ROSAPI_TIMEOUT)
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
                    f"{node}/set_parameters", {"parameters": [parameter]}, ROSAPI_TIMEOUT
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
        """Delete a ROS 1 parameter through rosapi (ROS 2 parameters cannot be deleted).

        Raises:
            ParamNotSetError: not set.
            PyrosError: a ROS 2 name.
        """
        if ":" in name:
            raise PyrosError(f"cannot delete {name}: ROS 2 parameters belong to their node")
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
        """Send a goal with ``send_action_goal`` (rosbridge 3.2.12), feedback on.

        rosbridge v2 has no message for "accepted": this returns once the goal is sent, and
        a goal the action server rejects ends through ``on_done`` with status
        ``"rejected"`` (rosbridge-server-rs reports it as a failed ``action_result``). A goal
        whose connection drops ends ``"aborted"`` with a message saying so.

        Raises:
            MessageError: the goal cannot be encoded.
            ConnectionLostError: not connected now.
        """
        conn = self._connection()
        handle = _Goal(self, conn.next_id("goal"), action, on_feedback, on_done)
        message = {
            "op": "send_action_goal",
            "id": handle.id,
            "action": action,
            "action_type": type,
            "args": goal,
            "feedback": True,
        }
        with self._lock:
            self._goals[handle.id] = handle
        try:
            conn.send(wire.encode_json(message))
        except BaseException:
            with self._lock:
                self._goals.pop(handle.id, None)
            raise
        return handle


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
