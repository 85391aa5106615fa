"""The interface every backend implements, as the node process sees it.

A backend is the only code that talks to a ROS graph (or, for ``mock``, plays one). It lives in
the node process, never in a client. The node decides what is exposed (glob patterns) and fans
one backend subscription out to many clients; the backend only does what it is told.

Messages cross this interface as plain dicts shaped like the ROS message (ROS message
description spec, http://wiki.ros.org/msg): nested dicts for nested messages, lists for arrays,
``bytes`` for ``uint8[]``/``char[]``, ``{"secs": int, "nsecs": int}`` for ``time`` and
``duration``. Type names are ``pkg/Type``. Names passed in are absolute ROS names (``/chatter``).

Threads: the node calls backend methods from several threads at once (its main loop for
publishes on known topics, a worker thread for other requests, a pool for service calls), so
every method must be thread-safe. Subscription callbacks may run on any thread the backend
likes and must not block for long.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pyros.exceptions import MessageError, NotExposedError, PyrosError

__all__ = [
    "Backend",
    "BackendGoal",
    "GoalOutcome",
    "MessageCallback",
    "FeedbackCallback",
    "DoneCallback",
    "EventListener",
    "QoS",
    "GOAL_STATUSES",
    "FINAL_GOAL_STATUSES",
]

MessageCallback = Callable[[dict[str, Any]], None]
"""Called with each message received on a subscribed topic, as a plain dict."""

QoS = dict[str, Any]
"""A ROS 2 quality-of-service profile as plain data, already checked by the node.

Keys (each optional): ``reliability`` (``"reliable"`` | ``"best_effort"``), ``durability``
(``"volatile"`` | ``"transient_local"``), ``history`` (``"keep_last"`` | ``"keep_all"``),
``depth`` (int >= 1). The names are those of ``rclpy.qos`` (ROS 2 QoS design,
https://docs.ros.org/en/rolling/Concepts/Intermediate/About-Quality-of-Service-Settings.html).
None means "adapt to the publishers" for a subscription and the backend's default for a
publisher. ROS 1 maps ``durability: transient_local`` to a latched publisher and ignores the
rest; the mock keeps the last message of a transient-local topic for late subscribers.
"""

GOAL_STATUSES = (
    "accepted",
    "executing",
    "canceling",
    "succeeded",
    "canceled",
    "aborted",
    "rejected",
)
"""Goal states, named as in ROS 2's ``action_msgs/msg/GoalStatus`` (lower case).

ROS 1 actionlib's ``PENDING``/``ACTIVE``/``PREEMPTING``/``RECALLING`` map to ``accepted``,
``executing``, ``canceling``, ``canceling``; ``PREEMPTED``/``RECALLED`` to ``canceled``;
``LOST`` to ``aborted``."""

FINAL_GOAL_STATUSES = frozenset({"succeeded", "canceled", "aborted", "rejected"})
"""The states after which a goal gets no more feedback."""

FeedbackCallback = Callable[[dict[str, Any]], None]
"""Called with each feedback message of a goal, as a plain dict, in order."""


@dataclass(frozen=True)
class GoalOutcome:
    """How a goal ended.

    Attributes:
        status: one of :data:`FINAL_GOAL_STATUSES`. ``"rejected"`` only from backends that
            learn of a rejection after :meth:`Backend.send_goal` returned (rosbridge has no
            "accepted" message); the others raise ActionError from ``send_goal`` instead.
        result: the action's result message as a dict; None when the server gave none
            (it went away, or the goal was cancelled before it ran).
        message: why the goal ended without success, for the user ("the action server went
            away"); empty when there is nothing to add.
    """

    status: str
    result: dict[str, Any] | None = None
    message: str = ""


DoneCallback = Callable[[GoalOutcome], None]
"""Called exactly once per accepted goal, with how it ended."""

EventListener = Callable[[dict[str, Any]], None]
"""Called with a backend event for every client: ``{"event": "disconnected", ...}``."""


class BackendGoal(abc.ABC):
    """An accepted goal, as :meth:`Backend.send_goal` returns it.

    Attributes:
        id: the goal's id as the backend knows it (a UUID string on ROS 2; actionlib's goal
            id string on ROS 1).
    """

    id: str = ""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Ask the action server to cancel the goal; returns without waiting.

        The goal's ``on_done`` follows with ``"canceled"``, or with its final status if it
        ended first. Idempotent; a no-op once the goal has ended.
        """


class Backend(abc.ABC):
    """What a node process needs from a ROS graph.

    Args:
        node_name: the node's name in the graph, e.g. ``"pyros_kitchen"`` (registered as
            ``/pyros_kitchen``).
        **options: backend options from ``pyros.spawn(..., **options)`` or the CLI
            (``master_uri``, ``domain_id``, ``url``...). Unknown options raise ``TypeError``.
    """

    name: ClassVar[str] = ""

    resolves_types: ClassVar[bool] = False
    """True if :meth:`subscribe`, :meth:`call` and :meth:`send_goal` accept ``type=""`` and
    find the type themselves; the node then uses that when the graph cannot be listed (a
    rosbridge server without rosapi)."""

    def __init__(self, node_name: str, **options: Any) -> None:
        self.node_name = node_name
        self.events: EventListener | None = None
        """Set by the node before :meth:`start`: call it with events every client should
        see (a connection lost and regained...)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Join the graph. Called once, before anything else.

        Raises:
            SpawnError: the graph cannot be reached (no ROS master at the URI, ...), with a
                message that says where it looked.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Leave the graph: unregister every publisher, subscriber and service. Idempotent."""

    @abc.abstractmethod
    def topics(self) -> dict[str, str]:
        """Return every topic the graph knows now, ``{"/chatter": "std_msgs/String"}``."""

    @abc.abstractmethod
    def services(self) -> dict[str, str]:
        """Return every service the graph knows now, ``{"/set_flag": "std_srvs/SetBool"}``."""

    @abc.abstractmethod
    def params(self) -> list[str]:
        """Return the names of every parameter set now.

        ROS 1: absolute names on the parameter server (``/gains/p``). ROS 2: parameters belong
        to nodes and are named ``<node>:<param>`` (``/talker:gains.p``).
        """

    @abc.abstractmethod
    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message, creating the publisher on first use.

        Args:
            topic: absolute topic name.
            type: message type ``pkg/Type`` or ``pkg/msg/Type`` (both accepted).
            message: the message as a plain dict; missing fields take their ROS defaults.
            qos: the publisher's QoS (see :data:`QoS`), used when the publisher is created;
                None for the backend's default (ROS 2: reliable, volatile, keep_last 10).

        Raises:
            MessageError: the dict does not fit ``type`` (names the field), or ``type`` is
                unknown or differs from the topic's existing type.
        """

    @abc.abstractmethod
    def subscribe(
        self, topic: str, type: str, callback: MessageCallback, qos: QoS | None = None
    ) -> None:
        """Start receiving ``topic``; ``callback(dict)`` runs for each message.

        The node subscribes at most once per topic and QoS.

        Args:
            topic: absolute topic name.
            type: message type ``pkg/Type`` or ``pkg/msg/Type``.
            callback: called with each message as a plain dict.
            qos: the subscription's QoS; None adapts to the publishers (ROS 2: a
                transient-local publisher's last message reaches a late subscriber, a
                best-effort publisher still delivers).

        Raises:
            MessageError: ``type`` is unknown.
        """

    @abc.abstractmethod
    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic`` and unregister the subscriber. Idempotent."""

    @abc.abstractmethod
    def call(
        self, service: str, type: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service and return its response as a dict.

        Args:
            service: absolute service name.
            type: service type ``pkg/Type``.
            request: the request as a plain dict.
            timeout: seconds to wait for the server, in total.

        Raises:
            MessageError: the request does not fit the type.
            ServiceError: the server failed or went away while answering.
            NotExposedError: no such service exists in the graph.
            TimeoutError: no answer within ``timeout``.
        """

    @abc.abstractmethod
    def get_param(self, name: str) -> Any:
        """Return a parameter's value (plain data).

        Raises:
            ParamNotSetError: the parameter is not set.
        """

    @abc.abstractmethod
    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data (None, bool, int, float, str, bytes, list, dict)."""

    # --- optional: what not every backend offers. The defaults say so clearly. -------------

    def actions(self) -> dict[str, str]:
        """Return every action the graph offers now, with its type.

        ``{"/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute"}`` (ROS 1 actionlib
        names types ``pkg/NameAction`` without the ``Action`` suffix: ``pkg/Name``).
        """
        return {}

    def send_goal(
        self,
        action: str,
        type: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal to an action server and wait until the server accepts it.

        Args:
            action: absolute action name (``/turtle1/rotate_absolute``).
            type: action type ``pkg/Type`` or ``pkg/action/Type``.
            goal: the goal message as a plain dict; missing fields take their defaults.
            on_feedback: called with each feedback dict, in order, from any thread.
            on_done: called once, from any thread, when the accepted goal ends.
            timeout: seconds to wait for the server to accept or reject the goal.

        Returns:
            The accepted goal (cancel it with :meth:`BackendGoal.cancel`).

        Raises:
            MessageError: the goal does not fit the type (names the field).
            NotExposedError: no server offers the action.
            ActionError: the server rejected the goal.
            TimeoutError: no answer from the server within ``timeout``.
        """
        raise NotExposedError(f"the {self.name} backend offers no actions")

    def nodes(self) -> list[str]:
        """Return the absolute names of every node in the graph, sorted."""
        raise PyrosError(f"the {self.name} backend cannot list nodes")

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: ``{"type": str, "publishers": [node], "subscribers": [node]}``.

        Raises:
            NotExposedError: the topic does not exist in the graph.
        """
        raise PyrosError(f"the {self.name} backend cannot describe topics")

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: ``{"type": str, "providers": [node]}``.

        Raises:
            NotExposedError: the service does not exist in the graph.
        """
        raise PyrosError(f"the {self.name} backend cannot describe services")

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node: what it publishes, subscribes to and serves, with types.

        Returns ``{"publishes": {topic: type}, "subscribes": {...}, "services": {...}}``.

        Raises:
            NotExposedError: no node of that name in the graph.
        """
        raise PyrosError(f"the {self.name} backend cannot describe nodes")

    def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action: ``{"type": str, "servers": [node], "clients": [node]}``.

        Raises:
            NotExposedError: no server offers the action.
        """
        actions = self.actions()
        if action not in actions:
            raise NotExposedError(f"action {action!r} does not exist in the graph")
        return {"type": actions[action], "servers": [], "clients": []}

    def definition(self, type: str) -> str:
        """Return the text definition of a message, service or action type.

        The ``.msg``/``.srv``/``.action`` text as ``rosmsg show``/``ros2 interface show``
        print it (ROS message description spec, http://wiki.ros.org/msg).

        Raises:
            MessageError: the type is unknown to this backend.
        """
        raise MessageError(f"the {self.name} backend cannot show type {type!r}")

    def connection_info(self) -> dict[str, Any] | None:
        """Describe the backend's connection for ``client.info()["connection"]``, or None.

        A backend that talks to a server (rosbridge) says whether it is connected, how often
        it reconnected, and its last error.
        """
        return None

    def delete_param(self, name: str) -> None:
        """Delete a parameter (or a namespace of them).

        Raises:
            ParamNotSetError: nothing is set at ``name``.
        """
        raise PyrosError(f"the {self.name} backend cannot delete parameters")
