"""Shared nodes: one node process that many worker processes attach to by name.

A web app with 16 gunicorn workers, or a Celery pool, should make one ROS node, not sixteen.
A shared node belongs to no client: it starts detached (reparented to init, so it never lingers
as a zombie of whichever worker started it), survives workers dying and being replaced, and
exits after ``idle_timeout`` seconds without clients, or on :func:`stop_shared`
(``pyros node stop NAME``).

:func:`attach` is the entry point for worker processes: it connects to the node if it runs and
starts it otherwise, under a file lock, so N processes starting at the same moment end up with
exactly one node. A running node with another backend, other backend options or other patterns
is an error, never silently reused. :class:`SharedClient` wraps it for web apps: one handle at
import time, a client per process made on first use (again after ``fork``), and the latest
message of any topic without writing a cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from pyros._core import Ops
from pyros._process import NodeConfig, NodeProcess, pid_alive, terminate_pid, wait_pid_gone
from pyros._runtime import (
    check_node_name,
    lock_path,
    log_path,
    node_directory,
    read_node_file,
    remove_node_directory,
    runtime_root,
)
from pyros.client import Client, Subscription, connect
from pyros.exceptions import NodeDiedError, NotExposedError, PyrosError, SpawnError, TimeoutError

__all__ = [
    "attach",
    "SharedClient",
    "name_lock",
    "ensure_shared",
    "start_shared",
    "stop_shared",
    "list_nodes",
    "shared_config",
]


def shared_config(name: str, backend: str = "mock", **options: Any) -> NodeConfig:
    """Return the configuration of shared node ``name`` (see :func:`start_shared`).

    Raises:
        ValueError: ``name`` is not a valid node name.
    """
    return NodeConfig.make(check_node_name(name), backend, owner_pid=None, **options)


def start_shared(
    name: str,
    backend: str = "mock",
    *,
    ready_timeout: float = 10.0,
    **options: Any,
) -> dict[str, Any]:
    """Start a shared node in the background and return its ready report once it is ready.

    Args:
        name: the node's name (1 to 64 letters, digits, ``_``); registers as ``/pyros_<name>``.
        backend: backend name.
        ready_timeout: seconds to wait for the node to be ready.
        **options: ``topics``, ``services``, ``params``, ``actions`` (glob patterns),
            ``idle_timeout`` (seconds without any client after which the node exits; None:
            run until :func:`stop_shared`), and backend options.

    The node's stdout and stderr go to ``<runtime root>/<name>.log``.

    Returns:
        The node's report: ``name``, ``pid``, ``graph_name``, ``endpoints``...

    Raises:
        SpawnError: the node could not start, or a node of that name already runs.
        TimeoutError: not ready within ``ready_timeout``.
        ValueError: ``name`` is not a valid node name.
    """
    config = shared_config(name, backend, **options)
    process = NodeProcess.start(
        config.to_dict(), ready_timeout=ready_timeout, detach=True, log=log_path(name)
    )
    return process.report


def attach(
    name: str,
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
    actions: Iterable[str] = (),
    idle_timeout: float | None = 60.0,
    ready_timeout: float = 10.0,
    **backend_options: Any,
) -> Client:
    """Connect to shared node ``name``, starting it first if it does not run.

    Safe to call from many processes at the same moment: a lock file in the runtime directory
    makes one of them start the node and the others wait for it.

    Args:
        name: the shared node's name.
        backend, topics, services, params, actions, ``**backend_options``: what the node runs
            and exposes; a running node must have been started with exactly these.
        idle_timeout: seconds without clients before a node started here exits (default
            60 s, so a node outlives a worker being replaced); None keeps it running.
        ready_timeout: seconds to wait for the node.

    Returns:
        A :class:`~pyros.Client` that does not own the node (closing it leaves the node up).

    Raises:
        SpawnError: the node could not be started, or the running node was started with
            another backend, other backend options or other patterns (the message says
            which; stop it with ``pyros node stop NAME`` or pick another name).
        TimeoutError: the node was not ready in time.
        ValueError: ``name`` is not a valid node name.
    """
    config = shared_config(
        name,
        backend,
        topics=topics,
        services=services,
        params=params,
        actions=actions,
        idle_timeout=idle_timeout,
        **backend_options,
    )
    with name_lock(name):
        ensure_shared(config, ready_timeout)
        return connect(name, timeout=ready_timeout)


@contextlib.contextmanager
def name_lock(name: str) -> Iterator[None]:
    """Hold the lock file of node name ``name`` (``<runtime root>/<name>.lock``).

    :func:`attach` holds it from checking that the node runs until its client said hello; a
    shared node takes it before an idle exit and keeps it until it is gone, so an attach never
    connects to a node that is about to vanish.

    Raises:
        ValueError: ``name`` is not a valid node name.
    """
    with open(lock_path(name), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_shared(config: NodeConfig, ready_timeout: float = 10.0) -> bool:
    """Start shared node ``config.name`` unless it runs. Call it holding :func:`name_lock`.

    Returns:
        True if this call started the node, False if it was already running.

    Raises:
        SpawnError: the node runs with another configuration, or could not start.
    """
    description = read_node_file(node_directory(config.name))
    if description is not None and pid_alive(description.get("pid")):
        mismatch = config.mismatch(description)
        if mismatch:
            raise SpawnError(
                f"a pyros node named {config.name!r} already runs with {mismatch}; stop it "
                f"('pyros node stop {config.name}') or attach under another name"
            )
        return False
    NodeProcess.start(
        config.to_dict(), ready_timeout=ready_timeout, detach=True, log=log_path(config.name)
    )
    return True


def stop_shared(name: str, *, timeout: float = 10.0) -> None:
    """Stop shared node ``name`` cleanly and wait until its process has exited.

    The node unregisters everything from the ROS graph before it exits. A node that does not
    exit within ``timeout`` seconds is sent SIGTERM, then SIGKILL. Its lock and log files are
    removed.

    Raises:
        NodeDiedError: no node of that name runs.
        ValueError: ``name`` is not a valid node name.
    """
    directory = node_directory(name)
    description = read_node_file(directory)
    pid = description.get("pid") if description else None
    if not isinstance(pid, int) or not pid_alive(pid):
        remove_node_directory(directory)
        raise NodeDiedError(f"no pyros node named {name!r} is running")
    try:
        with connect(name, timeout=min(timeout, 5.0)) as client:
            client._run(Ops.shutdown(min(timeout, 5.0)))
    except (PyrosError, TimeoutError):
        pass  # unresponsive: the signals below end it
    if wait_pid_gone(pid, timeout) is None:
        terminate_pid(pid, 5.0)
    remove_node_directory(directory)
    with name_lock(name):
        if read_node_file(directory) is None:
            log_path(name).unlink(missing_ok=True)
            lock_path(name).unlink(missing_ok=True)


def list_nodes() -> list[dict[str, Any]]:
    """Return the reports of the nodes running now, sorted by name.

    Directories left by nodes that died without cleaning up are removed on the way.
    """
    found = []
    root = runtime_root()
    for directory in sorted(path for path in root.iterdir() if path.is_dir()):
        description = read_node_file(directory)
        if description is None:
            continue
        if pid_alive(description.get("pid")):
            found.append(description)
        else:
            remove_node_directory(directory)
    return found


class SharedClient:
    """A handle on a shared node for every process of a web app or task queue.

    Make one at import time; each process that uses it gets its own :class:`~pyros.Client`
    through :func:`attach` on first use, and again after ``os.fork()`` (gunicorn, Celery
    prefork) or after the node went away (it is started again). Every :class:`~pyros.Client`
    method works on it directly:

    .. code-block:: python

        robot = pyros.SharedClient("webapp", "ros1", topics=["*"], services=["*"])

        @app.get("/pose")
        def pose():
            return robot.latest("/turtle1/pose", timeout=2.0) or ("no pose yet", 504)

    Args:
        name: the shared node's name.
        backend, ``**options``: as :func:`attach` (patterns, ``idle_timeout``, backend options).
    """

    def __init__(self, name: str, backend: str = "mock", **options: Any) -> None:
        check_node_name(name)
        self.name = name
        self.backend = backend
        self.options = options
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._client: Client | None = None
        self._latest: dict[str, Subscription] = {}

    @property
    def client(self) -> Client:
        """This process's client, attached now if there is none yet or it cannot be used.

        Raises:
            SpawnError, TimeoutError: as :func:`attach`.
        """
        with self._lock:
            client = self._client
            if (
                client is None
                or self._pid != os.getpid()
                or client._core.closed
                or client._core.dead is not None
            ):
                if client is not None and self._pid == os.getpid():
                    client.close()
                self._latest = {}
                self._client = client = attach(self.name, self.backend, **self.options)
                self._pid = os.getpid()
            return client

    def latest(self, topic: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Return the most recent message of ``topic`` (subscribed on first use).

        The first call subscribes with ``queue_size=1`` and keeps the subscription, so later
        calls answer at once from memory.

        Args:
            topic: topic name.
            timeout: seconds to wait for the first message when none has arrived yet; None
                returns at once.

        Returns:
            The latest message, or None if none arrived (within ``timeout``).

        Raises:
            NotExposedError: the topic is not exposed, or does not exist in the graph (a typo
                is not remembered: the message names the closest existing topics).
        """
        client = self.client
        with self._lock:
            subscription = self._latest.get(topic)
            if subscription is None:
                subscription = client.subscribe(topic, queue_size=1)
                if subscription.type is None:
                    subscription.close()
                    hint = (
                        f"; did you mean {', '.join(subscription.similar)}?"
                        if subscription.similar
                        else ""
                    )
                    raise NotExposedError(f"topic {subscription.topic} does not exist{hint}")
                self._latest[topic] = subscription
        message = subscription.latest()
        if message is None and timeout is not None:
            try:
                message = subscription.get(timeout)
            except TimeoutError:
                return None
        return message

    def close(self) -> None:
        """Close this process's client (the shared node keeps running). Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            self._latest = {}
            if client is not None and self._pid == os.getpid():
                client.close()

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise AttributeError(attribute)
        return getattr(self.client, attribute)

    def __repr__(self) -> str:
        return f"<pyros.SharedClient {self.name!r} backend={self.backend!r}>"
