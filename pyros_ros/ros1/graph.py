"""The ROS 1 graph as the master describes it: topics, nodes and actionlib actions.

Pure functions over two Master API replies (http://wiki.ros.org/ROS/Master_API):
``getSystemState`` (``[publishers, subscribers, services]``, each a list of ``[name, [node,
...]]``) and ``getTopicTypes`` (a list of ``[topic, type]``). They import no ROS library.

An actionlib action is not a thing of its own in ROS 1: it is five topics under one namespace
(actionlib's protocol, http://wiki.ros.org/actionlib/DetailedDescription): the server subscribes
to ``<ns>/goal`` (``pkg/NameActionGoal``) and ``<ns>/cancel`` (``actionlib_msgs/GoalID``) and
publishes ``<ns>/status`` (``actionlib_msgs/GoalStatusArray``), ``<ns>/feedback``
(``pkg/NameActionFeedback``) and ``<ns>/result`` (``pkg/NameActionResult``). :func:`find_actions`
recognises that shape and names the action's type ``pkg/Name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "SystemState",
    "ActionEntry",
    "STATUS_TYPE",
    "CANCEL_TYPE",
    "system_state",
    "live_topics",
    "find_actions",
    "node_names",
]

STATUS_TYPE = "actionlib_msgs/GoalStatusArray"
"""The type of every action's ``status`` topic."""

CANCEL_TYPE = "actionlib_msgs/GoalID"
"""The type of every action's ``cancel`` topic."""

_ACTION_SUFFIXES = {"goal": "ActionGoal", "feedback": "ActionFeedback", "result": "ActionResult"}


@dataclass(frozen=True)
class SystemState:
    """``getSystemState`` as three dicts, each ``{name: sorted node names}``.

    Attributes:
        publishers: topic -> nodes publishing it.
        subscribers: topic -> nodes subscribed to it.
        services: service -> nodes providing it (one, on a healthy master).
    """

    publishers: dict[str, list[str]]
    subscribers: dict[str, list[str]]
    services: dict[str, list[str]]


@dataclass(frozen=True)
class ActionEntry:
    """One action found in the graph.

    Attributes:
        type: ``pkg/Name`` (the ``*Action*`` message types without their suffix).
        servers: nodes that publish its ``status`` topic, sorted.
        clients: nodes that publish its ``goal`` topic, sorted.
    """

    type: str
    servers: list[str]
    clients: list[str]


def system_state(reply: list[Any]) -> SystemState:
    """Turn a ``getSystemState`` reply into a :class:`SystemState`."""
    publishers, subscribers, services = reply
    return SystemState(_by_name(publishers), _by_name(subscribers), _by_name(services))


def _by_name(entries: list[Any]) -> dict[str, list[str]]:
    return {name: sorted(nodes) for name, nodes in entries if nodes}


def live_topics(state: SystemState, types: list[Any]) -> dict[str, str]:
    """Return ``{topic: type}`` for every topic with at least one publisher or subscriber.

    The master keeps a topic's type after its last publisher and subscriber are gone
    (``getTopicTypes`` never forgets); those topics are left out.

    Args:
        state: the master's system state.
        types: the ``getTopicTypes`` reply, ``[[topic, type], ...]``.
    """
    return {
        name: type_name
        for name, type_name in types
        if name in state.publishers or name in state.subscribers
    }


def find_actions(state: SystemState, types: dict[str, str]) -> dict[str, ActionEntry]:
    """Return every actionlib action with a server in the graph, by namespace.

    A namespace ``ns`` is an action when ``ns/status``, ``ns/feedback`` and ``ns/result`` have
    publishers (the server), ``ns/goal`` and ``ns/cancel`` exist, and the types fit together:
    ``pkg/NameActionGoal``, ``pkg/NameActionFeedback``, ``pkg/NameActionResult``,
    :data:`STATUS_TYPE` and :data:`CANCEL_TYPE`. Clients alone (a goal publisher with no
    server) make no action.

    Args:
        state: the master's system state.
        types: ``{topic: type}`` of the live topics (:func:`live_topics`).
    """
    found: dict[str, ActionEntry] = {}
    for status_topic, status_type in types.items():
        if status_type != STATUS_TYPE or not status_topic.endswith("/status"):
            continue
        namespace = status_topic[: -len("/status")]
        if not namespace or types.get(f"{namespace}/cancel") != CANCEL_TYPE:
            continue
        goal_type = types.get(f"{namespace}/goal", "")
        if not goal_type.endswith(_ACTION_SUFFIXES["goal"]):
            continue
        base = goal_type[: -len(_ACTION_SUFFIXES["goal"])]
        if any(
            types.get(f"{namespace}/{part}") != base + suffix
            for part, suffix in _ACTION_SUFFIXES.items()
        ):
            continue
        servers = state.publishers.get(status_topic, [])
        if not servers or not all(
            state.publishers.get(f"{namespace}/{part}") for part in ("feedback", "result")
        ):
            continue
        found[namespace] = ActionEntry(
            base, list(servers), list(state.publishers.get(f"{namespace}/goal", []))
        )
    return found


def node_names(state: SystemState) -> list[str]:
    """Return every node named in the system state, sorted.

    As ``rosnode list`` does, this includes nodes that died without unregistering (the master
    cannot tell); a node with no registration at all is not listed.
    """
    names: set[str] = set()
    for table in (state.publishers, state.subscribers, state.services):
        for nodes in table.values():
            names.update(nodes)
    return sorted(names)
