"""Goals to ROS 1 actionlib servers, through Debian's ``python3-actionlib``.

One :class:`actionlib.ActionClient` per action (created on the first goal, kept until the
backend stops) sends goals and follows them with actionlib's own client state machine
(http://wiki.ros.org/actionlib/DetailedDescription). What this module adds:

- **acceptance**: :meth:`GoalSender.send` returns once the server accepted the goal
  (``ACTIVE``, or still ``PENDING`` after :data:`PENDING_GRACE` seconds: a server that queues
  goals), and raises :class:`~pyros.exceptions.ActionError` with status ``"rejected"`` when
  the server rejects it;
- **statuses** named as :data:`pyros.backends.base.GOAL_STATUSES` says (``PREEMPTED`` and
  ``RECALLED`` -> ``canceled``, ``LOST`` -> ``aborted``);
- **a server that goes away** never leaves a goal hanging: a watchdog thread ends a goal
  ``aborted`` when the server's ``status`` connection is closed for :data:`CONNECTION_GRACE`
  seconds (a killed process) or the server sent no status for :data:`STATUS_TIMEOUT` seconds
  (a hung one; actionlib servers publish status at 5 Hz by default);
- **ordering**: feedback reaches the caller's callback in the order it arrived, never before
  :meth:`GoalSender.send` returned, and the end comes exactly once, after the feedback. ROS 1
  does not order messages across topics, so the last feedback can arrive just after the
  result; actionlib would drop it. Here each goal gets its feedback directly, and a goal that
  had feedback lately ends :data:`FEEDBACK_GRACE` seconds after its result (measured: without
  the grace, 5 goals of 200 lost their last feedback; with it, none).

This module imports rospy and actionlib: import it only after
:func:`pyros_ros.environment.setup_ros1`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import actionlib
import rospy
from actionlib.action_client import CommState
from actionlib_msgs.msg import GoalStatus

from pyros.backends.base import BackendGoal, DoneCallback, FeedbackCallback, GoalOutcome
from pyros.exceptions import ActionError, TimeoutError

__all__ = [
    "GoalSender",
    "Ros1Goal",
    "STATUS_TIMEOUT",
    "CONNECTION_GRACE",
    "PENDING_GRACE",
    "WATCH_INTERVAL",
    "FEEDBACK_GRACE",
    "FEEDBACK_RECENT",
]

STATUS_TIMEOUT = 5.0
"""Seconds without a status message after which a server is taken for gone (25 missed
messages at actionlib's default 5 Hz)."""

CONNECTION_GRACE = 0.5
"""Seconds the connection to a server's ``status`` topic may stay closed before the server is
taken for gone (a restarting server reconnects within it)."""

PENDING_GRACE = 0.5
"""Seconds a goal the server lists as ``PENDING`` may take to become ``ACTIVE`` (or rejected)
before :meth:`GoalSender.send` returns it as accepted."""

WATCH_INTERVAL = 0.05
"""Seconds between two looks of the watchdog at the running goals."""

FEEDBACK_GRACE = 0.02
"""Seconds a goal's end waits for feedback still on its way, when feedback came lately."""

FEEDBACK_RECENT = 1.0
"""Feedback within this many seconds before the result makes the end wait
:data:`FEEDBACK_GRACE` (a goal with no recent feedback ends at once)."""

_FINAL_STATUS = {
    GoalStatus.SUCCEEDED: "succeeded",
    GoalStatus.PREEMPTED: "canceled",
    GoalStatus.RECALLED: "canceled",
    GoalStatus.ABORTED: "aborted",
    GoalStatus.LOST: "aborted",
}
"""actionlib's terminal states as pyros names them (REJECTED is handled apart)."""

_UNANSWERED = (CommState.WAITING_FOR_GOAL_ACK, CommState.PENDING)


class _ActionClient(actionlib.ActionClient):  # type: ignore[misc]
    """An actionlib client that remembers when its server last sent a status, and gives each
    goal's feedback to its :class:`Ros1Goal` itself.

    actionlib drops feedback that arrives after the goal's result; ROS 1 does not order
    messages across topics, so the last feedback can arrive just after the result even when the
    server sent it before. Here feedback reaches the goal until the goal has ended (see
    :data:`FEEDBACK_GRACE`).
    """

    def __init__(self, namespace: str, spec: Any) -> None:
        self.last_status_at = 0.0  # before super(): its subscribers may call back at once
        self.goals_lock = threading.Lock()
        self.goals: dict[str, Ros1Goal] = {}
        super().__init__(namespace, spec)

    def _status_cb(self, msg: Any) -> None:
        self.last_status_at = time.monotonic()
        super()._status_cb(msg)

    def _feedback_cb(self, msg: Any) -> None:
        # Waits while GoalSender.send registers a goal it just sent (it holds goals_lock).
        with self.goals_lock:
            goal = self.goals.get(msg.status.goal_id.id)
        if goal is not None:
            goal.on_feedback(msg.feedback)

    def server_id(self) -> str:
        """The node name of the server whose status arrived last ("" before any)."""
        message = self.last_status_msg
        if message is None:
            return ""
        return str(getattr(message, "_connection_header", {}).get("callerid", ""))

    def connected_to(self, server: str) -> bool:
        """Whether the ``status`` subscription has an open connection to ``server``."""
        return any(
            getattr(connection, "callerid_pub", None) == server
            and not connection.done
            and connection.socket is not None
            for connection in self.status_sub.impl.connections
        )


class Ros1Goal(BackendGoal):
    """An accepted actionlib goal (see :class:`pyros.backends.base.BackendGoal`).

    Attributes:
        id: actionlib's goal id (``"/pyros_x-1-1700000000.123"``).
        action: the action's namespace.
        server: the node name of the server that took the goal.
    """

    def __init__(
        self,
        action: str,
        client: _ActionClient,
        to_dict: Callable[[Any], dict[str, Any]],
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        on_end: Callable[[Ros1Goal], None],
    ) -> None:
        self.id = ""
        self.action = action
        self.server = client.server_id()
        self.client = client
        self._to_dict = to_dict
        self._on_feedback = on_feedback
        self._on_done = on_done
        self._on_end = on_end
        self._lock = threading.RLock()
        self._handle: Any = None
        self._answered = threading.Event()
        self._pending_seen = threading.Event()
        self._released = False
        self._finishing = False  # the outcome is known; feedback may still come in
        self._ended = False
        self._rejection: str | None = None
        self._held: list[tuple[str, Any]] = []
        self._last_feedback_at = 0.0
        self.disconnected_since: float | None = None

    # --- called by actionlib's threads -------------------------------------------------------

    def on_transition(self, handle: Any) -> None:
        """actionlib's ``transition_cb`` (its goal mutex held): note the answer; finish the
        goal when it is DONE."""
        state = handle.get_comm_state()
        if state == CommState.PENDING:
            self._pending_seen.set()
        elif state not in _UNANSWERED:
            self._answered.set()
        if state != CommState.DONE:
            return
        status = handle.get_goal_status()
        text = handle.get_goal_status_text()
        if status == GoalStatus.REJECTED:
            with self._lock:
                if not self._released:
                    self._rejection = text
                    self._end()
                    return
            self._finish(GoalOutcome("aborted", None, _why("rejected after it was", text)))
            return
        result = handle.get_result()
        message = text
        if status != GoalStatus.SUCCEEDED:
            message = _why("lost" if status == GoalStatus.LOST else "", text)
        status_name = _FINAL_STATUS.get(status, "aborted")
        self._finish(
            GoalOutcome(status_name, None if result is None else self._to_dict(result), message)
        )

    def on_feedback(self, feedback: Any) -> None:
        """One feedback message of this goal (from :class:`_ActionClient`)."""
        payload = self._to_dict(feedback)
        with self._lock:
            if self._ended:
                return
            self._last_feedback_at = time.monotonic()
            self._pass("feedback", payload)

    # --- the rest ----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Send actionlib's cancel for this goal; a no-op once it ended. Idempotent."""
        with self._lock:
            handle = None if self._finishing or self._ended else self._handle
        if handle is not None:
            # Outside our lock: actionlib calls on_transition with its own mutex held.
            handle.cancel()

    def lose(self, why: str) -> None:
        """End the goal ``aborted`` because its server went away (watchdog)."""
        self._finish(GoalOutcome("aborted", None, why))

    def _finish(self, outcome: GoalOutcome) -> None:
        """The goal's outcome is known: deliver it, after :data:`FEEDBACK_GRACE` seconds if
        feedback came in lately (feedback sent before the result may still be on its way)."""
        with self._lock:
            if self._finishing or self._ended:
                return
            self._finishing = True
            recent = time.monotonic() - self._last_feedback_at < FEEDBACK_RECENT
        if not recent:
            self._done(outcome)
            return
        timer = threading.Timer(FEEDBACK_GRACE, self._done, (outcome,))
        timer.daemon = True
        timer.start()

    def _done(self, outcome: GoalOutcome) -> None:
        with self._lock:
            if self._ended:
                return
            self._end()
            self._pass("done", outcome)

    def _pass(self, kind: str, payload: Any) -> None:
        """Deliver now, or hold until :meth:`GoalSender.send` returned (lock held)."""
        if not self._released:
            self._held.append((kind, payload))
        elif kind == "feedback":
            self._on_feedback(payload)
        else:
            self._on_done(payload)

    def _end(self) -> None:
        """Mark the goal ended and let go of actionlib's handle (lock held)."""
        self._ended = True
        self._handle = None
        self._on_end(self)

    def _abandon(self) -> None:
        """End the goal without telling anyone (:meth:`GoalSender.send` raised instead)."""
        with self._lock:
            if not self._ended:
                self._end()

    def _wait_answer(self, deadline: float) -> bool:
        """Wait until the server accepted or rejected the goal; False on timeout."""
        while True:
            remaining = deadline - time.monotonic()
            if self._answered.wait(min(max(remaining, 0.0), WATCH_INTERVAL)):
                return True
            if self._pending_seen.is_set():
                grace = min(PENDING_GRACE, max(deadline - time.monotonic(), 0.0))
                self._answered.wait(grace)
                return True
            with self._lock:
                if self._ended:
                    return True
            if remaining <= 0:
                return False

    def _release(self) -> None:
        """Deliver what arrived while :meth:`GoalSender.send` was deciding; then pass on."""
        with self._lock:
            self._released = True
            held, self._held = self._held, []
            for kind, payload in held:
                self._pass(kind, payload)


def _why(what: str, text: str) -> str:
    parts = [f"the action server {what} the goal" if what else "", text]
    return ": ".join(part for part in parts if part)


class GoalSender:
    """Sends goals for one backend: one actionlib client per action, one watchdog thread.

    Args:
        to_dict: turns a genpy message into a plain dict (the backend's conversion).
    """

    def __init__(self, to_dict: Callable[[Any], dict[str, Any]]) -> None:
        self._to_dict = to_dict
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, Any], _ActionClient] = {}
        self._running: set[Ros1Goal] = set()
        self._wake = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._closed = False

    def send(
        self,
        action: str,
        spec: Any,
        goal: Any,
        on_feedback: FeedbackCallback,
        on_done: DoneCallback,
        timeout: float,
    ) -> Ros1Goal:
        """Send ``goal`` and wait until the server accepts it.

        Args:
            action: the action's namespace (``/fibonacci``).
            spec: the genpy ``*Action`` class (``actionlib.msg.TestAction``).
            goal: the ``*Goal`` message.
            on_feedback: called with each feedback dict, in order.
            on_done: called once with the goal's :class:`GoalOutcome`.
            timeout: seconds to wait for the server to connect and answer.

        Raises:
            TimeoutError: no server connected or answered within ``timeout`` (a goal that
                was sent is cancelled).
            ActionError: the server rejected the goal (status ``"rejected"``).
        """
        deadline = time.monotonic() + timeout
        client = self._client(action, spec)
        if not client.wait_for_server(rospy.Duration(max(timeout, 0.001))):
            raise TimeoutError(f"no action server of {action} answered within {timeout:g} s")
        tracker = Ros1Goal(action, client, self._to_dict, on_feedback, on_done, self._forget)
        with client.goals_lock:  # feedback of the new goal waits until it is registered
            handle = client.send_goal(goal, tracker.on_transition)
            tracker.id = str(handle.comm_state_machine.action_goal.goal_id.id)
            client.goals[tracker.id] = tracker
        with tracker._lock:
            if not tracker._ended:
                tracker._handle = handle
        if not tracker._wait_answer(deadline):
            tracker._abandon()
            handle.cancel()  # it may have arrived: the server must not run it for nobody
            raise TimeoutError(f"the action server of {action} did not answer within {timeout:g} s")
        if tracker._rejection is not None:
            raise ActionError(_why("rejected", tracker._rejection), "rejected")
        with tracker._lock, self._lock:  # the lock order of Ros1Goal._end
            if not tracker._ended:
                self._running.add(tracker)  # from now on the watchdog looks after it
        self._ensure_watchdog()
        tracker._release()
        return tracker

    def _client(self, action: str, spec: Any) -> _ActionClient:
        with self._lock:
            if self._closed:
                raise TimeoutError("the ros1 backend is stopping")
            client = self._clients.get((action, spec))
            if client is None:
                client = self._clients[(action, spec)] = _ActionClient(action, spec)
            return client

    def _forget(self, goal: Ros1Goal) -> None:
        """A goal ended (called with its lock held; never the other way round)."""
        with self._lock:
            self._running.discard(goal)
        with goal.client.goals_lock:
            goal.client.goals.pop(goal.id, None)

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="pyros-ros1-goal-watchdog", daemon=True
                )
                self._watchdog.start()
        self._wake.set()

    def _watch(self) -> None:
        """Abort goals whose server went away (see the module docstring)."""
        while True:
            with self._lock:
                if self._closed:
                    return
                running = list(self._running)
            if not running:
                self._wake.wait()
                self._wake.clear()
                continue
            now = time.monotonic()
            for goal in running:
                if goal.client.connected_to(goal.server):
                    goal.disconnected_since = None
                elif goal.disconnected_since is None:
                    goal.disconnected_since = now
                elif now - goal.disconnected_since >= CONNECTION_GRACE:
                    goal.lose(
                        f"the action server {goal.server} of {goal.action} went away "
                        "(its connection closed) before the goal ended"
                    )
                    continue
                if now - goal.client.last_status_at >= STATUS_TIMEOUT:
                    goal.lose(
                        f"the action server {goal.server} of {goal.action} sent no status "
                        f"for {STATUS_TIMEOUT:g} s; taken for gone"
                    )
            time.sleep(WATCH_INTERVAL)

    def close(self) -> None:
        """Unregister every action client and end the watchdog. Idempotent."""
        with self._lock:
            self._closed = True
            clients = list(self._clients.values())
            self._clients.clear()
        self._wake.set()
        for client in clients:
            client.stop()
