"""pyros end to end on ROS 1: a real rosmaster, real rospy peers, pyros.spawn("ros1").

The node process that ``pyros.spawn`` starts finds Debian's ROS by itself; this test process
never imports rospy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from ros1_support import Peer, Ros1Master, limit

import pyros
from tests.support import RUNTIME_DIR, wait_until


@pytest.fixture
def ros_env(ros1_master: Ros1Master, monkeypatch: pytest.MonkeyPatch) -> Ros1Master:
    """Make spawned nodes inherit the master's loopback environment."""
    for key, value in ros1_master.env.items():
        monkeypatch.setenv(key, value)
    return ros1_master


@pytest.fixture
def robot(ros_env: Ros1Master) -> Iterator[pyros.Client]:
    client = pyros.spawn("ros1", topics=["*"], services=["*"], params=["*"], master_uri=ros_env.uri)
    yield client
    client.close()


def graph_name(client: pyros.Client) -> str:
    return f"/pyros_{client.name}"


def test_node_registers_and_close_leaves_nothing_in_the_master(ros_env: Ros1Master) -> None:
    started = time.monotonic()
    client = pyros.spawn("ros1", topics=["*"], services=["*"], master_uri=ros_env.uri)
    ready = time.monotonic() - started
    name = graph_name(client)
    assert name in ros_env.node_names()
    client.publish("/pyros_out", {"data": "x"}, type="std_msgs/String")
    sub = client.subscribe("/pyros_in_topic")
    client.publish("/pyros_in_topic", {"data": 1}, type="std_msgs/Int32")
    sub.get(timeout=limit(5))
    assert ros_env.entries_of(name), "the node registered nothing"
    client.close()
    assert name not in ros_env.node_names()
    assert ros_env.entries_of(name) == []
    assert not (RUNTIME_DIR / client.name).exists()
    assert ready < limit(10)


def test_no_master_is_a_clear_spawn_error_and_leaves_no_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROS_IP", "127.0.0.1")
    started = time.monotonic()
    with pytest.raises(pyros.SpawnError, match="127.0.0.1:9"):
        pyros.spawn("ros1", master_uri="http://127.0.0.1:9/", ready_timeout=limit(5))
    assert time.monotonic() - started < limit(5)


def test_subscribe_to_a_rospy_talker(robot: pyros.Client, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("talker", "--topic", "/chatter", "--rate", "50")
    with robot.subscribe("/chatter") as sub:
        messages = [sub.get(timeout=limit(5))["data"] for _ in range(5)]
    assert all(m.startswith("hello ") for m in messages)
    numbers = [int(m.split()[1]) for m in messages]
    assert numbers == sorted(numbers)
    assert robot.topics()["/chatter"] == "std_msgs/String"


def test_publish_reaches_a_rospy_listener(
    robot: pyros.Client, ros1_peer: Callable[..., Peer]
) -> None:
    listener = ros1_peer("listener", "--topic", "/cmd_vel", "--type", "geometry_msgs/Twist")
    robot.publish(
        "/cmd_vel",
        {"linear": {"x": 1.5}, "angular": {"z": -0.5}},
        type="geometry_msgs/Twist",
    )
    received = listener.read_json(limit(5))["msg"]
    assert received["linear"] == {"x": 1.5, "y": 0.0, "z": 0.0}
    assert received["angular"]["z"] == -0.5
    for i in range(20):
        robot.publish("/cmd_vel", {"linear": {"x": float(i)}})
    xs = [listener.read_json(limit(5))["msg"]["linear"]["x"] for _ in range(20)]
    assert xs == [float(i) for i in range(20)]


def test_message_errors_name_the_field(robot: pyros.Client, ros1_peer: Callable[..., Peer]) -> None:
    with pytest.raises(pyros.MessageError) as info:
        robot.publish("/cmd_vel", {"linear": {"x": "fast"}}, type="geometry_msgs/Twist")
    assert info.value.field == "linear.x"
    with pytest.raises(pyros.MessageError) as info:
        robot.publish("/cmd_vel", {"linear": {"q": 1.0}}, type="geometry_msgs/Twist")
    assert info.value.field == "linear.q"
    with pytest.raises(pyros.MessageError):
        robot.publish("/cmd_vel", {}, type="no_such_pkg/Nope")
    robot.publish("/cmd_vel", {"linear": {"x": 1.0}}, type="geometry_msgs/Twist")


def test_services_through_pyros(robot: pyros.Client, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("setbool_server")
    ros1_peer("trigger_server")
    ros1_peer("failing_server")
    assert robot.services()["/set_flag"] == "std_srvs/SetBool"
    assert robot.call("/set_flag", {"data": True}) == {"success": True, "message": "flag is True"}
    assert robot.call("/set_flag", {"data": False})["success"] is False
    assert robot.call("/trigger")["success"] is True
    with pytest.raises(pyros.ServiceError):
        robot.call("/fail")
    with pytest.raises(pyros.NotExposedError):
        robot.call("/not_there")
    with pytest.raises(pyros.MessageError) as info:
        robot.call("/set_flag", {"data": "yes"})
    assert info.value.field == "data"
    assert robot.call("/trigger")["success"] is True


def test_params_round_trip(robot: pyros.Client, ros_env: Ros1Master) -> None:
    robot.set_param("/pyros_test/gains", {"p": 1.5, "i": 0, "name": "pid"})
    assert robot.get_param("/pyros_test/gains") == {"p": 1.5, "i": 0, "name": "pid"}
    assert robot.get_param("/pyros_test/gains/p") == 1.5
    assert "/pyros_test/gains/p" in robot.params()
    assert ros_env.call("getParam", "/pyros_test/gains/name") == "pid"
    with pytest.raises(KeyError):
        robot.get_param("/pyros_test/unset")


def test_late_topics_and_services_are_exposed_within_half_a_second(
    robot: pyros.Client, ros_env: Ros1Master, ros1_peer: Callable[..., Peer]
) -> None:
    sub = robot.subscribe("/late_chatter")
    assert "/late_chatter" not in robot.topics()
    ros1_peer("talker", "--topic", "/late_chatter", "--rate", "20")
    appeared = time.monotonic()  # READY: registered with the master
    assert wait_until(lambda: "/late_chatter" in robot.topics(), limit(0.5))
    first = sub.get(timeout=limit(5))
    assert first["data"].startswith("hello")
    assert time.monotonic() - appeared < limit(5)
    sub.close()
    ros1_peer("setbool_server", "--name", "/late_flag")
    assert wait_until(lambda: "/late_flag" in robot.services(), limit(0.5))
    assert robot.call("/late_flag", {"data": True})["success"] is True


def test_patterns_limit_exposure(ros_env: Ros1Master, ros1_peer: Callable[..., Peer]) -> None:
    ros1_peer("talker", "--topic", "/exposed/chatter", "--rate", "10")
    ros1_peer("talker", "--topic", "/hidden/chatter", "--rate", "10", "--node-name", "t2")
    with pyros.spawn("ros1", topics=["/exposed/*"], master_uri=ros_env.uri) as client:
        assert "/exposed/chatter" in client.topics()
        assert "/hidden/chatter" not in client.topics()
        with pytest.raises(pyros.NotExposedError):
            client.subscribe("/hidden/chatter")


def test_node_sigkill_fails_pending_calls(ros_env: Ros1Master) -> None:
    client = pyros.spawn("ros1", topics=["*"], master_uri=ros_env.uri)
    sub = client.subscribe("/quiet")
    errors: list[BaseException] = []
    waiter = threading.Thread(target=lambda: _capture(sub.get, errors))
    waiter.start()
    os.kill(client.node_pid, signal.SIGKILL)
    waiter.join(limit(2))
    assert not waiter.is_alive() and isinstance(errors[0], pyros.NodeDiedError)
    with pytest.raises(pyros.NodeDiedError):
        client.topics()
    client.close()


def test_owner_sigkill_makes_the_node_exit_and_unregister(ros_env: Ros1Master) -> None:
    script = (
        "import pyros, sys, time\n"
        f"c = pyros.spawn('ros1', topics=['*'], master_uri={ros_env.uri!r})\n"
        "c.publish('/owned_topic', {'data': 'x'}, type='std_msgs/String')\n"
        "print(c.node_pid, c.name, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid_text, name = owner.stdout.readline().split()
        node_pid = int(pid_text)
        assert f"/pyros_{name}" in ros_env.node_names()
        owner.kill()
        owner.wait()
        assert wait_until(lambda: not psutil.pid_exists(node_pid), limit(2.5))
        assert f"/pyros_{name}" not in ros_env.node_names()
        assert ros_env.entries_of(f"/pyros_{name}") == []
    finally:
        owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()


def _capture(func: Callable[[], object], errors: list[BaseException]) -> None:
    try:
        func()
    except BaseException as exc:
        errors.append(exc)


def test_actions_and_graph_information_through_pyros(
    ros_env: Ros1Master, ros1_peer: Callable[..., Peer]
) -> None:
    ros1_peer("fibonacci_server", "--node-name", "fib")
    ros1_peer("setbool_server", "--node-name", "flag")
    with pyros.spawn(
        "ros1", topics=["*"], services=["*"], actions=["/fib*"], master_uri=ros_env.uri
    ) as robot:
        assert robot.actions() == {"/fibonacci": "actionlib/Test"}
        feedback: list[dict] = []
        result = robot.send_goal("/fibonacci", {"goal": 5}, feedback=feedback.append)
        assert result == {"result": 6}
        values = [message["feedback"] for message in feedback]
        assert values in ([3, 4, 5, 6], [3, 4, 5])  # ROS 1 does not order feedback and result
        goal = robot.start_goal("/fibonacci", {"goal": 40})
        time.sleep(0.05)
        goal.cancel()
        with pytest.raises(pyros.ActionError) as info:
            goal.result(limit(5))
        assert info.value.status == "canceled" and goal.status == "canceled"
        with pytest.raises(pyros.ActionError) as info:
            robot.send_goal("/fibonacci", {"goal": -3}, timeout=limit(5))
        assert info.value.status == "rejected"

        me = graph_name(robot)
        assert {"/fib", "/flag", me} <= set(robot.nodes())
        assert robot.action_info("/fibonacci") == {
            "type": "actionlib/Test",
            "servers": ["/fib"],
            "clients": [me],
        }
        assert robot.topic_info("/fibonacci/goal")["publishers"] == [me]
        assert robot.service_info("/set_flag") == {
            "type": "std_srvs/SetBool",
            "providers": ["/flag"],
        }
        assert robot.node_info("/fib")["actions"] == {"/fibonacci": "actionlib/Test"}
        assert robot.definition("actionlib/Test").startswith("int32 goal\n---\n")
        with pytest.raises(pyros.NotExposedError):
            robot.node_info("/nobody")
    assert ros_env.entries_of(me) == []  # the action client unregistered too
