"""The rclpy side of the ``ros2`` backend: one context, one node, one executor thread.

:class:`Session` owns an rclpy ``Context`` of its own (never rclpy's global one, and no signal
handlers: the pyros node process keeps SIGTERM and SIGINT), one node, and an executor spun by
one thread (``pyros-rclpy``). Every rclpy callback (subscriptions, service responses, action
feedback and results) runs there and only converts and hands over, so that one thread is
enough. Backend methods run on the node's threads and wait on rclpy futures with their own
deadlines, never by spinning. A second thread (``pyros-ros2-watch``) re-adapts subscriptions
whose publishers changed and fails goals whose action server left the graph.

The node is created without rosout, parameter services or the type description service, so
that in a domain with no other node the graph lists nothing of pyros's but the node itself.

This module imports rclpy; :class:`pyros_ros.ros2.Ros2Backend` imports it after
:func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rclpy.action
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rcl_interfaces.msg import Parameter as ParameterMessage
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
from rclpy.context import Context
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.task import Future

from pyros.backends.base import (
    BackendGoal,
    DoneCallback,
    FeedbackCallback,
    GoalOutcome,
    MessageCallback,
    QoS,
)
from pyros.exceptions import (
    ActionError,
    MessageError,
    NotExposedError,
    ParamNotSetError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)
from pyros_ros.ros2 import conversion, params, qos

__all__ = [
    "Session",
    "SUBSCRIBER_WAIT",
    "PARAM_LIST_TIMEOUT",
    "PARAM_TIMEOUT",
    "WATCH_INTERVAL",
    "DISCOVERY_SETTLE",
    "DISCOVERY_WAIT",
    "TAKE_BATCH",
]

LOG = logging.getLogger("pyros.ros2")

SUBSCRIBER_WAIT = 1.0
"""Seconds a new publisher waits for the graph's compatible subscriptions to match it, so
that a one-shot publish (``pyros pub``) reaches them."""

PARAM_LIST_TIMEOUT = 2.0
"""Seconds :meth:`Session.params` waits for the nodes' ``list_parameters`` answers in all;
a node that does not answer in time is left out."""

PARAM_TIMEOUT = 5.0
"""Seconds a parameter get, set or delete waits for the node's parameter service."""

WATCH_INTERVAL = 0.1
"""Seconds between two checks of the running goals' action servers."""

DISCOVERY_SETTLE = 0.3
"""Seconds the graph must stay unchanged before :class:`Session` counts initial discovery
as done (what ``ros2 topic list`` waits too, without a daemon, is its 0.5 s spin time)."""

DISCOVERY_WAIT = 2.0
"""Seconds :class:`Session` waits at most for initial discovery to settle."""

TAKE_BATCH = 64
"""Messages one subscription callback takes at most (see ``Session._create_subscription``)."""

_READY_POLL = 0.002
"""Seconds between two looks at whether a new client has matched its server."""

_GOAL_STATUS = {4: "succeeded", 5: "canceled", 6: "aborted"}
"""``action_msgs/msg/GoalStatus`` final states -> pyros status names."""

_INTERNAL_TOPICS = ("/parameter_events",)
"""Topics every rclpy node publishes; listed only when another endpoint uses them."""


def _hidden(name: str) -> bool:
    """True for names ROS 2 tools hide (a token starting with ``_``, e.g. ``/x/_action/...``)."""
    return any(token.startswith("_") for token in name.split("/"))


def _full_name(name: str, namespace: str) -> str:
    return f"{namespace.rstrip('/')}/{name}"


def _wait(future: Future[Any], deadline: float, still_there: Callable[[], bool]) -> str:
    """Wait for ``future``; return ``"done"``, ``"timeout"`` or ``"gone"`` (server left)."""
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    while not future.done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        if event.wait(min(remaining, 0.05)):
            break
        if not future.done() and not still_there():
            return "gone"
    return "done"


class _Publisher:
    __slots__ = ("publisher", "cls", "ready")

    def __init__(self, publisher: Any, cls: Any) -> None:
        self.publisher = publisher
        self.cls = cls
        self.ready = threading.Event()


class _Subscription:
    __slots__ = ("topic", "cls", "callback", "requested", "profile", "handle")

    def __init__(self, topic: str, cls: Any, callback: MessageCallback, requested: QoS | None):
        self.topic = topic
        self.cls = cls
        self.callback = callback
        self.requested = requested
        self.profile: QoSProfile | None = None
        self.handle: Any = None


class _Goal(BackendGoal):
    """A goal the server accepted; :meth:`finish` calls ``on_done`` exactly once."""

    def __init__(
        self,
        session: Session,
        action: str,
        client: Any,
        handle: Any,
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
    ) -> None:
        self.action = action
        self.id = str(uuid.UUID(bytes=bytes(handle.goal_id.uuid)))
        self._session = session
        self.client = client
        self.servers: frozenset[tuple[int, ...]] = frozenset()
        self.handle = handle
        self.on_feedback = on_feedback
        self._on_done = on_done
        self._lock = threading.Lock()
        self.done = False

    def cancel(self) -> None:
        """Ask the server to cancel the goal (rclpy's ``cancel_goal_async``); no wait."""
        with self._lock:
            if self.done:
                return
        try:
            self.handle.cancel_goal_async()
        except Exception as exc:  # the context is shutting down: the goal ends anyway
            LOG.debug("cancel of goal %s failed: %s", self.id, exc)

    def finish(self, outcome: GoalOutcome) -> None:
        with self._lock:
            if self.done:
                return
            self.done = True
        self._session.forget_goal(self)
        try:
            self._on_done(outcome)
        except Exception:  # the node's callback failed: nobody else can be told
            LOG.exception("the done callback of goal %s failed", self.id)

    def feedback(self, message: Any) -> None:
        if self.done:
            return
        try:
            self.on_feedback(conversion.to_dict(message.feedback))
        except Exception:
            LOG.exception("the feedback callback of goal %s failed", self.id)


class Session:
    """One rclpy node in its own context, spun by its own thread.

    Args:
        node_name: the node's base name (``"pyros_kitchen"``), registered as
            ``/pyros_kitchen``.
        domain_id: the ROS domain; None takes ``ROS_DOMAIN_ID`` (else 0), as rclpy does.

    Raises:
        SpawnError: rclpy refused the context or the node (bad name, bad domain...).
    """

    def __init__(self, node_name: str, domain_id: int | None) -> None:
        self._lock = threading.RLock()  # entities: publishers, subscriptions, clients
        self._graph_lock = threading.Lock()  # graph queries through the node
        self._publishers: dict[str, _Publisher] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._clients: dict[tuple[str, Any], Any] = {}
        self._action_clients: dict[tuple[str, Any], Any] = {}
        self._goals: dict[str, _Goal] = {}
        self._readapt: set[str] = set()
        self._wake = threading.Event()
        self._stopped = False
        self.context = Context()
        try:
            # No log files under ~/.ros/log (rcl's spdlog sink); messages still go to stderr.
            self.context.init(
                args=["--ros-args", "--disable-external-lib-logs"], domain_id=domain_id
            )
            self.node = Node(
                node_name,
                context=self.context,
                use_global_arguments=False,
                enable_rosout=False,
                start_parameter_services=False,
                parameter_overrides=[Parameter("start_type_description_service", value=False)],
            )
        except Exception as exc:
            self.context.try_shutdown()
            raise SpawnError(f"rclpy could not start node {node_name}: {exc}") from exc
        self.name = self.node.get_fully_qualified_name()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name="pyros-rclpy", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="pyros-ros2-watch", daemon=True)
        self._spinner.start()
        self._watcher.start()
        self._settle()

    def _settle(self) -> None:
        """Wait until discovery stops finding new nodes, topics and services.

        A new DDS participant learns the graph within about 0.1 s to 1 s; without this wait a
        first ``topics()`` right after start (``pyros topics --backend ros2``) would list
        nothing. Returns after :data:`DISCOVERY_SETTLE` seconds without change, or
        :data:`DISCOVERY_WAIT` seconds in all.
        """
        node = self.node
        deadline = time.monotonic() + DISCOVERY_WAIT
        seen: tuple[int, int, int] | None = None
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._graph_lock:
                now = (
                    len(node.get_node_names_and_namespaces()),
                    len(node.get_topic_names_and_types()),
                    len(node.get_service_names_and_types()),
                )
            if now != seen:
                seen, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= DISCOVERY_SETTLE:
                return
            time.sleep(0.02)

    # --- lifecycle ---------------------------------------------------------------------------

    def _spin(self) -> None:
        while not self._stopped:
            try:
                self.executor.spin_once(timeout_sec=1.0)
            except ExternalShutdownException:
                return
            except Exception as exc:
                if self._stopped or not self.context.ok():
                    return
                LOG.exception("an rclpy callback failed: %s", exc)

    def stop(self) -> None:
        """End every goal, destroy the node and shut the context down. Idempotent.

        The node leaves the graph at once: destroying the last node deletes the DDS
        participant, which announces it. The executor thread is joined first: while it waits
        on the node, rclpy only defers the node's destruction, and a process that exits
        right after would leave its node in the others' graphs until the DDS lease expires.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            goals = list(self._goals.values())
        self._wake.set()
        for goal in goals:
            goal.finish(GoalOutcome("aborted", None, "the pyros node stopped"))
        current = threading.current_thread()
        if self._watcher is not current:
            self._watcher.join(2.0)
        self.executor.shutdown(timeout_sec=2.0)
        if self._spinner is not current:
            self._spinner.join(2.0)
        with self._lock:
            for client in self._action_clients.values():
                client.destroy()
            self._action_clients.clear()
            self.node.destroy_node()
        self.context.try_shutdown()

    def _require(self) -> Node:
        if self._stopped:
            raise PyrosError("the ros2 backend is stopped")
        return self.node

    # --- graph -------------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Every visible topic in the graph with its first type; see ``Backend.topics``."""
        node = self._require()
        with self._graph_lock:
            pairs = node.get_topic_names_and_types()
        found = {name: types[0] for name, types in pairs if types and not _hidden(name)}
        for internal in _INTERNAL_TOPICS:
            if internal in found and not self._used_by_others(internal):
                del found[internal]
        return found

    def _used_by_others(self, topic: str) -> bool:
        node = self.node
        with self._graph_lock:
            infos = node.get_publishers_info_by_topic(topic)
            infos += node.get_subscriptions_info_by_topic(topic)
        return any(_full_name(i.node_name, i.node_namespace) != self.name for i in infos)

    def services(self) -> dict[str, str]:
        """Every visible service that has a server, with its type; see ``Backend.services``.

        The graph lists a service name as soon as any node has a client for it (this node's
        own clients included), so names without a server are dropped (``count_services``;
        rclpy versions without it keep them).
        """
        node = self._require()
        with self._graph_lock:
            pairs = node.get_service_names_and_types()
            count = getattr(node, "count_services", None)
            return {
                name: types[0]
                for name, types in pairs
                if types and not _hidden(name) and (count is None or count(name) > 0)
            }

    def actions(self) -> dict[str, str]:
        """Every action in the graph with its type; see ``Backend.actions``."""
        node = self._require()
        with self._graph_lock:
            pairs = rclpy.action.get_action_names_and_types(node)
        return {name: types[0] for name, types in pairs if types}

    def _node_pairs(self) -> list[tuple[str, str]]:
        node = self._require()
        with self._graph_lock:
            pairs = node.get_node_names_and_namespaces()
        return [(name, namespace) for name, namespace in pairs if not name.startswith("_")]

    def nodes(self) -> list[str]:
        """Every visible node's full name, sorted (a name twice if two nodes share it)."""
        return sorted(_full_name(name, namespace) for name, namespace in self._node_pairs())

    def _find_node(self, full_name: str) -> tuple[str, str] | None:
        for name, namespace in self._node_pairs():
            if _full_name(name, namespace) == full_name:
                return name, namespace
        return None

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Type, publishers, subscribers and their QoS; see ``Backend.topic_info``."""
        node = self._require()
        with self._graph_lock:
            types = dict(node.get_topic_names_and_types()).get(topic)
            publishers = node.get_publishers_info_by_topic(topic)
            subscribers = node.get_subscriptions_info_by_topic(topic)
        if not types:
            raise NotExposedError(f"topic {topic!r} does not exist in the graph")

        def describe(infos: list[Any]) -> list[dict[str, Any]]:
            return [
                {"node": _full_name(i.node_name, i.node_namespace), **qos.to_dict(i.qos_profile)}
                for i in infos
            ]

        return {
            "type": types[0],
            "publishers": sorted({_full_name(i.node_name, i.node_namespace) for i in publishers}),
            "subscribers": sorted({_full_name(i.node_name, i.node_namespace) for i in subscribers}),
            "publisher_qos": describe(publishers),
            "subscriber_qos": describe(subscribers),
        }

    def service_info(self, service: str) -> dict[str, Any]:
        """Type and serving nodes; see ``Backend.service_info``."""
        types = self.services().get(service)
        if types is None:
            raise NotExposedError(f"service {service!r} does not exist in the graph")
        providers = []
        for name, namespace in self._node_pairs():
            with self._graph_lock:
                served = self.node.get_service_names_and_types_by_node(name, namespace)
            if any(entry[0] == service for entry in served):
                providers.append(_full_name(name, namespace))
        return {"type": types, "providers": sorted(providers)}

    def node_info(self, full_name: str) -> dict[str, Any]:
        """What a node publishes, subscribes to, serves; see ``Backend.node_info``."""
        found = self._find_node(full_name)
        if found is None:
            raise NotExposedError(f"node {full_name!r} is not in the graph")
        name, namespace = found
        node = self.node

        def visible(pairs: list[Any]) -> dict[str, str]:
            return {entry[0]: entry[1][0] for entry in pairs if entry[1] and not _hidden(entry[0])}

        with self._graph_lock:
            publishes = node.get_publisher_names_and_types_by_node(name, namespace)
            subscribes = node.get_subscriber_names_and_types_by_node(name, namespace)
            services = node.get_service_names_and_types_by_node(name, namespace)
            clients = node.get_client_names_and_types_by_node(name, namespace)
            action_servers = rclpy.action.get_action_server_names_and_types_by_node(
                node, name, namespace
            )
            action_clients = rclpy.action.get_action_client_names_and_types_by_node(
                node, name, namespace
            )
        return {
            "publishes": visible(publishes),
            "subscribes": visible(subscribes),
            "services": visible(services),
            "clients": visible(clients),
            "actions": visible(action_servers),
            "action_clients": visible(action_clients),
        }

    def action_info(self, action: str) -> dict[str, Any]:
        """Type, servers and clients of an action; see ``Backend.action_info``."""
        type_name = self.actions().get(action)
        if type_name is None:
            raise NotExposedError(f"action {action!r} has no server in the graph")
        servers, clients = [], []
        for name, namespace in self._node_pairs():
            with self._graph_lock:
                served = rclpy.action.get_action_server_names_and_types_by_node(
                    self.node, name, namespace
                )
                used = rclpy.action.get_action_client_names_and_types_by_node(
                    self.node, name, namespace
                )
            if any(entry[0] == action for entry in served):
                servers.append(_full_name(name, namespace))
            if any(entry[0] == action for entry in used):
                clients.append(_full_name(name, namespace))
        return {"type": type_name, "servers": sorted(servers), "clients": sorted(clients)}

    def definition(self, type_name: str) -> str:
        """The ``.msg``/``.srv``/``.action`` file of a type; see ``Backend.definition``."""
        package, kind, name = conversion.split_type(type_name)
        try:
            share = get_package_share_directory(package)
        except (PackageNotFoundError, ValueError) as exc:
            raise MessageError(f"unknown type {type_name!r}: no ROS 2 package {package!r}") from exc
        for each in (kind,) if kind else ("msg", "srv", "action"):
            try:
                with open(f"{share}/{each}/{name}.{each}", encoding="utf-8") as f:
                    return f.read()
            except FileNotFoundError:
                continue
        kinds = f"{kind}/" if kind else "msg/, srv/ or action/"
        raise MessageError(f"unknown type {type_name!r}: no {name} in {share}/{kinds}")

    def _graph_type(self, pairs: list[tuple[str, list[str]]], name: str) -> str | None:
        for entry, types in pairs:
            if entry == name and types:
                return types[0]
        return None

    # --- topics ------------------------------------------------------------------------------

    def publish(
        self, topic: str, type_name: str, message: dict[str, Any], qos_: QoS | None
    ) -> None:
        """Publish one message; see ``Backend.publish``."""
        self._require()
        cls = conversion.message_class(type_name)
        entry = self._publishers.get(topic)
        if entry is not None and entry.cls is not cls:
            raise MessageError(
                f"topic {topic} is published here as {conversion.graph_name(entry.cls)}, "
                f"not {conversion.graph_name(cls)}"
            )
        msg = conversion.from_dict(cls, message)
        if entry is None:
            entry = self._publisher_for(topic, cls, qos_)
        if not entry.ready.is_set():
            entry.ready.wait(SUBSCRIBER_WAIT)
        entry.publisher.publish(msg)

    def _check_graph_type(self, topic: str, cls: Any) -> None:
        with self._graph_lock:
            existing = self._graph_type(self.node.get_topic_names_and_types(), topic)
        wanted = conversion.graph_name(cls)
        if existing is not None and existing != wanted:
            raise MessageError(f"topic {topic} has type {existing} in the ROS graph, not {wanted}")

    def _publisher_for(self, topic: str, cls: Any, qos_: QoS | None) -> _Publisher:
        """Return the topic's publisher, creating it and waiting for subscribers if needed."""
        profile = qos.publisher_profile(qos_)
        with self._lock:
            entry = self._publishers.get(topic)
            if entry is not None:
                if entry.cls is not cls:
                    raise MessageError(
                        f"topic {topic} is published here as {conversion.graph_name(entry.cls)}"
                    )
                return entry
            node = self._require()
            self._check_graph_type(topic, cls)
            entry = _Publisher(node.create_publisher(cls, topic, profile), cls)
            self._publishers[topic] = entry
        try:
            with self._graph_lock:
                subscribers = node.get_subscriptions_info_by_topic(topic)
            expected = sum(qos.compatible(profile, s.qos_profile) for s in subscribers)
            deadline = time.monotonic() + SUBSCRIBER_WAIT
            while (
                entry.publisher.get_subscription_count() < expected and time.monotonic() < deadline
            ):
                time.sleep(_READY_POLL)
        finally:
            entry.ready.set()
        return entry

    def subscribe(
        self, topic: str, type_name: str, callback: MessageCallback, qos_: QoS | None
    ) -> None:
        """Subscribe, adapting the QoS to the publishers; see ``Backend.subscribe``."""
        self._require()
        cls = conversion.message_class(type_name)
        self._check_graph_type(topic, cls)
        entry = _Subscription(topic, cls, callback, qos_)
        with self._lock:
            self._require()
            self.unsubscribe(topic)
            entry.profile = self._profile_for(entry)
            entry.handle = self._create_subscription(entry, entry.profile)
            self._subscriptions[topic] = entry

    def _profile_for(self, entry: _Subscription) -> QoSProfile:
        with self._graph_lock:
            publishers = self.node.get_publishers_info_by_topic(entry.topic)
        return qos.subscription_profile(entry.requested, (p.qos_profile for p in publishers))

    def _create_subscription(self, entry: _Subscription, profile: QoSProfile) -> Any:
        """Create the rclpy subscription of ``entry``.

        Its callback also takes, up to :data:`TAKE_BATCH` at a time, the messages that queued
        up meanwhile (``take_message`` on the subscription's handle, as rclpy's executor
        does), so that a fast stream costs one executor round per batch instead of one per
        message: rclpy's Python executors spend more per round than pyros per message.
        """
        to_dict = conversion.to_dict
        callback = entry.callback
        topic = entry.topic
        created: list[Any] = []

        def deliver(msg: Any) -> None:
            try:
                callback(to_dict(msg))
            except Exception:
                LOG.exception("delivering a message of %s failed", topic)

        def on_message(msg: Any) -> None:
            deliver(msg)
            if not created:
                return
            subscription = created[0]
            for _ in range(TAKE_BATCH - 1):
                try:
                    with subscription.handle:
                        taken = subscription.handle.take_message(
                            subscription.msg_type, subscription.raw
                        )
                except Exception:  # destroyed meanwhile (InvalidHandle): the executor's turn
                    return
                if taken is None:
                    return
                deliver(taken[0])

        events = None
        if qos.adapts(entry.requested):

            def changed(info: Any) -> None:
                self._readapt.add(topic)
                self._wake.set()

            events = SubscriptionEventCallbacks(incompatible_qos=changed, matched=changed)
        subscription = self.node.create_subscription(
            entry.cls, topic, on_message, profile, event_callbacks=events
        )
        created.append(subscription)
        return subscription

    def _readapt_subscription(self, topic: str) -> None:
        """Recreate an adapting subscription whose publishers now call for other policies.

        The new subscription is created before the old one is destroyed, so nothing is missed;
        a message may arrive twice meanwhile (and a transient-local publisher's last messages
        again).
        """
        with self._lock:
            entry = self._subscriptions.get(topic)
            if entry is None or self._stopped or not qos.adapts(entry.requested):
                return
            profile = self._profile_for(entry)
            assert entry.profile is not None
            if qos.same_policies(profile, entry.profile):
                return
            old = entry.handle
            entry.handle = self._create_subscription(entry, profile)
            entry.profile = profile
            self.node.destroy_subscription(old)
        LOG.info("subscription to %s adapted to its publishers: %s", topic, qos.to_dict(profile))

    def unsubscribe(self, topic: str) -> None:
        """Destroy the topic's subscription, if any. Idempotent."""
        with self._lock:
            entry = self._subscriptions.pop(topic, None)
            if entry is not None and not self._stopped:
                self.node.destroy_subscription(entry.handle)

    # --- services ----------------------------------------------------------------------------

    def _client_for(self, service: str, srv_cls: Any) -> Any:
        with self._lock:
            client = self._clients.get((service, srv_cls))
            if client is None:
                client = self._require().create_client(srv_cls, service)
                self._clients[(service, srv_cls)] = client
            return client

    def _wait_ready(self, ready: Callable[[], bool], deadline: float) -> bool:
        while not ready():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_READY_POLL)
        return True

    def call(
        self, service: str, type_name: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service with a deadline; see ``Backend.call``."""
        deadline = time.monotonic() + timeout
        srv_cls = conversion.service_class(type_name)
        msg = conversion.from_dict(srv_cls.Request, request)
        client = self._clients.get((service, srv_cls))
        if client is None or not client.service_is_ready():
            # A ready client is matched with a server of this type: no graph lookup needed.
            existing = self.services().get(service)
            if existing is None:
                raise NotExposedError(f"service {service} does not exist in the ROS graph")
            if existing != conversion.graph_name(srv_cls):
                raise MessageError(
                    f"service {service} has type {existing}, not {conversion.graph_name(srv_cls)}"
                )
            client = self._client_for(service, srv_cls)
            if not self._wait_ready(client.service_is_ready, deadline):
                raise TimeoutError(f"service {service} did not become reachable in {timeout:g} s")
        future = client.call_async(msg)
        outcome = _wait(future, deadline, client.service_is_ready)
        if outcome != "done":
            client.remove_pending_request(future)
            if outcome == "timeout":
                raise TimeoutError(f"service {service} did not answer within {timeout:g} s")
            raise ServiceError(f"the server of {service} went away while answering")
        exception = future.exception()
        if exception is not None:
            raise ServiceError(f"service {service} failed: {exception}") from exception
        return conversion.to_dict(future.result())

    def _call_internal(
        self, service: str, srv_cls: Any, request: Any, deadline: float
    ) -> Any | None:
        """Call a service of another node's; None if it is unreachable or silent in time."""
        client = self._client_for(service, srv_cls)
        if not self._wait_ready(client.service_is_ready, deadline):
            return None
        future = client.call_async(request)
        if _wait(future, deadline, client.service_is_ready) != "done":
            client.remove_pending_request(future)
            return None
        return future.result() if future.exception() is None else None

    # --- parameters --------------------------------------------------------------------------

    def params(self) -> list[str]:
        """``<node>:<param>`` for every parameter of every node that answers in time.

        The nodes are found by their ``<node>/list_parameters`` services (which the graph
        shows before it shows node names).
        """
        suffix = "/list_parameters"
        targets = [
            name[: -len(suffix)]
            for name, type_name in self.services().items()
            if name.endswith(suffix)
            and type_name == "rcl_interfaces/srv/ListParameters"
            and name[: -len(suffix)] != self.name
        ]
        deadline = time.monotonic() + PARAM_LIST_TIMEOUT
        if not targets:
            return []
        found: list[str] = []
        with ThreadPoolExecutor(min(16, len(targets))) as pool:
            answers = pool.map(
                lambda full: self._call_internal(
                    f"{full}/list_parameters", ListParameters, ListParameters.Request(), deadline
                ),
                targets,
            )
            for full, answer in zip(targets, answers, strict=True):
                if answer is not None:
                    found.extend(f"{full}:{name}" for name in answer.result.names)
        return sorted(found)

    def _node_service(self, node_name: str, service: str) -> str:
        """The parameter service ``service`` of ``node_name``.

        Raises:
            ParamNotSetError: the node is not in the graph, or serves no parameters.
        """
        name = f"{node_name}/{service}"
        if name in self.services():
            return name
        if self._find_node(node_name) is None:
            raise ParamNotSetError(f"node {node_name} is not in the ROS graph")
        raise ParamNotSetError(f"node {node_name} serves no parameters ({name})")

    def _get_values(self, node_name: str, names: list[str], deadline: float) -> list[Any]:
        service = self._node_service(node_name, "get_parameters")
        request = GetParameters.Request(names=names)
        answer = self._call_internal(service, GetParameters, request, deadline)
        if answer is None:
            raise TimeoutError(f"node {node_name} did not answer {service} in time")
        return list(answer.values)

    def _list_under(self, node_name: str, prefix: str, deadline: float) -> list[str]:
        service = self._node_service(node_name, "list_parameters")
        request = ListParameters.Request(prefixes=[prefix], depth=0)
        answer = self._call_internal(service, ListParameters, request, deadline)
        if answer is None:
            return []
        return [name for name in answer.result.names if name.startswith(prefix + ".")]

    def get_param(self, name: str) -> Any:
        """Read a parameter (or the dict of those under a prefix); see ``Backend.get_param``."""
        node_name, param = params.split_name(name)
        deadline = time.monotonic() + PARAM_TIMEOUT
        values = self._get_values(node_name, [param], deadline)
        if values:
            try:
                return params.to_python(values[0])
            except ParamNotSetError:
                pass
        children = self._list_under(node_name, param, deadline)
        if not children:
            raise ParamNotSetError(f"parameter {name} is not set")
        child_values = self._get_values(node_name, children, deadline)
        pairs = []
        for child, value in zip(children, child_values, strict=False):
            try:
                pairs.append((child, params.to_python(value)))
            except ParamNotSetError:
                continue
        return params.nest(param, pairs)

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter, or those under a prefix from a dict; see ``Backend.set_param``.

        Raises:
            MessageError: the value cannot be a ROS 2 parameter (see
                :func:`pyros_ros.ros2.params.to_value`).
            NotExposedError: the node is not in the graph.
            PyrosError: the node refused (undeclared or read-only parameter, wrong type...),
                with its reason.
            TimeoutError: the node did not answer in time.
        """
        node_name, param = params.split_name(name)
        pairs = params.flatten(param, value)
        for pair_name, pair_value in pairs:
            params.to_value(pair_value, f"{node_name}:{pair_name}")  # check before any call
        deadline = time.monotonic() + PARAM_TIMEOUT
        try:
            current = self._get_values(node_name, [n for n, _ in pairs], deadline)
        except ParamNotSetError as exc:
            raise NotExposedError(f"cannot set {name}: {exc}") from exc
        kinds = [v.type for v in current] + [0] * (len(pairs) - len(current))
        parameters = [
            ParameterMessage(name=pair_name, value=params.to_value(pair_value, name, kind))
            for (pair_name, pair_value), kind in zip(pairs, kinds, strict=True)
        ]
        self._set(node_name, parameters, deadline, f"set {name}")

    def _set(self, node_name: str, parameters: list[Any], deadline: float, what: str) -> None:
        service = self._node_service(node_name, "set_parameters")
        request = SetParameters.Request(parameters=parameters)
        answer = self._call_internal(service, SetParameters, request, deadline)
        if answer is None:
            raise TimeoutError(f"node {node_name} did not answer {service} ({what})")
        refused = [
            f"{parameter.name}: {result.reason or 'refused'}"
            for parameter, result in zip(parameters, answer.results, strict=False)
            if not result.successful
        ]
        if refused:
            raise PyrosError(f"node {node_name} refused to {what}: {'; '.join(refused)}")

    def delete_param(self, name: str) -> None:
        """Undeclare a parameter (or all under a prefix); see ``Backend.delete_param``.

        ROS 2 nodes let a client undeclare only parameters they allow to be undeclared
        (``allow_undeclared_parameters``); others refuse with a reason, raised as PyrosError.
        """
        node_name, param = params.split_name(name)
        deadline = time.monotonic() + PARAM_TIMEOUT
        names = []
        values = self._get_values(node_name, [param], deadline)
        if values and values[0].type != 0:
            names.append(param)
        names += self._list_under(node_name, param, deadline)
        if not names:
            raise ParamNotSetError(f"parameter {name} is not set")
        parameters = [ParameterMessage(name=n) for n in names]  # type NOT_SET: undeclare
        self._set(node_name, parameters, deadline, f"delete {name}")

    # --- actions -----------------------------------------------------------------------------

    def _action_client_for(self, action: str, action_cls: Any) -> Any:
        with self._lock:
            client = self._action_clients.get((action, action_cls))
            if client is None:
                client = rclpy.action.ActionClient(self._require(), action_cls, action)
                self._action_clients[(action, action_cls)] = client
            return client

    def send_goal(
        self,
        action: str,
        type_name: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal and wait until it is accepted; see ``Backend.send_goal``."""
        deadline = time.monotonic() + timeout
        action_cls = conversion.action_class(type_name)
        msg = conversion.from_dict(action_cls.Goal, goal)
        existing = self.actions().get(action)
        if existing is None:
            raise NotExposedError(f"action {action} has no server in the ROS graph")
        if existing != conversion.graph_name(action_cls):
            raise MessageError(
                f"action {action} has type {existing}, not {conversion.graph_name(action_cls)}"
            )
        client = self._action_client_for(action, action_cls)
        if not self._wait_ready(client.server_is_ready, deadline):
            raise TimeoutError(f"the server of {action} did not become reachable in {timeout:g} s")
        box: list[_Goal] = []
        early: list[Any] = []

        def feedback(message: Any) -> None:  # runs on the executor thread, in order
            if box:
                box[0].feedback(message)
            else:
                early.append(message)

        future = client.send_goal_async(msg, feedback_callback=feedback)
        outcome = _wait(future, deadline, client.server_is_ready)
        if outcome != "done":
            future.add_done_callback(_cancel_if_accepted)
            if outcome == "timeout":
                raise TimeoutError(
                    f"the server of {action} did not answer the goal in {timeout:g} s"
                )
            raise ActionError(f"the server of {action} went away", status="aborted")
        if future.exception() is not None:
            raise ActionError(f"sending the goal to {action} failed: {future.exception()}")
        handle = future.result()
        if not handle.accepted:
            raise ActionError(f"the server of {action} rejected the goal", status="rejected")
        entry = _Goal(self, action, client, handle, on_feedback, on_done)
        entry.servers = self._action_servers(action)
        with self._lock:
            if self._stopped:
                entry.cancel()
                raise PyrosError("the ros2 backend is stopped")
            self._goals[entry.id] = entry
        self.executor.create_task(self._deliver_early, entry, early, box)
        result = handle.get_result_async()
        result.add_done_callback(lambda done: self._goal_result(entry, done))
        return entry

    @staticmethod
    def _deliver_early(entry: _Goal, early: list[Any], box: list[_Goal]) -> None:
        """On the executor thread: feedback that came before acceptance, then the rest."""
        for message in early:
            entry.feedback(message)
        early.clear()
        box.append(entry)

    def _goal_result(self, entry: _Goal, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            reason = future.exception() or "the result request was cancelled"
            entry.finish(GoalOutcome("aborted", None, f"no result: {reason}"))
            return
        response = future.result()
        status = _GOAL_STATUS.get(response.status)
        if status is None:
            entry.finish(
                GoalOutcome(
                    "aborted", None, f"the server ended the goal with status {response.status}"
                )
            )
            return
        entry.finish(GoalOutcome(status, conversion.to_dict(response.result)))

    def _action_servers(self, action: str) -> frozenset[tuple[int, ...]]:
        """Identify the servers of ``action`` now: the DDS GIDs of its status publishers.

        A goal is watched against the servers that existed when it was accepted, so that a
        server started again under the same name does not hide that the goal's one is gone.
        """
        with self._graph_lock:
            infos = self.node.get_publishers_info_by_topic(f"{action}/_action/status")
        return frozenset(tuple(info.endpoint_gid) for info in infos)

    def _server_gone(self, goal: _Goal) -> bool:
        if goal.servers:
            return not goal.servers & self._action_servers(goal.action)
        return not goal.client.server_is_ready()

    def forget_goal(self, entry: _Goal) -> None:
        with self._lock:
            self._goals.pop(entry.id, None)

    # --- the watch thread ----------------------------------------------------------------------

    def _watch(self) -> None:
        """Re-adapt subscriptions and end goals whose server left (``pyros-ros2-watch``)."""
        while not self._stopped:
            self._wake.wait(WATCH_INTERVAL)
            self._wake.clear()
            if self._stopped:
                return
            try:
                while self._readapt:
                    self._readapt_subscription(self._readapt.pop())
                with self._lock:
                    goals = list(self._goals.values())
                for goal in goals:
                    if self._server_gone(goal):
                        goal.finish(
                            GoalOutcome("aborted", None, "the action server left the ROS graph")
                        )
            except Exception:
                if self._stopped:
                    return
                LOG.exception("watching subscriptions and goals failed")


def _cancel_if_accepted(future: Future[Any]) -> None:
    """A goal answered after its sender gave up: cancel it if it was accepted."""
    if future.exception() is None and future.result() is not None and future.result().accepted:
        future.result().cancel_goal_async()
