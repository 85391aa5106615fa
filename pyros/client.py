"""The synchronous client: :func:`spawn`, :func:`connect`, :class:`Client`, :class:`Subscription`.

Sockets and threads:

* each thread that makes requests gets its own DEALER socket (created on first use), so a
  request goes straight from the calling thread to the node and back, with no hand-off, and
  16 threads can wait on 16 requests at once;
* one stream thread owns the SUB socket: it receives heartbeats and topic messages, queues
  messages on their :class:`Subscription`, and declares the node dead after
  :data:`~pyros._protocol.HEARTBEAT_TIMEOUT` seconds of silence, or within 0.1 s when the node
  process is gone, which fails every pending and later call with :class:`NodeDiedError`;
* subscriptions with a callback get their messages on one callback thread per client, so a slow
  callback never delays heartbeats.

A client belongs to the process that made it. After ``os.fork()`` the child must make its own
(``pyros.connect(name)``); using the parent's raises :class:`~pyros.exceptions.ForkError`.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import zmq

from pyros._outbox import Outbox
from pyros._process import NodeProcess, pid_alive
from pyros._protocol import (
    CLIENT_PREFIX,
    HEARTBEAT_PREFIX,
    MESSAGE_PREFIX,
    ClientProtocol,
    Failure,
    Heartbeat,
    Message,
    Reply,
    StreamProtocol,
)
from pyros._runtime import node_directory, read_node_file, remove_node_directory
from pyros.exceptions import (
    ForkError,
    NodeDiedError,
    NotExposedError,
    PyrosError,
    TimeoutError,
)

__all__ = [
    "Client",
    "Subscription",
    "SubscriptionState",
    "spawn",
    "connect",
    "start_owned_node",
    "find_node",
    "node_exited",
    "check_usable",
    "REQUEST_TIMEOUT",
    "CALL_MARGIN",
]

REQUEST_TIMEOUT = 10.0
"""Seconds a request other than ``call`` waits for its reply by default."""

CALL_MARGIN = 1.0
"""Seconds a ``call`` waits beyond its own timeout, so the node's ServiceError/TimeoutError
(which says more) arrives before the client gives up."""

_STREAM_POLL = 0.1
"""Seconds between two liveness checks in the stream thread."""

MessageHandler = Callable[[dict[str, Any]], Any]


def spawn(
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
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
        name: the node's name (letters, digits, ``_``); other processes can then
            :func:`connect` to it while it runs. None picks a unique one.
        ready_timeout: seconds to wait for the node to be ready.
        **backend_options: passed to the backend (``master_uri=``, ``domain_id=``, ``url=``).

    Returns:
        A connected :class:`Client` that owns the node.

    Raises:
        SpawnError: the node could not start (unknown backend, no ROS master, name in use...).
        TimeoutError: the node was not ready within ``ready_timeout``.
    """
    process = start_owned_node(
        backend, topics, services, params, name, ready_timeout, backend_options
    )
    try:
        return Client(process.report, process=process)
    except BaseException:
        process.stop()
        raise


def start_owned_node(
    backend: str,
    topics: Iterable[str],
    services: Iterable[str],
    params: Iterable[str],
    name: str | None,
    ready_timeout: float,
    backend_options: dict[str, Any],
) -> NodeProcess:
    """Start a node owned by this process (see :func:`spawn`, whose arguments these are).

    Blocks until the node is ready; the asyncio client runs it in an executor.
    """
    from pyros._node import NodeConfig, new_name

    config = NodeConfig(
        name=name or new_name(),
        backend=backend,
        options=dict(backend_options),
        topics=_patterns(topics, "topics"),
        services=_patterns(services, "services"),
        params=_patterns(params, "params"),
        owner_pid=os.getpid(),
    )
    return NodeProcess.start(dataclasses.asdict(config), ready_timeout=ready_timeout)


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
    """
    deadline = time.monotonic() + timeout
    client = Client(find_node(name, timeout), process=None)
    try:
        client._request(
            "hello", {"client": client.id}, timeout=max(0.1, deadline - time.monotonic())
        )
    except BaseException:
        client.close()
        raise
    return client


def find_node(name: str, timeout: float) -> dict[str, Any]:
    """Return the description (``node.json``) of running node ``name``, waiting up to
    ``timeout`` seconds for it to appear.

    Raises:
        NodeDiedError: no live node of that name within ``timeout``.
    """
    directory = node_directory(name)
    deadline = time.monotonic() + timeout
    while True:
        description = read_node_file(directory)
        if description is not None and pid_alive(description.get("pid")):
            return description
        if time.monotonic() >= deadline:
            raise NodeDiedError(f"no pyros node named {name!r} is running (looked in {directory})")
        time.sleep(0.05)


class Client:
    """A connection to one node process. Thread-safe; a context manager.

    Make one with :func:`spawn` or :func:`connect` rather than directly.

    Args:
        description: the node's ready report (``endpoints``, ``name``, ``pid``...).
        process: the node process when this client owns it, else None.

    Attributes:
        id: this client's unique id (hex string).
        name: the node's name.
        node_pid: the node's process id.
    """

    def __init__(self, description: dict[str, Any], *, process: NodeProcess | None) -> None:
        endpoints = description["endpoints"]
        self.id = uuid.uuid4().hex
        self.name: str = description["name"]
        self.node_pid: int = description["pid"]
        self.description = description
        self._request_endpoint: str = endpoints["request"]
        self._process = process
        self._pid = os.getpid()
        self._closed = False
        self._dead: PyrosError | None = None
        self._dead_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._context = zmq.Context()
        self._local = threading.local()
        self._dealers: list[tuple[threading.Thread, zmq.Socket[bytes]]] = []
        self._dealers_lock = threading.Lock()
        self._subscriptions: weakref.WeakValueDictionary[bytes, Subscription] = (
            weakref.WeakValueDictionary()
        )
        self._tokens = 0
        self._callbacks: _CallbackThread | None = None
        self._stream = _StreamThread(self, endpoints["stream"])
        self._stream.start()
        self._stream.ready.wait()

    # --- public API -----------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Return the exposed topics that exist now, ``{"/chatter": "std_msgs/String"}``.

        Raises:
            NodeDiedError, TimeoutError: the node is gone or did not answer.
        """
        result: dict[str, str] = self._request("topics", {})
        return result

    def services(self) -> dict[str, str]:
        """Return the exposed services that exist now, ``{"/set_flag": "std_srvs/SetBool"}``."""
        result: dict[str, str] = self._request("services", {})
        return result

    def params(self) -> list[str]:
        """Return the names of the exposed parameters that are set now."""
        result: list[str] = self._request("params", {})
        return result

    def publish(self, topic: str, message: dict[str, Any], type: str | None = None) -> None:
        """Publish one message on ``topic``.

        Args:
            topic: topic name (``"/turtle1/cmd_vel"``).
            message: the message as a dict shaped like the ROS message; missing fields take
                their defaults.
            type: message type ``"pkg/Type"``; needed only when the topic does not exist yet.

        Raises:
            NotExposedError: the topic matches none of the node's patterns.
            MessageError: the dict does not fit the type (``.field`` names the field), or the
                type is unknown.
        """
        self._request("publish", {"topic": topic, "message": message, "type": type})

    def subscribe(
        self,
        topic: str,
        callback: MessageHandler | None = None,
        *,
        queue_size: int = 100,
    ) -> Subscription:
        """Receive the messages published on ``topic`` from now on.

        A topic that matches the patterns but does not exist yet is subscribed to as soon as
        it appears in the graph.

        Args:
            topic: topic name.
            callback: called with each message dict on the client's callback thread; without
                it, read messages with :meth:`Subscription.get` or by iterating.
            queue_size: messages kept for :meth:`Subscription.get`; when full the oldest is
                dropped and counted in :attr:`Subscription.dropped` (ROS queue semantics).

        Raises:
            NotExposedError: the topic matches none of the node's patterns.
        """
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._check_usable()
        self._tokens += 1
        token = f"{self.id}/{self._tokens}".encode()
        subscription = Subscription(self, topic, token, callback, queue_size)
        self._stream.command("subscribe", token, subscription)
        try:
            result = self._request("subscribe", {"topic": topic, "token": token})
        except BaseException:
            self._stream.command("unsubscribe", token, None)
            raise
        subscription.topic = result["topic"]
        subscription.type = result["type"]
        return subscription

    def call(
        self, service: str, request: dict[str, Any] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Call a service and return its response.

        Args:
            service: service name (``"/set_flag"``).
            request: the request dict; None for an empty request.
            timeout: seconds to wait for the response.

        Raises:
            NotExposedError: the service matches no pattern or does not exist.
            MessageError: the request does not fit the service type.
            ServiceError: the service failed.
            TimeoutError: no response within ``timeout``.
        """
        result: dict[str, Any] = self._request(
            "call",
            {"service": service, "request": request, "timeout": timeout},
            timeout=timeout + CALL_MARGIN,
        )
        return result

    def get_param(self, name: str) -> Any:
        """Return a parameter's value.

        Raises:
            KeyError: (:class:`~pyros.exceptions.ParamNotSetError`) the parameter is not set.
            NotExposedError: the name matches none of the node's parameter patterns.
        """
        return self._request("get_param", {"name": name})

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data (None, bool, int, float, str, bytes, list, dict).

        Raises:
            NotExposedError: the name matches none of the node's parameter patterns.
            MessageError: ``value`` is not plain data.
        """
        self._request("set_param", {"name": name, "value": value})

    def info(self) -> dict[str, Any]:
        """Return the node's status: name, pid, backend, client and subscription counts."""
        result: dict[str, Any] = self._request("info", {})
        return result

    @property
    def owns_node(self) -> bool:
        """True if this client started the node and will stop it on :meth:`close`."""
        return self._process is not None

    def close(self, timeout: float = 5.0) -> None:
        """Close the client; an owned node is shut down and waited for. Idempotent.

        Args:
            timeout: seconds to wait for an owned node to exit before it is killed.
        """
        if self._closed:
            return
        if os.getpid() != self._pid:  # a forked child: touch nothing of the parent's
            self._closed = True
            return
        if self._process is not None and self._dead is None:
            try:
                self._request("shutdown", {}, timeout=timeout)
            except PyrosError:
                pass  # it is dying anyway; stop() below makes sure
        self._closed = True
        self._mark_dead(PyrosError("the client is closed"), closing=True)
        self._stream.command("stop", b"", None)
        self._stream.join(timeout)
        if self._callbacks is not None:
            self._callbacks.stop()
        with self._dealers_lock:
            for _, socket in self._dealers:
                socket.close(linger=0)
            self._dealers.clear()
        self._context.term()
        os.close(self._dead_fd)
        if self._process is not None:
            self._process.wait(timeout)
            self._process.stop()
            remove_node_directory(node_directory(self.name))

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "dead" if self._dead else "open"
        return f"<pyros.Client node={self.name!r} pid={self.node_pid} {state}>"

    # --- requests -------------------------------------------------------------------------

    def _check_usable(self) -> None:
        check_usable(self._pid, self._closed, self._dead)

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            socket = self._context.socket(zmq.DEALER)
            socket.linger = 0
            socket.connect(self._request_endpoint)
            with self._dealers_lock:
                # Reclaim the sockets of threads that have ended (a server that starts a
                # thread per request would otherwise leave one socket behind per request).
                for thread, old in [pair for pair in self._dealers if not pair[0].is_alive()]:
                    old.close(linger=0)
                    self._dealers.remove((thread, old))
                self._dealers.append((threading.current_thread(), socket))
            connection = _Connection(socket, self._dead_fd)
            self._local.connection = connection
        return connection

    def _request(
        self, op: str, args: dict[str, Any], *, timeout: float | None = REQUEST_TIMEOUT
    ) -> Any:
        """Send one request from this thread and wait for its reply."""
        self._check_usable()
        connection = self._connection()
        protocol = connection.protocol
        request_id, frame = protocol.send_request(op, args, now=time.monotonic(), timeout=timeout)
        connection.socket.send(frame)
        while True:
            deadline = protocol.next_deadline()
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = dict(connection.poller.poll(wait_ms))
            if connection.socket in ready:
                while True:
                    try:
                        reply = connection.socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    event = protocol.receive_reply(reply)
                    if event is not None and event.id == request_id:
                        return _outcome(event)
            if self._dead is not None:
                protocol.cancel(request_id)
                self._check_usable()
            for failure in protocol.expire(time.monotonic()):
                if failure.id == request_id:
                    raise failure.error

    # --- called by the stream thread ------------------------------------------------------

    def _mark_dead(self, error: PyrosError, *, closing: bool = False) -> None:
        if self._dead is not None:
            return
        self._dead = error
        os.eventfd_write(self._dead_fd, 1)  # never read: wakes every waiting thread for good
        for subscription in list(self._subscriptions.values()):
            subscription._fail(error if not closing else None)

    def _callback_thread(self) -> _CallbackThread:
        if self._callbacks is None:
            self._callbacks = _CallbackThread()
            self._callbacks.start()
        return self._callbacks


def check_usable(owner_pid: int, closed: bool, dead: PyrosError | None) -> None:
    """Raise why a client (sync or asyncio) cannot make a request now.

    Args:
        owner_pid: the process that created the client.
        closed: the client was closed.
        dead: why the node counts as dead, or None.

    Raises:
        ForkError: this is a forked child of the process that made the client.
        PyrosError: the client is closed.
        NodeDiedError: the node died.
    """
    if os.getpid() != owner_pid:
        raise ForkError(
            f"this Client was created in process {owner_pid} and cannot be used after "
            "os.fork(); create a new one in the child (pyros.attach(name) or "
            "pyros.connect(name), e.g. in gunicorn's post_fork or Celery's "
            "worker_process_init, or lazily per process id)"
        )
    if closed:
        raise PyrosError("the client is closed")
    if dead is not None:
        raise NodeDiedError(str(dead)) from dead


def node_exited(process: NodeProcess | None, pid: int) -> NodeDiedError | None:
    """Return the error to raise if the node process is gone, else None.

    Nodes always run on this machine, so their process can be checked directly: this notices
    a killed node within one stream poll (0.1 s), while the heartbeat timeout stays a
    backstop for a node that is alive but stuck.
    """
    if process is not None:
        code = process.exit_code()
        if code is not None:
            return NodeDiedError(f"the node process exited with code {code}")
        return None
    if not pid_alive(pid):
        return NodeDiedError(f"the node process {pid} is gone")
    return None


def _outcome(event: Reply | Failure) -> Any:
    if isinstance(event, Failure):
        raise event.error
    return event.result


class _Connection:
    """One thread's DEALER socket and its protocol state."""

    def __init__(self, socket: zmq.Socket[bytes], dead_fd: int) -> None:
        self.socket = socket
        self.protocol = ClientProtocol()
        self.poller = zmq.Poller()
        self.poller.register(socket, zmq.POLLIN)
        self.poller.register(dead_fd, zmq.POLLIN)


class _StreamThread(threading.Thread):
    """Owns the SUB socket: heartbeats, topic messages, node liveness."""

    def __init__(self, client: Client, endpoint: str) -> None:
        super().__init__(name=f"pyros-stream-{client.name}", daemon=True)
        self._client = weakref.ref(client)
        self._process = client._process
        self._pid = client.node_pid
        self._subscriptions = client._subscriptions
        self._context = client._context
        self._endpoint = endpoint
        self._client_id = client.id.encode()
        self._commands: Outbox[tuple[str, bytes, Subscription | None]] = Outbox()
        self._acks: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.ready = threading.Event()

    def command(self, what: str, token: bytes, subscription: Subscription | None) -> None:
        """Run ``subscribe``/``unsubscribe``/``stop`` on the stream thread and wait for it."""
        if not self.is_alive():
            return
        with self._lock:  # one command at a time, so each waits for its own ack
            self._commands.put((what, token, subscription))
            if what != "stop":
                self._acks.get()

    def run(self) -> None:
        socket = self._context.socket(zmq.SUB)
        socket.linger = 0
        socket.rcvhwm = 100_000
        socket.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_PREFIX)
        socket.setsockopt(zmq.SUBSCRIBE, CLIENT_PREFIX + self._client_id)
        socket.connect(self._endpoint)
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._commands.fd, zmq.POLLIN)
        stream = StreamProtocol(now=time.monotonic())
        self.ready.set()
        try:
            self._serve(socket, poller, stream)
        finally:
            socket.close(linger=0)
            self._commands.close()

    def _serve(self, socket: zmq.Socket[bytes], poller: zmq.Poller, stream: StreamProtocol) -> None:
        subscriptions = self._subscriptions
        dead = False
        while True:
            ready = dict(poller.poll(int(_STREAM_POLL * 1000)))
            if self._commands.fd in ready:
                for what, token, subscription in self._commands.drain():
                    if what == "stop":
                        return
                    if what == "subscribe":
                        assert subscription is not None
                        subscriptions[token] = subscription
                        socket.setsockopt(zmq.SUBSCRIBE, MESSAGE_PREFIX + token)
                    else:
                        subscriptions.pop(token, None)
                        socket.setsockopt(zmq.UNSUBSCRIBE, MESSAGE_PREFIX + token)
                    self._acks.put(None)
            if socket in ready:
                now = time.monotonic()
                for _ in range(10_000):
                    try:
                        frames = socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    event = stream.receive(frames, now)
                    if isinstance(event, Message):
                        target = subscriptions.get(event.token)
                        if target is not None:
                            target._deliver(event.message)
                    elif isinstance(event, Heartbeat):
                        continue
            if dead:
                continue
            error = stream.node_dead(time.monotonic()) or node_exited(self._process, self._pid)
            if error is not None:
                client = self._client()
                if client is not None:
                    client._mark_dead(error)
                dead = True


class _CallbackThread(threading.Thread):
    """Runs subscription callbacks, in arrival order, off the stream thread."""

    def __init__(self) -> None:
        super().__init__(name="pyros-callbacks", daemon=True)
        self.jobs: queue.SimpleQueue[tuple[Subscription, dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            subscription, message = job
            subscription._run_callback(message)

    def stop(self) -> None:
        self.jobs.put(None)
        if threading.current_thread() is not self:
            self.join(5.0)


class SubscriptionState:
    """What the sync and asyncio subscriptions share: names, counters and the bounded queue.

    Attributes:
        topic: the absolute topic name.
        type: the message type ``pkg/Type``, or None while the topic does not exist yet.
        token: the stream token the node sends this subscription's messages to.
        dropped: messages dropped because the queue was full.
        received: messages received in all.
        callback_errors: exceptions raised by the callback (each printed to stderr).
    """

    def __init__(self, topic: str, token: bytes, callback: Any, queue_size: int) -> None:
        self.topic = topic
        self.type: str | None = None
        self.token = token
        self.dropped = 0
        self.received = 0
        self.callback_errors = 0
        self._callback = callback
        self._queue: collections.deque[dict[str, Any]] = collections.deque(maxlen=queue_size)
        self._closed = False
        self._error: PyrosError | None = None

    def _push(self, message: dict[str, Any]) -> None:
        """Queue a message, dropping the oldest when full (ROS queue semantics)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(message)

    def _report_callback_error(self) -> None:
        self.callback_errors += 1
        print(f"pyros: callback for {self.topic} raised:", file=sys.stderr)
        traceback.print_exc()


class Subscription(SubscriptionState):
    """The messages of one topic, as they arrive. Iterable; a context manager.

    Made by :meth:`Client.subscribe`.

    Attributes:
        topic: the absolute topic name.
        type: the message type ``pkg/Type``, or None while the topic does not exist yet.
        dropped: messages dropped because the queue was full.
        received: messages received in all.
        callback_errors: exceptions raised by the callback (each printed to stderr).
    """

    def __init__(
        self,
        client: Client,
        topic: str,
        token: bytes,
        callback: MessageHandler | None,
        queue_size: int,
    ) -> None:
        super().__init__(topic, token, callback, queue_size)
        self._client = client
        self._ready = threading.Condition(threading.Lock())

    def get(self, timeout: float | None = None) -> dict[str, Any]:
        """Return the next message, waiting for it.

        Args:
            timeout: seconds to wait; None waits forever.

        Raises:
            TimeoutError: no message within ``timeout``.
            NodeDiedError: the node died.
            PyrosError: the subscription is closed, or delivers to a callback.
        """
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._queue:
                if self._error is not None:
                    raise NodeDiedError(str(self._error)) from self._error
                if self._closed:
                    raise PyrosError(f"subscription to {self.topic} is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message on {self.topic} within {timeout} s")
                self._ready.wait(remaining)
            return self._queue.popleft()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield messages as they arrive until the subscription is closed.

        Raises:
            NodeDiedError: the node died.
        """
        while True:
            try:
                yield self.get()
            except NodeDiedError:
                raise
            except PyrosError:
                if self._closed:
                    return
                raise

    def close(self) -> None:
        """Stop receiving; wakes threads blocked in :meth:`get`. Idempotent."""
        if self._closed:
            return
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        client = self._client
        if client._closed or client._dead is not None or os.getpid() != client._pid:
            return
        client._stream.command("unsubscribe", self.token, None)
        try:
            client._request("unsubscribe", {"token": self.token}, timeout=REQUEST_TIMEOUT)
        except (NodeDiedError, NotExposedError):
            pass  # nothing left to unsubscribe from

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pyros.Subscription {self.topic} type={self.type} queued={len(self._queue)}>"

    # Stream-thread side.

    def _deliver(self, message: dict[str, Any]) -> None:
        self.received += 1
        if self._callback is not None:
            self._client._callback_thread().jobs.put((self, message))
            return
        with self._ready:
            self._push(message)
            self._ready.notify()

    def _fail(self, error: PyrosError | None) -> None:
        with self._ready:
            if error is None:
                self._closed = True
            else:
                self._error = error
            self._ready.notify_all()

    def _run_callback(self, message: dict[str, Any]) -> None:
        assert self._callback is not None
        if self._closed:
            return
        try:
            self._callback(message)
        except Exception:
            self._report_callback_error()


def _patterns(patterns: Iterable[str], what: str) -> list[str]:
    if isinstance(patterns, str):
        return [patterns]
    result = list(patterns)
    for pattern in result:
        if not isinstance(pattern, str):
            raise TypeError(f"{what} patterns must be strings, got {pattern!r}")
    return result
