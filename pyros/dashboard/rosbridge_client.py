"""The operator side of rosbridge v2, as the dashboard speaks it to the relay: no I/O.

Frames out, events in (the sans-I/O shape of :mod:`pyros._protocol`): each request method
returns the JSON text frame to send and, for requests that get an answer, the id that the answer
will carry; :meth:`RosbridgeClient.receive` turns one received frame into :class:`Event`
objects. Message shapes follow the rosbridge v2 protocol specification
(``ROSBRIDGE_PROTOCOL.md`` in RobotWebTools/rosbridge_suite): ``subscribe`` (3.2.4),
``unsubscribe``, ``advertise``, ``publish``, ``call_service`` / ``service_response`` (3.2.8-9),
``send_action_goal`` / ``cancel_action_goal`` / ``action_feedback`` / ``action_result``
(3.2.12-15) and ``status``; plus the pyros relay's ``auth``.

The client remembers what must be said again after a reconnect (:meth:`RosbridgeClient.resume`:
every subscription and advertisement) and fails every request in flight when the connection is
lost (:meth:`RosbridgeClient.connection_lost`), so no caller waits forever.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyros import _rosbridge_wire as wire

__all__ = [
    "Event",
    "TopicMessage",
    "ServiceResult",
    "ActionFeedback",
    "ActionResult",
    "Status",
    "RosbridgeClient",
    "GOAL_STATUS_NAMES",
]

GOAL_STATUS_NAMES = wire.GOAL_STATUS_NAMES
"""``action_msgs/GoalStatus`` codes (the ``status`` of rosbridge's ``action_result``)."""


@dataclass(frozen=True)
class Event:
    """Base of what :meth:`RosbridgeClient.receive` returns."""


@dataclass(frozen=True)
class TopicMessage(Event):
    """A message on a subscribed topic (``publish`` from the relay)."""

    topic: str
    msg: dict[str, Any]


@dataclass(frozen=True)
class ServiceResult(Event):
    """The answer to a ``call_service``.

    Attributes:
        id: the request id.
        ok: the call succeeded (``result`` true).
        values: the response (ok), or the error text.
    """

    id: str
    ok: bool
    values: Any


@dataclass(frozen=True)
class ActionFeedback(Event):
    """Feedback for a goal sent with ``send_action_goal``."""

    id: str
    values: Any


@dataclass(frozen=True)
class ActionResult(Event):
    """The end of a goal.

    Attributes:
        id: the goal's request id.
        ok: ``result`` true (the goal succeeded).
        status: the ``action_msgs/GoalStatus`` code (see :data:`GOAL_STATUS_NAMES`), or None.
        values: the result, or the error text.
    """

    id: str
    ok: bool
    status: int | None
    values: Any


@dataclass(frozen=True)
class Status(Event):
    """A ``status`` message (an error or warning from the relay or a device).

    Attributes:
        level: ``error``, ``warning`` or ``info``.
        msg: the text.
        id: the id of the request it is about (a publish, call or goal of this client), or None.
    """

    level: str
    msg: str
    id: str | None = None


class RosbridgeClient:
    """One operator connection's protocol state.

    Args:
        prefix: the start of every request id this client makes (ids are ``prefix`` + n).
    """

    def __init__(self, prefix: str = "dash") -> None:
        self._ids = (f"{prefix}-{n}" for n in itertools.count(1))
        self.subscriptions: dict[str, tuple[str | None, int]] = {}
        """Topic -> (type, throttle_rate in ms) of every subscription."""
        self.advertised: dict[str, str] = {}
        """Topic -> type of every advertised topic."""
        self.pending: dict[str, str] = {}
        """Request id -> ``"service"`` or ``"goal"``, for requests awaiting an answer."""

    def next_id(self) -> str:
        """Return a fresh request id."""
        return next(self._ids)

    # --- requests ---------------------------------------------------------------------------

    def auth(self, token: str) -> str:
        """Return the pyros relay's ``{"op": "auth"}`` frame (for relays without headers)."""
        return wire.encode({"op": "auth", "token": token})

    def subscribe(self, topic: str, type: str | None = None, throttle_ms: int = 0) -> str:
        """Return a ``subscribe`` frame and remember the subscription.

        Args:
            topic: the full name at the relay (``/robot1/turtle1/pose``).
            type: its type, if known (the relay checks it).
            throttle_ms: the least time between two messages, milliseconds (0: every message).
        """
        self.subscriptions[topic] = (type, throttle_ms)
        return self._subscribe_frame(topic)

    def _subscribe_frame(self, topic: str) -> str:
        type_name, throttle = self.subscriptions[topic]
        message = wire.subscribe(
            f"subscribe:{topic}",
            topic,
            type_name,
            throttle_rate=throttle,
            queue_length=1 if throttle else 0,
        )
        return wire.encode(message)

    def unsubscribe(self, topic: str) -> str:
        """Return an ``unsubscribe`` frame and forget the subscription."""
        self.subscriptions.pop(topic, None)
        return wire.encode(wire.unsubscribe(f"subscribe:{topic}", topic))

    def advertise(self, topic: str, type: str) -> str | None:
        """Return an ``advertise`` frame, or None when ``topic`` is advertised with ``type``."""
        if self.advertised.get(topic) == type:
            return None
        self.advertised[topic] = type
        return wire.encode(wire.advertise(self.next_id(), topic, type))

    def publish(self, topic: str, msg: Mapping[str, Any]) -> tuple[str, str]:
        """Return ``(id, frame)`` of a ``publish``; a refusal comes back as a :class:`Status`
        with this id."""
        request_id = self.next_id()
        frame = wire.encode(wire.publish(request_id, topic, dict(msg)))
        return request_id, frame

    def call_service(
        self, service: str, args: Mapping[str, Any], timeout: float | None = None
    ) -> tuple[str, str]:
        """Return ``(id, frame)`` of a ``call_service``; its :class:`ServiceResult` has the id.

        Args:
            service: the full name at the relay (``/robot1/reset``).
            args: the request.
            timeout: seconds the relay waits for the device, or None for the relay's limit.
        """
        request_id = self.next_id()
        message = wire.call_service(request_id, service, dict(args), timeout=timeout)
        self.pending[request_id] = "service"
        return request_id, wire.encode(message)

    def send_action_goal(
        self, action: str, action_type: str, args: Mapping[str, Any]
    ) -> tuple[str, str]:
        """Return ``(id, frame)`` of a ``send_action_goal`` asking for feedback.

        Args:
            action: the full name at the relay (``/robot1/turtle1/rotate_absolute``).
            action_type: ``pkg/action/Type`` (or ``pkg/Type``).
            args: the goal.
        """
        request_id = self.next_id()
        self.pending[request_id] = "goal"
        frame = wire.encode(wire.send_action_goal(request_id, action, action_type, dict(args)))
        return request_id, frame

    def cancel_action_goal(self, action: str, goal_id: str) -> str:
        """Return the ``cancel_action_goal`` frame of goal ``goal_id`` (its request id)."""
        return wire.encode(wire.cancel_action_goal(goal_id, action))

    # --- connection -----------------------------------------------------------------------

    def resume(self) -> list[str]:
        """Return the frames that restore every subscription and advertisement after a
        reconnect (in that order)."""
        frames = [self._subscribe_frame(topic) for topic in self.subscriptions]
        frames.extend(
            wire.encode(wire.advertise(self.next_id(), topic, type_name))
            for topic, type_name in self.advertised.items()
        )
        return frames

    def connection_lost(self, why: str) -> list[Event]:
        """Fail every service call and goal in flight with ``why``; return those events."""
        events: list[Event] = []
        for request_id, kind in self.pending.items():
            if kind == "service":
                events.append(ServiceResult(request_id, False, why))
            else:
                events.append(ActionResult(request_id, False, None, why))
        self.pending.clear()
        return events

    # --- incoming -------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> list[Event]:
        """Decode one frame from the relay.

        Returns:
            The events it carries: usually one. A frame that is not a rosbridge message gives
            a :class:`Status` error describing it (the relay is not expected to send one).
        """
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError) as exc:
            return [Status("error", f"the relay sent a frame that is not JSON: {exc}")]
        if not isinstance(message, dict):
            return [Status("error", "the relay sent JSON that is not a rosbridge message")]
        op = message.get("op")
        raw_id = message.get("id")
        request_id = str(raw_id) if raw_id is not None else None
        if op == "publish" and isinstance(message.get("topic"), str):
            msg = message.get("msg")
            return [TopicMessage(message["topic"], msg if isinstance(msg, dict) else {})]
        if op == "service_response" and request_id is not None:
            self.pending.pop(request_id, None)
            return [ServiceResult(request_id, bool(message.get("result")), message.get("values"))]
        if op == "action_feedback" and request_id is not None:
            return [ActionFeedback(request_id, message.get("values"))]
        if op == "action_result" and request_id is not None:
            self.pending.pop(request_id, None)
            status = message.get("status")
            return [
                ActionResult(
                    request_id,
                    bool(message.get("result")),
                    status if isinstance(status, int) and not isinstance(status, bool) else None,
                    message.get("values"),
                )
            ]
        if op == "status":
            level = str(message.get("level") or "info")
            text = str(message.get("msg") or "")
            if level == "error" and request_id is not None and request_id in self.pending:
                # A refused call or goal also ends it: answer it so nobody waits.
                if self.pending.pop(request_id) == "goal":
                    return [ActionResult(request_id, False, None, text)]
                return [ServiceResult(request_id, False, text)]
            return [Status(level, text, request_id)]
        return [Status("warning", f"unexpected message from the relay: {str(message)[:200]}")]
