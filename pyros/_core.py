"""The client core that the sync and asyncio clients share, with no I/O in it.

:mod:`pyros.client` (threads) and :mod:`pyros.asyncio` (an event loop) are thin pumps around
this module, as websockets' ``sync`` and ``asyncio`` clients are around its protocol and
httpx's ``Client`` and ``AsyncClient`` around ``BaseClient``. What a behaviour means is written
here once:

* :class:`Ops` builds each request (op, arguments, how long to wait for the reply) and checks
  the caller's arguments;
* :class:`ClientCore` holds a connection's identity, the subscription and goal tables, and
  fails everything when the node dies or the client closes;
* :class:`SubscriptionCore` is one subscription's bounded queue (drop-oldest, ROS queue
  semantics), latest message, drop counts (client and node) and callback policy;
* :class:`GoalCore` is one goal's status, feedback queue and outcome.

The pumps own the sockets: each subscription and each goal has its own SUB socket, read by
the thread or task that waits on it (no stream thread handing messages over), and feed what
they read to these classes with ``receive``.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import itertools
import logging
import math
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from pyros._protocol import (
    CLIENT_PREFIX,
    EVENT_PREFIX,
    HEARTBEAT_PREFIX,
    KIND_ERROR,
    KIND_FEEDBACK,
    KIND_MESSAGE,
    KIND_RESULT,
    MAX_TIMEOUT,
    MESSAGE_PREFIX,
    Event,
    Heartbeat,
    Liveness,
    StreamItem,
    check_qos,
    decode,
    parse_stream,
)
from pyros.exceptions import (
    ActionError,
    ForkError,
    NodeDiedError,
    ProtocolError,
    PyrosError,
    TimeoutError,
    from_wire,
)

__all__ = [
    "REQUEST_TIMEOUT",
    "CALL_MARGIN",
    "GOAL_TIMEOUT",
    "LOGGER",
    "Op",
    "Ops",
    "ClientCore",
    "ClientBase",
    "SubscriptionCore",
    "GoalCore",
    "FINISHED",
    "check_wait",
    "Deadline",
    "MONITOR_POLL",
    "STREAM_RCVHWM",
]

REQUEST_TIMEOUT = 10.0
"""Seconds a request other than ``call`` and ``send_goal`` waits for its reply by default."""

CALL_MARGIN = 1.0
"""Seconds a ``call`` waits beyond its own timeout, so the node's ServiceError/TimeoutError
(which says more) arrives before the client gives up."""

MONITOR_POLL = 0.1
"""Seconds between two checks that the node process still lives."""

STREAM_RCVHWM = 100_000
"""Messages a subscription's SUB socket buffers before ZeroMQ holds the rest in the node."""

GOAL_TIMEOUT = 10.0
"""Seconds a new goal waits for the action server to accept or reject it."""

LOGGER = logging.getLogger("pyros")
"""The logger of the pyros clients (callback errors, warnings about missing topics)."""


class _End(enum.Enum):
    FINISHED = "finished"


FINISHED: Final = _End.FINISHED

H = TypeVar("H")
"""Returned by :meth:`GoalCore.next_feedback` and :meth:`SubscriptionCore.next_message` once
nothing more will come."""


def check_wait(timeout: float | None, what: str = "timeout") -> float | None:
    """Check a caller's timeout: None (wait forever) or a number of seconds >= 0.

    Timeouts longer than :data:`~pyros._protocol.MAX_TIMEOUT` are treated as forever.

    Raises:
        ValueError: not a number, NaN, or negative.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValueError(f"{what} must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, not {timeout!r}")
    return None if timeout > MAX_TIMEOUT else float(timeout)


class Deadline:
    """The end of a wait for ``what``: ``timeout`` seconds after ``now`` (None: never).

    Time is passed in (the core reads no clock).
    """

    def __init__(self, now: float, timeout: float | None, what: str) -> None:
        self.at = None if timeout is None else now + timeout
        self.timeout = timeout
        self.what = what

    def check(self, ready: Callable[[], H | None], now: float) -> tuple[H | None, float | None]:
        """Return ``(value, None)`` once ``ready()`` gives a value, else ``(None, seconds
        left)`` (None left: wait for ever).

        Raises:
            TimeoutError: nothing came and the time is up.
            Whatever ``ready`` raises (the stream ended).
        """
        value = ready()
        if value is not None:
            return value, None
        if self.at is None:
            return None, None
        if now >= self.at:
            raise TimeoutError(f"no {self.what} within {self.timeout} s")
        return None, self.at - now


@dataclass(frozen=True)
class Op:
    """One request to send: ``op`` with ``args``; the caller waits ``timeout`` s for the reply."""

    op: str
    args: dict[str, Any]
    timeout: float | None = REQUEST_TIMEOUT


class Ops:
    """Builds the request of each client method (the same for the sync and asyncio clients).

    Each method checks the caller's arguments and returns an :class:`Op`; the node's answer
    is the method's result unless the method's docstring on :class:`pyros.Client` says
    otherwise.
    """

    @staticmethod
    def simple(op: str) -> Op:
        """``topics``, ``services``, ``params``, ``actions``, ``nodes``, ``info``."""
        return Op(op, {})

    @staticmethod
    def hello(client_id: str, timeout: float) -> Op:
        """The first request of a connection: the node counts the client from then on."""
        return Op("hello", {"client": client_id}, timeout)

    @staticmethod
    def shutdown(timeout: float) -> Op:
        """Ask the node to stop."""
        return Op("shutdown", {}, timeout)

    @staticmethod
    def publish(topic: str, message: Any, type: str | None, qos: Any) -> Op:
        """Publish ``message`` on ``topic``."""
        return Op("publish", {"topic": topic, "message": message, "type": type, "qos": qos})

    @staticmethod
    def subscribe(topic: str, token: bytes, qos: Any) -> Op:
        """Subscribe ``token`` (whose SUB socket is already connected) to ``topic``."""
        return Op("subscribe", {"topic": topic, "token": token, "qos": check_qos(qos)})

    @staticmethod
    def unsubscribe(token: bytes) -> Op:
        """Stop a subscription."""
        return Op("unsubscribe", {"token": token})

    @staticmethod
    def call(service: str, request: Any, timeout: float | None) -> Op:
        """Call ``service``; the reply waits :data:`CALL_MARGIN` beyond the call's timeout.

        A timeout of None (or longer than :data:`~pyros._protocol.MAX_TIMEOUT`) waits for
        ever: the node is told the longest timeout it takes.

        Raises:
            ValueError: ``timeout`` is not a number of seconds >= 0.
        """
        timeout = check_wait(timeout)
        if timeout == 0:
            raise ValueError("a service call needs a timeout above 0 s (None waits forever)")
        wait = None if timeout is None else timeout + CALL_MARGIN
        sent = MAX_TIMEOUT if timeout is None else timeout
        return Op("call", {"service": service, "request": request, "timeout": sent}, wait)

    @staticmethod
    def get_param(name: str) -> Op:
        """Read a parameter."""
        return Op("get_param", {"name": name})

    @staticmethod
    def set_param(name: str, value: Any) -> Op:
        """Write a parameter."""
        return Op("set_param", {"name": name, "value": value})

    @staticmethod
    def delete_param(name: str) -> Op:
        """Delete a parameter."""
        return Op("delete_param", {"name": name})

    @staticmethod
    def send_goal(action: str, goal: Any, token: bytes) -> Op:
        """Send a goal; the reply comes once the server accepted it."""
        args = {"action": action, "goal": goal, "token": token, "timeout": GOAL_TIMEOUT}
        return Op("send_goal", args, GOAL_TIMEOUT + CALL_MARGIN)

    @staticmethod
    def cancel_goal(token: bytes) -> Op:
        """Ask the server to cancel a goal."""
        return Op("cancel_goal", {"token": token})

    @staticmethod
    def describe(op: str, key: str, name: str) -> Op:
        """``topic_info``, ``service_info``, ``action_info``, ``node_info``, ``definition``."""
        return Op(op, {key: name})


class ClientCore:
    """What one client connection knows, whatever does its I/O.

    Args:
        description: the node's ready report or ``node.json`` (``name``, ``pid``,
            ``endpoints``...).

    Attributes:
        id: this client's unique id (hex string).
        name: the node's name.
        node_pid: the node's process id.
        description: what the node reported.
        closed: the client was closed.
        dead: why the node counts as dead, or None.
        stalled: the node has sent no heartbeat for this many seconds (it lives: the client
            keeps waiting), or None.
    """

    def __init__(self, description: dict[str, Any]) -> None:
        self.id = uuid.uuid4().hex
        self.name: str = description["name"]
        self.node_pid: int = description["pid"]
        self.description = description
        self.endpoints: dict[str, str] = description["endpoints"]
        self.owner_pid = os.getpid()
        self.closed = False
        self.dead: PyrosError | None = None
        self.stalled: float | None = None
        self._tokens = itertools.count(1)
        self._liveness = Liveness(now=0.0)

    def new_token(self) -> bytes:
        """Return a stream token no other subscription or goal of any client uses."""
        return f"{self.id}/{next(self._tokens)}".encode()

    @staticmethod
    def stream_prefix(token: bytes) -> bytes:
        """The SUB subscription that receives what the node sends to ``token``."""
        return MESSAGE_PREFIX + token

    def monitor_prefixes(self) -> list[bytes]:
        """The SUB subscriptions of the monitor socket: heartbeats, node events, and this
        client's presence (the node counts its clients from it)."""
        return [HEARTBEAT_PREFIX, EVENT_PREFIX, CLIENT_PREFIX + self.id.encode()]

    def start_monitor(self, now: float) -> None:
        """The monitor connected at ``now`` (seconds): the first heartbeat is due."""
        self._liveness = Liveness(now=now)

    def monitor_heard(self, frames: list[bytes], now: float) -> dict[str, Any] | None:
        """Take one message from the monitor socket; return a node event, if it was one."""
        item = parse_stream(frames)
        if isinstance(item, Heartbeat):
            self._liveness.heard(item, now)
        elif isinstance(item, Event):
            return item.data
        return None

    def check_stalled(self, now: float) -> None:
        """Update :attr:`stalled` from the heartbeats heard up to ``now``."""
        self.stalled = self._liveness.stalled(now)

    def check_usable(self) -> None:
        """Raise why no request can be made now.

        Raises:
            ForkError: this is a forked child of the process that made the client.
            PyrosError: the client is closed.
            NodeDiedError: the node died.
        """
        if os.getpid() != self.owner_pid:
            raise ForkError(
                f"this Client was created in process {self.owner_pid} and cannot be used after "
                "os.fork(); create a new one in the child (pyros.attach(name) or "
                "pyros.connect(name), e.g. in gunicorn's post_fork or Celery's "
                "worker_process_init), or use pyros.SharedClient, which does it for you"
            )
        if self.closed:
            raise PyrosError("the client is closed")
        if self.dead is not None:
            raise NodeDiedError(str(self.dead)) from self.dead

    def die(self, error: PyrosError) -> bool:
        """Record that the node died; return False if it was already known dead."""
        if self.dead is not None:
            return False
        self.dead = error
        return True

    def __repr__(self) -> str:
        state = "closed" if self.closed else "dead" if self.dead else "open"
        return f"node={self.name!r} pid={self.node_pid} {state}"


class ClientBase:
    """What :class:`pyros.Client` and :class:`pyros.asyncio.Client` share, I/O aside.

    Args:
        description: the node's ready report (``endpoints``, ``name``, ``pid``...).
        process: the node process when this client owns it, else None.

    Attributes:
        id: this client's unique id (hex string).
        name: the node's name.
        node_pid: the node's process id.
        description: what the node reported when it started.
    """

    def __init__(self, description: dict[str, Any], process: Any) -> None:
        self._core = core = ClientCore(description)
        self.id = core.id
        self.name = core.name
        self.node_pid = core.node_pid
        self.description = description
        self._process = process
        self._event_handlers: list[Callable[[dict[str, Any]], Any]] = []

    @property
    def owns_node(self) -> bool:
        """True if this client started the node and stops it on ``close()``."""
        return self._process is not None

    @property
    def stalled(self) -> float | None:
        """Seconds the live node has been silent, when over 3 s; None while it is healthy."""
        return self._core.stalled

    def on_event(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        """Call ``handler(event)`` for each node event.

        Events are dicts such as ``{"event": "disconnected", ...}`` and ``{"event":
        "reconnected", ...}`` (a backend that reconnects by itself). The sync client runs
        handlers on its callback thread; the asyncio client in its event loop (a coroutine
        function's result is awaited in a task).
        """
        self._event_handlers.append(handler)

    def _begin(self, make: Callable[[bytes], H]) -> H:
        """Check the client can be used, and make a subscription or goal with a new token."""
        self._core.check_usable()
        return make(self._core.new_token())

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self._core!r}>"


class _StreamCore:
    """What subscriptions and goals share: a token, a stream, and an end (error or close).

    Args:
        client: the client it belongs to.
        token: its stream token.

    Each client's subclass names its stream class in ``_stream_class``: it is built with
    ``(client, token, core)`` and has a ``release()`` method.
    """

    _stream_class: Any = None

    def __init__(self, client: Any, token: bytes) -> None:
        self.token = token
        self.closed = False
        self.error: PyrosError | None = None
        self._client = client
        self._stream = self._stream_class(client, token, self)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Wrap the request that starts this subscription or goal: if it fails, the stream's
        socket is released (:meth:`_release`) and the error re-raised."""
        try:
            yield
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        """Close the stream's socket (the client's subclass keeps it in ``_stream``)."""
        self._stream.release()

    def feed(self, items: list[StreamItem]) -> list[Any]:
        """Take the items read from the socket; return what they brought for a callback."""
        brought: list[Any] = []
        for item in items:
            brought.extend(self.receive(item))
        return brought

    def receive(self, item: StreamItem) -> list[Any]:
        """Take one stream item (each kind of stream knows how)."""
        raise NotImplementedError

    def fail(self, error: PyrosError | None) -> None:
        """End the stream: ``error`` for the node dying, None for the client closing."""
        if error is None:
            self.closed = True
        elif self.error is None:
            self.error = error

    def _raise_if_ended(self, what: str) -> None:
        if self.error is not None:
            if isinstance(self.error, NodeDiedError):
                raise NodeDiedError(str(self.error)) from self.error
            raise self.error
        if self.closed:
            raise PyrosError(f"{what} is closed")


class SubscriptionCore(_StreamCore):
    """One subscription's state: bounded queue, latest message, counters, end.

    Args:
        client: the client it belongs to.
        topic: the topic as the caller named it (absolute once the node confirmed it).
        token: the subscription's stream token.
        callback: the caller's callback, or None.
        queue_size: messages kept for ``get``; when full the oldest is dropped and counted
            (ROS queue semantics; 1 keeps only the newest).

    Attributes:
        topic: the absolute topic name.
        type: the message type as the graph names it, or None while the topic does not exist.
        similar: when the topic did not exist at subscribe time, the closest existing names.
        received: messages received in all.
        callback_errors: exceptions raised by the callback (each logged on ``pyros``).
    """

    def __init__(
        self, client: Any, topic: str, token: bytes, callback: Any, queue_size: int
    ) -> None:
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int of at least 1, not {queue_size!r}")
        super().__init__(client, token)
        self.topic = topic
        self.type: str | None = None
        self.similar: list[str] = []
        self.received = 0
        self.callback_errors = 0
        self._callback = callback
        self._queue: collections.deque[bytes] = collections.deque(maxlen=queue_size)
        self._client_dropped = 0
        self._node_dropped = 0
        self._latest_body: bytes | None = None

    @property
    def dropped(self) -> int:
        """Messages lost to a full queue: in this client's queue plus in the node's."""
        return self._client_dropped + self._node_dropped

    @property
    def queued(self) -> int:
        """Messages waiting to be read."""
        return len(self._queue)

    def confirm(self, reply: dict[str, Any]) -> None:
        """Take the node's answer to ``subscribe``: the absolute topic, its type, similar names."""
        self.topic = reply["topic"]
        self.type = reply.get("type")
        self.similar = list(reply.get("similar") or [])
        if self.type is None:
            hint = f"; did you mean {', '.join(self.similar)}?" if self.similar else ""
            LOGGER.warning(
                "topic %s does not exist yet: the subscription waits for it to appear%s",
                self.topic,
                hint,
            )

    def receive(self, item: StreamItem) -> list[Any]:
        """Take one stream item for this subscription (its callback reads the queue)."""
        if item.kind == KIND_MESSAGE:
            self.received += 1
            if len(self._queue) == self._queue.maxlen:
                self._client_dropped += 1
            self._queue.append(item.body)
            self._latest_body = item.body
            if item.dropped > self._node_dropped:
                self._node_dropped = item.dropped
        elif item.kind == KIND_ERROR:
            self.fail(_error_from(item.body))
        return []

    def pop(self) -> dict[str, Any] | None:
        """Return the oldest queued message, or None; raise if none will come any more.

        Raises:
            NodeDiedError: the node died and the queue is empty.
            PyrosError: the subscription is closed, or the node could not subscribe (the
                error says why: an unknown type, a failed backend subscription...).
        """
        if self._queue:
            return _message_from(self._queue.popleft())
        self._raise_if_ended(f"subscription to {self.topic}")
        return None

    def next_message(self) -> dict[str, Any] | Literal[_End.FINISHED] | None:
        """Return the oldest queued message, :data:`FINISHED` once the subscription is closed
        and empty, or None to wait (for iteration).

        Raises:
            NodeDiedError, PyrosError: as :meth:`pop`, except for a plain close.
        """
        if self.closed and not self._queue and self.error is None:
            return FINISHED
        return self.pop()

    def latest(self) -> dict[str, Any] | None:
        """Return the most recent message received, without consuming it (None before any)."""
        body = self._latest_body
        return None if body is None else _message_from(body)

    def report_callback_error(self) -> None:
        """Count and log (with its traceback) an exception the callback just raised."""
        self.callback_errors += 1
        LOGGER.exception("pyros: the callback of the subscription to %s raised", self.topic)

    def __repr__(self) -> str:
        return f"{self.topic} type={self.type} queued={len(self._queue)} dropped={self.dropped}"


class GoalCore(_StreamCore):
    """One goal's state: status, feedback queue, outcome.

    Args:
        client: the client it belongs to.
        action: the action as the caller named it (absolute once the node confirmed it).
        token: the goal's stream token.
        feedback: the caller's feedback callback, or None.

    Attributes:
        action: the absolute action name.
        type: the action type as the graph names it.
        id: the goal id the action server knows it by.
        status: ``"accepted"``, ``"executing"`` (feedback arrived), ``"canceling"``, then one
            of ``"succeeded"``, ``"canceled"``, ``"aborted"`` (``action_msgs/GoalStatus``
            names).
        message: why the goal ended without success, when the server or node said.
    """

    _MAX_FEEDBACK = 10_000

    def __init__(self, client: Any, action: str, token: bytes, feedback: Any) -> None:
        super().__init__(client, token)
        self.action = action
        self.type: str | None = None
        self.id: str | None = None
        self._state = "pending"
        self._result: dict[str, Any] | None = None
        self.message = ""
        self.feedback_dropped = 0
        self._callback = feedback
        self._feedback: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=self._MAX_FEEDBACK
        )
        self.callback_errors = 0

    @property
    def status(self) -> str:
        """The goal's state as last heard (see the class docstring)."""
        return self._state

    @property
    def done(self) -> bool:
        """True once the goal has ended (or cannot be followed any more)."""
        return self._state in ("succeeded", "canceled", "aborted", "rejected") or (
            self.error is not None or self.closed
        )

    def confirm(self, reply: dict[str, Any]) -> None:
        """Take the node's answer to ``send_goal``: the goal was accepted."""
        self.action = reply["action"]
        self.type = reply.get("type")
        self.id = reply.get("id")
        if self._state == "pending":
            self._state = "accepted"

    def canceling(self) -> None:
        """Note that a cancel was asked for."""
        if not self.done:
            self._state = "canceling"

    def receive(self, item: StreamItem) -> list[dict[str, Any]]:
        """Take one stream item; return the feedback messages it brought, for a callback."""
        if item.kind == KIND_FEEDBACK:
            feedback = _message_from(item.body)
            if self._state in ("pending", "accepted"):
                self._state = "executing"
            if self._callback is None:
                if len(self._feedback) == self._feedback.maxlen:
                    self.feedback_dropped += 1
                self._feedback.append(feedback)
            return [feedback]
        if item.kind == KIND_RESULT:
            outcome = _message_from(item.body)
            status = outcome.get("status")
            self._state = status if isinstance(status, str) else "aborted"
            result = outcome.get("result")
            self._result = result if isinstance(result, dict) else None
            self.message = str(outcome.get("message") or "")
        elif item.kind == KIND_ERROR:
            self.fail(_error_from(item.body))
        return []

    def outcome(self) -> dict[str, Any] | None:
        """Return the result if the goal succeeded, None while it runs.

        Raises:
            ActionError: the goal was aborted or cancelled (``status`` says which; ``result``
                holds what the server sent with it).
            NodeDiedError, PyrosError: the node died, or the goal can no longer be followed.
        """
        if self._state == "succeeded":
            return self._result if self._result is not None else {}
        if self._state in ("canceled", "aborted", "rejected"):
            detail = f": {self.message}" if self.message else ""
            raise ActionError(
                f"goal on {self.action} {self._state}{detail}", self._state, self._result
            )
        self._raise_if_ended(f"goal on {self.action}")
        return None

    def next_feedback(self) -> dict[str, Any] | Literal[_End.FINISHED] | None:
        """Return the next queued feedback, :data:`FINISHED` once the goal has ended and every
        feedback was read, or None to wait.

        Raises:
            NodeDiedError, PyrosError: as :meth:`outcome`, for a goal that cannot be followed.
        """
        if self._feedback:
            return self._feedback.popleft()
        if self._state in ("succeeded", "canceled", "aborted", "rejected"):
            return FINISHED
        self._raise_if_ended(f"goal on {self.action}")
        return None

    def report_callback_error(self) -> None:
        """Count and log an exception the feedback callback just raised."""
        self.callback_errors += 1
        LOGGER.exception("pyros: the feedback callback of a goal on %s raised", self.action)

    def __repr__(self) -> str:
        return f"{self.action} id={self.id} status={self._state}"


def _message_from(body: bytes) -> dict[str, Any]:
    try:
        message = decode(body)
    except ProtocolError:
        return {}
    return message if isinstance(message, dict) else {}


def _error_from(body: bytes) -> PyrosError:
    try:
        return from_wire(decode(body))
    except ProtocolError as exc:
        return exc
