"""Shared nodes: one node process that many worker processes attach to by name.

A web app with 16 gunicorn workers, or a Celery pool, should make one ROS node, not sixteen.
A shared node belongs to no client: it starts detached (reparented to init, so it never lingers
as a zombie of whichever worker started it), survives workers dying and being replaced, and
exits after ``idle_timeout`` seconds without clients, or on :func:`stop_shared`
(``pyros node stop NAME``).

:func:`attach` is the entry point for worker processes: it connects to the node if it runs and
starts it otherwise, under a file lock, so N processes starting at the same moment end up with
exactly one node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
from collections.abc import Iterable, Iterator
from typing import Any

from pyros._process import NodeProcess, pid_alive, terminate_pid, wait_pid_gone
from pyros._runtime import node_directory, read_node_file, remove_node_directory, runtime_root
from pyros.client import Client, _patterns, connect
from pyros.exceptions import NodeDiedError, PyrosError, TimeoutError

__all__ = [
    "attach",
    "name_lock",
    "ensure_shared",
    "start_shared",
    "stop_shared",
    "list_nodes",
]


def start_shared(
    name: str,
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
    idle_timeout: float | None = None,
    ready_timeout: float = 10.0,
    **backend_options: Any,
) -> dict[str, Any]:
    """Start a shared node in the background and return its ready report once it is ready.

    Args:
        name: the node's name (letters, digits, ``_``); registers as ``/pyros_<name>``.
        backend: backend name.
        topics, services, params: glob patterns of what is exposed.
        idle_timeout: seconds without any client after which the node exits; None: run
            until :func:`stop_shared`.
        ready_timeout: seconds to wait for the node to be ready.
        **backend_options: passed to the backend.

    The node's stdout and stderr go to ``<runtime root>/<name>.log``.

    Returns:
        The node's report: ``name``, ``pid``, ``graph_name``, ``endpoints``...

    Raises:
        SpawnError: the node could not start, or a node of that name already runs.
        TimeoutError: not ready within ``ready_timeout``.
    """
    from pyros._node import NodeConfig  # not at import time: `python -m pyros._node` runs it

    config = NodeConfig(
        name=name,
        backend=backend,
        options=dict(backend_options),
        topics=_patterns(topics, "topics"),
        services=_patterns(services, "services"),
        params=_patterns(params, "params"),
        owner_pid=None,
        idle_timeout=idle_timeout,
    )
    process = NodeProcess.start(
        dataclasses.asdict(config),
        ready_timeout=ready_timeout,
        detach=True,
        log=runtime_root() / f"{name}.log",
    )
    return process.report


def attach(
    name: str,
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
    idle_timeout: float | None = 60.0,
    ready_timeout: float = 10.0,
    **backend_options: Any,
) -> Client:
    """Connect to shared node ``name``, starting it first if it does not run.

    Safe to call from many processes at the same moment: a lock file in the runtime directory
    makes one of them start the node and the others wait for it. If the node already runs,
    its backend and patterns are whatever it was started with.

    Args:
        name: the shared node's name.
        backend, topics, services, params, **backend_options: used only if the node has to
            be started; see :func:`start_shared`.
        idle_timeout: seconds without clients before a node started here exits (default
            60 s, so a node outlives a worker being replaced); None keeps it running.
        ready_timeout: seconds to wait for the node.

    Returns:
        A :class:`~pyros.Client` that does not own the node (closing it leaves the node up).

    Raises:
        SpawnError, TimeoutError: the node could not be started.
    """
    with name_lock(name):
        ensure_shared(
            name,
            backend,
            topics=topics,
            services=services,
            params=params,
            idle_timeout=idle_timeout,
            ready_timeout=ready_timeout,
            **backend_options,
        )
        return connect(name, timeout=ready_timeout)


@contextlib.contextmanager
def name_lock(name: str) -> Iterator[None]:
    """Hold the lock file of node name ``name`` (``<runtime root>/<name>.lock``).

    :func:`attach` holds it from checking that the node runs until its client said hello; a
    shared node takes it before an idle exit and keeps it until it is gone, so an attach never
    connects to a node that is about to vanish.
    """
    with open(runtime_root() / f"{name}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_shared(
    name: str,
    backend: str = "mock",
    *,
    idle_timeout: float | None = 60.0,
    ready_timeout: float = 10.0,
    **options: Any,
) -> bool:
    """Start shared node ``name`` unless it runs. Call it holding :func:`name_lock`.

    Args:
        name, backend, idle_timeout, ready_timeout: as :func:`attach`.
        **options: ``topics``, ``services``, ``params`` and backend options.

    Returns:
        True if this call started the node, False if it was already running.
    """
    description = read_node_file(node_directory(name))
    if description is not None and pid_alive(description.get("pid")):
        return False
    start_shared(name, backend, idle_timeout=idle_timeout, ready_timeout=ready_timeout, **options)
    return True


def stop_shared(name: str, *, timeout: float = 10.0) -> None:
    """Stop shared node ``name`` cleanly and wait until its process has exited.

    The node unregisters everything from the ROS graph before it exits. A node that does not
    exit within ``timeout`` seconds is sent SIGTERM, then SIGKILL.

    Raises:
        NodeDiedError: no node of that name runs.
    """
    directory = node_directory(name)
    description = read_node_file(directory)
    pid = description.get("pid") if description else None
    if not isinstance(pid, int) or not pid_alive(pid):
        remove_node_directory(directory)
        raise NodeDiedError(f"no pyros node named {name!r} is running")
    try:
        with connect(name, timeout=min(timeout, 5.0)) as client:
            client._request("shutdown", {}, timeout=min(timeout, 5.0))
    except (PyrosError, TimeoutError):
        pass  # unresponsive: the signals below end it
    if wait_pid_gone(pid, timeout) is None:
        terminate_pid(pid, 5.0)
    remove_node_directory(directory)


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
