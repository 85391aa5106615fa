"""The ``ros2`` backend: one rclpy node in the pyros node process, in a ROS 2 graph.

Importing this module imports no ROS library; :meth:`Ros2Backend.start` finds ROS 2
(:func:`pyros_ros.environment.setup_ros2`: the PyPI wheels in this environment, or an install
in ``/opt/ros``), imports rclpy and starts a :class:`pyros_ros.ros2.session.Session`, which
does the work. This class checks the options and states the contract; see
:class:`pyros.backends.base.Backend` for what each method promises.

ROS 2 specifics:

- types are reported as the graph names them (``std_msgs/msg/String``); ``pkg/Type`` and
  ``pkg/msg/Type`` are both accepted;
- time and duration are the messages ``{"sec", "nanosec"}``; ``{"secs", "nsecs"}`` is
  accepted too;
- parameters are named ``<node>:<param>`` (``/talker:gains.p``), listed from every node in the
  graph and read and written through the nodes' parameter services;
- subscriptions adapt their QoS to the publishers unless told otherwise
  (:mod:`pyros_ros.ros2.qos`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyros.backends.base import (
    Backend,
    BackendGoal,
    DoneCallback,
    FeedbackCallback,
    MessageCallback,
    QoS,
)
from pyros.exceptions import PyrosError, SpawnError
from pyros_ros.environment import setup_ros2

if TYPE_CHECKING:
    from pyros_ros.ros2.session import Session

__all__ = ["Ros2Backend", "MAX_DOMAIN_ID"]

MAX_DOMAIN_ID = 232
"""The largest ROS domain id: DDS ports for higher ids overflow (ROS 2 domain ID docs,
https://docs.ros.org/en/rolling/Concepts/Intermediate/About-Domain-ID.html)."""


def _check_domain_id(value: Any, source: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DOMAIN_ID:
        raise TypeError(f"domain_id ({source}) must be an int in 0..{MAX_DOMAIN_ID}, not {value!r}")
    return value


class Ros2Backend(Backend):
    """A ROS 2 graph through rclpy.

    Args:
        node_name: base name of the node, ``"pyros_abc123"``; the node registers as
            ``/pyros_abc123``.
        domain_id: the ROS domain (0..232); default: the ``ROS_DOMAIN_ID`` environment
            variable, else 0. Discovery follows ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (set it to
            ``LOCALHOST`` to stay on this machine) as for any rclpy node.

    Attributes:
        domain_id: the domain in use once :meth:`start` returned, else None.

    Raises:
        TypeError: an unknown option, or a domain id that is not an int in 0..232.
    """

    name = "ros2"

    def __init__(self, node_name: str, *, domain_id: int | None = None) -> None:
        super().__init__(node_name)
        self._domain_option = None if domain_id is None else _check_domain_id(domain_id, "option")
        self.domain_id: int | None = None
        self._session: Session | None = None
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Find ROS 2, start the rclpy node and its executor thread.

        Raises:
            SpawnError: ROS 2 is not installed (the message says what to ``pip install``);
                ``ROS_DOMAIN_ID`` is not a domain id; or rclpy refused to start the node.
        """
        if self._session is not None or self._stopped:
            raise SpawnError("Ros2Backend.start() was already called")
        domain = self._domain_option
        if domain is None and os.environ.get("ROS_DOMAIN_ID", "").strip():
            try:
                domain = _check_domain_id(os.environ["ROS_DOMAIN_ID"], "ROS_DOMAIN_ID")
            except TypeError as exc:
                raise SpawnError(str(exc)) from None
        setup_ros2()
        from pyros_ros.ros2.session import Session

        self._session = Session(self.node_name, domain)
        self.domain_id = 0 if domain is None else domain

    def stop(self) -> None:
        """Destroy the node (it leaves the graph at once) and shut rclpy's context down.

        Goals still running end with ``"aborted"``. Idempotent.
        """
        self._stopped = True
        if self._session is not None:
            self._session.stop()

    def _run(self) -> Session:
        if self._session is None or self._stopped:
            raise PyrosError("the ros2 backend is not running (start() not called, or stopped)")
        return self._session

    # --- graph -------------------------------------------------------------------------------

    def topics(self) -> dict[str, str]:
        """Return every topic in the graph with its type, ``{"/chatter": "std_msgs/msg/String"}``.

        Hidden names (a token starting with ``_``, such as actions' ``/x/_action/status``) are
        left out, as ``ros2 topic list`` does, and so is ``/parameter_events`` while only this
        node uses it.
        """
        return self._run().topics()

    def services(self) -> dict[str, str]:
        """Return every service in the graph with its type (hidden names left out)."""
        return self._run().services()

    def params(self) -> list[str]:
        """Return ``<node>:<param>`` for every parameter of every node in the graph.

        Each node is asked through its ``list_parameters`` service, all at once; a node that
        does not answer within :data:`pyros_ros.ros2.params.PARAM_LIST_TIMEOUT` seconds is
        left out.
        """
        return self._run().params.names()

    def actions(self) -> dict[str, str]:
        """Return every action in the graph, ``{"/fibonacci": "test_msgs/action/Fibonacci"}``."""
        return self._run().action_names()

    def nodes(self) -> list[str]:
        """Return the full names of the graph's nodes, sorted (hidden ``_`` names left out)."""
        return self._run().nodes()

    def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic: ``type``, ``publishers``, ``subscribers`` (node names), and
        ``publisher_qos``/``subscriber_qos`` (one ``{"node", "reliability", "durability"...}``
        per endpoint).

        Raises:
            NotExposedError: the topic does not exist in the graph.
        """
        return self._run().topic_info(topic)

    def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service: ``{"type": str, "providers": [node]}``.

        Raises:
            NotExposedError: the service does not exist in the graph.
        """
        return self._run().service_info(service)

    def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node: ``publishes``, ``subscribes``, ``services``, ``clients``,
        ``actions`` (served) and ``action_clients``, each ``{name: type}``.

        Raises:
            NotExposedError: no node of that name in the graph.
        """
        return self._run().node_info(node)

    def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action: ``{"type": str, "servers": [node], "clients": [node]}``.

        Raises:
            NotExposedError: no server offers the action.
        """
        return self._run().action_info(action)

    def definition(self, type: str) -> str:
        """Return the ``.msg``/``.srv``/``.action`` file of a type, as installed in
        ``share/<package>/`` (what ``ros2 interface show --raw`` prints).

        Raises:
            MessageError: the type is unknown.
        """
        return self._run().definition(type)

    # --- topics ------------------------------------------------------------------------------

    def publish(
        self, topic: str, type: str, message: dict[str, Any], qos: QoS | None = None
    ) -> None:
        """Publish one message, creating the publisher on first use.

        A new publisher (reliable, volatile, keep-last 10 unless ``qos`` says otherwise) waits
        up to :data:`pyros_ros.ros2.session.SUBSCRIBER_WAIT` seconds for the graph's compatible
        subscriptions to match it, so that a one-shot publish reaches them.

        Raises:
            MessageError: unknown type; the dict does not fit it (``field`` names the field);
                the topic has another type here or in the graph; or a bad ``qos``.
        """
        self._run().publish(topic, type, message, qos)

    def subscribe(
        self, topic: str, type: str, callback: MessageCallback, qos: QoS | None = None
    ) -> None:
        """Subscribe; ``callback`` gets each message as a dict on the executor thread.

        Without ``qos`` the subscription adapts to the publishers (transient-local publishers:
        a late subscriber gets their last messages; best-effort publishers still deliver), and
        re-adapts when publishers with other policies appear. Keys given in ``qos`` are kept
        as given. Subscribing again to a subscribed topic replaces the subscription.

        Raises:
            MessageError: unknown type, the topic has another type in the graph, or bad qos.
        """
        self._run().subscribe(topic, type, callback, qos)

    def unsubscribe(self, topic: str) -> None:
        """Destroy the topic's subscription, if any. Idempotent."""
        if self._session is not None and not self._stopped:
            self._session.unsubscribe(topic)

    # --- services ----------------------------------------------------------------------------

    def call(
        self, service: str, type: str, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """Call a service and return its response.

        Raises:
            MessageError: unknown type, the request does not fit it, or the service has
                another type in the graph.
            NotExposedError: no server provides the service.
            ServiceError: the server left the graph while answering.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        return self._run().call(service, type, request, timeout)

    # --- parameters --------------------------------------------------------------------------

    def get_param(self, name: str) -> Any:
        """Return a parameter, ``"/talker:gains.p"``; a prefix gives the dict under it.

        Raises:
            ParamNotSetError: not set, the node is gone or serves no parameters, or the name
                is not ``<node>:<param>``.
            TimeoutError: the node did not answer.
        """
        return self._run().params.get(name)

    def set_param(self, name: str, value: Any) -> None:
        """Set a parameter through its node's ``set_parameters`` service.

        A dict sets the parameters under the name as a prefix (``{"p": 1.0}`` at
        ``/talker:gains`` sets ``gains.p``); an int for a double parameter is set as a double.

        Raises:
            MessageError: a value no ROS 2 parameter can hold (None, a mixed list...).
            NotExposedError: the node is not in the graph or serves no parameters.
            PyrosError: the node refused, with its reason (undeclared, read-only, wrong type).
            TimeoutError: the node did not answer.
        """
        self._run().params.set(name, value)

    def delete_param(self, name: str) -> None:
        """Undeclare a parameter, or every parameter under the name as a prefix.

        Raises:
            ParamNotSetError: nothing is set there, or the node is gone.
            PyrosError: the node refused (it does not allow undeclaring that parameter).
        """
        self._run().params.delete(name)

    # --- actions -----------------------------------------------------------------------------

    def send_goal(
        self,
        action: str,
        type: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal through rclpy's ``ActionClient`` and wait until it is accepted.

        ``on_done`` gets ``"aborted"`` (with a message) if the action server leaves the graph
        before the result: within about 0.1 s when it leaves cleanly, after its DDS lease
        (20 s by default) when it is killed.

        Raises:
            MessageError: the goal does not fit the type (names the field), or the action has
                another type in the graph.
            NotExposedError: no server offers the action.
            ActionError: the server rejected the goal (``status="rejected"``).
            TimeoutError: no answer from the server within ``timeout``.
        """
        return self._run().actions.send_goal(action, type, goal, on_feedback, on_done, timeout)
