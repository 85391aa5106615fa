"""rosbridge v2 messages that a client of a rosbridge server sends, and the goal status codes
that come back: no I/O.

Shapes from the rosbridge v2 protocol specification (``ROSBRIDGE_PROTOCOL.md`` in
RobotWebTools/rosbridge_suite): ``advertise`` (3.2.1), ``publish`` (3.2.3), ``subscribe``
(3.2.4), ``unsubscribe`` (3.2.5), ``call_service`` (3.2.8), ``send_action_goal`` (3.2.12),
``cancel_action_goal`` (3.2.13); the ``status`` of ``action_result`` (3.2.15) is an
``action_msgs/msg/GoalStatus`` code (:data:`GOAL_STATUS_NAMES`).

Two clients build their requests here: the ``rosbridge`` backend (``pyros_ros.rosbridge``,
talking to rosbridge servers and to the pyros relay) and the dashboard's operator side
(:mod:`pyros.dashboard.rosbridge_client`); the relay's server side
(:mod:`pyros.cloud.rosbridge`) shares :data:`GOAL_STATUS_NAMES` and :func:`encode`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "GOAL_STATUS_NAMES",
    "encode",
    "advertise",
    "publish",
    "subscribe",
    "unsubscribe",
    "call_service",
    "send_action_goal",
    "cancel_action_goal",
]

GOAL_STATUS_NAMES = {
    0: "unknown",
    1: "accepted",
    2: "executing",
    3: "canceling",
    4: "succeeded",
    5: "canceled",
    6: "aborted",
}
"""``action_msgs/msg/GoalStatus`` codes (the ``status`` of rosbridge's ``action_result``)."""


def encode(message: Mapping[str, Any]) -> str:
    """Return ``message`` as a compact JSON text frame (non-ASCII text kept as is).

    Raises:
        TypeError, ValueError: ``message`` holds something that is not JSON data.
    """
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def advertise(id: str, topic: str, type: str) -> dict[str, Any]:
    """Return an ``advertise`` of ``topic`` as ``type`` (callers may add rosbridge's
    ``latch`` and ``queue_size``)."""
    return {"op": "advertise", "id": id, "topic": topic, "type": type}


def publish(id: str, topic: str, msg: Mapping[str, Any]) -> dict[str, Any]:
    """Return a ``publish`` of message ``msg`` (a dict of the topic's type) on ``topic``."""
    return {"op": "publish", "id": id, "topic": topic, "msg": msg}


def subscribe(
    id: str,
    topic: str,
    type: str | None = None,
    *,
    throttle_rate: int = 0,
    queue_length: int = 0,
    compression: str | None = None,
) -> dict[str, Any]:
    """Return a ``subscribe`` to ``topic``.

    Args:
        id: the subscription's id (its ``unsubscribe`` names it again).
        topic: the topic.
        type: its type; None lets the server find it.
        throttle_rate: the least time between two messages, milliseconds (0: every message).
        queue_length: messages the server keeps while throttling (0: none).
        compression: ``"cbor"``, ``"png"`` or ``"none"``; None leaves the field out.
    """
    message: dict[str, Any] = {"op": "subscribe", "id": id, "topic": topic}
    if compression is not None:
        message["compression"] = compression
    message["throttle_rate"] = throttle_rate
    message["queue_length"] = queue_length
    if type:
        message["type"] = type
    return message


def unsubscribe(id: str, topic: str) -> dict[str, Any]:
    """Return the ``unsubscribe`` that ends subscription ``id`` to ``topic``."""
    return {"op": "unsubscribe", "id": id, "topic": topic}


def call_service(
    id: str,
    service: str,
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    """Return a ``call_service``; its ``service_response`` carries ``id``.

    Args:
        id: the call's id.
        service: the service.
        args: the request; None leaves the field out (an empty request).
        timeout: seconds the server waits for the answer; None leaves the field out.
        type: the service type; None or ``""`` leaves the field out.
    """
    message: dict[str, Any] = {"op": "call_service", "id": id, "service": service}
    if args is not None:
        message["args"] = args
    if timeout is not None:
        message["timeout"] = timeout
    if type:
        message["type"] = type
    return message


def send_action_goal(
    id: str, action: str, action_type: str, args: Mapping[str, Any]
) -> dict[str, Any]:
    """Return a ``send_action_goal`` of goal ``args`` asking for feedback; its
    ``action_feedback`` and ``action_result`` carry ``id``.

    Args:
        id: the goal's id (also the one to cancel it with).
        action: the action.
        action_type: ``pkg/action/Type`` (or ``pkg/Type``).
        args: the goal.
    """
    return {
        "op": "send_action_goal",
        "id": id,
        "action": action,
        "action_type": action_type,
        "args": args,
        "feedback": True,
    }


def cancel_action_goal(id: str, action: str) -> dict[str, Any]:
    """Return the ``cancel_action_goal`` of goal ``id`` of ``action``."""
    return {"op": "cancel_action_goal", "id": id, "action": action}
