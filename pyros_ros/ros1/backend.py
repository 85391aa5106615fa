"""The ``ros1`` backend: one rospy node in the pyros node process, talking to a ROS 1 master.

Importing this module imports no ROS library; :meth:`Ros1Backend.start` puts ROS 1 on
``sys.path`` (:func:`pyros_ros.environment.setup_ros1`) and imports rospy.

What goes through which layer:

- publishers and subscribers are rospy's (``rospy.Publisher``/``rospy.Subscriber``, TCPROS,
  ``tcp_nodelay``);
- service calls go through :mod:`pyros_ros.ros1.service_client` (TCPROS with deadlines and
  pooled persistent connections) instead of ``rospy.ServiceProxy``, which cannot time out;
- graph queries and parameters go straight to the master's XML-RPC API
  (:mod:`pyros_ros.ros1.master`), with timeouts and one connection per thread; what the
  replies mean (live topics, actionlib actions, nodes) is :mod:`pyros_ros.ros1.graph`;
- actions go through actionlib's client (:mod:`pyros_ros.ros1.actions`, Debian's
  ``python3-actionlib``), with a watchdog for servers that go away.
"""

from __future__ import annotations

import builtins
import collections
import json
import logging
import os
import re
import select
import tempfile
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from pyros.backends.base import (
    Backend,
    BackendGoal,
    DoneCallback,
    FeedbackCallback,
    MessageCallback,
    QoS,
)
from pyros.exceptions import (
    MessageError,
    NotExposedError,
    ParamNotSetError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)
from pyros.message_types import check_param_value
from pyros_ros.environment import setup_ros1
from pyros_ros.ros1.graph import (
    ActionEntry,
    SystemState,
    find_actions,
    live_topics,
    node_names,
    system_state,
)

if TYPE_CHECKING:
    from pyros_ros.ros1.actions import GoalSender
    from pyros_ros.ros1.master import MasterClient
    from pyros_ros.ros1.service_client import ServiceClient

__all__ = [
    "Ros1Backend",
    "DEFAULT_MASTER_URI",
    "MASTER_PROBE_TIMEOUT",
    "SUBSCRIBER_WAIT",
    "SERVICE_PROBE_TIMEOUT",
    "SERVICE_PROBE_RETRY",
]

DEFAULT_MASTER_URI = "http://localhost:11311/"
"""rospy's own default when neither the option nor ``ROS_MASTER_URI`` is given."""

MASTER_PROBE_TIMEOUT = 1.0
"""Seconds :meth:`Ros1Backend.start` waits for the master to answer ``getPid``."""

SUBSCRIBER_WAIT = 1.0
"""Seconds a new publisher waits for the subscribers the master already lists to connect, and
a new subscriber for the publishers (a publisher that died without unregistering, which the
master still lists, costs a subscription this long)."""

SERVICE_PROBE_TIMEOUT = 0.5
"""Seconds to ask a new service server for its type during discovery."""

SERVICE_PROBE_RETRY = 5.0
"""Seconds before discovery asks again a server that did not answer a type probe."""

_PUBLISHER_QUEUE = 100
"""Messages a topic's sender thread keeps for a slow subscriber before dropping the oldest."""

INLINE_PUBLISH_BYTES = 4096
"""Largest message (estimated) written straight to the subscribers' sockets by the caller."""

_LOG = logging.getLogger("pyros.ros1")

_ROSPY_LOGGERS = ("rospy", "rosout", "xmlrpc", "rosgraph")
"""Loggers of rospy and rosgraph, set to WARNING: their INFO lines are per-connection chatter."""

_ROSPY_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {name: {"level": "WARNING"} for name in _ROSPY_LOGGERS},
}
"""Logging config given to rospy (``ROS_PYTHON_LOG_CONFIG_FILE``) unless the user has one.

rospy's default config replaces the root logger's handlers with a log file under
``~/.ros/log``, which would silence the node process's own logging. This one leaves the root
logger alone and lets rospy's warnings propagate to it.
"""


class _Publisher:
    """A rospy publisher, its message class, and whether its first subscribers are in.

    The rospy publisher is synchronous (``queue_size=None``): a small message goes from the
    caller's thread straight into the subscribers' sockets when they all have room, with no
    thread hand-off (rospy's queued publisher costs one, plus a ``time.sleep(0)``). Anything
    else (a big message, a subscriber that does not read, messages already waiting) goes to
    this topic's own sender thread, in order, so that a stuck subscriber blocks only its topic,
    never the node. The sender keeps at most :data:`_PUBLISHER_QUEUE` messages and drops the
    oldest, as rospy's queue does.
    """

    def __init__(self, publisher: Any, cls: Any) -> None:
        self.publisher = publisher
        self.cls = cls
        self.ready = threading.Event()
        self.dropped = 0
        self._lock = threading.Lock()
        self._waiting: collections.deque[Any] = collections.deque()
        self._sending = False
        self._wake = threading.Condition(self._lock)
        self._sender: threading.Thread | None = None
        self._closed = False

    def publish(self, msg: Any, size: int) -> None:
        """Write ``msg`` now if that cannot block, else hand it to the sender thread.

        Args:
            msg: the rospy message.
            size: its estimated serialized size in bytes.
        """
        with self._lock:
            inline = not self._waiting and not self._sending and self._has_room(size)
            if not inline:
                if len(self._waiting) >= _PUBLISHER_QUEUE:
                    self._waiting.popleft()
                    self.dropped += 1
                self._waiting.append(msg)
                self._start_sender()
                self._wake.notify()
                return
        self.publisher.publish(msg)

    def _has_room(self, size: int) -> bool:
        if size > INLINE_PUBLISH_BYTES:
            return False
        sockets = []
        for connection in list(self.publisher.impl.connections):
            sock = getattr(connection, "socket", None)
            if sock is None:
                return False  # not a plain TCPROS connection: do not guess
            sockets.append(sock)
        if not sockets:
            return True
        try:
            _, writable, _ = select.select([], sockets, [], 0)
        except (OSError, ValueError):  # a connection closing meanwhile
            return False
        # Writable means a third of the send buffer is free (Linux), over 5 KiB even for
        # the smallest TCP buffer: a message this small is written at once.
        return len(writable) == len(sockets)

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send_waiting,
                name=f"pyros-ros1-publish-{self.publisher.name}",
                daemon=True,
            )
            self._sender.start()

    def _send_waiting(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                msg = self._waiting.popleft()
                self._sending = True
            try:
                self.publisher.publish(msg)
            except Exception:  # the publisher was unregistered, or serialisation failed
                logging.getLogger("pyros.ros1").exception(
                    "publish on %s failed", self.publisher.name
                )
            finally:
                with self._lock:
                    self._sending = False

    def close(self) -> None:
        """Stop the sender thread (waiting messages are dropped) and unregister."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self.publisher.unregister()


def _synchronous_publisher(rospy: Any, topic: str, cls: Any, latch: bool) -> Any:
    """A rospy publisher without rospy's queue (``_Publisher`` queues where it must)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # rospy's nudge towards queue_size
        return rospy.Publisher(topic, cls, queue_size=None, tcp_nodelay=True, latch=latch)


def _estimated_size(value: Any) -> int:
    """A cheap upper-bound guess of a message's serialized size in bytes (ROS 1 wire format:
    4-byte lengths before strings and arrays, 8 bytes at most per number)."""
    if isinstance(value, (bytes, bytearray, str)):
        return 4 + len(value)
    if isinstance(value, dict):
        return sum(_estimated_size(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        if not value:
            return 4
        return 4 + len(value) * _estimated_size(value[0]) * 2  # elements may differ
    return 8


_CONNECTION_INFO = re.compile(r"\w+ connection on port \d+ to \[(.*):(\d+) on socket -?\d+\]")
"""A connection in a node's ``getBusInfo``, as rospy and roscpp write it and ``rosnode``'s
``CONNECTION_PATTERN`` reads it: ``TCPROS connection on port 41374 to [127.0.0.1:40623 on
socket 6]`` (the peer's address and port)."""


def _local_port(connection: Any) -> int:
    """The local TCP port of a rospy connection, 0 if its socket is gone."""
    try:
        return int(connection.socket.getsockname()[1])
    except (AttributeError, OSError, IndexError, TypeError):
        return 0


def _connections(publisher: Any) -> list[Any]:
    """A rospy publisher's current connections (held, so that new ones can be told apart)."""
    return list(publisher.impl.connections)


class Ros1Backend(Backend):
    """A ROS 1 graph through rospy and the master's XML-RPC API.

    Args:
        node_name: base name of the node, ``"pyros_abc123"``; the node registers as
            ``/pyros_abc123`` (under ``$ROS_NAMESPACE`` if that is set).
        master_uri: the master's XML-RPC URI, ``"http://127.0.0.1:11311"``; default: the
            ``ROS_MASTER_URI`` environment variable, else ``http://localhost:11311/``.
        lazy: join the graph (import rospy, ``rospy.init_node``) only when a publish, a
            subscription or a service call first needs it. Graph and parameter queries use
            the master's XML-RPC API directly, as ``rostopic list`` does, so a node that only
            answers them starts and stops about 0.3 s sooner and never appears in the graph.
            The ``pyros`` command sets it for its one-shot queries.

    Attributes:
        master_uri: the master in use once :meth:`start` returned, else None.

    Raises:
        TypeError: an unknown option was given.
    """

    name = "ros1"

    def __init__(
        self, node_name: str, *, master_uri: str | None = None, lazy: bool = False
    ) -> None:
        super().__init__(node_name)
        if master_uri is not None and not isinstance(master_uri, str):
            raise TypeError(f"master_uri must be a str, got {type(master_uri).__name__}")
        if not isinstance(lazy, bool):
            raise TypeError(f"lazy must be a bool, got {type(lazy).__name__}")
        self._lazy = lazy
        self._master_uri_option = master_uri
        self.master_uri: str | None = None
        self._caller_id = ""
        self._master: MasterClient | None = None
        self._services: ServiceClient | None = None
        self._goals: GoalSender | None = None
        self._goals_missing = ""
        self._publishers: dict[str, _Publisher] = {}
        self._subscribers: dict[str, Any] = {}
        self._service_types: dict[tuple[str, tuple[str, ...]], str] = {}
        self._service_retry: dict[tuple[str, tuple[str, ...]], float] = {}
        self._lock = threading.RLock()  # publishers, subscribers, start/stop
        self._discovery_lock = threading.Lock()  # the service type caches
        self._rospy: Any = None
        self._conversion: Any = None
        self._started = False
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    def _resolve_master_uri(self) -> tuple[str, str]:
        if self._master_uri_option:
            return self._master_uri_option, "master_uri option"
        env_uri = os.environ.get("ROS_MASTER_URI")
        if env_uri:
            return env_uri, "ROS_MASTER_URI"
        return DEFAULT_MASTER_URI, "default"

    def start(self) -> None:
        """Find ROS 1, check the master answers, and register the node with it.

        Sets ``ROS_MASTER_URI`` in this process's environment to the master used (rospy reads
        it from there). Call once per process (rospy cannot start a second node). Any thread
        will do: rospy needs the main thread only for its signal handlers, which pyros leaves
        to the node process (``disable_signals=True``).

        The node's own address comes from ``ROS_IP``/``ROS_HOSTNAME`` as for any rospy node;
        for a loopback-only graph set ``ROS_IP=127.0.0.1``.

        Raises:
            SpawnError: ROS 1 is not installed; the node name is not a legal ROS name; no
                master answers at the URI within :data:`MASTER_PROBE_TIMEOUT` (the message says
                where the URI came from); a live node with the same name is already
                registered; or rospy refused to start.
        """
        if self._started:
            raise SpawnError("Ros1Backend.start() was already called; rospy starts once")
        setup_ros1()
        import rosgraph.names

        if not rosgraph.names.is_legal_base_name(self.node_name):
            raise SpawnError(
                f"{self.node_name!r} is not a legal ROS node name (letters, digits and _, "
                "starting with a letter)"
            )
        from pyros_ros.ros1.master import MasterClient, MasterError, MasterUnreachableError

        uri, source = self._resolve_master_uri()
        if not uri.startswith(("http://", "https://")):
            raise SpawnError(f"ROS master URI {uri!r} (from {source}) is not an http:// URI")
        probe = MasterClient(uri, f"/{self.node_name}", timeout=MASTER_PROBE_TIMEOUT)
        try:
            probe.call("getPid")
        except MasterUnreachableError as exc:
            raise SpawnError(
                f"no ROS master at {uri} (from {source}): {exc.__cause__ or exc}. "
                "Start one (roscore, or rosmaster --core -p PORT) or pass master_uri"
            ) from exc
        except MasterError as exc:
            raise SpawnError(f"{uri} (from {source}) is not a ROS master: {exc}") from exc
        os.environ["ROS_MASTER_URI"] = uri
        self._refuse_live_namesake(probe)
        if self._lazy:
            self._caller_id = _full_name(self.node_name)
            self._master = MasterClient(uri, self._caller_id)
        else:
            self._init_rospy()
        self._started = True
        self.master_uri = uri

    def _require_node(self) -> MasterClient:
        """Like :meth:`_require_started`, and join the graph first if ``lazy`` deferred it."""
        master = self._require_started()
        if self._rospy is None:
            with self._lock:
                if self._rospy is None:
                    self._init_rospy()
            assert self._master is not None
            master = self._master
        return master

    def _refuse_live_namesake(self, probe: MasterClient) -> None:
        """Raise SpawnError if a live node already has our name (the master would kill it)."""
        from pyros_ros.ros1.master import MasterClient, MasterError, MasterUnreachableError

        full_name = _full_name(self.node_name)
        try:
            node_uri = probe.call("lookupNode", full_name)
        except MasterError:
            return  # no such node: the name is free
        except MasterUnreachableError as exc:
            raise SpawnError(f"ROS master at {probe.uri} stopped answering: {exc}") from exc
        try:
            MasterClient(node_uri, f"/{self.node_name}", timeout=0.5).call("getPid")
        except (MasterUnreachableError, MasterError):
            return  # a stale registration of a dead node: registering replaces it
        raise SpawnError(
            f"a live node named {full_name} is already registered with the ROS master at "
            f"{probe.uri} ({node_uri}); pick another name"
        )

    def _init_rospy(self) -> None:
        for name in _ROSPY_LOGGERS:  # before the import: rospy logs at import time too
            logging.getLogger(name).setLevel(logging.WARNING)
        import rospy

        from pyros_ros.ros1.master import MasterClient
        from pyros_ros.ros1.service_client import ServiceClient

        with tempfile.TemporaryDirectory(prefix="pyros-rospy-") as tmp:
            saved = os.environ.get("ROS_PYTHON_LOG_CONFIG_FILE")
            if saved is None:
                config = os.path.join(tmp, "python_logging.yaml")
                with open(config, "w", encoding="utf-8") as f:
                    json.dump(_ROSPY_LOGGING, f)  # JSON is YAML; rospy reads .yaml with yaml
                os.environ["ROS_PYTHON_LOG_CONFIG_FILE"] = config
            try:
                # argv=[]: the node process's own arguments are not ROS remappings.
                rospy.init_node(self.node_name, argv=[], anonymous=False, disable_signals=True)
            except (rospy.ROSException, ValueError, OSError) as exc:
                raise SpawnError(f"rospy could not start node {self.node_name}: {exc}") from exc
            finally:
                if saved is None:
                    del os.environ["ROS_PYTHON_LOG_CONFIG_FILE"]
        from pyros_ros.ros1 import conversion

        self._rospy = rospy
        self._conversion = conversion
        self._caller_id = rospy.get_name()
        self._master = MasterClient(os.environ["ROS_MASTER_URI"], self._caller_id)
        self._services = ServiceClient(self._caller_id, self._lookup_service)
        try:
            from pyros_ros.ros1.actions import GoalSender
        except ImportError as exc:
            # Topics, services and parameters work without actionlib; goals say what to install.
            self._goals_missing = (
                f"ROS 1 actions need actionlib ({exc}): apt-get install python3-actionlib "
                "python3-actionlib-msgs (ROS apt repository: ros-$ROS_DISTRO-actionlib)"
            )
        else:
            self._goals = GoalSender(conversion.to_dict)

    def stop(self) -> None:
        """Unregister everything and shut rospy down; verify the master holds nothing of ours.

        rospy's shutdown unregisters every publisher (``/rosout`` included), subscriber and
        service (the node's ``~get_loggers``/``~set_logger_level`` included) in one multicall.
        This then reads ``getSystemState`` and unregisters whatever still names this node.
        A master that no longer answers holds no registrations to remove. Idempotent.

        Raises:
            PyrosError: the master still lists this node after the explicit unregistering.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if not self._started or self._rospy is None:
                return  # never started, or lazy and never joined: nothing registered
            rospy = self._rospy
            for subscriber in self._subscribers.values():
                subscriber.unregister()
            for entry in self._publishers.values():
                entry.close()
            self._subscribers.clear()
            self._publishers.clear()
            if self._goals is not None:
                self._goals.close()
            assert self._services is not None
            self._services.close()
            node_uri = rospy.get_node_uri()
            self._wake_registration_thread_at_shutdown()
            rospy.signal_shutdown("pyros node stopping")
            self._remove_leftovers(node_uri)

    def _wake_registration_thread_at_shutdown(self) -> None:
        """Make rospy's shutdown 0.5 s faster.

        rospy's registration thread waits on a condition in 0.5 s steps; its shutdown
        notifies that condition *before* raising the shutdown flag, then joins the thread,
        which therefore sleeps one more step. A shutdown hook (run after the flag is raised)
        notifying it again lets the join return at once. Only rospy's own objects are used;
        if a rospy version lacks them, shutdown is just slower.
        """
        from rospy.impl.registration import RegManager, get_registration_listeners

        managers = [
            listener
            for listener in getattr(get_registration_listeners(), "listeners", [])
            if isinstance(listener, RegManager) and hasattr(listener, "cond")
        ]

        def wake(reason: str) -> None:
            for manager in managers:
                with manager.cond:
                    manager.cond.notify_all()

        self._rospy.core.add_shutdown_hook(wake)

    def _remove_leftovers(self, node_uri: str | None) -> None:
        from pyros_ros.ros1.master import MasterError, MasterUnreachableError

        master = self._master
        assert master is not None
        try:
            leftovers = self._registrations(master.call("getSystemState"))
            if not leftovers:
                return
            for kind, name in leftovers:
                if kind == "publisher":
                    master.call("unregisterPublisher", name, node_uri)
                elif kind == "subscriber":
                    master.call("unregisterSubscriber", name, node_uri)
                else:
                    master.call("unregisterService", name, master.call("lookupService", name))
            still = self._registrations(master.call("getSystemState"))
        except MasterUnreachableError:
            return  # the master is gone, and its registrations with it
        except MasterError as exc:
            raise PyrosError(f"could not unregister {self._caller_id}: {exc}") from exc
        if still:
            raise PyrosError(
                f"the ROS master still lists {self._caller_id} after stop: {sorted(still)}"
            )

    def _registrations(self, state: list[Any]) -> list[tuple[str, str]]:
        """Every ``(kind, name)`` in a ``getSystemState`` reply that lists this node."""
        found: list[tuple[str, str]] = []
        for kind, entries in zip(("publisher", "subscriber", "service"), state, strict=True):
            found.extend((kind, name) for name, nodes in entries if self._caller_id in nodes)
        return found

    def _require_started(self) -> MasterClient:
        if not self._started or self._stopped:
            raise PyrosError("the ros1 backend is not running (start() not called, or stopped)")
        assert self._master is not None
        return self._master

    def _master_call(self, method: str, *args: Any) -> Any:
        from pyros_ros.ros1.master import MasterUnreachableError

        master = self._require_started()
        try:
            return master.call(method, *args)
        except MasterUnreachableError as exc:
            raise PyrosError(str(exc)) from exc

    # --- graph -------------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Return every topic with at least one publisher or subscriber, with its type.

        One ``getSystemState`` and one ``getTopicTypes`` call. Topics that only have
        subscribers are included (the master records their type too); topics whose last
        publisher and subscriber unregistered are not, though the master remembers their type.
        """
        return live_topics(self._state(), self._master_call("getTopicTypes"))

    def _state(self) -> SystemState:
        return system_state(self._master_call("getSystemState"))

    def services(self) -> dict[str, str]:
        """Return every service the master knows, with its type.

        The master does not store service types, so each new ``(service, providers)`` pair is
        looked up (one multicall for all new ones) and its server probed once for its type
        (TCPROS ``probe`` header, as ``rosservice type``); known pairs cost nothing beyond one
        ``getSystemState``. A server that does not answer the probe is left out and asked
        again after :data:`SERVICE_PROBE_RETRY` seconds (stale registrations of killed nodes
        are common in ROS 1).
        """
        with self._discovery_lock:
            return self._discover_services()

    def _discover_services(self) -> dict[str, str]:
        from pyros_ros.ros1.master import MasterError
        from pyros_ros.ros1.service_client import probe_service_type

        state = self._master_call("getSystemState")
        found: dict[str, str] = {}
        live: set[tuple[str, tuple[str, ...]]] = set()
        new: list[tuple[str, tuple[str, ...]]] = []
        now = time.monotonic()
        for name, providers in state[2]:
            key = (name, tuple(providers))
            live.add(key)
            known = self._service_types.get(key)
            if known is not None:
                found[name] = known
            elif self._service_retry.get(key, 0.0) <= now:
                new.append(key)
        if new:
            assert self._master is not None
            uris = self._master.multicall("lookupService", [(name,) for name, _ in new])
            for key, uri in zip(new, uris, strict=True):
                if isinstance(uri, MasterError):
                    continue  # unregistered since getSystemState: gone, not an error
                try:
                    type_name = probe_service_type(
                        key[0], uri, self._caller_id, SERVICE_PROBE_TIMEOUT
                    )
                except ServiceError:
                    # A dead or confused server: not listed until a later probe succeeds.
                    self._service_retry[key] = now + SERVICE_PROBE_RETRY
                    continue
                self._service_types[key] = found[key[0]] = type_name
        for cache in (self._service_types, self._service_retry):
            for key in [key for key in cache if key not in live]:
                del cache[key]
        return found

    def params(self) -> list[str]:
        """Return the names of every parameter set now (one ``getParamNames`` call)."""
        return list(self._master_call("getParamNames"))

    # --- topics ------------------------------------------------------------------------------

    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message, creating the rospy publisher on first use.

        ``qos`` with ``durability: transient_local`` makes the new publisher latched (ROS 1's
        equivalent); the rest of a QoS profile means nothing to ROS 1 and is ignored.

        A new publisher waits up to :data:`SUBSCRIBER_WAIT` seconds for the subscribers the
        master already lists for the topic to connect, so that a one-shot publish (``pyros
        pub``) reaches them; other threads publishing on the same new topic wait for that too.
        As with any rospy publisher, ``header.seq`` is overwritten with the publisher's count.

        Raises:
            MessageError: unknown type; the dict does not fit it (``field`` names the field);
                or the topic already has another type here or in the graph.
            PyrosError: the backend is not running.
        """
        self._require_node()
        conversion = self._conversion
        cls = conversion.message_class(type)
        entry = self._publishers.get(topic)
        if entry is not None and entry.cls is not cls:
            raise MessageError(
                f"topic {topic} is published here as {entry.cls._type}, not {cls._type}"
            )
        msg = conversion.from_dict(cls, message)
        if entry is None:
            latch = qos is not None and qos.get("durability") == "transient_local"
            entry = self._publisher_for(topic, cls, latch)
        if not entry.ready.is_set():
            entry.ready.wait(SUBSCRIBER_WAIT)
        try:
            entry.publish(msg, _estimated_size(message))
        except self._rospy.ROSSerializationException as exc:
            raise MessageError(f"message for {topic} cannot be serialized: {exc}") from exc
        except self._rospy.ROSException as exc:
            raise PyrosError(f"cannot publish on {topic}: {exc}") from exc

    def _check_graph_type(self, topic: str, cls: Any) -> None:
        """Refuse a type that differs from the topic's in the graph (if anyone uses it)."""
        existing = self.topics().get(topic)
        if existing not in (None, "*", cls._type):
            raise MessageError(
                f"topic {topic} has type {existing} in the ROS graph, not {cls._type}"
            )

    def _publisher_for(self, topic: str, cls: Any, latch: bool = False) -> _Publisher:
        """Return the topic's publisher, creating it (and waiting for subscribers) if needed."""
        with self._lock:
            entry = self._publishers.get(topic)
            if entry is not None:
                if entry.cls is not cls:
                    raise MessageError(
                        f"topic {topic} is published here as {entry.cls._type}, not {cls._type}"
                    )
                return entry
            self._require_node()
            self._check_graph_type(topic, cls)
            entry = _Publisher(
                _synchronous_publisher(self._rospy, topic, cls, latch),
                cls,
            )
            self._publishers[topic] = entry
        try:
            subscribers = dict(self._master_call("getSystemState")[1]).get(topic, [])
            deadline = time.monotonic() + SUBSCRIBER_WAIT
            while (
                entry.publisher.get_num_connections() < len(subscribers)
                and time.monotonic() < deadline
            ):
                time.sleep(0.002)
        finally:
            entry.ready.set()
        return entry

    def subscribe(
        self, topic: str, type: str, callback: MessageCallback, qos: QoS | None = None
    ) -> None:
        """Subscribe with rospy; ``callback`` gets each message as a dict on rospy's thread.

        ``qos`` is ignored: a ROS 1 subscriber gets a latched topic's last message anyway.

        Returns once rospy is connected to every publisher the master lists for the topic
        (this node's own publisher included), or after :data:`SUBSCRIBER_WAIT` seconds, so
        that a message published after this returns reaches the callback. rospy connects to
        publishers on threads of its own, after ``rospy.Subscriber()`` has returned.

        Subscribing again to a subscribed topic replaces the subscription.

        Raises:
            MessageError: unknown type, or the topic has another type in the graph.
            PyrosError: the backend is not running.
        """
        self._require_node()
        to_dict = self._conversion.to_dict
        cls = self._conversion.message_class(type)

        def on_message(msg: Any) -> None:
            callback(to_dict(msg))

        with self._lock:
            self._require_node()
            self._check_graph_type(topic, cls)
            self.unsubscribe(topic)
            own = self._publishers.get(topic)
            own_before = [] if own is None else _connections(own.publisher)
            subscriber = self._rospy.Subscriber(topic, cls, on_message, tcp_nodelay=True)
            self._subscribers[topic] = subscriber
        self._await_publishers(topic, subscriber, own, own_before)

    def _await_publishers(
        self, topic: str, subscriber: Any, own: _Publisher | None, own_before: list[Any]
    ) -> None:
        """Wait (at most :data:`SUBSCRIBER_WAIT` s) until ``subscriber`` is connected.

        Connected means: every publishing node the master lists has completed the TCPROS
        handshake with the subscriber (its header, with its ``callerid``, was read), and each
        publisher has added the connection to the ones it publishes to. The publisher side
        adds it only after writing its header, so a message published in between would miss
        it: this node's own publisher is checked directly, another node's through its
        ``getBusInfo`` (Slave API, http://wiki.ros.org/ROS/Slave_API), which lists each
        connection with the subscriber's port.
        """
        deadline = time.monotonic() + SUBSCRIBER_WAIT
        publishers = set(self._state().publishers.get(topic, []))
        confirmed: set[tuple[str, int]] = set()
        while True:
            live = [
                connection
                for connection in subscriber.impl.connections
                if not connection.done
                and connection.socket is not None
                and getattr(connection, "callerid_pub", None) in publishers
            ]
            ready = {connection.callerid_pub for connection in live} >= publishers
            if ready and own is not None:
                ready = any(
                    connection.endpoint_id == self._caller_id
                    for connection in own.publisher.impl.connections
                    if not any(connection is old for old in own_before)
                )
            for connection in live if ready else []:
                if connection.callerid_pub == self._caller_id:
                    continue
                key = (str(connection.endpoint_id), _local_port(connection))
                if key in confirmed:
                    continue
                if self._publisher_lists(key[0], topic, key[1], deadline):
                    confirmed.add(key)
                else:
                    ready = False
            if ready or time.monotonic() >= deadline:
                return
            time.sleep(0.002)

    def _publisher_lists(self, node_uri: str, topic: str, port: int, deadline: float) -> bool:
        """Whether the publisher at ``node_uri`` lists our connection from ``port`` on ``topic``.

        True also when it cannot tell (no ``getBusInfo``, an unknown format, no port): the
        handshake is all there is to go on then.
        """
        from pyros_ros.ros1.master import MasterClient, MasterError, MasterUnreachableError

        if port <= 0:
            return True
        timeout = min(max(deadline - time.monotonic(), 0.01), 0.2)
        try:
            bus = MasterClient(node_uri, self._caller_id, timeout).call("getBusInfo")
        except (MasterError, MasterUnreachableError):
            return True
        mine = [
            entry
            for entry in bus
            if isinstance(entry, list)
            and len(entry) >= 7
            and entry[4] == topic
            and entry[1] == self._caller_id
        ]
        infos = [_CONNECTION_INFO.fullmatch(str(entry[6])) for entry in mine]
        if not all(infos):
            return True
        return any(info is not None and int(info.group(2)) == port for info in infos)

    def unsubscribe(self, topic: str) -> None:
        """Unregister the subscriber of ``topic``, if any. Idempotent."""
        with self._lock:
            subscriber = self._subscribers.pop(topic, None)
            if subscriber is not None:
                subscriber.unregister()

    # --- services ----------------------------------------------------------------------------

    def _lookup_service(self, service: str, timeout: float | None) -> str:
        from pyros_ros.ros1.master import MasterError, MasterUnreachableError

        assert self._master is not None
        try:
            return str(self._master.call("lookupService", service, timeout=timeout))
        except MasterError as exc:
            raise NotExposedError(f"service {service} does not exist in the ROS graph") from exc
        except MasterUnreachableError as exc:
            if isinstance(exc.__cause__, builtins.TimeoutError):
                raise TimeoutError(f"ROS master did not look up {service} in time") from exc
            raise ServiceError(f"cannot look up {service}: {exc}") from exc

    def call(
        self, service: str, type: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service over a pooled persistent TCPROS connection.

        Raises:
            MessageError: unknown type, the request does not fit it, or the server has
                another type.
            NotExposedError: no server provides the service.
            ServiceError: the handler raised, or the server went away while answering.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        self._require_node()
        assert self._services is not None
        conversion = self._conversion
        srv_cls = conversion.service_class(type)
        msg = conversion.from_dict(srv_cls._request_class, request)
        response = self._services.call(service, srv_cls, msg, timeout)
        return conversion.to_dict(response)  # type: ignore[no-any-return]

    # --- parameters --------------------------------------------------------------------------

    def get_param(self, name: str) -> Any:
        """Return a parameter (a namespace gives a dict of everything under it).

        Raises:
            ParamNotSetError: the parameter is not set.
        """
        from pyros_ros.ros1.master import MasterError

        master = self._require_started()
        try:
            return master.call("getParam", name)
        except MasterError as exc:
            raise ParamNotSetError(f"parameter {name} is not set") from exc

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter. ROS 1 stores what XML-RPC carries: bool, 32-bit int, float, str,
        bytes, lists and dicts of those whose keys are ROS name tokens.

        The value is checked by :func:`pyros.message_types.check_param_value`, the same rules
        as the mock backend's.

        Raises:
            MessageError: the value cannot be stored (None, an int beyond 32 bits, a key such
                as ``"1a"``...); ``field`` names where in the value.
        """
        self._require_started()
        self._master_call("setParam", name, check_param_value(value, name))

    def delete_param(self, name: str) -> None:
        """Delete a parameter or a whole namespace (the master's ``deleteParam``).

        Raises:
            ParamNotSetError: nothing is set at ``name``.
        """
        from pyros_ros.ros1.master import MasterError

        master = self._require_started()
        try:
            master.call("deleteParam", name)
        except MasterError as exc:
            raise ParamNotSetError(f"parameter {name} is not set") from exc

    # --- actions -----------------------------------------------------------------------------

    def _actions(self) -> dict[str, ActionEntry]:
        state = self._state()
        return find_actions(state, live_topics(state, self._master_call("getTopicTypes")))

    def actions(self) -> dict[str, str]:
        """Return every actionlib action with a server, ``{"/fibonacci": "actionlib/Test"}``.

        Found from the topics (see :func:`pyros_ros.ros1.graph.find_actions`): one
        ``getSystemState`` and one ``getTopicTypes`` call.
        """
        return {name: entry.type for name, entry in self._actions().items()}

    def send_goal(
        self,
        action: str,
        type: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal through actionlib and wait until the server accepts it.

        See :meth:`pyros.backends.base.Backend.send_goal` and :mod:`pyros_ros.ros1.actions`
        (how states are named, how a server that goes away ends the goal ``aborted``).

        Args:
            action: the action's namespace, ``/fibonacci``.
            type: ``pkg/Name``, ``pkg/action/Name`` or ``pkg/NameAction``; empty takes the
                graph's.

        Raises:
            MessageError: the goal does not fit the type (``field`` names the field), the
                type is unknown, or the server has another type.
            NotExposedError: no server offers the action.
            ActionError: the server rejected the goal (status ``"rejected"``).
            TimeoutError: the server did not connect or answer within ``timeout`` seconds.
            PyrosError: actionlib is not installed, or the backend is not running.
        """
        self._require_node()
        if self._goals is None:
            raise PyrosError(self._goals_missing)
        conversion = self._conversion
        entry = self._actions().get(action)
        if entry is None:
            raise NotExposedError(f"action {action} has no server in the ROS graph")
        if type and conversion.action_type(type) != entry.type:
            raise MessageError(f"action {action} has type {entry.type}, not {type}")
        spec = conversion.action_class(entry.type)
        message = conversion.from_dict(conversion.message_class(entry.type + "Goal"), goal)
        return self._goals.send(action, spec, message, on_feedback, on_done, timeout)

    # --- the graph as rosnode/rostopic/rosservice info show it ------------------------------

    def nodes(self) -> list[str]:
        """Return every node the master lists (``rosnode list``), sorted.

        Nodes that died without unregistering stay listed until something replaces their
        registrations, as in ``rosnode list``.
        """
        return node_names(self._state())

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: ``{"type", "publishers": [node], "subscribers": [node]}``.

        Raises:
            NotExposedError: no node publishes or subscribes to the topic.
        """
        state = self._state()
        type_name = live_topics(state, self._master_call("getTopicTypes")).get(topic)
        if type_name is None:
            raise NotExposedError(f"topic {topic} does not exist in the ROS graph")
        return {
            "type": type_name,
            "publishers": state.publishers.get(topic, []),
            "subscribers": state.subscribers.get(topic, []),
        }

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: ``{"type", "providers": [node]}``.

        Raises:
            NotExposedError: no live server provides the service (see :meth:`services`).
        """
        type_name = self.services().get(service)
        providers = self._state().services.get(service, [])
        if type_name is None or not providers:
            raise NotExposedError(f"service {service} does not exist in the ROS graph")
        return {"type": type_name, "providers": providers}

    def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action: ``{"type", "servers": [node], "clients": [node]}``.

        Servers publish its ``status`` topic; clients publish its ``goal`` topic.

        Raises:
            NotExposedError: no server offers the action.
        """
        entry = self._actions().get(action)
        if entry is None:
            raise NotExposedError(f"action {action} has no server in the ROS graph")
        return {"type": entry.type, "servers": entry.servers, "clients": entry.clients}

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node as ``rosnode info`` does, with types.

        Returns ``{"publishes": {topic: type}, "subscribes": {topic: type}, "services":
        {service: type}, "actions": {action: type}}`` (the actions it serves; their topics
        are in ``publishes`` and ``subscribes`` too).

        Raises:
            NotExposedError: the master knows no node of that name.
        """
        from pyros_ros.ros1.master import MasterError

        try:
            self._master_call("lookupNode", node)
        except MasterError as exc:
            raise NotExposedError(f"node {node} does not exist in the ROS graph") from exc
        state = self._state()
        types = live_topics(state, self._master_call("getTopicTypes"))
        services = self.services()
        return {
            "publishes": _owned(state.publishers, types, node),
            "subscribes": _owned(state.subscribers, types, node),
            "services": _owned(state.services, services, node),
            "actions": {
                name: entry.type
                for name, entry in find_actions(state, types).items()
                if node in entry.servers
            },
        }

    def definition(self, type: str) -> str:
        """Return a message, service or action type's text (see
        :func:`pyros_ros.ros1.conversion.definition`).

        Raises:
            MessageError: no installed type of that name.
        """
        self._require_node()
        return self._conversion.definition(type)  # type: ignore[no-any-return]


def _owned(table: dict[str, list[str]], types: dict[str, str], node: str) -> dict[str, str]:
    """``{name: type}`` of the entries of ``table`` that list ``node`` (and have a type)."""
    return {name: types[name] for name, nodes in table.items() if node in nodes and name in types}


def _full_name(node_name: str) -> str:
    """The node's absolute graph name: ``/<ROS_NAMESPACE>/<node_name>``."""
    namespace = os.environ.get("ROS_NAMESPACE", "/").strip("/")
    return f"/{namespace}/{node_name}" if namespace else f"/{node_name}"
