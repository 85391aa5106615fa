"""The synchronous client: :func:`spawn`, :func:`connect`, :class:`Client`, :class:`Subscription`,
:class:`Goal`.

Sockets and threads (a thin pump around the I/O-free :mod:`pyros._core`):

* each thread that makes requests gets its own DEALER socket (created on first use), so a
  request goes straight from the calling thread to the node and back, with no hand-off, and
  16 threads can wait on 16 requests at once;
* each subscription and each goal has its own SUB socket, read by the thread that waits on it
  (:meth:`Subscription.get`, :meth:`Goal.result`): a message goes from the node's socket to the
  waiting thread with no thread in between. Several threads may wait on one subscription; one
  of them reads the socket at a time and each message goes to exactly one of them;
* subscriptions with a callback (and goals with a feedback callback) are read by one callback
  thread per client, which runs the callbacks in arrival order, so a slow callback never delays
  another client call; its queue is bounded by ``queue_size`` like any other;
* one monitor thread receives the node's heartbeats and events and notices, within 0.1 s, that
  the node process is gone: every pending and later call then fails with
  :class:`~pyros.exceptions.NodeDiedError`. A node that is alive but silent (stopped, starved)
  is only marked stalled: calls wait for their own timeouts and work again when it answers.

A client belongs to the process that made it. After ``os.fork()`` the child must make its own
(``pyros.connect(name)``, or use :class:`pyros.SharedClient`); using the parent's raises
:class:`~pyros.exceptions.ForkError`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar, cast

import zmq

from pyros._core import (
    FINISHED,
    LOGGER,
    MONITOR_POLL,
    ClientBase,
    Deadline,
    GoalCore,
    Op,
    Ops,
    SubscriptionCore,
    check_wait,
)
from pyros._outbox import Outbox
from pyros._process import NodeProcess, find_node, node_exited, start_owned_node
from pyros._protocol import ClientProtocol, Failure
from pyros._runtime import node_directory, remove_node_directory
from pyros._sockets import monitor_socket, read_stream_items, stream_socket
from pyros.exceptions import NodeDiedError, NotExposedError, PyrosError, TimeoutError

__all__ = ["Client", "Subscription", "Goal", "spawn", "connect"]

_MAX_POLL_MS = 2**31 - 1

MessageHandler = Callable[[dict[str, Any]], Any]
T = TypeVar("T")
C = TypeVar("C", bound="_Closing")


def spawn(
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
    actions: Iterable[str] = (),
    name: str | None = None,
    ready_timeout: float = 10.0,
    **backend_options: Any,
) -> Client:
    """Start a node process that this program owns, and return a client connected to it.

    The node is a fresh ``python -m pyros._node`` process (never a fork of this one); it
    registers in the ROS graph as ``/pyros_<name>`` and exits when :meth:`Client.close` is
    called or this process dies.

    Args:
        backend: ``"mock"``, ``"ros1"``, ``"ros2"``, ``"rosbridge"`` or a registered name.
        topics: glob patterns of topics to expose (``"/turtle1/*"``, ``"*"``).
        services: glob patterns of services to expose.
        params: glob patterns of parameters to expose.
        actions: glob patterns of actions to expose.
        name: the node's name (1 to 64 letters, digits, ``_``); other processes can then
            :func:`connect` to it while it runs. None picks a unique one.
        ready_timeout: seconds to wait for the node to be ready.
        **backend_options: passed to the backend (``master_uri=``, ``domain_id=``, ``url=``).

    Returns:
        A connected :class:`Client` that owns the node.

    Raises:
        SpawnError: the node could not start (unknown backend, no ROS master, name in use...).
        TimeoutError: the node was not ready within ``ready_timeout``.
        ValueError: ``name`` is not a valid node name.
    """
    process = start_owned_node(
        backend,
        topics=topics,
        services=services,
        params=params,
        actions=actions,
        name=name,
        ready_timeout=ready_timeout,
        **backend_options,
    )
    try:
        return Client(process.report, process=process)
    except BaseException:
        process.stop()
        raise


def connect(name: str, *, timeout: float = 5.0) -> Client:
    """Attach to a running node by name (started by ``pyros node start`` or ``spawn(name=)``).

    Args:
        name: the node's name, as given when it started.
        timeout: seconds to wait for the node to appear and answer.

    Returns:
        A connected :class:`Client`; closing it leaves the node running.

    Raises:
        NodeDiedError: no node of that name runs (its directory is missing or its process gone).
        TimeoutError: the node did not answer within ``timeout``.
        ValueError: ``name`` is not a valid node name.
    """
    deadline = time.monotonic() + timeout
    client = Client(find_node(name, timeout), process=None)
    try:
        client._run(Ops.hello(client.id, max(0.1, deadline - time.monotonic())))
    except BaseException:
        client.close()
        raise
    return client


class _Closing:
    """``with`` support for what has a ``close()``: leaving the block closes it."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: C) -> C:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client(ClientBase, _Closing):
    """A connection to one node process. Thread-safe; a context manager.

    Make one with :func:`spawn`, :func:`connect` or :func:`pyros.attach` rather than directly.
    ``id``, ``name``, ``node_pid``, ``description``, :attr:`owns_node`, :attr:`stalled` and
    :meth:`on_event` come from :class:`pyros._core.ClientBase`.

    Args:
        description: the node's ready report (``endpoints``, ``name``, ``pid``...).
        process: the node process when this client owns it, else None.
    """

    _process: NodeProcess | None

    def __init__(self, description: dict[str, Any], *, process: NodeProcess | None) -> None:
        super().__init__(description, process)
        self._dead_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._context = zmq.Context()
        self._context.set(zmq.MAX_SOCKETS, 16384)
        self._local = threading.local()
        self._dealers: list[tuple[threading.Thread, zmq.Socket[bytes]]] = []
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[_Stream] = weakref.WeakSet()
        self._callbacks: _CallbackThread | None = None
        self._monitor = _MonitorThread(self)
        self._monitor.start()

    # --- graph ----------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Return the exposed topics that exist now, with their types.

        ``{"/chatter": "std_msgs/String"}`` (ROS 2: ``"std_msgs/msg/String"``, as the graph
        names them).

        Raises:
            NodeDiedError, TimeoutError: the node is gone or did not answer.
        """
        result: dict[str, str] = self._run(Ops.simple("topics"))
        return result

    def services(self) -> dict[str, str]:
        """Return the exposed services that exist now, ``{"/set_flag": "std_srvs/SetBool"}``."""
        result: dict[str, str] = self._run(Ops.simple("services"))
        return result

    def params(self) -> list[str]:
        """Return the names of the exposed parameters that are set now.

        ROS 1 names are absolute (``/gains/p``); ROS 2 parameters belong to nodes and are
        named ``<node>:<param>`` (``/talker:gains.p``).
        """
        result: list[str] = self._run(Ops.simple("params"))
        return result

    def actions(self) -> dict[str, str]:
        """Return the exposed actions that exist now, with their types.

        ``{"/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute"}``.
        """
        result: dict[str, str] = self._run(Ops.simple("actions"))
        return result

    def nodes(self) -> list[str]:
        """Return the names of every node in the graph (not only pyros's), sorted."""
        result: list[str] = self._run(Ops.simple("nodes"))
        return result

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: ``{"type", "publishers": [node], "subscribers": [node]}``.

        Raises:
            NotExposedError: the topic is not exposed or does not exist.
        """
        result: dict[str, Any] = self._run(Ops.describe("topic_info", "topic", topic))
        return result

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: ``{"type", "providers": [node]}``.

        Raises:
            NotExposedError: the service is not exposed or does not exist.
        """
        result: dict[str, Any] = self._run(Ops.describe("service_info", "service", service))
        return result

    def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action: ``{"type", "servers": [node], "clients": [node]}``.

        Raises:
            NotExposedError: the action is not exposed or does not exist.
        """
        result: dict[str, Any] = self._run(Ops.describe("action_info", "action", action))
        return result

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node: ``{"publishes": {topic: type}, "subscribes": ..., "services": ...}``.

        Raises:
            NotExposedError: no such node in the graph.
        """
        result: dict[str, Any] = self._run(Ops.describe("node_info", "node", node))
        return result

    def definition(self, type: str) -> str:
        """Return the definition of a message, service or action type, as ``.msg`` text.

        What ``rosmsg show`` / ``ros2 interface show`` print (ROS message description spec,
        http://wiki.ros.org/msg).

        Raises:
            MessageError: the type is unknown.
        """
        result: str = self._run(Ops.describe("definition", "type", type))
        return result

    # --- topics ---------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        message: dict[str, Any],
        type: str | None = None,
        *,
        qos: dict[str, Any] | None = None,
    ) -> None:
        """Publish one message on ``topic``.

        Args:
            topic: topic name (``"/turtle1/cmd_vel"``).
            message: the message as a dict shaped like the ROS message; missing fields take
                their defaults.
            type: message type ``"pkg/Type"`` (or ``"pkg/msg/Type"``); needed only when the
                topic does not exist yet.
            qos: the publisher's QoS when this publish creates it (``reliability``,
                ``durability``, ``history``, ``depth``; see :data:`pyros.backends.base.QoS`).
                ``{"durability": "transient_local"}`` latches the topic on ROS 1 too.

        Raises:
            NotExposedError: the topic matches none of the node's patterns.
            MessageError: the dict does not fit the type (``.field`` names the field), or the
                type is unknown.
        """
        self._run(Ops.publish(topic, message, type, qos))

    def subscribe(
        self,
        topic: str,
        callback: MessageHandler | None = None,
        *,
        queue_size: int = 100,
        qos: dict[str, Any] | None = None,
    ) -> Subscription:
        """Receive the messages published on ``topic`` from now on.

        A topic that matches the patterns but does not exist yet is subscribed to as soon as
        it appears in the graph; a warning on the ``pyros`` logger names the closest existing
        topics (:attr:`Subscription.similar`), and :attr:`Subscription.type` stays None.

        Args:
            topic: topic name.
            callback: called with each message dict on the client's callback thread, in
                order; without it, read messages with :meth:`Subscription.get`, by iterating,
                or :meth:`Subscription.latest`.
            queue_size: messages kept until read; when full the oldest is dropped and counted
                in :attr:`Subscription.dropped` (ROS queue semantics; 1 keeps only the newest).
            qos: the subscription's QoS (see :meth:`publish`); None adapts to the publishers,
                so a latched/transient-local topic delivers its last message.

        Raises:
            NotExposedError: the topic matches none of the node's patterns.
            ValueError: ``queue_size`` is below 1.
        """
        subscription = self._begin(
            lambda token: Subscription(self, topic, token, callback, queue_size)
        )
        with subscription.opening():
            subscription.confirm(self._run(Ops.subscribe(topic, subscription.token, qos)))
        if callback is not None:
            self._callback_thread().adopt(subscription._stream, subscription._run_callbacks)
        return subscription

    # --- services, parameters -------------------------------------------------------------

    def call(
        self, service: str, request: dict[str, Any] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Call a service and return its response.

        Args:
            service: service name (``"/set_flag"``).
            request: the request dict; None for an empty request.
            timeout: seconds to wait for the response; None waits forever.

        Raises:
            NotExposedError: the service matches no pattern or does not exist.
            MessageError: the request does not fit the service type.
            ServiceError: the service failed.
            TimeoutError: no response within ``timeout``.
            ValueError: ``timeout`` is not a positive number.
        """
        result: dict[str, Any] = self._run(Ops.call(service, request, timeout))
        return result

    def get_param(self, name: str) -> Any:
        """Return a parameter's value.

        Raises:
            KeyError: (:class:`~pyros.exceptions.ParamNotSetError`) the parameter is not set.
            NotExposedError: the name matches none of the node's parameter patterns.
        """
        return self._run(Ops.get_param(name))

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data (bool, int, float, str, bytes, list, dict).

        Raises:
            NotExposedError: the name matches none of the node's parameter patterns.
            MessageError: ``value`` is None or not plain data, or the backend cannot store
                it (ROS 1: lists of mixed types are fine, ints beyond 32 bits are not).
        """
        self._run(Ops.set_param(name, value))

    def delete_param(self, name: str) -> None:
        """Delete a parameter (ROS 1: a whole namespace too).

        Raises:
            KeyError: (:class:`~pyros.exceptions.ParamNotSetError`) nothing is set there.
            NotExposedError: the name matches none of the node's parameter patterns.
        """
        self._run(Ops.delete_param(name))

    # --- actions --------------------------------------------------------------------------

    def start_goal(
        self,
        action: str,
        goal: dict[str, Any] | None = None,
        *,
        feedback: MessageHandler | None = None,
    ) -> Goal:
        """Send a goal to an action server and return once the server accepted it.

        Args:
            action: action name (``"/turtle1/rotate_absolute"``).
            goal: the goal message as a dict; missing fields take their defaults.
            feedback: called with each feedback dict, in order, on the client's callback
                thread; without it, iterate over the :class:`Goal`.

        Returns:
            The running goal: :meth:`Goal.result`, :meth:`Goal.cancel`, :attr:`Goal.status`.

        Raises:
            NotExposedError: the action matches no pattern or has no server.
            MessageError: the goal does not fit the action type (names the field).
            ActionError: the server rejected the goal.
            TimeoutError: the server neither accepted nor rejected it within 10 s.
        """
        handle: Goal = self._begin(lambda token: Goal(self, action, token, feedback))
        with handle.opening():
            handle.confirm(self._run(Ops.send_goal(action, goal, handle.token)))
        if feedback is not None:
            self._callback_thread().adopt(handle._stream, handle._run_callbacks)
        return handle

    def send_goal(
        self,
        action: str,
        goal: dict[str, Any] | None = None,
        *,
        feedback: MessageHandler | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a goal and wait for its result.

        Args:
            action: action name.
            goal: the goal message as a dict.
            feedback: called with each feedback dict, in order (see :meth:`start_goal`).
            timeout: seconds to wait for the result; None waits forever. On timeout the goal
                is cancelled on the server before :class:`~pyros.exceptions.TimeoutError` is
                raised.

        Returns:
            The result message as a dict.

        Raises:
            ActionError: the goal was rejected, aborted or cancelled (``.status`` says which).
            NotExposedError, MessageError: as :meth:`start_goal`.
            TimeoutError: no result within ``timeout`` (the goal was cancelled).
        """
        timeout = check_wait(timeout)
        handle = self.start_goal(action, goal, feedback=feedback)
        with handle:
            try:
                return handle.result(timeout)
            except TimeoutError:
                handle.cancel()
                raise

    # --- the node -------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Return the node's status.

        ``name``, ``pid``, ``backend``, ``options`` (secrets hidden), ``patterns``, client and
        subscription counts, ``uptime`` in seconds, and the backend's ``connection`` state.
        """
        result: dict[str, Any] = self._run(Ops.simple("info"))
        return result

    def close(self, timeout: float = 5.0) -> None:
        """Close the client; an owned node is shut down and waited for. Idempotent.

        Args:
            timeout: seconds to wait for an owned node to exit before it is killed. A node
                that sends no heartbeat (stopped, stuck) is terminated at once.
        """
        core = self._core
        if core.closed:
            return
        if os.getpid() != core.owner_pid:  # a forked child: touch nothing of the parent's
            core.closed = True
            return
        if self._process is not None and core.dead is None and core.stalled is None:
            try:
                self._run(Ops.shutdown(timeout))
            except PyrosError:
                pass  # it is dying anyway; stop() below makes sure
        core.closed = True
        self._mark_dead(PyrosError("the client is closed"), closing=True)
        self._monitor.stop()
        if self._callbacks is not None:
            self._callbacks.stop()
        for stream in list(self._streams):
            stream.release()
        with self._lock:
            for _, socket in self._dealers:
                socket.close(linger=0)
            self._dealers.clear()
        self._context.destroy(linger=0)
        os.close(self._dead_fd)
        if self._process is not None:
            if core.stalled is None:
                self._process.wait(timeout)
            self._process.stop(timeout if core.stalled is None else 0.5)
            remove_node_directory(node_directory(self.name))

    # --- requests -------------------------------------------------------------------------

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            socket = self._context.socket(zmq.DEALER)
            socket.linger = 0
            socket.connect(self._core.endpoints["request"])
            with self._lock:
                # Reclaim the sockets of threads that have ended (a thread pool's churn).
                alive = []
                for thread, other in self._dealers:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        other.close(linger=0)
                self._dealers = alive
                self._dealers.append((threading.current_thread(), socket))
            connection = _Connection(socket, self._dead_fd)
            self._local.connection = connection
        return connection

    def _run(self, op: Op) -> Any:
        """Send one request from this thread and wait for its reply."""
        self._core.check_usable()
        connection = self._connection()
        protocol = connection.protocol
        request_id, frame = protocol.send_request(
            op.op, op.args, now=time.monotonic(), timeout=op.timeout
        )
        connection.socket.send(frame)
        while True:
            deadline = protocol.next_deadline()
            wait_ms = None
            if deadline is not None:
                wait_ms = min(_MAX_POLL_MS, max(0, int((deadline - time.monotonic()) * 1000) + 1))
            ready = dict(connection.poller.poll(wait_ms))
            if connection.socket in ready:
                while True:
                    try:
                        reply = connection.socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    event = protocol.receive_reply(reply)
                    if event is not None and event.id == request_id:
                        if isinstance(event, Failure):
                            raise event.error
                        return event.result
            if self._core.dead is not None:
                protocol.cancel(request_id)
                self._core.check_usable()
            for failure in protocol.expire(time.monotonic()):
                if failure.id == request_id:
                    raise failure.error

    # --- called by the monitor thread -----------------------------------------------------

    def _mark_dead(self, error: PyrosError, *, closing: bool = False) -> None:
        if not self._core.die(error):
            return
        os.eventfd_write(self._dead_fd, 1)  # never read: wakes every waiting thread for good
        for stream in list(self._streams):
            stream.end(None if closing else error)

    def _on_event(self, event: dict[str, Any]) -> None:
        if self._event_handlers:
            self._callback_thread().call_soon(self._run_event_handlers, event)

    def _run_event_handlers(self, event: dict[str, Any]) -> None:
        for handler in list(self._event_handlers):
            try:
                handler(event)
            except Exception:
                LOGGER.exception("pyros: an event handler raised")

    def _callback_thread(self) -> _CallbackThread:
        with self._lock:
            if self._callbacks is None:
                self._callbacks = _CallbackThread(self._dead_fd)
                self._callbacks.start()
            return self._callbacks


class _Connection:
    """One thread's DEALER socket and its protocol state."""

    def __init__(self, socket: zmq.Socket[bytes], dead_fd: int) -> None:
        self.socket = socket
        self.protocol = ClientProtocol()
        self.poller = zmq.Poller()
        self.poller.register(socket, zmq.POLLIN)
        self.poller.register(dead_fd, zmq.POLLIN)


class _Stream:
    """One token's SUB socket, read by whichever thread waits on it (or the callback thread).

    Args:
        client: the client.
        token: the subscription's or goal's token.
        core: the subscription's or goal's core, fed what the socket brings.
    """

    def __init__(self, client: Client, token: bytes, core: SubscriptionCore | GoalCore) -> None:
        self.core = core
        self.state = threading.Condition(threading.Lock())
        self._reading = threading.Lock()
        self._wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        socket: zmq.Socket[bytes] = stream_socket(client._context, client._core, token)
        self.socket: zmq.Socket[bytes] | None = socket
        self._poller = zmq.Poller()
        self._poller.register(socket, zmq.POLLIN)
        self._poller.register(client._dead_fd, zmq.POLLIN)
        self._poller.register(self._wake_fd, zmq.POLLIN)
        self.adopted = False
        client._streams.add(self)
        self._finalizer = weakref.finalize(self, _close_quietly, socket, self._wake_fd)

    def drain(self, limit: int = 100_000) -> list[Any]:
        """Read what the socket holds into the core, without blocking (reader only).

        Returns:
            What the core's ``receive`` returned for each item (a goal's feedback).
        """
        if self.socket is None:
            return []
        items = read_stream_items(self.socket, limit)
        if not items:
            return []
        with self.state:
            brought = self.core.feed(items)
            self.state.notify_all()
        return brought

    def wait(self, ready: Callable[[], T | None], timeout: float | None, what: str) -> T:
        """Return ``ready()`` once it is not None, reading the socket meanwhile.

        Raises:
            TimeoutError: still None after ``timeout`` seconds.
            Whatever ``ready`` raises (the stream ended).
        """
        deadline = Deadline(time.monotonic(), timeout, what)
        while True:
            with self.state:
                value, remaining = deadline.check(ready, time.monotonic())
                if value is not None:
                    return value
                if self.adopted or self.socket is None:  # the callback thread reads it
                    self.state.wait(remaining)
                    continue
            if not self._reading.acquire(timeout=-1 if remaining is None else remaining):
                continue
            try:
                with self.state:
                    if ready() is not None:
                        continue
                if self.socket is None:
                    continue
                wait_ms = (
                    None if remaining is None else min(_MAX_POLL_MS, int(remaining * 1000) + 1)
                )
                if self._poller.poll(wait_ms):
                    self.drain()
            finally:
                self._reading.release()

    def peek(self) -> None:
        """Read whatever is waiting, unless another thread is reading already."""
        if self.adopted or not self._reading.acquire(blocking=False):
            return
        try:
            self.drain()
        finally:
            self._reading.release()

    def end(self, error: PyrosError | None) -> None:
        """End the stream (node died: ``error``; closed: None) and wake its waiters."""
        with self.state:
            self.core.fail(error)
            self.state.notify_all()
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)

    def release(self) -> None:
        """Close the socket (the node then forgets the token). Idempotent."""
        self.end(None)
        if self.adopted:
            return  # the callback thread closes it when it sees the end
        if self._reading.acquire(timeout=1.0):
            try:
                self.close_socket()
            finally:
                self._reading.release()

    def close_socket(self) -> None:
        """Close the socket now (its reader or owner only)."""
        with self.state:
            if self.socket is None:
                return
            self.socket = None
            self._wake_fd = -1
        self._finalizer()


def _close_quietly(socket: zmq.Socket[bytes], wake_fd: int) -> None:
    try:
        socket.close(linger=0)
    finally:
        os.close(wake_fd)


class Subscription(SubscriptionCore, _Closing):
    """The messages of one topic, as they arrive. Iterable; a context manager.

    Made by :meth:`Client.subscribe`. Thread-safe: several threads may call :meth:`get` and
    each message goes to one of them.

    Attributes:
        topic: the absolute topic name.
        type: the message type as the graph names it, or None while the topic does not exist.
        similar: existing topics whose names are close, when the topic did not exist.
        received: messages received in all.
        callback_errors: exceptions raised by the callback (each logged on ``pyros``).
    """

    _stream_class = _Stream
    _stream: _Stream
    _client: Client

    @property
    def dropped(self) -> int:
        """Messages lost to a full queue, in this client and in the node."""
        self._stream.peek()
        return super().dropped

    def get(self, timeout: float | None = None) -> dict[str, Any]:
        """Return the next message, waiting for it.

        Args:
            timeout: seconds to wait; None waits forever.

        Raises:
            TimeoutError: no message within ``timeout``.
            NodeDiedError: the node died.
            PyrosError: the subscription is closed, delivers to a callback, or the node
                could not subscribe (the error says why).
        """
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        return self._stream.wait(self.pop, check_wait(timeout), f"message on {self.topic}")

    def latest(self) -> dict[str, Any] | None:
        """Return the most recent message received, without consuming it; None before any."""
        self._stream.peek()
        with self._stream.state:
            return SubscriptionCore.latest(self)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield messages as they arrive until the subscription is closed.

        Raises:
            NodeDiedError: the node died.
        """
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        while True:
            message = self._stream.wait(self.next_message, None, "message")
            if message is FINISHED:
                return
            yield cast("dict[str, Any]", message)

    def close(self) -> None:
        """Stop receiving; wakes threads blocked in :meth:`get`. Idempotent."""
        if self.closed:
            return
        self._stream.release()
        client = self._client
        core = client._core
        if core.closed or core.dead is not None or os.getpid() != core.owner_pid:
            return
        try:
            client._run(Ops.unsubscribe(self.token))
        except (NodeDiedError, NotExposedError):
            pass  # nothing left to unsubscribe from

    def __repr__(self) -> str:
        return f"<pyros.Subscription {SubscriptionCore.__repr__(self)}>"

    def _run_callbacks(self, feedback: list[Any]) -> None:
        """Run the callback for each queued message (on the callback thread)."""
        while True:
            with self._stream.state:
                if self.closed or not self._queue:
                    return
                message = self.pop()
            try:
                self._callback(message)
            except Exception:
                self.report_callback_error()


class Goal(GoalCore, _Closing):
    """A goal sent to an action server. Iterate over it for feedback; a context manager.

    Made by :meth:`Client.start_goal`. Closing it (or leaving its ``with`` block) before the
    goal ended cancels the goal.

    Attributes:
        action: the absolute action name.
        type: the action type as the graph names it.
        id: the goal id the action server knows it by.
        message: why the goal ended without success, when known.
    """

    _stream_class = _Stream
    _stream: _Stream
    _client: Client

    @property
    def status(self) -> str:
        """``"accepted"``, ``"executing"``, ``"canceling"``, ``"succeeded"``, ``"canceled"``
        or ``"aborted"`` (``action_msgs/GoalStatus`` names), as last heard."""
        self._stream.peek()
        return self._state

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the goal to end and return its result.

        Args:
            timeout: seconds to wait; None waits forever. A timeout leaves the goal running.

        Raises:
            ActionError: the goal was aborted or cancelled (``.status``, ``.result``).
            TimeoutError: the goal did not end within ``timeout``.
            NodeDiedError: the node died.
        """
        result = self._stream.wait(self.outcome, check_wait(timeout), f"result on {self.action}")
        self._stream.release()
        return result

    def cancel(self) -> None:
        """Ask the server to cancel the goal; :meth:`result` then raises ActionError
        (``status == "canceled"``) unless the goal ended first. Idempotent."""
        if self.done:
            return
        self._client._run(Ops.cancel_goal(self.token))
        with self._stream.state:
            self.canceling()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield each feedback message until the goal ends (then read :meth:`result`).

        Raises:
            NodeDiedError: the node died.
        """
        while True:
            feedback = self._stream.wait(self.next_feedback, None, "feedback")
            if feedback is FINISHED:
                return
            yield cast("dict[str, Any]", feedback)

    def close(self) -> None:
        """Stop following the goal, cancelling it if it still runs. Idempotent."""
        if not self.done:
            try:
                self.cancel()
            except PyrosError:
                pass  # the node is gone, and the goal with it
        self._stream.release()

    def __repr__(self) -> str:
        return f"<pyros.Goal {GoalCore.__repr__(self)}>"

    def _run_callbacks(self, feedback: list[Any]) -> None:
        """Run the feedback callback for each feedback (on the callback thread)."""
        for message in feedback:
            try:
                self._callback(message)
            except Exception:
                self.report_callback_error()


class _MonitorThread(threading.Thread):
    """Owns the heartbeat SUB socket: liveness, node events, the node process."""

    def __init__(self, client: Client) -> None:
        super().__init__(name=f"pyros-monitor-{client.name}", daemon=True)
        self._client = weakref.ref(client)
        self._core = client._core
        self._process = client._process
        self._context = client._context
        self._stop_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the thread and wait until its socket is connected."""
        super().start()
        self._ready.wait()

    def stop(self) -> None:
        """End the thread and wait for it (unless called from it)."""
        os.eventfd_write(self._stop_fd, 1)
        if threading.current_thread() is not self:
            self.join(5.0)

    def run(self) -> None:
        core = self._core
        socket: zmq.Socket[bytes] = monitor_socket(self._context, core)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._stop_fd, zmq.POLLIN)
        core.start_monitor(time.monotonic())
        self._ready.set()
        try:
            while True:
                ready = dict(poller.poll(int(MONITOR_POLL * 1000)))
                if self._stop_fd in ready:
                    return
                now = time.monotonic()
                if socket in ready:
                    self._receive(socket, now)
                core.check_stalled(now)
                if core.dead is None:
                    error = node_exited(self._process, core.node_pid)
                    client = self._client()
                    if client is None:
                        return
                    if error is not None:
                        client._mark_dead(error)
        finally:
            socket.close(linger=0)
            os.close(self._stop_fd)

    def _receive(self, socket: zmq.Socket[bytes], now: float) -> None:
        for _ in range(10_000):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = self._core.monitor_heard(frames, now)
            client = self._client()
            if event is not None and client is not None:
                client._on_event(event)


class _CallbackThread(threading.Thread):
    """Reads the streams of callback subscriptions and goals, and runs their callbacks."""

    def __init__(self, dead_fd: int) -> None:
        super().__init__(name="pyros-callbacks", daemon=True)
        self._commands: Outbox[tuple[str, Any, Any]] = Outbox()
        self._dead_fd = dead_fd
        self._streams: dict[zmq.Socket[bytes], tuple[_Stream, Callable[[list[Any]], None]]] = {}

    def adopt(self, stream: _Stream, run: Callable[[list[Any]], None]) -> None:
        """Hand ``stream`` to this thread; ``run(feedback)`` runs its callbacks after each read."""
        stream.adopted = True
        self._commands.put(("adopt", stream, run))

    def call_soon(self, function: Callable[[Any], Any], argument: Any) -> None:
        """Run ``function(argument)`` on this thread."""
        self._commands.put(("call", function, argument))

    def stop(self) -> None:
        """End the thread (closing the streams it owns) and wait for it."""
        self._commands.put(("stop", None, None))
        if threading.current_thread() is not self:
            self.join(5.0)

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._commands.fd, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll(int(MONITOR_POLL * 1000)))
                if self._commands.fd in ready and not self._run_commands(poller):
                    return
                for socket, (stream, run) in list(self._streams.items()):
                    if socket in ready:
                        run(stream.drain())
                    if (
                        stream.core.closed
                        or stream.core.error is not None
                        or (isinstance(stream.core, GoalCore) and stream.core.done)
                    ):
                        poller.unregister(socket)
                        del self._streams[socket]
                        stream.close_socket()
        finally:
            for stream, _ in self._streams.values():
                stream.close_socket()
            self._commands.close()

    def _run_commands(self, poller: zmq.Poller) -> bool:
        for what, first, second in self._commands.drain():
            if what == "stop":
                return False
            if what == "adopt":
                assert first.socket is not None
                self._streams[first.socket] = (first, second)
                poller.register(first.socket, zmq.POLLIN)
                run_now = first.drain()  # what arrived before the hand-over
                second(run_now)
            else:
                try:
                    first(second)
                except Exception:
                    LOGGER.exception("pyros: a callback raised")
        return True
