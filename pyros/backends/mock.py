"""The ``mock`` backend: a small ROS graph played inside the node process, no ROS needed.

It holds what a ROS master and a few nodes would:

* a **pub/sub bus**. :meth:`MockBackend.publish` checks each message against its type
  (:func:`pyros.message_types.check_message`) when the type is in the registry of
  :mod:`pyros.message_types`; a well-formed ``pkg/Type`` the registry does not know is accepted
  with any dict of plain data (None, bool, int, float, str, bytes, lists, dicts), so apps can
  use their own types with the mock. Subscribers get the complete, normalised dict, in publish
  order. A topic exists, as in ``rostopic list``, while anything publishes or subscribes to it.
* a **simulated turtle** shaped like turtlesim's ``turtle1`` (http://wiki.ros.org/turtlesim):
  it listens on ``/turtle1/cmd_vel`` (geometry_msgs/Twist; ``linear.x`` in m/s, ``angular.z`` in
  rad/s) and publishes ``/turtle1/pose`` (turtlesim/Pose) at ``rate`` Hz from its own thread. See
  :class:`Turtle` for the physics.
* **services**:

  ==============================  ==========================  ================================
  ``/reset``                      std_srvs/Empty              turtle back to start (turtle on)
  ``/turtle1/teleport_absolute``  turtlesim/TeleportAbsolute  move the turtle (turtle on)
  ``/set_flag``                   std_srvs/SetBool            keeps a flag, says old and new
  ``/trigger``                    std_srvs/Trigger            counts its calls
  ``/fail``                       std_srvs/Trigger            always fails: to test errors
  ``/slow``                       std_srvs/Trigger            answers after 1 s: to test timeouts
  ==============================  ==========================  ================================

* **actions**: ``/turtle1/rotate_absolute`` (turtlesim/action/RotateAbsolute, turtle on: turns
  the turtle to ``theta`` with feedback ``remaining``, result ``delta``; a new goal preempts the
  running one) and ``/fibonacci`` (test_msgs/action/Fibonacci: ``order`` in, the sequence as it
  grows as feedback every 10 ms, the sequence as result; a negative order is rejected, one
  above 46 aborted). :meth:`MockBackend.add_action` adds more.

  :meth:`MockBackend.add_service` adds more (tests use it for slow or custom services).
* a **parameter server** with ROS semantics (rosmaster's): names are absolute, setting a dict
  sets a namespace (``/a = {"b": 1}`` makes ``/a/b`` gettable and replaces what was under
  ``/a``), getting a namespace returns a dict, ``params()`` lists leaf names. With the turtle on it
  is seeded like turtlesim: ``/turtlesim/background_r`` 69, ``_g`` 86, ``_b`` 255.

Threads: every method may be called from any thread. Subscription callbacks run on the thread
that published (the turtle's thread for ``/turtle1/pose``, the caller's otherwise) with no lock
held, so a callback may publish; a message published from inside a callback is delivered after
the current one has reached every subscriber, which keeps each topic in publish order. When a
topic has several subscribers, each gets its own copy of the message. A callback that raises
makes the publisher's call raise once every subscriber has the message; on the turtle's thread
that ends the thread (Python reports it through ``threading.excepthook``), so callbacks should
not raise.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    ActionError,
    MessageError,
    NotExposedError,
    ParamNotSetError,
    ServiceError,
    TimeoutError,
)
from pyros.message_types import INT_RANGES, REGISTRY, canonical_type, check_param_value

if sys.version_info < (3, 11):  # pragma: no cover - the backport on Python 3.10
    from exceptiongroup import ExceptionGroup

__all__ = [
    "MockBackend",
    "Turtle",
    "ServiceHandler",
    "ActionHandler",
    "GoalContext",
    "ARENA_SIZE",
    "TURTLE_START",
    "COMMAND_TIMEOUT",
    "PHYSICS_STEP",
    "DEFAULT_RATE",
]

ARENA_SIZE = 11.088889
"""Side of turtlesim's square arena in metres: (500 px - 1) / 45 px per metre."""

TURTLE_START = ARENA_SIZE / 2
"""Where turtlesim puts ``turtle1``: x = y = 5.544445 m, theta = 0."""

COMMAND_TIMEOUT = 1.0
"""Seconds after the last ``cmd_vel`` when the turtle stops, as turtlesim does."""

PHYSICS_STEP = 0.016
"""Longest physics sub-step in seconds, turtlesim's update period (62.5 Hz)."""

DEFAULT_RATE = 30.0
"""Default ``/turtle1/pose`` publishing rate in Hz."""

ServiceHandler = Callable[[dict[str, Any]], dict[str, Any]]
"""A mock service: takes the checked request dict, returns the response dict (or raises)."""

ROTATE_SPEED = 2.0
"""Fastest turn of the mock's ``/turtle1/rotate_absolute`` action, rad/s."""

ROTATE_TOLERANCE = 0.01
"""Radians from the goal heading at which a rotation counts as done."""

SERVICE_THREADS = 16
"""Mock service calls that run at once (as many as the node's call workers)."""

SLOW_SERVICE = 1.0
"""Seconds the mock's ``/slow`` service takes to answer: to test timeouts."""

FIBONACCI_STEP = 0.01
"""Seconds between two feedback messages of the mock's ``/fibonacci`` action."""

FIBONACCI_MAX_ORDER = 46
"""Largest ``order`` whose Fibonacci numbers fit in int32; larger goals are aborted."""

_NAME_RE = re.compile(r"(?:/[A-Za-z][A-Za-z0-9_]*)+\Z")
_TWO_PI = 2.0 * math.pi
_NODE = "node"  # owner of what the node asks for through the Backend methods
_TURTLE = "turtle"  # owner of the simulated turtle's publisher and subscriber
_OPTIONS = ("rate", "turtle")


def _wrap_angle(theta: float) -> float:
    """Return ``theta`` (radians) wrapped into (-pi, pi]."""
    return theta - _TWO_PI * math.ceil((theta - math.pi) / _TWO_PI)


class Turtle:
    """The physics of turtlesim's turtle, with time passed in so it can be tested.

    The turtle drives like turtlesim's: ``linear_x`` (m/s) along its heading and ``angular_z``
    (rad/s) about its centre; ``linear.y`` is ignored (turtlesim before Noetic). x and y are
    clamped to the arena [0, :data:`ARENA_SIZE`] (the turtle slides along a wall it hits), theta
    is wrapped into (-pi, pi], and a command older than :data:`COMMAND_TIMEOUT` seconds stops
    the turtle. Unlike turtlesim, which takes Euler steps, each sub-step of at most
    :data:`PHYSICS_STEP` follows the exact arc, so the path does not depend on how often
    :meth:`advance` is called (away from the walls).

    Thread-safe: the methods take an internal lock and call nothing outside.

    Args:
        now: the current time in seconds, on any clock that only goes forward (the mock uses
            ``time.monotonic()``).
    """

    def __init__(self, now: float) -> None:
        self._lock = threading.Lock()
        self._time = now
        self._x = self._y = TURTLE_START
        self._theta = 0.0
        self._linear = self._angular = 0.0
        self._command_time: float | None = None

    def reset(self, now: float) -> None:
        """Put the turtle back at the start, standing still, as turtlesim's ``/reset`` does.

        Args:
            now: current time in seconds.
        """
        with self._lock:
            self._time = max(self._time, now)
            self._x = self._y = TURTLE_START
            self._theta = 0.0
            self._linear = self._angular = 0.0
            self._command_time = None

    def command(self, linear_x: float, angular_z: float, now: float) -> None:
        """Apply a velocity command (a ``cmd_vel`` Twist) from time ``now`` on.

        The turtle first moves to ``now`` under the previous command.

        Args:
            linear_x: forward speed in m/s.
            angular_z: turn rate in rad/s, counter-clockwise positive.
            now: time of the command in seconds.
        """
        with self._lock:
            self._advance(now)
            self._linear, self._angular = float(linear_x), float(angular_z)
            self._command_time = max(self._time, now)

    def teleport(self, x: float, y: float, theta: float, now: float) -> None:
        """Move the turtle to a pose at once (turtlesim's ``teleport_absolute``).

        Args:
            x: metres, clamped to the arena.
            y: metres, clamped to the arena.
            theta: radians, wrapped into (-pi, pi].
            now: current time in seconds.
        """
        with self._lock:
            self._advance(now)
            self._x = min(max(float(x), 0.0), ARENA_SIZE)
            self._y = min(max(float(y), 0.0), ARENA_SIZE)
            self._theta = _wrap_angle(float(theta))

    def advance(self, now: float) -> dict[str, float]:
        """Move the turtle to time ``now`` and return its pose then.

        A ``now`` earlier than the turtle's time moves nothing.

        Args:
            now: current time in seconds.

        Returns:
            The pose as a turtlesim/Pose dict (see :meth:`pose`).
        """
        with self._lock:
            self._advance(now)
            return self._pose()

    def pose(self) -> dict[str, float]:
        """Return the pose at the turtle's current time, as a turtlesim/Pose dict.

        Returns:
            ``{"x", "y"}`` in metres, ``"theta"`` in radians, ``"linear_velocity"`` in m/s and
            ``"angular_velocity"`` in rad/s (0 once the command has timed out).
        """
        with self._lock:
            return self._pose()

    def _pose(self) -> dict[str, float]:
        return {
            "x": self._x,
            "y": self._y,
            "theta": self._theta,
            "linear_velocity": self._linear,
            "angular_velocity": self._angular,
        }

    def _advance(self, now: float) -> None:
        if now <= self._time:
            return
        if self._command_time is not None:
            expires = self._command_time + COMMAND_TIMEOUT
            moving_until = min(now, expires)
            if moving_until > self._time:
                self._integrate(moving_until - self._time)
            if now >= expires:
                self._linear = self._angular = 0.0
                self._command_time = None
        self._time = now

    def _integrate(self, duration: float) -> None:
        steps = max(1, math.ceil(duration / PHYSICS_STEP))
        h = duration / steps
        v, w = self._linear, self._angular
        for _ in range(steps):
            theta0 = self._theta
            theta1 = theta0 + w * h
            if abs(w * h) < 1e-12:
                self._x += v * h * math.cos(theta0)
                self._y += v * h * math.sin(theta0)
            else:
                radius = v / w
                self._x += radius * (math.sin(theta1) - math.sin(theta0))
                self._y -= radius * (math.cos(theta1) - math.cos(theta0))
            self._x = min(max(self._x, 0.0), ARENA_SIZE)
            self._y = min(max(self._y, 0.0), ARENA_SIZE)
            self._theta = _wrap_angle(theta1)


@dataclass
class _Topic:
    type: str  # "" while only untyped subscribers know the topic
    publishers: set[str] = field(default_factory=set)
    subscribers: list[tuple[str, MessageCallback]] = field(default_factory=list)
    latched: bool = False


@dataclass(frozen=True)
class _Service:
    type: str
    handler: ServiceHandler
    provider: str = "/mock"


class GoalContext:
    """What a mock action handler gets besides the goal: feedback and cancellation.

    Attributes:
        canceled: set when the client asked to cancel (or a newer goal preempted this one).
        preempted: set, with ``canceled``, when a newer goal on the same action replaced it.
    """

    def __init__(self, on_feedback: FeedbackCallback) -> None:
        self.canceled = threading.Event()
        self.preempted = threading.Event()
        self._on_feedback = on_feedback

    def feedback(self, message: dict[str, Any]) -> None:
        """Send one feedback message to the client."""
        self._on_feedback(message)


ActionHandler = Callable[[dict[str, Any], GoalContext], GoalOutcome]
"""A mock action: takes the checked goal and a :class:`GoalContext`, returns the outcome.

It runs on a thread of its own and should watch ``context.canceled``. To reject a goal,
raise :class:`~pyros.exceptions.ActionError` before the first feedback."""


@dataclass(frozen=True)
class _Action:
    type: str
    handler: ActionHandler
    accept: Callable[[dict[str, Any]], None]
    provider: str = "/mock"


class _MockGoal(BackendGoal):
    def __init__(self, goal_id: str, context: GoalContext) -> None:
        self.id = goal_id
        self._context = context

    def cancel(self) -> None:
        self._context.canceled.set()


class MockBackend(Backend):
    """A whole small ROS graph in one process: bus, turtle, services and parameters.

    Args:
        node_name: the node's name (kept for symmetry with the other backends).
        **options: ``rate``: ``/turtle1/pose`` publishing rate in Hz (default 30; 0 runs no
            thread, and :meth:`tick` moves the turtle instead); ``turtle``: whether to run the
            simulated turtle with its topics, services and parameters (default True).

    Raises:
        TypeError: an unknown option, or an option of the wrong type.
        ValueError: ``rate`` is negative or not finite.
    """

    name = "mock"

    def __init__(self, node_name: str = "pyros_mock", **options: Any) -> None:
        super().__init__(node_name)
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"unknown option(s) for the mock backend: {', '.join(unknown)} "
                f"(it takes {', '.join(_OPTIONS)})"
            )
        rate = options.get("rate", DEFAULT_RATE)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise TypeError(f"mock option 'rate' must be a number of Hz, got {rate!r}")
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"mock option 'rate' must be a finite number >= 0 Hz, got {rate}")
        with_turtle = options.get("turtle", True)
        if not isinstance(with_turtle, bool):
            raise TypeError(f"mock option 'turtle' must be True or False, got {with_turtle!r}")
        self.rate = float(rate)
        """``/turtle1/pose`` publishing rate in Hz; 0 means no thread."""
        self.with_turtle = with_turtle
        """Whether :meth:`start` creates the simulated turtle."""
        self.turtle: Turtle | None = None
        """The simulated turtle while started with the turtle on, else None."""

        self._lock = threading.Lock()  # topics, services, params, started; never held in callbacks
        self._topics: dict[str, _Topic] = {}
        self._services: dict[str, _Service] = {}
        self._actions: dict[str, _Action] = {}
        self._running: dict[str, GoalContext] = {}  # action -> its current goal
        self._latched: dict[str, dict[str, Any]] = {}
        self._params: dict[str, Any] = {}
        self._started = False
        self._servers: concurrent.futures.ThreadPoolExecutor | None = None
        self._state_lock = threading.Lock()  # the built-in services' state
        self._flag = False
        self._triggers = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._local = threading.local()  # per-thread queue of messages being delivered

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Create the built-in services, parameters and (unless ``turtle=False``) the turtle.

        With a turtle and a ``rate`` above 0, starts the thread that publishes
        ``/turtle1/pose``. Calling it again while started does nothing.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
            self._servers = concurrent.futures.ThreadPoolExecutor(
                SERVICE_THREADS, thread_name_prefix=f"pyros-mock-service-{self.node_name}"
            )
            self._services = {
                "/set_flag": _Service("std_srvs/SetBool", self._set_flag),
                "/trigger": _Service("std_srvs/Trigger", self._trigger),
                "/fail": _Service("std_srvs/Trigger", _fail),
                "/slow": _Service("std_srvs/Trigger", _slow),
            }
            self._actions = {
                "/fibonacci": _Action("test_msgs/action/Fibonacci", _fibonacci, _check_order),
            }
            if not self.with_turtle:
                return
            turtle = self.turtle = Turtle(time.monotonic())
            self._services["/reset"] = _Service("std_srvs/Empty", self._reset, "/turtlesim")
            self._services["/turtle1/teleport_absolute"] = _Service(
                "turtlesim/TeleportAbsolute", self._teleport, "/turtlesim"
            )
            self._actions["/turtle1/rotate_absolute"] = _Action(
                "turtlesim/action/RotateAbsolute", self._rotate, _accept_any, "/turtlesim"
            )
            self._params = {
                "turtlesim": {"background_r": 69, "background_g": 86, "background_b": 255}
            }
            self._topics["/turtle1/cmd_vel"] = _Topic(
                "geometry_msgs/Twist", subscribers=[(_TURTLE, self._on_cmd_vel)]
            )
            self._topics["/turtle1/pose"] = _Topic("turtlesim/Pose", publishers={_TURTLE})
            if self.rate > 0:
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run_turtle,
                    args=(turtle, 1.0 / self.rate),
                    name=f"pyros-mock-turtle-{self.node_name}",
                    daemon=True,
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop the turtle's thread and forget every topic, service and parameter.

        Idempotent. :meth:`start` may be called again afterwards.

        Raises:
            RuntimeError: the turtle's thread did not end within 5 seconds (a subscriber
                callback is blocked); everything is cleared all the same.
        """
        self._stopping.set()
        thread, self._thread = self._thread, None
        with self._lock:
            self._started = False
            servers, self._servers = self._servers, None
            self._topics.clear()
            self._services.clear()
            self._actions.clear()
            self._latched.clear()
            self._params = {}
            self.turtle = None
            running = list(self._running.values())
            self._running.clear()
        for context in running:
            context.canceled.set()
        if servers is not None:
            servers.shutdown(wait=False, cancel_futures=True)
        with self._state_lock:
            self._flag = False
            self._triggers = 0
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
            if thread.is_alive():
                raise RuntimeError(
                    f"{thread.name} did not stop within 5 s: a subscriber callback is blocked"
                )

    # -- graph ----------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Return every topic that has a publisher or a typed subscriber, with its type."""
        with self._lock:
            return {name: topic.type for name, topic in self._topics.items() if topic.type}

    def services(self) -> dict[str, str]:
        """Return every service with its type, ``{"/set_flag": "std_srvs/SetBool", ...}``."""
        with self._lock:
            return {name: service.type for name, service in self._services.items()}

    # -- topics ---------------------------------------------------------------------------

    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message on the bus and deliver it to the topic's subscribers.

        Args:
            topic: absolute topic name.
            type: ``pkg/Type`` (``pkg/msg/Type`` accepted); ``""`` means the topic's current
                type.
            message: the message; missing fields of a registered type take their defaults.

        Raises:
            NotExposedError: ``topic`` is not a valid absolute ROS name.
            MessageError: the message does not fit a registered type (``field`` names the
                field), is not a dict of plain data (unregistered type), ``type`` is malformed,
                differs from the topic's type, or is ``""`` for a topic without a type.
            Exception: whatever a subscriber callback raised, after every subscriber got the
                message (an ``ExceptionGroup`` when several raised).
        """
        _check_name(topic, "topic")
        type_name = _known_type(type) if type else ""
        with self._lock:
            existing = self._topics.get(topic)
            current = existing.type if existing is not None else ""
        if not type_name:
            if not current:
                raise MessageError(f"topic {topic} does not exist yet: give its type to publish")
            type_name = current
        elif current and current != type_name:
            raise MessageError(f"topic {topic} has type {current}, not {type_name}")
        checked = _normalise(type_name, message)
        with self._lock:
            state = self._topics.setdefault(topic, _Topic(type_name))
            if not state.type:
                state.type = type_name
            elif state.type != type_name:
                raise MessageError(f"topic {topic} has type {state.type}, not {type_name}")
            state.publishers.add(_NODE)
            callbacks = [callback for _, callback in state.subscribers]
            if qos is not None and qos.get("durability") == "transient_local":
                state.latched = True
            if state.latched:
                self._latched[topic] = checked
        self._deliver(checked, callbacks)

    def subscribe(
        self, topic: str, type: str, callback: MessageCallback, qos: QoS | None = None
    ) -> None:
        """Call ``callback(dict)`` for each message published on ``topic`` from now on.

        Args:
            topic: absolute topic name.
            type: ``pkg/Type``, or ``""`` to take whatever type the topic has or gets (the
                topic is then listed by :meth:`topics` once it has a type).
            callback: called with each message; see the module docstring for threads.

        Raises:
            NotExposedError: ``topic`` is not a valid absolute ROS name.
            MessageError: ``type`` is malformed or differs from the topic's type.
        """
        _check_name(topic, "topic")
        type_name = _known_type(type) if type else ""
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                state = self._topics[topic] = _Topic(type_name)
            elif type_name and state.type and state.type != type_name:
                raise MessageError(f"topic {topic} has type {state.type}, not {type_name}")
            elif type_name:
                state.type = type_name
            state.subscribers.append((_NODE, callback))
            latched = self._latched.get(topic)
        if latched is not None:  # a transient-local topic: the late subscriber gets the last
            self._deliver(_copy_plain(latched), [callback])

    def unsubscribe(self, topic: str) -> None:
        """Drop the node's subscriptions to ``topic``; the topic goes when nothing uses it.

        Idempotent.
        """
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                return
            state.subscribers = [s for s in state.subscribers if s[0] != _NODE]
            if not state.subscribers and not state.publishers:
                del self._topics[topic]
                self._latched.pop(topic, None)

    def tick(self, now: float | None = None) -> dict[str, float]:
        """Move the turtle to ``now`` and publish its pose on ``/turtle1/pose``.

        The turtle's thread calls this ``rate`` times a second; with ``rate=0`` tests call it
        to step time themselves.

        Args:
            now: seconds on the ``time.monotonic()`` clock; None for now.

        Returns:
            The pose published (turtlesim/Pose dict).

        Raises:
            RuntimeError: there is no turtle (``turtle=False``, or not started).
            Exception: whatever a ``/turtle1/pose`` subscriber callback raised.
        """
        turtle = self.turtle
        if turtle is None:
            raise RuntimeError("the mock backend has no turtle (turtle=False, or not started)")
        pose = turtle.advance(time.monotonic() if now is None else now)
        with self._lock:
            state = self._topics.get("/turtle1/pose")
            callbacks = [callback for _, callback in state.subscribers] if state else []
        self._deliver(dict(pose), callbacks)
        return pose

    # -- services -------------------------------------------------------------------------

    def call(
        self, service: str, type: str, request: dict[str, Any] | None, timeout: float
    ) -> dict[str, Any]:
        """Call a mock service and return its checked response.

        The handler runs on one of the mock's service threads, as a server would serve it.

        Args:
            service: absolute service name.
            type: ``pkg/Type`` of the service, or ``""`` for whatever type it has.
            request: the request dict (None means an empty request); missing fields take
                their defaults.
            timeout: seconds to wait for the answer; after that the call raises at once, and
                the handler's late answer is dropped (the mock cannot interrupt a handler).

        Returns:
            The response, complete and normalised.

        Raises:
            NotExposedError: no such service (or not a valid name).
            MessageError: the request does not fit the service's type, or ``type`` differs.
            ServiceError: the handler raised (``/fail`` always does) or answered with a
                response that does not fit the type.
            TimeoutError: the handler took longer than ``timeout``.
        """
        _check_name(service, "service")
        with self._lock:
            entry = self._services.get(service)
            servers = self._servers
        if entry is None or servers is None:
            raise NotExposedError(f"service {service} does not exist in the mock graph")
        if type and canonical_type(type) != entry.type:
            raise MessageError(f"service {service} has type {entry.type}, not {type}")
        checked = _normalise_part(entry.type, "Request", {} if request is None else request)
        answer = servers.submit(entry.handler, checked)
        try:
            response = answer.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"service {service} did not answer within {timeout} s") from None
        except Exception as exc:
            raise ServiceError(f"service {service} failed: {exc}") from exc
        try:
            return _normalise_part(entry.type, "Response", response)
        except MessageError as exc:
            raise ServiceError(f"service {service} gave an invalid response: {exc}") from exc

    def add_service(self, service: str, type: str, handler: ServiceHandler) -> None:
        """Offer a service in the mock graph, or replace the one of that name.

        Handlers run on the mock's service threads and may run concurrently.

        Args:
            service: absolute service name.
            type: ``pkg/Type``; requests and responses of registered types are checked, others
                must be dicts of plain data.
            handler: takes the request dict, returns the response dict; what it raises
                reaches the caller as :class:`~pyros.exceptions.ServiceError`.

        Raises:
            NotExposedError: ``service`` is not a valid absolute ROS name.
            MessageError: ``type`` is malformed.
        """
        _check_name(service, "service")
        entry = _Service(canonical_type(type), handler)
        with self._lock:
            self._services[service] = entry

    def remove_service(self, service: str) -> None:
        """Withdraw a service (built-in or added). Idempotent."""
        with self._lock:
            self._services.pop(service, None)

    # -- actions ----------------------------------------------------------------------------

    def actions(self) -> dict[str, str]:
        """Return every action with its type, ``{"/fibonacci": "test_msgs/action/Fibonacci"}``."""
        with self._lock:
            return {name: action.type for name, action in self._actions.items()}

    def add_action(
        self,
        action: str,
        type: str,
        handler: ActionHandler,
        accept: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Offer an action in the mock graph, or replace the one of that name.

        Args:
            action: absolute action name.
            type: ``pkg/action/Type`` (or ``pkg/Type``); goals of registered types are checked.
            handler: runs each accepted goal on a thread of its own (see
                :data:`ActionHandler`).
            accept: called with each goal before it is accepted; raising
                :class:`~pyros.exceptions.ActionError` rejects it.

        Raises:
            NotExposedError: ``action`` is not a valid absolute ROS name.
            MessageError: ``type`` is malformed.
        """
        _check_name(action, "action")
        canonical = canonical_type(type)
        package, name = canonical.split("/")
        entry = _Action(f"{package}/action/{name}", handler, accept or _accept_any)
        with self._lock:
            self._actions[action] = entry

    def send_goal(
        self,
        action: str,
        type: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Start a goal on a mock action server; see :meth:`Backend.send_goal`.

        A new goal on an action preempts the goal running there (which ends ``aborted``), as
        turtlesim's ``rotate_absolute`` does.

        Raises:
            NotExposedError: no such action.
            MessageError: the goal does not fit the type, or ``type`` differs.
            ActionError: the server rejected the goal (``/fibonacci``: a negative order).
        """
        _check_name(action, "action")
        with self._lock:
            entry = self._actions.get(action)
        if entry is None:
            raise NotExposedError(f"action {action} does not exist in the mock graph")
        if type and canonical_type(type) != canonical_type(entry.type):
            raise MessageError(f"action {action} has type {entry.type}, not {type}")
        checked = _normalise(canonical_type(entry.type) + "Goal", goal)
        entry.accept(checked)
        context = GoalContext(on_feedback)
        with self._lock:
            previous = self._running.get(action)
            self._running[action] = context
        if previous is not None:
            previous.preempted.set()
            previous.canceled.set()
        result_type = canonical_type(entry.type) + "Result"

        def run() -> None:
            try:
                outcome = entry.handler(checked, context)
                if outcome.result is not None:
                    outcome = GoalOutcome(
                        outcome.status, _normalise(result_type, outcome.result), outcome.message
                    )
            except Exception as exc:  # a handler bug aborts the goal, with the reason
                outcome = GoalOutcome("aborted", None, f"the action server failed: {exc}")
            with self._lock:
                if self._running.get(action) is context:
                    del self._running[action]
            on_done(outcome)

        goal_id = uuid.uuid4().hex
        threading.Thread(target=run, name=f"pyros-mock-goal-{action}", daemon=True).start()
        return _MockGoal(goal_id, context)

    # -- the graph, as rosnode/rostopic info would show it ---------------------------------

    def nodes(self) -> list[str]:
        """Return the mock graph's nodes: this node, ``/turtlesim`` and ``/mock``."""
        found = {"/" + self.node_name, "/mock"}
        if self.turtle is not None:
            found.add("/turtlesim")
        return sorted(found)

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: its type, publishing and subscribing nodes.

        Raises:
            NotExposedError: no such topic.
        """
        with self._lock:
            state = self._topics.get(topic)
            if state is None or not state.type:
                raise NotExposedError(f"topic {topic} does not exist in the mock graph")
            return {
                "type": state.type,
                "publishers": sorted({self._owner(owner) for owner in state.publishers}),
                "subscribers": sorted({self._owner(owner) for owner, _ in state.subscribers}),
            }

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: its type and providing node.

        Raises:
            NotExposedError: no such service.
        """
        entry = self._entry(self._services, service, "service")
        return {"type": entry.type, "providers": [entry.provider]}

    def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action: its type and server node.

        Raises:
            NotExposedError: no such action.
        """
        entry = self._entry(self._actions, action, "action")
        return {"type": entry.type, "servers": [entry.provider], "clients": []}

    def _entry(
        self, table: Mapping[str, _Service | _Action], name: str, kind: str
    ) -> _Service | _Action:
        """Return ``table[name]`` (the services or actions of the graph).

        Raises:
            NotExposedError: no such ``kind`` (service, action).
        """
        with self._lock:
            entry = table.get(name)
        if entry is None:
            raise NotExposedError(f"{kind} {name} does not exist in the mock graph")
        return entry

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node: what it publishes, subscribes to, and serves.

        Raises:
            NotExposedError: no such node.
        """
        if node not in self.nodes():
            raise NotExposedError(f"node {node} does not exist in the mock graph")
        with self._lock:
            publishes = {
                name: state.type
                for name, state in self._topics.items()
                if node in {self._owner(owner) for owner in state.publishers}
            }
            subscribes = {
                name: state.type
                for name, state in self._topics.items()
                if node in {self._owner(owner) for owner, _ in state.subscribers}
            }
            services = {
                name: entry.type for name, entry in self._services.items() if entry.provider == node
            }
            actions = {
                name: entry.type for name, entry in self._actions.items() if entry.provider == node
            }
        return {
            "publishes": publishes,
            "subscribes": subscribes,
            "services": services,
            "actions": actions,
        }

    def definition(self, type: str) -> str:
        """Return the built-in definition of a message, service or action type.

        Raises:
            MessageError: the mock does not know the type.
        """
        return REGISTRY.definition(type)

    def _owner(self, owner: str) -> str:
        return {_NODE: "/" + self.node_name, _TURTLE: "/turtlesim"}.get(owner, owner)

    # -- parameters -----------------------------------------------------------------------

    def params(self) -> list[str]:
        """Return the absolute names of every parameter that holds a value, sorted.

        Namespaces (dict values) are not listed themselves; their leaves are, as rosmaster's
        ``getParamNames`` does.
        """
        with self._lock:
            names: list[str] = []
            _leaf_names(self._params, "", names)
        return sorted(names)

    def get_param(self, name: str) -> Any:
        """Return a parameter's value, or a namespace as a nested dict (``"/"`` is everything).

        Args:
            name: absolute parameter name.

        Returns:
            A copy of the value: changing it changes nothing in the mock.

        Raises:
            NotExposedError: ``name`` is not a valid absolute name.
            ParamNotSetError: nothing is set at ``name``.
        """
        path = _param_path(name)
        with self._lock:
            node: Any = self._params
            for part in path:
                if not isinstance(node, dict) or part not in node:
                    raise ParamNotSetError(f"parameter {name} is not set")
                node = node[part]
            return _copy_plain(node)

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter; a dict value sets a namespace and replaces what was under it.

        Setting ``/a/b`` when ``/a`` holds a plain value turns ``/a`` into a namespace, as on
        the ROS parameter server.

        Args:
            name: absolute parameter name; ``"/"`` replaces everything (value must be a dict).
            value: what the ROS 1 parameter server holds (see
                :func:`pyros.message_types.check_param_value`); it is copied.

        Raises:
            NotExposedError: ``name`` is not a valid name.
            MessageError: ``value`` is not a parameter value (None, a 64-bit int, a bad
                key...), or ``"/"`` is set to a non-dict.
        """
        path = _param_path(name)
        copied = check_param_value(value, name)
        with self._lock:
            if not path:
                if not isinstance(copied, dict):
                    raise MessageError("the root parameter '/' can only be set to a dict")
                self._params = copied
                return
            node = self._params
            for part in path[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[path[-1]] = copied

    def delete_param(self, name: str) -> None:
        """Delete a parameter or a whole namespace, as rosmaster's ``deleteParam`` does.

        Raises:
            NotExposedError: ``name`` is not a valid absolute name.
            ParamNotSetError: nothing is set at ``name``.
        """
        path = _param_path(name)
        with self._lock:
            if not path:
                self._params = {}
                return
            node: Any = self._params
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict) or path[-1] not in node:
                raise ParamNotSetError(f"parameter {name} is not set")
            del node[path[-1]]

    # -- internals ------------------------------------------------------------------------

    def _deliver(self, message: dict[str, Any], callbacks: list[MessageCallback]) -> None:
        """Give ``message`` to ``callbacks`` in this thread, with no lock held.

        Messages published by a callback are queued and delivered after the current one, so
        every subscriber sees each topic in publish order.
        """
        if not callbacks:
            return
        pending: collections.deque[tuple[dict[str, Any], list[MessageCallback]]] | None
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append((message, callbacks))
            return
        pending = self._local.pending = collections.deque([(message, callbacks)])
        errors: list[Exception] = []
        try:
            while pending:
                message, callbacks = pending.popleft()
                copies = [message] + [_copy_plain(message) for _ in callbacks[1:]]
                for callback, copy in zip(callbacks, copies, strict=True):
                    try:
                        callback(copy)
                    except Exception as exc:  # re-raised below, once everyone has the message
                        errors.append(exc)
        finally:
            self._local.pending = None
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("subscription callbacks raised", errors)

    def _run_turtle(self, turtle: Turtle, period: float) -> None:
        next_tick = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            pose = turtle.advance(now)
            with self._lock:
                if self.turtle is not turtle:  # stopped (and maybe restarted) meanwhile
                    return
                state = self._topics.get("/turtle1/pose")
                callbacks = [callback for _, callback in state.subscribers] if state else []
            self._deliver(pose, callbacks)
            next_tick = max(next_tick + period, now)
            self._stopping.wait(max(0.0, next_tick - time.monotonic()))

    def _on_cmd_vel(self, twist: dict[str, Any]) -> None:
        turtle = self.turtle
        if turtle is not None:
            turtle.command(twist["linear"]["x"], twist["angular"]["z"], time.monotonic())

    def _reset(self, request: dict[str, Any]) -> dict[str, Any]:
        turtle = self.turtle
        if turtle is not None:
            turtle.reset(time.monotonic())
        return {}

    def _teleport(self, request: dict[str, Any]) -> dict[str, Any]:
        turtle = self.turtle
        if turtle is not None:
            turtle.teleport(request["x"], request["y"], request["theta"], time.monotonic())
        return {}

    def _rotate(self, goal: dict[str, Any], context: GoalContext) -> GoalOutcome:
        """turtlesim's ``rotate_absolute``: turn in place to ``theta``, reporting what is left."""
        turtle = self.turtle
        if turtle is None:
            return GoalOutcome("aborted", None, "the turtle is gone")
        start = turtle.pose()["theta"]
        target = _wrap_angle(goal["theta"])
        while True:
            theta = turtle.advance(time.monotonic())["theta"]
            remaining = _wrap_angle(target - theta)
            delta = {"delta": _wrap_angle(theta - start)}
            if context.canceled.is_set():
                turtle.command(0.0, 0.0, time.monotonic())
                if context.preempted.is_set():
                    return GoalOutcome("aborted", delta, "preempted by a newer goal")
                return GoalOutcome("canceled", delta)
            if abs(remaining) < ROTATE_TOLERANCE:
                turtle.command(0.0, 0.0, time.monotonic())
                return GoalOutcome("succeeded", delta)
            speed = math.copysign(min(ROTATE_SPEED, max(0.2, 4.0 * abs(remaining))), remaining)
            turtle.command(0.0, speed, time.monotonic())
            context.feedback({"remaining": remaining})
            context.canceled.wait(PHYSICS_STEP)

    def _set_flag(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._state_lock:
            old, self._flag = self._flag, request["data"]
        return {"success": True, "message": f"flag set to {request['data']} (was {old})"}

    def _trigger(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._state_lock:
            self._triggers += 1
            count = self._triggers
        return {"success": True, "message": f"triggered {count} time{'s' if count > 1 else ''}"}

    @property
    def flag(self) -> bool:
        """The value last set through ``/set_flag`` (False at start)."""
        with self._state_lock:
            return self._flag


def _fail(request: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("/fail always fails; it is there to test error handling")


def _slow(request: dict[str, Any]) -> dict[str, Any]:
    time.sleep(SLOW_SERVICE)
    return {"success": True, "message": f"answered after {SLOW_SERVICE} s"}


def _accept_any(goal: dict[str, Any]) -> None:
    return None


def _check_order(goal: dict[str, Any]) -> None:
    if goal["order"] < 0:
        raise ActionError(f"order must be >= 0, not {goal['order']}", "rejected")


def _fibonacci(goal: dict[str, Any], context: GoalContext) -> GoalOutcome:
    """test_msgs/Fibonacci: the first ``order`` + 1 Fibonacci numbers, one feedback a step.

    Goals above :data:`FIBONACCI_MAX_ORDER` are aborted once the numbers overflow int32.
    """
    sequence = [0, 1][: goal["order"] + 1]
    for _ in range(goal["order"] - 1):
        if context.canceled.wait(FIBONACCI_STEP):
            return GoalOutcome("canceled", {"sequence": sequence})
        following = sequence[-1] + sequence[-2]
        if following > INT_RANGES["int32"][1]:
            return GoalOutcome(
                "aborted",
                {"sequence": sequence},
                f"order {goal['order']} overflows int32 (at most {FIBONACCI_MAX_ORDER})",
            )
        sequence.append(following)
        context.feedback({"sequence": list(sequence)})
    return GoalOutcome("succeeded", {"sequence": sequence})


def _known_type(type_name: str) -> str:
    """Return ``pkg/Type`` for a message type the mock accepts.

    A package the mock knows (std_msgs, geometry_msgs, ...) must contain the type, so a typo
    such as ``std_msgs/Strin`` is refused as ROS refuses it; types of other packages are the
    application's own and are accepted as dicts of plain data.
    """
    canonical = canonical_type(type_name)
    if REGISTRY.knows_package(canonical) and not REGISTRY.is_message_type(canonical):
        raise MessageError(f"unknown message type {type_name!r}{REGISTRY.suggest(canonical)}")
    return canonical


def _check_name(name: str, kind: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise NotExposedError(f"{name!r} is not a valid absolute ROS {kind} name")


def _normalise(type_name: str, message: Any) -> dict[str, Any]:
    """Check a message of a registered type, or copy a plain dict of an unregistered one."""
    if REGISTRY.is_message_type(type_name):
        return REGISTRY.check_message(type_name, message)
    if not isinstance(message, dict):
        raise MessageError(f"message: expected a dict, got {type(message).__name__}")
    copied: dict[str, Any] = _plain(message, "")
    return copied


def _normalise_part(service_type: str, part: str, data: Any) -> dict[str, Any]:
    """Check a request or response (``part``) of a service type, registered or not."""
    return _normalise(f"{service_type}{part}", data)


def _plain(value: Any, path: str) -> Any:
    """Deep-copy plain data (tuples become lists, bytearrays bytes); MessageError otherwise."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        copied = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                raise MessageError(f"field {where!r}: keys must be strings", field=where)
            copied[key] = _plain(item, where)
        return copied
    raise MessageError(
        f"field {path!r}: {type(value).__name__} is not plain data", field=path or None
    )


def _copy_plain(value: Any) -> Any:
    """Deep-copy data already known to be plain (dicts and lists copied, the rest shared)."""
    if type(value) is dict:
        return {key: _copy_plain(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy_plain(item) for item in value]
    return value


def _param_path(name: str) -> list[str]:
    """Split an absolute parameter name into its parts (``"/"`` gives ``[]``)."""
    if not isinstance(name, str) or not (name == "/" or _NAME_RE.match(name.rstrip("/"))):
        raise NotExposedError(f"{name!r} is not a valid absolute ROS parameter name")
    return [part for part in name.split("/") if part]


def _leaf_names(tree: dict[str, Any], prefix: str, names: list[str]) -> None:
    for key, value in tree.items():
        full = f"{prefix}/{key}"
        if isinstance(value, dict):
            _leaf_names(value, full, names)
        else:
            names.append(full)
