"""Actions on the ``ros2`` backend: goals through rclpy's ``ActionClient``.

:class:`Actions` belongs to a :class:`pyros_ros.ros2.session.Session` and uses its node and
executor: one ``ActionClient`` per action and type, goals sent with ``send_goal_async`` and
waited for with a deadline, feedback and results delivered from the executor thread (ROS 2
actions design, https://design.ros2.org/articles/actions.html). A goal whose action server
leaves the graph before its result ends ``"aborted"``: the session's watch thread calls
:meth:`Actions.check_servers`.

This module imports rclpy; import it only after :func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from rclpy.action.client import ActionClient
from rclpy.task import Future

from pyros.backends.base import BackendGoal, DoneCallback, FeedbackCallback, GoalOutcome
from pyros.exceptions import ActionError, MessageError, NotExposedError, PyrosError, TimeoutError
from pyros_ros.ros2 import conversion
from pyros_ros.ros2.futures import wait_future

if TYPE_CHECKING:
    from pyros_ros.ros2.session import Session

__all__ = ["Actions", "GOAL_STATUS"]

LOG = logging.getLogger("pyros.ros2")

GOAL_STATUS = {4: "succeeded", 5: "canceled", 6: "aborted"}
"""``action_msgs/msg/GoalStatus`` final states -> pyros status names."""


class _Goal(BackendGoal):
    """A goal the server accepted; :meth:`finish` calls ``on_done`` exactly once."""

    def __init__(
        self,
        actions: Actions,
        action: str,
        client: Any,
        handle: Any,
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
    ) -> None:
        self.action = action
        self.id = str(uuid.UUID(bytes=bytes(handle.goal_id.uuid)))
        self._actions = actions
        self.client = client
        self.servers: frozenset[tuple[int, ...]] = frozenset()
        self.handle = handle
        self.on_feedback = on_feedback
        self._on_done = on_done
        self._lock = threading.Lock()
        self.done = False

    def cancel(self) -> None:
        """Ask the server to cancel the goal (rclpy's ``cancel_goal_async``); no wait."""
        with self._lock:
            if self.done:
                return
        try:
            self.handle.cancel_goal_async()
        except Exception as exc:  # the context is shutting down: the goal ends anyway
            LOG.debug("cancel of goal %s failed: %s", self.id, exc)

    def finish(self, outcome: GoalOutcome) -> None:
        with self._lock:
            if self.done:
                return
            self.done = True
        self._actions.forget(self)
        try:
            self._on_done(outcome)
        except Exception:  # the node's callback failed: nobody else can be told
            LOG.exception("the done callback of goal %s failed", self.id)

    def feedback(self, message: Any) -> None:
        if self.done:
            return
        try:
            self.on_feedback(conversion.to_dict(message.feedback))
        except Exception:
            LOG.exception("the feedback callback of goal %s failed", self.id)


class Actions:
    """The goals of one session.

    Args:
        session: the session whose node and executor the action clients use.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._clients: dict[tuple[str, Any], Any] = {}
        self._used: dict[tuple[str, Any], float] = {}
        self._goals: dict[str, _Goal] = {}

    def _action_client_for(self, action: str, action_cls: Any) -> Any:
        with self._session.lock:
            client = self._clients.get((action, action_cls))
            if client is None:
                client = ActionClient(self._session.require(), action_cls, action)
                self._clients[(action, action_cls)] = client
            self._used[(action, action_cls)] = time.monotonic()
            return client

    def prune_clients(self, idle: float) -> None:
        """Destroy the action clients without goals, unused for ``idle`` seconds, whose
        server left the graph (the watch thread calls it)."""
        now = time.monotonic()
        with self._session.lock:
            busy = {id(goal.client) for goal in self._goals.values()}
            for key, client in list(self._clients.items()):
                if id(client) in busy or now - self._used.get(key, 0.0) < idle:
                    continue
                if client.server_is_ready():
                    continue
                client.destroy()
                del self._clients[key]
                self._used.pop(key, None)

    def send_goal(
        self,
        action: str,
        type_name: str,
        goal: dict[str, Any],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> BackendGoal:
        """Send a goal and wait until it is accepted; see ``Backend.send_goal``.

        Raises:
            MessageError, NotExposedError, ActionError, TimeoutError: as the Backend says.
        """
        deadline = time.monotonic() + timeout
        action_cls = conversion.action_class(type_name)
        msg = conversion.from_dict(action_cls.Goal, goal)
        existing = self._session.action_names().get(action)
        if existing is None:
            raise NotExposedError(f"action {action} has no server in the ROS graph")
        if existing != conversion.graph_name(action_cls):
            raise MessageError(
                f"action {action} has type {existing}, not {conversion.graph_name(action_cls)}"
            )
        client = self._action_client_for(action, action_cls)
        if not self._session.wait_ready(client.server_is_ready, deadline):
            raise TimeoutError(f"the server of {action} did not become reachable in {timeout:g} s")
        box: list[_Goal] = []
        early: list[Any] = []

        def feedback(message: Any) -> None:  # runs on the executor thread, in order
            if box:
                box[0].feedback(message)
            else:
                early.append(message)

        future = client.send_goal_async(msg, feedback_callback=feedback)
        outcome = wait_future(future, deadline, client.server_is_ready)
        if outcome != "done":
            future.add_done_callback(_cancel_if_accepted)
            if outcome == "timeout":
                raise TimeoutError(
                    f"the server of {action} did not answer the goal in {timeout:g} s"
                )
            raise ActionError(f"the server of {action} went away", status="aborted")
        if future.exception() is not None:
            raise ActionError(f"sending the goal to {action} failed: {future.exception()}")
        handle = future.result()
        if not handle.accepted:
            raise ActionError(f"the server of {action} rejected the goal", status="rejected")
        entry = _Goal(self, action, client, handle, on_feedback, on_done)
        entry.servers = self._action_servers(action)
        with self._session.lock:
            if self._session.stopped:
                entry.cancel()
                raise PyrosError("the ros2 backend is stopped")
            self._goals[entry.id] = entry
        self._session.executor.create_task(self._deliver_early, entry, early, box)
        result = handle.get_result_async()
        result.add_done_callback(lambda done: self._goal_result(entry, done))
        return entry

    @staticmethod
    def _deliver_early(entry: _Goal, early: list[Any], box: list[_Goal]) -> None:
        """On the executor thread: feedback that came before acceptance, then the rest."""
        for message in early:
            entry.feedback(message)
        early.clear()
        box.append(entry)

    def _goal_result(self, entry: _Goal, future: Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            reason = future.exception() or "the result request was cancelled"
            entry.finish(GoalOutcome("aborted", None, f"no result: {reason}"))
            return
        response: Any = future.result()
        status = GOAL_STATUS.get(response.status)
        if status is None:
            entry.finish(
                GoalOutcome(
                    "aborted", None, f"the server ended the goal with status {response.status}"
                )
            )
            return
        entry.finish(GoalOutcome(status, conversion.to_dict(response.result)))

    def _action_servers(self, action: str) -> frozenset[tuple[int, ...]]:
        """Identify the servers of ``action`` now: the DDS GIDs of its status publishers.

        A goal is watched against the servers that existed when it was accepted, so that a
        server started again under the same name does not hide that the goal's one is gone.
        """
        with self._session.graph_lock:
            infos = self._session.node.get_publishers_info_by_topic(f"{action}/_action/status")
        return frozenset(tuple(info.endpoint_gid) for info in infos)

    def _server_gone(self, goal: _Goal) -> bool:
        if goal.servers:
            return not goal.servers & self._action_servers(goal.action)
        return not goal.client.server_is_ready()

    def forget(self, entry: _Goal) -> None:
        """Drop a goal that ended (its ``finish`` calls this)."""
        with self._session.lock:
            self._goals.pop(entry.id, None)

    def check_servers(self) -> None:
        """End every goal whose action server left the graph (the watch thread calls it)."""
        with self._session.lock:
            goals = list(self._goals.values())
        for goal in goals:
            if self._server_gone(goal):
                goal.finish(GoalOutcome("aborted", None, "the action server left the ROS graph"))

    def end_all(self, reason: str) -> None:
        """End every running goal ``"aborted"`` with ``reason`` (the session is stopping)."""
        with self._session.lock:
            goals = list(self._goals.values())
        for goal in goals:
            goal.finish(GoalOutcome("aborted", None, reason))

    def destroy(self) -> None:
        """Destroy the action clients (before the node is)."""
        with self._session.lock:
            for client in self._clients.values():
                client.destroy()
            self._clients.clear()


def _cancel_if_accepted(future: Future[Any]) -> None:
    """A goal answered after its sender gave up: cancel it if it was accepted."""
    handle: Any = future.result() if future.exception() is None else None
    if handle is not None and handle.accepted:
        handle.cancel_goal_async()
