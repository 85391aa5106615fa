"""The node process: one backend, a ROUTER for requests, an XPUB for streams.

Run as ``python -m pyros._node --ready-fd N`` with the configuration (a
:class:`~pyros._process.NodeConfig` as JSON) on stdin; :mod:`pyros._process` does that.
Threads in a node:

* the main loop owns the ROUTER and XPUB sockets: it decodes and checks requests, answers the
  quick ones itself (publishing on a topic it already publishes on, unsubscribing, ``info``),
  fans topic messages, feedback and results out to subscribers and watches its owner;
* a heartbeat thread sends a heartbeat every 0.2 s on a PUB socket of its own, so a main loop
  busy with one heavy request never makes the node look dead;
* one backend worker runs the other requests in arrival order (topic and parameter queries,
  first publishes, subscriptions), so a slow ROS master never delays the main loop;
* a pool runs service calls and goals, which may take long, side by side;
* a discovery thread polls the backend while some subscription waits for its topic to appear.

Every request gets a reply: malformed ones an error naming what is wrong, failing ones the
error the backend raised; nothing a client sends can stop the node.

The node stops on a ``shutdown`` request, SIGTERM or SIGINT, when its owner process dies, when
its runtime directory is removed (no client could reach it any more), or (shared nodes) after
``idle_timeout`` seconds without clients. Stopping always runs ``backend.stop()`` (which
unregisters everything from the ROS graph) and removes the node's socket files and directory.
"""

from __future__ import annotations

import argparse
import difflib
import fcntl
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
import zmq

from pyros import backends
from pyros._exposure import Exposure
from pyros._names import resolve
from pyros._outbox import Outbox
from pyros._process import NodeConfig
from pyros._protocol import (
    CLIENT_PREFIX,
    HEARTBEAT_INTERVAL,
    KIND_ERROR,
    KIND_FEEDBACK,
    KIND_MESSAGE,
    KIND_RESULT,
    MESSAGE_PREFIX,
    PROTOCOL_VERSION,
    NodeProtocol,
    Request,
    Subscribed,
    Unsubscribed,
    encode,
    short,
)
from pyros._runtime import (
    NODE_FILE,
    NODE_FILES,
    check_node_name,
    lock_path,
    node_directory,
    read_node_file,
    remove_node_directory,
)
from pyros.backends.base import Backend, BackendGoal, GoalOutcome
from pyros.exceptions import (
    MessageError,
    NotExposedError,
    ProtocolError,
    PyrosError,
    SpawnError,
)
from pyros.message_types import canonical_type

__all__ = ["Node", "serve", "main"]

LOG = logging.getLogger("pyros.node")

OWNER_CHECK_INTERVAL = 0.2
"""Seconds between two checks that the owner process still lives."""

DISCOVERY_INTERVAL = 0.1
"""Seconds between two graph polls while a subscription waits for its topic to appear."""

SUBSCRIBE_CONFIRM_TIMEOUT = 2.0
"""Seconds a subscribe or send_goal request waits for the client's SUB socket to listen."""

STOP_TIMEOUT = 5.0
"""Seconds ``backend.stop()`` may take before the node exits anyway."""

CALL_WORKERS = 16
"""Service calls and goals that may be sent at once."""

HELLO_GRACE = 1.0
"""Seconds a client that said hello counts as present before its SUB socket is seen."""

STREAM_HWM = 10_000
"""Messages queued per subscription before the node drops (ZMQ_SNDHWM; counted per token)."""

INLINE_LIMIT = 64 * 1024
"""Bytes above which a request is never answered on the main loop (a big publish)."""

_DEFERRED = object()


@dataclass
class _Goal:
    """A goal the node follows for a client's token."""

    action: str
    handle: BackendGoal | None = None
    done: bool = False
    cancel_asked: bool = False


class Node:
    """A running node: sockets bound, backend started.

    Args:
        config: what to expose and how to behave.
        backend: a started backend.
        directory: the node's runtime directory (already created).
        owner: the owner process to watch (the node stops when it is gone), or None.
    """

    def __init__(
        self,
        config: NodeConfig,
        backend: Backend,
        directory: Path,
        owner: psutil.Process | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.directory = directory
        self.topics = Exposure(config.topics, "topic")
        self.services = Exposure(config.services, "service")
        self.params = Exposure(config.params, "parameter")
        self.actions = Exposure(config.actions, "action")
        self.protocol = NodeProtocol()
        self.outbox: Outbox[tuple[Any, ...]] = Outbox()
        self.started = time.time()

        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.linger = 0
        self.xpub = self.context.socket(zmq.XPUB)
        self.xpub.linger = 0
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.xpub.setsockopt(zmq.XPUB_NODROP, 1)  # a full pipe says so: drops are counted
        self.xpub.sndhwm = STREAM_HWM
        self.request_endpoint = f"ipc://{directory / 'request.sock'}"
        self.stream_endpoint = f"ipc://{directory / 'stream.sock'}"
        self.heartbeat_endpoint = f"ipc://{directory / 'heartbeat.sock'}"
        self.router.bind(self.request_endpoint)
        self.xpub.bind(self.stream_endpoint)
        # The XPUB is shared: backend threads send topic messages, feedback and results on it
        # themselves (no hand-off to the main loop), under this lock; the main loop polls its
        # ZMQ_FD, never the socket, and reads control frames under the lock too.
        self._xpub_lock = threading.Lock()
        self._xpub_fd = int(self.xpub.getsockopt(zmq.FD))
        self._xpub_closed = False

        self._serial = ThreadPoolExecutor(1, thread_name_prefix="pyros-backend")
        self._calls = ThreadPoolExecutor(CALL_WORKERS, thread_name_prefix="pyros-call")

        # Guarded by _lock: workers change them, the main loop reads.
        self._lock = threading.Lock()
        self._token_topic: dict[bytes, str] = {}
        self._topic_tokens: dict[str, frozenset[bytes]] = {}
        self._backend_subscribed: dict[str, str] = {}
        self._pending_topics: dict[str, Any] = {}  # topic -> QoS asked for
        self._goals: dict[bytes, _Goal] = {}
        # Main-loop state.
        self._listening: set[bytes] = set()
        self._awaiting: dict[bytes, tuple[bytes, Request, float]] = {}
        self._dropped: dict[bytes, int] = {}
        self._clients: set[bytes] = set()
        self._idle_since: float | None = time.monotonic()
        self._last_hello = -HELLO_GRACE
        self._name_lock: IO[bytes] | None = None
        self._published: dict[str, str] = {}
        self._topic_types: dict[str, str] = {}
        self._service_types: dict[str, str] = {}
        self._action_types: dict[str, str] = {}
        self._stop_reason: str | None = None
        self._stopping = threading.Event()
        self._discovery_wake = threading.Event()
        self._owner = owner

    # --- lifecycle ------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Return what a client or ``pyros node list`` needs to know of this node."""
        return {
            "name": self.config.name,
            "graph_name": "/" + self.config.graph_name,
            "pid": os.getpid(),
            "backend": self.config.backend,
            "options": self.config.public_options(),
            "patterns": self.config.patterns(),
            "protocol": PROTOCOL_VERSION,
            "endpoints": {
                "request": self.request_endpoint,
                "stream": self.stream_endpoint,
                "heartbeat": self.heartbeat_endpoint,
            },
            "shared": self.config.owner_pid is None,
            "started": self.started,
        }

    def run(self) -> str:
        """Serve until asked to stop; return why it stopped. Always cleans up."""
        threads = [
            threading.Thread(target=self._discover, name="pyros-discovery", daemon=True),
            threading.Thread(target=self._heartbeats, name="pyros-heartbeat", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._loop()
        finally:
            self._stopping.set()
            self._discovery_wake.set()
            threads[1].join(2.0)
            self._shutdown()
        return self._stop_reason or "stopped"

    def event(self, event: dict[str, Any]) -> None:
        """Send a backend event to every client (from any thread)."""
        self.outbox.put(("event", dict(event)))

    def stop(self, reason: str) -> None:
        """Ask the loop to stop (from any thread or a signal handler)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self.outbox.put(("wake",))

    def _heartbeats(self) -> None:
        """Send heartbeats from this thread, whatever the main loop is doing."""
        socket = self.context.socket(zmq.PUB)
        socket.linger = 0
        socket.sndhwm = 100
        socket.bind(self.heartbeat_endpoint)
        try:
            while not self._stopping.is_set():
                info = {"name": self.config.name, "pid": os.getpid(), "clients": len(self._clients)}
                try:
                    socket.send_multipart(self.protocol.heartbeat(info), zmq.NOBLOCK)
                except zmq.Again:
                    pass
                self._stopping.wait(HEARTBEAT_INTERVAL)
        finally:
            socket.close(linger=0)

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._xpub_fd, zmq.POLLIN)
        poller.register(self.outbox.fd, zmq.POLLIN)
        next_owner_check = time.monotonic() + OWNER_CHECK_INTERVAL
        while self._stop_reason is None:
            now = time.monotonic()
            wake_at = min(next_owner_check, self._next_deadline(now))
            ready = dict(poller.poll(max(0, int((wake_at - now) * 1000) + 1)))
            if self.outbox.fd in ready:
                self._drain_outbox()
            self._drain_control()  # ZMQ_FD is edge-triggered: look every time
            if self.router in ready:
                self._drain_requests()
            now = time.monotonic()
            if now >= next_owner_check:
                next_owner_check = now + OWNER_CHECK_INTERVAL
                if self._owner is not None and not self._owner_alive():
                    self.stop(f"owner process {self.config.owner_pid} died")
                elif not self.directory.is_dir():  # nobody can reach or stop us any more
                    self.stop(f"runtime directory {self.directory} was removed")
            self._expire_awaiting(now)
            self._check_idle(now)

    def _next_deadline(self, now: float) -> float:
        deadlines = [deadline for _, _, deadline in self._awaiting.values()]
        if self.config.idle_timeout is not None and self._idle_since is not None:
            deadlines.append(self._idle_since + self.config.idle_timeout)
        return min(deadlines, default=now + 1.0)

    def _owner_alive(self) -> bool:
        assert self._owner is not None
        try:
            return bool(self._owner.is_running() and self._owner.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def _check_idle(self, now: float) -> None:
        if self._clients or now - self._last_hello < HELLO_GRACE:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        elif self.config.idle_timeout is not None:
            if now - self._idle_since < self.config.idle_timeout:
                return
            # Exit only while holding the name's lock, so that no attach() can find this
            # node alive and then have it vanish; an attach holding the lock postpones us.
            if self._take_name_lock():
                self.stop(f"no client for {self.config.idle_timeout:g} s")
            else:
                self._idle_since = now

    def _take_name_lock(self) -> bool:
        lock = open(lock_path(self.config.name), "a+b")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        self._name_lock = lock  # held until the process exits, after the directory is gone
        return True

    def _shutdown(self) -> None:
        self._serial.shutdown(wait=False, cancel_futures=True)
        self._calls.shutdown(wait=False, cancel_futures=True)
        stopper = threading.Thread(target=self.backend.stop, name="pyros-stop", daemon=True)
        stopper.start()
        stopper.join(STOP_TIMEOUT)
        if stopper.is_alive():
            LOG.error("node %s: backend.stop() took over %s s", self.config.name, STOP_TIMEOUT)
        for item in self.outbox.drain():  # replies finished meanwhile (e.g. to "shutdown")
            if item[0] == "reply":
                self.router.send_multipart([item[1], item[2]])
        self.router.close(linger=200)
        with self._xpub_lock:
            self._xpub_closed = True
            self.xpub.close()
        self.context.term()
        self.outbox.close()
        remove_node_directory(self.directory)
        if self._name_lock is not None and self.config.idle_timeout is not None:
            lock_path(self.config.name).unlink(missing_ok=True)  # we hold it: nobody waits

    # --- sockets --------------------------------------------------------------------------

    def send_stream(self, tokens: Iterable[bytes], kind: bytes, body: bytes) -> None:
        """Send ``body`` to each of ``tokens`` on the XPUB, from any thread.

        A token whose client's queue is full (ZMQ_SNDHWM) loses the message, and the count
        goes out with its next one. If sending let control frames arrive unseen by the main
        loop (ZMQ_FD is edge-triggered), the main loop is woken to read them.
        """
        with self._xpub_lock:
            if self._xpub_closed:
                return
            for token in tokens:
                dropped = self._dropped.get(token, 0)
                try:
                    self.xpub.send_multipart(
                        self.protocol.stream_frames(token, kind, body, dropped), zmq.NOBLOCK
                    )
                except zmq.Again:
                    self._dropped[token] = dropped + 1
            pending = int(self.xpub.getsockopt(zmq.EVENTS)) & zmq.POLLIN
        if pending and threading.current_thread() is not threading.main_thread():
            self.outbox.put(("wake",))

    def _drain_outbox(self) -> None:
        for item in self.outbox.drain():
            kind = item[0]
            if kind == "reply":
                self.router.send_multipart([item[1], item[2]])
            elif kind == "token":
                _, token, stream_kind, body = item
                self.send_stream((token,), stream_kind, body)
            elif kind == "event":
                with self._xpub_lock:
                    if not self._xpub_closed:
                        self.xpub.send_multipart(self.protocol.event(item[1]))

    def _drain_control(self) -> None:
        frames = []
        with self._xpub_lock:
            while int(self.xpub.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                frames.append(self.xpub.recv(zmq.NOBLOCK))
        for frame in frames:
            event = self.protocol.receive_control(frame)
            if isinstance(event, Subscribed):
                self._on_subscribed(event.prefix)
            elif isinstance(event, Unsubscribed):
                self._on_unsubscribed(event.prefix)

    def _on_subscribed(self, prefix: bytes) -> None:
        if prefix.startswith(CLIENT_PREFIX):
            self._clients.add(prefix[len(CLIENT_PREFIX) :])
        elif prefix.startswith(MESSAGE_PREFIX):
            token = prefix[len(MESSAGE_PREFIX) :]
            self._listening.add(token)
            awaiting = self._awaiting.pop(token, None)
            if awaiting is not None:
                identity, request, _ = awaiting
                self._start_stream(identity, request, token)

    def _on_unsubscribed(self, prefix: bytes) -> None:
        if prefix.startswith(CLIENT_PREFIX):
            self._clients.discard(prefix[len(CLIENT_PREFIX) :])
        elif prefix.startswith(MESSAGE_PREFIX):
            token = prefix[len(MESSAGE_PREFIX) :]
            self._listening.discard(token)
            self._awaiting.pop(token, None)
            with self._xpub_lock:
                self._dropped.pop(token, None)
            if token in self._token_topic:
                self._submit(self._serial, self._detach, token)
            elif token in self._goals:  # the client went away: stop its goal
                self._submit(self._calls, self._forget_goal, token)

    def _expire_awaiting(self, now: float) -> None:
        for token, (identity, request, deadline) in list(self._awaiting.items()):
            if deadline <= now:
                del self._awaiting[token]
                error = ProtocolError("the client's stream socket never subscribed")
                self._send(identity, self.protocol.fail(request.id, error), request.id)

    def _drain_requests(self) -> None:
        for _ in range(1000):  # then let messages through
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue  # not from a DEALER speaking our protocol; nothing to answer
            identity, frame = frames
            decoded = self.protocol.receive_request(frame)
            if isinstance(decoded, Request):
                self._handle(identity, decoded, len(frame))
            else:
                request_id, reply = decoded
                self._send(identity, reply, request_id)

    def _send(self, identity: bytes, frame: bytes, request_id: int) -> None:
        if request_id:
            self.router.send_multipart([identity, frame])

    # --- requests -------------------------------------------------------------------------

    def _handle(self, identity: bytes, request: Request, size: int = 0) -> None:
        """Run a request inline, or hand it to a worker; never raises.

        Args:
            identity: the client's ROUTER identity.
            request: the checked request.
            size: the request frame's size in bytes; big publishes go to the backend worker
                so that they never hold up the main loop.
        """
        try:
            big = size > INLINE_LIMIT and request.op == "publish"
            inline: Any = _DEFERRED if big else self._inline(request)
        except PyrosError as exc:
            self._send(identity, self.protocol.fail(request.id, exc), request.id)
            return
        except Exception as exc:  # a backend bug must not kill the node: tell the caller
            self._send(identity, self.protocol.fail(request.id, _unexpected(exc)), request.id)
            return
        if inline is not _DEFERRED:
            self._send(identity, self._encode_reply(request.id, inline[0]), request.id)
            return
        if request.op in ("subscribe", "send_goal"):
            token = request.args["token"]
            if token in self._listening:
                self._start_stream(identity, request, token)
            else:
                deadline = time.monotonic() + SUBSCRIBE_CONFIRM_TIMEOUT
                self._awaiting[token] = (identity, request, deadline)
            return
        executor = self._calls if request.op in ("call", "cancel_goal") else self._serial
        self._submit(executor, self._run_job, identity, request, getattr(self, "_op_" + request.op))

    def _inline(self, request: Request) -> Any:
        """Answer quick requests here; return ``(result,)`` or ``_DEFERRED``."""
        args = request.args
        op = request.op
        if op == "publish":
            topic = self.topics.check(args["topic"])
            wanted = _type_name(args["type"])
            known = self._published.get(topic)
            if known is not None and wanted in (None, canonical_type(known)):
                self.backend.publish(topic, known, args["message"], args["qos"])
                return (None,)
            return _DEFERRED
        if op in ("subscribe", "send_goal"):
            if op == "subscribe":
                self.topics.check(args["topic"])
            else:
                self.actions.check(args["action"])
            token = args["token"]
            if token in self._token_topic or token in self._awaiting or token in self._goals:
                raise ProtocolError(f"stream token {short(token)} is already in use")
            return _DEFERRED
        if op == "unsubscribe":
            token = args["token"]
            if token in self._token_topic:
                self._submit(self._serial, self._detach, token)
            return (None,)
        if op == "hello":
            self._last_hello = time.monotonic()  # counts as a client until its SUB arrives
            return (self._info(),)
        if op == "info":
            return (self._info(),)
        if op == "shutdown":
            self.stop("shutdown requested by a client")
            return (None,)
        return _DEFERRED

    def _submit(
        self, executor: ThreadPoolExecutor, function: Callable[..., Any], *args: Any
    ) -> None:
        """Run ``function(*args)`` on ``executor``; an exception it raises is logged."""
        try:
            future = executor.submit(function, *args)
        except RuntimeError:  # shutting down
            return
        future.add_done_callback(_log_failure)

    def _run_job(self, identity: bytes, request: Request, job: Callable[[Request], Any]) -> None:
        """Run a request on a worker thread and queue its reply."""
        try:
            frame = self._encode_reply(request.id, job(request))
        except PyrosError as exc:
            frame = self.protocol.fail(request.id, exc)
        except Exception as exc:
            frame = self.protocol.fail(request.id, _unexpected(exc))
        if request.id:
            self.outbox.put(("reply", identity, frame))

    def _encode_reply(self, request_id: int, result: Any) -> bytes:
        try:
            return self.protocol.reply(request_id, result)
        except MessageError as exc:
            return self.protocol.fail(request_id, exc)

    def _info(self) -> dict[str, Any]:
        with self._lock:
            subscribed = sorted(self._backend_subscribed)
            pending = sorted(self._pending_topics)
            subscriptions = len(self._token_topic)
            goals = len(self._goals)
        info = self.describe()
        info.update(
            clients=len(self._clients),
            subscriptions=subscriptions,
            goals=goals,
            subscribed_topics=subscribed,
            waiting_topics=pending,
            published_topics=sorted(self._published),
            dropped=sum(self._dropped.values()),
            uptime=time.time() - self.started,
            connection=self.backend.connection_info(),
        )
        return info

    # Ops run by workers. Each takes the request and returns the reply's result.

    def _op_topics(self, request: Request) -> dict[str, str]:
        return self.topics.filter(self._refresh_topics())

    def _op_services(self, request: Request) -> dict[str, str]:
        return self.services.filter(self._refresh_services())

    def _op_actions(self, request: Request) -> dict[str, str]:
        return self.actions.filter(self._refresh_actions())

    def _op_params(self, request: Request) -> list[str]:
        return self.params.filter_list(self.backend.params())

    def _op_nodes(self, request: Request) -> list[str]:
        return sorted(self.backend.nodes())

    def _op_topic_info(self, request: Request) -> dict[str, Any]:
        return self.backend.topic_info(self.topics.check(request.args["topic"]))

    def _op_service_info(self, request: Request) -> dict[str, Any]:
        return self.backend.service_info(self.services.check(request.args["service"]))

    def _op_action_info(self, request: Request) -> dict[str, Any]:
        return self.backend.action_info(self.actions.check(request.args["action"]))

    def _op_node_info(self, request: Request) -> dict[str, Any]:
        return self.backend.node_info(resolve(request.args["node"], "node"))

    def _op_definition(self, request: Request) -> str:
        return self.backend.definition(request.args["type"])

    def _op_publish(self, request: Request) -> None:
        args = request.args
        topic = self.topics.check(args["topic"])
        type_name = args["type"] or self._topic_type(topic)
        if not type_name:
            raise MessageError(
                f"the type of topic {topic!r} is unknown (it does not exist yet, or the graph "
                "cannot be listed): pass type='pkg/Type'"
            )
        _type_name(type_name)
        with self._lock:
            waiting = topic in self._pending_topics
            qos = self._pending_topics.get(topic)
        if waiting:  # a client waits for this topic: subscribe before its first message
            self._backend_subscribe(topic, type_name, qos, None)
        self.backend.publish(topic, type_name, args["message"], args["qos"])
        self._published[topic] = type_name

    def _op_call(self, request: Request) -> Any:
        args = request.args
        service = self.services.check(args["service"])
        timeout = args["timeout"] if args["timeout"] is not None else 5.0
        type_name = args["type"] or self._service_types.get(service)
        if type_name is None:
            type_name = self._lookup(self._refresh_services, service)
        if type_name is None:
            raise NotExposedError(f"service {service!r} does not exist in the graph")
        return self.backend.call(service, type_name, args["request"], timeout)

    def _op_get_param(self, request: Request) -> Any:
        return self.backend.get_param(self.params.check(request.args["name"]))

    def _op_set_param(self, request: Request) -> None:
        name = self.params.check(request.args["name"])
        self.backend.set_param(name, request.args["value"])

    def _op_delete_param(self, request: Request) -> None:
        self.backend.delete_param(self.params.check(request.args["name"]))

    def _refresh_topics(self) -> dict[str, str]:
        topics = self.backend.topics()
        self._topic_types = dict(topics)
        return topics

    def _refresh_services(self) -> dict[str, str]:
        services = self.backend.services()
        self._service_types = dict(services)
        return services

    def _refresh_actions(self) -> dict[str, str]:
        actions = self.backend.actions()
        self._action_types = dict(actions)
        return actions

    def _topic_type(self, topic: str) -> str | None:
        known = self._topic_types.get(topic)
        if known:
            return known
        try:
            return self._refresh_topics().get(topic)
        except PyrosError:
            if self.backend.resolves_types:  # it cannot list, but finds the type itself
                return ""
            raise

    def _lookup(self, refresh: Callable[[], dict[str, str]], name: str) -> str | None:
        """Return ``name``'s type from a fresh listing, or ``""`` for a backend that finds
        types itself when the listing is not possible."""
        try:
            return refresh().get(name)
        except PyrosError:
            if self.backend.resolves_types:
                return ""
            raise

    # --- subscriptions and goals ------------------------------------------------------------

    def _start_stream(self, identity: bytes, request: Request, token: bytes) -> None:
        """The client listens for ``token``: subscribe or send the goal, then reply."""
        if request.op == "subscribe":
            job = self._subscribe
            executor = self._serial
        else:
            job = self._send_goal
            executor = self._calls
        self._submit(executor, self._run_job, identity, request, lambda r: job(r, token))

    def _subscribe(self, request: Request, token: bytes) -> dict[str, Any]:
        topic = self.topics.check(request.args["topic"])
        qos = request.args["qos"]
        with self._lock:
            self._token_topic[token] = topic
            self._topic_tokens[topic] = self._topic_tokens.get(topic, frozenset()) | {token}
            type_name = self._backend_subscribed.get(topic)
        similar: list[str] = []
        if type_name is None:
            type_name = self._topic_type(topic)
            if type_name is None:
                with self._lock:
                    self._pending_topics.setdefault(topic, qos)
                self._discovery_wake.set()
                exposed = self.topics.filter(self._topic_types)
                similar = difflib.get_close_matches(topic, list(exposed), n=3, cutoff=0.6)
            else:
                self._backend_subscribe(topic, type_name, qos, token)
        return {"topic": topic, "type": type_name, "similar": similar}

    def _backend_subscribe(self, topic: str, type_name: str, qos: Any, token: bytes | None) -> None:
        """Subscribe the backend to ``topic`` unless already done (backend worker only)."""
        if topic in self._backend_subscribed:
            return
        try:
            self.backend.subscribe(topic, type_name, self._deliverer(topic), qos)
        except BaseException:
            if token is not None:
                self._detach(token)
            raise
        with self._lock:
            self._backend_subscribed[topic] = type_name
            self._pending_topics.pop(topic, None)

    def _detach(self, token: bytes) -> None:
        """Forget one subscription; unsubscribe the backend from its last (worker only)."""
        with self._lock:
            topic = self._token_topic.pop(token, None)
            if topic is None:
                return
            remaining = self._topic_tokens.get(topic, frozenset()) - {token}
            if remaining:
                self._topic_tokens[topic] = remaining
                return
            self._topic_tokens.pop(topic, None)
            self._pending_topics.pop(topic, None)
            subscribed = self._backend_subscribed.pop(topic, None)
        if subscribed is not None:
            self.backend.unsubscribe(topic)

    def _deliverer(self, topic: str) -> Callable[[dict[str, Any]], None]:
        topic_tokens = self._topic_tokens
        send = self.send_stream

        def deliver(message: dict[str, Any]) -> None:
            tokens = topic_tokens.get(topic)  # a frozenset, replaced (never changed) by workers
            if tokens:
                send(tokens, KIND_MESSAGE, encode(message))

        return deliver

    def _discover(self) -> None:
        """Poll the graph while subscriptions wait for their topics (discovery thread)."""
        while self._stop_reason is None:
            with self._lock:
                waiting = set(self._pending_topics)
            if not waiting:
                self._discovery_wake.wait()
                self._discovery_wake.clear()
                continue
            try:
                found = self.backend.topics()
            except Exception as exc:
                if self._stop_reason is not None:
                    return  # the backend is stopping under us
                LOG.warning("topic discovery failed (%s); trying again", exc)
                found = {}
            self._topic_types = dict(found)
            for topic in waiting & found.keys():
                self._submit(self._serial, self._resolve_pending, topic, found[topic])
            time.sleep(DISCOVERY_INTERVAL)

    def _resolve_pending(self, topic: str, type_name: str) -> None:
        """A topic someone waits for appeared: subscribe, or tell its subscribers why not."""
        with self._lock:
            if topic not in self._pending_topics:
                return
            qos = self._pending_topics[topic]
        try:
            self._backend_subscribe(topic, type_name, qos, None)
        except Exception as exc:
            error = exc if isinstance(exc, PyrosError) else _unexpected(exc)
            error = PyrosError(f"cannot subscribe to {topic} now that it exists: {error}")
            with self._lock:
                tokens = self._topic_tokens.get(topic, frozenset())
            body = encode(error.to_wire())
            for token in tokens:
                self.outbox.put(("token", token, KIND_ERROR, body))
                self._detach(token)

    def _send_goal(self, request: Request, token: bytes) -> dict[str, Any]:
        args = request.args
        action = self.actions.check(args["action"])
        type_name = args["type"] or self._action_types.get(action)
        if type_name is None:
            type_name = self._lookup(self._refresh_actions, action)
        if type_name is None:
            raise NotExposedError(f"action {action!r} has no server in the graph")
        goal = _Goal(action)
        with self._lock:
            self._goals[token] = goal

        def on_feedback(feedback: dict[str, Any]) -> None:
            self.send_stream((token,), KIND_FEEDBACK, encode(feedback))

        def on_done(outcome: GoalOutcome) -> None:
            with self._lock:
                goal.done = True
                self._goals.pop(token, None)
            body = {"status": outcome.status, "result": outcome.result, "message": outcome.message}
            self.send_stream((token,), KIND_RESULT, encode(body))

        try:
            handle = self.backend.send_goal(
                action, type_name, args["goal"], on_feedback, on_done, args["timeout"] or 10.0
            )
        except BaseException:
            with self._lock:
                self._goals.pop(token, None)
            raise
        with self._lock:
            goal.handle = handle
            cancel = goal.cancel_asked and not goal.done
        if cancel:
            handle.cancel()
        return {"action": action, "type": type_name, "id": handle.id}

    def _op_cancel_goal(self, request: Request) -> None:
        token = request.args["token"]
        with self._lock:
            goal = self._goals.get(token)
            if goal is None or goal.done:
                return
            goal.cancel_asked = True
            handle = goal.handle
        if handle is not None:
            handle.cancel()

    def _forget_goal(self, token: bytes) -> None:
        """The goal's client stopped listening: cancel the goal if it still runs."""
        with self._lock:
            goal = self._goals.pop(token, None)
            if goal is None or goal.done:
                return
            goal.cancel_asked = True
            handle = goal.handle
        if handle is not None:
            handle.cancel()


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        LOG.error("a node job failed", exc_info=future.exception())


def _unexpected(exc: BaseException) -> PyrosError:
    LOG.error("unexpected error", exc_info=exc)
    return PyrosError(f"the node failed unexpectedly: {type(exc).__name__}: {short(str(exc), 200)}")


def _type_name(value: Any) -> str | None:
    """Return a type name as ``pkg/Type`` (``pkg/msg/Type``, the ROS 2 form, is accepted)."""
    if value is None:
        return None
    try:
        return canonical_type(value)
    except MessageError:
        raise MessageError(f"message type must look like 'pkg/Type', not {short(value)}") from None


# --- process entry point ------------------------------------------------------------------


def _prepare_directory(name: str) -> Path:
    """Create the node's runtime directory, or take over one a dead node left behind.

    Raises:
        SpawnError: a live node already uses that name.
    """
    directory = node_directory(name)
    try:
        directory.mkdir(mode=0o700)
        return directory
    except FileExistsError:
        pass
    previous = read_node_file(directory)
    if previous is not None:
        pid = previous.get("pid")
        if isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid():
            raise SpawnError(f"a node named {name!r} is already running (pid {pid})")
    for leftover in NODE_FILES:
        (directory / leftover).unlink(missing_ok=True)
    return directory


def _write_node_file(directory: Path, description: dict[str, Any]) -> None:
    temporary = directory / (NODE_FILE + ".tmp")
    temporary.write_text(json.dumps(description), encoding="utf-8")
    temporary.replace(directory / NODE_FILE)


def _raise_file_limit() -> None:
    """Let this process open as many files as allowed: each subscription is a connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _owner_process(pid: int | None) -> psutil.Process | None:
    """Return the owner process to watch, None for a shared node.

    Raises:
        SpawnError: the owner is already gone (killed while the node was starting).
    """
    if pid is None:
        return None
    try:
        owner = psutil.Process(pid)
        if owner.status() != psutil.STATUS_ZOMBIE:
            return owner
    except psutil.Error:
        pass
    raise SpawnError(f"the process that started this node (pid {pid}) is gone")


def _owner_gone(pid: int) -> bool:
    try:
        _owner_process(pid)
    except SpawnError:
        return True
    return False


def serve(config: NodeConfig, report: Callable[[dict[str, Any]], None]) -> int:
    """Start the backend and serve; ``report`` gets the ready (or error) document once.

    Returns:
        The process exit code: 0 after a clean stop, 1 if the node never became ready.
    """
    directory: Path | None = None
    backend: Backend | None = None
    stopping = threading.Event()
    node: Node | None = None

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        if node is not None:
            node.stop(f"signal {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        try:
            check_node_name(config.name)
        except ValueError as exc:
            raise SpawnError(str(exc)) from None
        resolve("/" + config.graph_name, "node")
        owner = _owner_process(config.owner_pid)
        _raise_file_limit()
        directory = _prepare_directory(config.name)
        backend_class = backends.load(config.backend)
        try:
            backend = backend_class(config.graph_name, **config.options)
        except TypeError as exc:
            raise SpawnError(f"bad options for backend {config.backend!r}: {exc}") from exc
        early_events: list[dict[str, Any]] = []
        backend.events = early_events.append  # until the node's sockets exist
        backend.start()
        if stopping.is_set():  # the spawner went away while we started
            raise SpawnError("stopped by a signal during start-up")
        _owner_process(config.owner_pid)  # still there after the backend's start-up?
        node = Node(config, backend, directory, owner)
        backend.events = node.event
        for event in early_events:
            node.event(event)
    except Exception as exc:
        if backend is not None:
            backend.stop()
        if directory is not None:
            remove_node_directory(directory)
        error = exc if isinstance(exc, PyrosError) else _unexpected(exc)
        report({"ok": False, "error": error.to_wire()})
        return 1
    description = node.describe()
    _write_node_file(directory, description)
    report({"ok": True, **description})
    if config.owner_pid is not None and _owner_gone(config.owner_pid):
        node.stop("the spawner went away before the node was ready")
    node.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m pyros._node``: configuration on stdin, ready line on a fd."""
    parser = argparse.ArgumentParser(prog="python -m pyros._node")
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--detach", action="store_true", help="double-fork (shared nodes)")
    args = parser.parse_args(argv)
    if args.detach and os.fork() > 0:  # before any thread exists: a safe fork
        os._exit(0)  # the spawner reaps this; the node lives on, reparented to init
    logging.basicConfig(level=logging.INFO, format="pyros node: %(levelname)s %(message)s")
    ready = os.fdopen(args.ready_fd, "w", encoding="utf-8")

    def report(document: dict[str, Any]) -> None:
        """Send the ready line; a spawner that is gone no longer needs it."""
        try:
            ready.write(json.dumps(document) + "\n")
            ready.close()
        except OSError:  # BrokenPipeError: the spawner died while the node started
            pass

    try:
        config = NodeConfig.from_json(sys.stdin.read())
    except SpawnError as exc:
        report({"ok": False, "error": exc.to_wire()})
        return 1
    return serve(config, report)


if __name__ == "__main__":
    sys.exit(main())
