"""Actions and graph information of the ros1 backend, against real actionlib and rospy peers.

The action server is ``peers/fibonacci_server.py``: ``actionlib/Test`` with Fibonacci steps
(goal = order n, feedback = the sequence's length as it grows, result = n + 1; a negative
order rejected, an order above 46 aborted). The backend runs in a driver process
(``ros1_backend``); goal events come back through ``BackendDriver.goal_outcome``.
"""

from __future__ import annotations

import signal
import time

import pytest
from ros1_support import BackendDriver, Peer, Ros1Master, limit

from pyros.exceptions import ActionError, MessageError, NotExposedError, TimeoutError


def in_order(feedback: list[dict], last: int) -> bool:
    """Whether the feedback values are 3, 4, ... ``last``; the very last may be missing (ROS 1
    does not order feedback and result, see pyros_ros.ros1.actions.FEEDBACK_GRACE)."""
    values = [message["feedback"] for message in feedback]
    return values in (list(range(3, last + 1)), list(range(3, last)))


def send(backend: BackendDriver, order: int, action: str = "/fibonacci", **kwargs) -> int:
    """Send a goal of ``order``; return the driver's reference to it."""
    type_name = kwargs.pop("type", "actionlib/Test")
    reply = backend.request("send_goal", action, type_name, {"goal": order}, limit(5), **kwargs)
    assert reply["id"]
    return int(reply["ref"])


# --- discovery and graph information ---------------------------------------------------------


def test_actions_and_graph_information(ros1_master: Ros1Master, ros1_peer, ros1_backend) -> None:
    server = ros1_peer("fibonacci_server", "--node-name", "fib")
    ros1_peer("setbool_server", "--node-name", "flag")
    backend = ros1_backend("pyros_graph")
    assert backend.request("actions") == {"/fibonacci": "actionlib/Test"}
    assert backend.request("action_info", "/fibonacci") == {
        "type": "actionlib/Test",
        "servers": ["/fib"],
        "clients": [],
    }
    send(backend, 1)  # the backend becomes a client
    assert backend.request("action_info", "/fibonacci")["clients"] == ["/pyros_graph"]
    assert {"/fib", "/flag", "/pyros_graph"} <= set(backend.request("nodes"))

    assert backend.request("topic_info", "/fibonacci/status") == {
        "type": "actionlib_msgs/GoalStatusArray",
        "publishers": ["/fib"],
        "subscribers": ["/pyros_graph"],
    }
    assert backend.request("service_info", "/set_flag") == {
        "type": "std_srvs/SetBool",
        "providers": ["/flag"],
    }
    info = backend.request("node_info", "/fib")
    assert info["actions"] == {"/fibonacci": "actionlib/Test"}
    assert info["publishes"]["/fibonacci/result"] == "actionlib/TestActionResult"
    assert info["subscribes"]["/fibonacci/goal"] == "actionlib/TestActionGoal"
    assert info["services"]["/fib/get_loggers"] == "roscpp/GetLoggers"
    assert backend.request("node_info", "/flag")["services"]["/set_flag"] == "std_srvs/SetBool"
    for op, name in [
        ("node_info", "/nobody"),
        ("topic_info", "/no_topic"),
        ("service_info", "/no_service"),
        ("action_info", "/no_action"),
    ]:
        with pytest.raises(NotExposedError):
            backend.request(op, name)

    server.stop()  # unregisters: our client's topics stay, but a client is no action
    assert backend.request("actions") == {}
    with pytest.raises(NotExposedError):
        backend.request("action_info", "/fibonacci")
    with pytest.raises(NotExposedError):
        send(backend, 1)


def test_definitions_of_every_kind(ros1_backend) -> None:
    backend = ros1_backend()
    assert backend.request("definition", "actionlib/Test") == (
        "int32 goal\n---\nint32 result\n---\nint32 feedback\n"
    )
    assert "bool data" in backend.request("definition", "std_srvs/srv/SetBool")
    assert "float64 x" in backend.request("definition", "geometry_msgs/Vector3")
    with pytest.raises(MessageError, match="Strin"):
        backend.request("definition", "std_msgs/Strin")


# --- goals -----------------------------------------------------------------------------------


def test_a_goal_sends_feedback_in_order_then_its_result(ros1_peer, ros1_backend) -> None:
    server = ros1_peer("fibonacci_server")
    backend = ros1_backend()
    feedback, outcome = backend.goal_outcome(send(backend, 10))
    assert in_order(feedback, 11)
    assert outcome == {"status": "succeeded", "result": {"result": 11}, "message": "11 numbers"}
    for spelling in ("actionlib/action/Test", "actionlib/TestAction", ""):  # "" = the graph's
        assert backend.goal_outcome(send(backend, 2, type=spelling))[1]["status"] == "succeeded"
    assert [server.read_json()["goal"] for _ in range(4)] == [10, 2, 2, 2]


def test_rejected_aborted_and_canceled_goals(ros1_peer, ros1_backend) -> None:
    ros1_peer("fibonacci_server")
    backend = ros1_backend()
    with pytest.raises(ActionError, match="order must be >= 0") as info:
        send(backend, -1)
    assert info.value.status == "rejected"

    feedback, outcome = backend.goal_outcome(send(backend, 47))
    assert outcome["status"] == "aborted" and "overflows int32" in outcome["message"]
    assert outcome["result"] == {"result": 47} and in_order(feedback, 47)

    ref = send(backend, 40)
    time.sleep(0.05)
    backend.request("cancel_goal", ref)
    backend.request("cancel_goal", ref)  # idempotent
    feedback, outcome = backend.goal_outcome(ref)
    assert outcome["status"] == "canceled" and 2 < outcome["result"]["result"] < 41
    backend.request("cancel_goal", ref)  # a no-op once it ended
    assert backend.goal_outcome(send(backend, 3))[1]["status"] == "succeeded"


def test_goals_that_do_not_fit(ros1_peer, ros1_backend) -> None:
    ros1_peer("fibonacci_server")
    backend = ros1_backend()
    with pytest.raises(MessageError) as info:
        backend.request("send_goal", "/fibonacci", "actionlib/Test", {"goal": "ten"}, 5.0)
    assert info.value.field == "goal"
    with pytest.raises(MessageError) as info:
        backend.request("send_goal", "/fibonacci", "actionlib/Test", {"order": 3}, 5.0)
    assert info.value.field == "order"
    with pytest.raises(MessageError, match="actionlib/Test"):
        backend.request("send_goal", "/fibonacci", "actionlib/TwoInts", {}, 5.0)
    with pytest.raises(NotExposedError):
        backend.request("send_goal", "/nowhere", "actionlib/Test", {}, 5.0)


def test_a_killed_server_ends_the_goal_aborted_at_once(ros1_peer, ros1_backend) -> None:
    server = ros1_peer("fibonacci_server", "--step", "0.1")
    backend = ros1_backend()
    ref = send(backend, 40)
    assert backend.next_goal_event(ref)["event"] == "feedback"
    server.proc.send_signal(signal.SIGKILL)
    began = time.monotonic()
    feedback, outcome = backend.goal_outcome(ref, limit(5))
    assert time.monotonic() - began < limit(2)
    assert outcome["status"] == "aborted" and "went away" in outcome["message"]


def test_a_hung_server_ends_the_goal_aborted_and_times_out_new_ones(
    ros1_peer, ros1_backend
) -> None:
    from pyros_ros.environment import setup_ros1

    setup_ros1()  # pyros_ros.ros1.actions imports actionlib
    from pyros_ros.ros1.actions import STATUS_TIMEOUT

    server: Peer = ros1_peer("fibonacci_server", "--step", "0.1")
    backend = ros1_backend()
    ref = send(backend, 40)
    server.proc.send_signal(signal.SIGSTOP)  # connections stay open; nothing is sent any more
    try:
        began = time.monotonic()
        feedback, outcome = backend.goal_outcome(ref, limit(STATUS_TIMEOUT + 5))
        assert STATUS_TIMEOUT - 0.5 < time.monotonic() - began < limit(STATUS_TIMEOUT + 2)
        assert outcome["status"] == "aborted" and "no status" in outcome["message"]
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            backend.request("send_goal", "/fibonacci", "actionlib/Test", {"goal": 1}, 0.5)
        assert time.monotonic() - began < limit(2)
    finally:
        server.proc.send_signal(signal.SIGKILL)
