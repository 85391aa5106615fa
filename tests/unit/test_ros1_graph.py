"""pyros_ros.ros1.graph: what getSystemState and getTopicTypes replies mean (no ROS needed).

The replies are shaped as the ROS Master API returns them; the real master's are checked in
tests/ros1/test_ros1_actions.py.
"""

from __future__ import annotations

from typing import Any

from pyros_ros.ros1.graph import (
    ActionEntry,
    find_actions,
    live_topics,
    node_names,
    system_state,
)

ACTION_TOPICS = [
    ["/fib/goal", "actionlib/TestActionGoal"],
    ["/fib/cancel", "actionlib_msgs/GoalID"],
    ["/fib/status", "actionlib_msgs/GoalStatusArray"],
    ["/fib/feedback", "actionlib/TestActionFeedback"],
    ["/fib/result", "actionlib/TestActionResult"],
]


def state_of(
    server: str | None = "/server", client: str | None = "/client", extra: Any = ()
) -> list[Any]:
    """A getSystemState reply: an action server and client on /fib, plus ``extra``."""
    publishers: list[Any] = [["/chatter", ["/talker"]], *extra]
    subscribers: list[Any] = [["/chatter", ["/listener", "/client"]]]
    if server:
        publishers += [[f"/fib/{part}", [server]] for part in ("status", "feedback", "result")]
        subscribers += [[f"/fib/{part}", [server]] for part in ("goal", "cancel")]
    if client:
        publishers += [[f"/fib/{part}", [client]] for part in ("goal", "cancel")]
        subscribers += [[f"/fib/{part}", [client]] for part in ("status", "feedback", "result")]
    services = [["/set_flag", ["/flag"]], ["/empty", []]]
    return [publishers, subscribers, services]


def test_live_topics_leave_out_topics_nobody_uses() -> None:
    state = system_state(state_of(server=None, client=None))
    types = [["/chatter", "std_msgs/String"], ["/forgotten", "std_msgs/Int32"], *ACTION_TOPICS]
    assert live_topics(state, types) == {"/chatter": "std_msgs/String"}


def test_an_action_is_found_with_its_server_and_clients() -> None:
    state = system_state(state_of())
    types = live_topics(state, [["/chatter", "std_msgs/String"], *ACTION_TOPICS])
    assert find_actions(state, types) == {
        "/fib": ActionEntry("actionlib/Test", ["/server"], ["/client"])
    }


def test_a_client_alone_is_no_action() -> None:
    state = system_state(state_of(server=None))
    assert find_actions(state, live_topics(state, ACTION_TOPICS)) == {}


def test_mismatched_types_are_no_action() -> None:
    state = system_state(state_of())
    for index, wrong in [
        (0, "actionlib/TestGoal"),  # not an *ActionGoal
        (1, "std_msgs/String"),  # cancel of another type
        (3, "actionlib/TwoIntsActionFeedback"),  # another action's feedback
        (4, "actionlib/TestActionResul"),
    ]:
        topics = [list(pair) for pair in ACTION_TOPICS]
        topics[index][1] = wrong
        assert find_actions(state, live_topics(state, topics)) == {}, wrong


def test_nodes_are_every_node_named_once_sorted() -> None:
    state = system_state(state_of(extra=[["/other", ["/zeta", "/talker"]]]))
    assert node_names(state) == ["/client", "/flag", "/listener", "/server", "/talker", "/zeta"]
    assert "/empty" not in system_state(state_of()).services  # no provider: not a service
