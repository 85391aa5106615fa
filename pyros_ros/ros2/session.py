"""The rclpy side of the ``ros2`` backend: one context, one node, one executor thread.

:class:`Session` owns an rclpy ``Context`` of its own (never rclpy's global one, and no signal
handlers: the pyros node process keeps SIGTERM and SIGINT), one node, and an executor spun by
one thread (``pyros-rclpy``). Every rclpy callback (subscriptions, service responses, action
feedback and results) runs there and only converts and hands over, so that one thread is
enough. Backend methods run on the node's threads and wait on rclpy futures with their own
deadlines, never by spinning. A second thread (``pyros-ros2-watch``) re-adapts subscriptions
whose publishers changed and fails goals whose action server left the graph. Parameters
(:class:`pyros_ros.ros2.params.Parameters`) and goals (:class:`pyros_ros.ros2.actions.Actions`)
are handled beside it, through its node.

The node is created without rosout, parameter services or the type description service, so
that in a domain with no other node the graph lists nothing of pyros's but the node itself.

This module imports rclpy; :class:`pyros_ros.ros2.Ros2Backend` imports it after
:func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rclpy.action.graph import (
    get_action_client_names_and_types_by_node,
    get_action_names_and_types,
    get_action_server_names_and_types_by_node,
)
from rclpy.context import Context
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from pyros.backends.base import MessageCallback, QoS
from pyros.exceptions import (
    MessageError,
    NotExposedError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)
from pyros_ros.ros2 import conversion, qos
from pyros_ros.ros2.actions import Actions
from pyros_ros.ros2.futures import wait_future
from pyros_ros.ros2.params import Parameters

__all__ = [
    "Session",
    "SUBSCRIBER_WAIT",
    "WATCH_INTERVAL",
    "DISCOVERY_SETTLE",
    "DISCOVERY_WAIT",
    "TAKE_BATCH",
    "CLIENT_IDLE",
]

LOG = logging.getLogger("pyros.ros2")

SUBSCRIBER_WAIT = 1.0
"""Seconds a new publisher waits for the graph's compatible subscriptions to match it, so
that a one-shot publish (``pyros pub``) reaches them."""

WATCH_INTERVAL = 0.1
"""Seconds between two checks of the running goals' action servers."""

DISCOVERY_SETTLE = 0.3
"""Seconds the graph must stay unchanged, once other nodes were found, before
:class:`Session` counts initial discovery as done (``ros2 topic list`` without its daemon
spins 0.5 s)."""

DISCOVERY_WAIT = 2.0
"""Seconds :class:`Session` waits at most for initial discovery (all of it in an empty
domain)."""

CLIENT_IDLE = 30.0
"""Seconds after its last use that a client of a service (or action) that left the graph is
destroyed by the watch thread."""

TAKE_BATCH = 64
"""Messages one subscription callback takes at most (see ``Session._create_subscription``)."""

_READY_POLL = 0.002
"""Seconds between two looks at whether a new client has matched its server."""

_INTERNAL_TOPICS = ("/parameter_events",)
"""Topics every rclpy node publishes; listed only when another endpoint uses them."""


def _hidden(name: str) -> bool:
    """True for names ROS 2 tools hide (a token starting with ``_``, e.g. ``/x/_action/...``)."""
    return any(token.startswith("_") for token in name.split("/"))


def _full_name(name: str, namespace: str) -> str:
    return f"{namespace.rstrip('/')}/{name}"


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
        self._client_use: dict[tuple[str, Any], tuple[int, float]] = {}  # users, last use
        self._pruned = time.monotonic()
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
        self.actions = Actions(self)
        self.params = Parameters(self)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name="pyros-rclpy", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="pyros-ros2-watch", daemon=True)
        self._spinner.start()
        self._watcher.start()
        self._settle()

    def _settle(self) -> None:
        """Wait until discovery stops finding new nodes, topics and services.

        A new DDS participant learns the graph within about 0.1 s to a few seconds (busy
        machines); without this wait a first ``topics()`` or ``call()`` right after start
        (``pyros topics --backend ros2``, a web worker's first request) would find nothing.
        Returns once something beyond this node was found and nothing new came for
        :data:`DISCOVERY_SETTLE` seconds, or after :data:`DISCOVERY_WAIT` seconds in all (an
        empty domain waits that long).
        """
        node = self.node

        def sizes() -> tuple[int, int, int]:
            with self._graph_lock:
                return (
                    len(node.get_node_names_and_namespaces()),
                    len(node.get_topic_names_and_types()),
                    len(node.get_service_names_and_types()),
                )

        alone = sizes()  # what this node alone shows
        deadline = time.monotonic() + DISCOVERY_WAIT
        seen, stable_since = alone, time.monotonic()
        while time.monotonic() < deadline:
            now = sizes()
            if now != seen:
                seen, stable_since = now, time.monotonic()
            elif seen != alone and time.monotonic() - stable_since >= DISCOVERY_SETTLE:
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
        self._wake.set()
        self.actions.end_all("the pyros node stopped")
        current = threading.current_thread()
        if self._watcher is not current:
            self._watcher.join(2.0)
        self.executor.shutdown(timeout_sec=2.0)
        if self._spinner is not current:
            self._spinner.join(2.0)
        with self._lock:
            self.actions.destroy()
            self.node.destroy_node()
        self.context.try_shutdown()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` began."""
        return self._stopped

    @property
    def lock(self) -> threading.RLock:
        """The lock that guards creating and destroying entities."""
        return self._lock

    @property
    def graph_lock(self) -> threading.Lock:
        """The lock that serialises graph queries through the node."""
        return self._graph_lock

    def require(self) -> Node:
        if self._stopped:
            raise PyrosError("the ros2 backend is stopped")
        return self.node

    # --- graph -------------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Every visible topic in the graph with its first type; see ``Backend.topics``."""
        node = self.require()
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
        node = self.require()
        with self._graph_lock:
            pairs = node.get_service_names_and_types()
            count = getattr(node, "count_services", None)
            return {
                name: types[0]
                for name, types in pairs
                if types and not _hidden(name) and (count is None or count(name) > 0)
            }

    def action_names(self) -> dict[str, str]:
        """Every action in the graph with its type; see ``Backend.actions``."""
        node = self.require()
        with self._graph_lock:
            pairs = get_action_names_and_types(node)
        return {name: types[0] for name, types in pairs if types}

    def _node_pairs(self) -> list[tuple[str, str]]:
        node = self.require()
        with self._graph_lock:
            pairs = node.get_node_names_and_namespaces()
        return [(name, namespace) for name, namespace in pairs if not name.startswith("_")]

    def nodes(self) -> list[str]:
        """Every visible node's full name, sorted (a name twice if two nodes share it)."""
        return sorted(_full_name(name, namespace) for name, namespace in self._node_pairs())

    def find_node(self, full_name: str) -> tuple[str, str] | None:
        for name, namespace in self._node_pairs():
            if _full_name(name, namespace) == full_name:
                return name, namespace
        return None

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Type, publishers, subscribers and their QoS; see ``Backend.topic_info``."""
        node = self.require()
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
        found = self.find_node(full_name)
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
            action_servers = get_action_server_names_and_types_by_node(node, name, namespace)
            action_clients = get_action_client_names_and_types_by_node(node, name, namespace)
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
        type_name = self.action_names().get(action)
        if type_name is None:
            raise NotExposedError(f"action {action!r} has no server in the graph")
        servers, clients = [], []
        for name, namespace in self._node_pairs():
            with self._graph_lock:
                served = get_action_server_names_and_types_by_node(self.node, name, namespace)
                used = get_action_client_names_and_types_by_node(self.node, name, namespace)
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
        self.require()
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
            node = self.require()
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
        self.require()
        cls = conversion.message_class(type_name)
        self._check_graph_type(topic, cls)
        entry = _Subscription(topic, cls, callback, qos_)
        with self._lock:
            self.require()
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

    @contextlib.contextmanager
    def _client(self, service: str, srv_cls: Any, create: bool = True) -> Iterator[Any]:
        """Lend the service client of ``(service, srv_cls)``, made on first use; None when
        there is none and ``create`` is False. A lent client is never pruned."""
        key = (service, srv_cls)
        with self._lock:
            client = self._clients.get(key)
            if client is None and create:
                client = self.require().create_client(srv_cls, service)
                self._clients[key] = client
            if client is not None:
                self._client_use[key] = (self._client_use.get(key, (0, 0.0))[0] + 1, 0.0)
        try:
            yield client
        finally:
            if client is not None:
                with self._lock:
                    self._client_use[key] = (self._client_use[key][0] - 1, time.monotonic())

    def _prune_clients(self) -> None:
        """Destroy the idle clients of services that left the graph (each is two DDS
        endpoints: a long-running node must not keep one per node it ever asked)."""
        now = time.monotonic()
        with self._lock:
            for key, client in list(self._clients.items()):
                users, last = self._client_use.get(key, (0, 0.0))
                if users or now - last < CLIENT_IDLE or client.service_is_ready():
                    continue
                self.node.destroy_client(client)
                del self._clients[key]
                self._client_use.pop(key, None)

    def wait_ready(self, ready: Callable[[], bool], deadline: float) -> bool:
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
        with self._client(service, srv_cls, create=False) as client:
            if client is not None and client.service_is_ready():
                # Matched with a server of this type: no graph lookup needed.
                return self._call_with(client, service, msg, deadline, timeout)
        existing = self.services().get(service)
        if existing is None:
            raise NotExposedError(f"service {service} does not exist in the ROS graph")
        if existing != conversion.graph_name(srv_cls):
            raise MessageError(
                f"service {service} has type {existing}, not {conversion.graph_name(srv_cls)}"
            )
        with self._client(service, srv_cls) as client:
            if not self.wait_ready(client.service_is_ready, deadline):
                raise TimeoutError(f"service {service} did not become reachable in {timeout:g} s")
            return self._call_with(client, service, msg, deadline, timeout)

    def _call_with(
        self, client: Any, service: str, msg: Any, deadline: float, timeout: float
    ) -> dict[str, Any]:
        future = client.call_async(msg)
        outcome = wait_future(future, deadline, client.service_is_ready)
        if outcome != "done":
            client.remove_pending_request(future)
            if outcome == "timeout":
                raise TimeoutError(f"service {service} did not answer within {timeout:g} s")
            raise ServiceError(f"the server of {service} went away while answering")
        exception = future.exception()
        if exception is not None:
            raise ServiceError(f"service {service} failed: {exception}") from exception
        return conversion.to_dict(future.result())

    def call_internal(
        self, service: str, srv_cls: Any, request: Any, deadline: float
    ) -> Any | None:
        """Call a service of another node's; None if it is unreachable or silent in time."""
        with self._client(service, srv_cls) as client:
            if not self.wait_ready(client.service_is_ready, deadline):
                return None
            future = client.call_async(request)
            if wait_future(future, deadline, client.service_is_ready) != "done":
                client.remove_pending_request(future)
                return None
            return future.result() if future.exception() is None else None

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
                self.actions.check_servers()
                if time.monotonic() - self._pruned >= CLIENT_IDLE:
                    self._pruned = time.monotonic()
                    self._prune_clients()
                    self.actions.prune_clients(CLIENT_IDLE)
            except Exception:
                if self._stopped:
                    return
                LOG.exception("watching subscriptions and goals failed")
