"""One behaviour over every backend: the same tests, run once per world (see worlds.py).

Every public operation of :class:`pyros.Client` and every error path: not exposed, bad field,
unknown type, failing service, unknown service, timeout, late topic, latched topic, queue
limits, parameters, actions with feedback, cancel, reject and abort, and node death. Where
backends must differ, :mod:`tests.conformance.worlds` says so, in one place.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

import pyros
from tests.conformance.worlds import World
from tests.support import limit, wait_until

pytestmark = pytest.mark.process


def unique(prefix: str) -> str:
    """A topic or parameter name no other test uses."""
    return f"/conformance/{prefix}_{uuid.uuid4().hex[:8]}"


# --- topics ---------------------------------------------------------------------------------


def test_publish_and_subscribe_round_trip_in_order(world: World) -> None:
    topic = unique("chatter")
    string = world.type_name("std_msgs", "msg", "String")
    with world.spawn() as robot:
        robot.publish(topic, {"data": "first"}, type="std_msgs/String")
        with robot.subscribe(topic) as sub:
            assert sub.type == string
            for n in range(20):
                robot.publish(topic, {"data": f"m{n}"})
            got = [sub.get(timeout=limit(5))["data"] for _ in range(20)]
        assert got == [f"m{n}" for n in range(20)]
        assert robot.topics()[topic] == string


def test_both_type_spellings_are_accepted(world: World) -> None:
    topic = unique("spelling")
    with world.spawn() as robot:
        with robot.subscribe(topic) as sub:
            robot.publish(topic, {"data": 1}, type="std_msgs/msg/Int32")
            robot.publish(topic, {"data": 2}, type="std_msgs/Int32")
            assert [sub.get(timeout=limit(5))["data"] for _ in range(2)] == [1, 2]


def test_a_late_topic_is_delivered_once_it_exists(world: World) -> None:
    topic = unique("late")
    with world.spawn() as robot:
        with robot.subscribe(topic) as sub:
            assert sub.type is None  # not in the graph yet: the subscription waits
            time.sleep(0.2)
            robot.publish(topic, {"data": "finally"}, type="std_msgs/String")
            assert sub.get(timeout=limit(5))["data"] == "finally"


def test_a_missing_topic_names_the_closest_ones(world: World) -> None:
    topic = unique("typo")
    with world.spawn() as robot:
        robot.publish(topic, {"data": "x"}, type="std_msgs/String")
        with robot.subscribe(topic[:-1] + "X") as sub:
            assert sub.type is None
            assert topic in sub.similar


def test_a_latched_topic_reaches_a_late_subscriber(world: World) -> None:
    topic = unique("latched")
    latch = {"durability": "transient_local", "reliability": "reliable", "depth": 1}
    with world.spawn() as robot:
        robot.publish(topic, {"data": "kept"}, type="std_msgs/String", qos=latch)
        time.sleep(0.2)
        with robot.subscribe(topic) as sub:
            assert sub.get(timeout=limit(5))["data"] == "kept"


def test_latest_and_a_queue_of_one_keep_only_the_newest(world: World) -> None:
    topic = unique("newest")
    with world.spawn() as robot:
        with robot.subscribe(topic, queue_size=1) as sub:
            assert sub.latest() is None
            robot.publish(topic, {"data": 0}, type="std_msgs/Int32")
            assert sub.get(timeout=limit(5))["data"] == 0
            for n in range(1, 11):
                robot.publish(topic, {"data": n})
            assert wait_until(lambda: (sub.latest() or {}).get("data") == 10, limit(5))
            assert sub.get(timeout=limit(5))["data"] == 10
            assert sub.dropped >= 1


def test_callbacks_get_every_message_in_order(world: World) -> None:
    topic = unique("callback")
    got: list[int] = []
    done = threading.Event()

    def on_message(message: dict) -> None:
        got.append(message["data"])
        if len(got) == 10:
            done.set()

    with world.spawn() as robot:
        robot.publish(topic, {"data": -1}, type="std_msgs/Int32")
        with robot.subscribe(topic, on_message):
            time.sleep(0.1)
            for n in range(10):
                robot.publish(topic, {"data": n})
            assert done.wait(limit(5))
    assert got[-10:] == list(range(10))


def test_a_bad_field_names_the_field_and_the_node_keeps_serving(world: World) -> None:
    with world.spawn() as robot:
        with pytest.raises(pyros.MessageError) as info:
            robot.publish(unique("twist"), {"linear": {"x": "fast"}}, type="geometry_msgs/Twist")
        assert info.value.field == "linear.x"
        with pytest.raises(pyros.MessageError) as info:
            robot.publish(unique("twist"), {"linear": {"w": 1.0}}, type="geometry_msgs/Twist")
        assert info.value.field is not None and "w" in info.value.field
        with pytest.raises(pyros.MessageError):
            robot.publish(unique("int"), {1: "key is not a string"}, type="std_msgs/Int32")
        assert robot.info()["backend"] == world.backend


def test_an_unknown_type_is_refused(world: World) -> None:
    with world.spawn() as robot:
        with pytest.raises(pyros.MessageError, match="Strin"):
            robot.publish(unique("typo"), {"data": "x"}, type="std_msgs/Strin")
        with pytest.raises(pyros.MessageError):
            robot.publish(unique("typo"), {"data": "x"}, type="NoSlash")


def test_what_is_not_exposed_is_refused(world: World) -> None:
    with world.spawn(
        topics=["/conformance/**"], services=["/trigger"], params=["/nothing"], actions=[]
    ) as robot:
        with pytest.raises(pyros.NotExposedError):
            robot.publish("/elsewhere", {"data": "x"}, type="std_msgs/String")
        with pytest.raises(pyros.NotExposedError):
            robot.subscribe("/elsewhere")
        with pytest.raises(pyros.NotExposedError):
            robot.call("/set_flag", {"data": True})
        with pytest.raises(pyros.NotExposedError):
            robot.get_param(world.param)
        with pytest.raises(pyros.NotExposedError):
            robot.send_goal(world.action.name, world.action.goal(1))
        assert set(robot.services()) <= {"/trigger"}
        assert robot.actions() == {}
        with pytest.raises(pyros.NotExposedError, match="not a valid"):
            robot.publish("/bad name", {"data": "x"}, type="std_msgs/String")


# --- services -------------------------------------------------------------------------------


def test_services_are_listed_and_answer(world: World) -> None:
    with world.spawn() as robot:
        services = robot.services()
        assert services["/set_flag"] == world.type_name("std_srvs", "srv", "SetBool")
        response = robot.call("/set_flag", {"data": True})
        assert response["success"] is True and isinstance(response["message"], str)
        assert robot.call("/trigger")["success"] is True


def test_service_errors(world: World) -> None:
    with world.spawn() as robot:
        with pytest.raises(pyros.ServiceError):
            robot.call("/fail")
        with pytest.raises(pyros.NotExposedError, match="does not exist"):
            robot.call("/no_such_service")
        with pytest.raises(pyros.MessageError) as info:
            robot.call("/set_flag", {"data": "yes"})
        assert info.value.field == "data"
        started = time.monotonic()
        with pytest.raises(pyros.TimeoutError):
            robot.call("/slow", timeout=0.2)
        assert time.monotonic() - started < limit(1.0)
        assert robot.call("/trigger")["success"] is True  # still serving


# --- parameters -----------------------------------------------------------------------------


def test_parameters_round_trip(world: World) -> None:
    with world.spawn() as robot:
        robot.set_param(world.param, 1.5)
        assert robot.get_param(world.param) == 1.5
        assert world.param_listed in robot.params()
        robot.set_param(world.param, 2.5)
        assert robot.get_param(world.param) == 2.5
        robot.delete_param(world.param)
        with pytest.raises(KeyError):
            robot.get_param(world.param)
        with pytest.raises(pyros.MessageError):
            robot.set_param(world.param, None)


# --- actions --------------------------------------------------------------------------------


def test_actions_are_listed(world: World) -> None:
    with world.spawn() as robot:
        actions = robot.actions()
        assert actions[world.action.name].endswith(world.action.type_suffix)


def test_a_goal_sends_feedback_in_order_and_its_result(world: World) -> None:
    action = world.action
    feedback: list[dict] = []
    with world.spawn() as robot:
        result = robot.send_goal(
            action.name, action.goal(6), feedback=feedback.append, timeout=limit(10)
        )
        assert action.result_length(result) == action.expected_length(6)
        values = [action.feedback_value(message) for message in feedback]
        assert values and values == sorted(values)
        goal = robot.start_goal(action.name, action.goal(5))
        iterated = [action.feedback_value(message) for message in goal]
        assert iterated == sorted(iterated) and goal.status == "succeeded"
        assert action.result_length(goal.result(limit(5))) == action.expected_length(5)


def test_a_goal_can_be_cancelled(world: World) -> None:
    action = world.action
    with world.spawn() as robot:
        goal = robot.start_goal(action.name, action.goal(40))
        assert goal.id
        time.sleep(0.05)
        goal.cancel()
        with pytest.raises(pyros.ActionError) as info:
            goal.result(limit(5))
        assert info.value.status == "canceled"


def test_rejected_and_aborted_goals_are_action_errors(world: World) -> None:
    action = world.action
    with world.spawn() as robot:
        with pytest.raises(pyros.ActionError) as info:
            robot.start_goal(action.name, action.goal(-1))
        assert info.value.status == "rejected"
        with pytest.raises(pyros.ActionError) as info:
            robot.send_goal(action.name, action.goal(47), timeout=limit(10))
        assert info.value.status == "aborted"


def test_a_goal_timeout_cancels_the_goal(world: World) -> None:
    action = world.action
    with world.spawn() as robot:
        with pytest.raises(pyros.TimeoutError):
            robot.send_goal(action.name, action.goal(40), timeout=0.05)
        # The server is free again: the next goal runs to its end.
        result = robot.send_goal(action.name, action.goal(3), timeout=limit(10))
        assert action.result_length(result) == action.expected_length(3)


def test_a_goal_that_does_not_fit_names_the_field(world: World) -> None:
    action = world.action
    goal, field = action.bad_goal
    with world.spawn() as robot:
        with pytest.raises(pyros.MessageError) as info:
            robot.start_goal(action.name, goal)
        assert info.value.field == field
        with pytest.raises(pyros.NotExposedError):
            robot.start_goal("/no_such_action", {})


def test_an_action_server_dying_mid_goal_never_hangs(world: World) -> None:
    if world.kill_action_server is None:
        pytest.skip(f"the {world.backend} action server runs inside the node")
    action = world.action
    with world.spawn() as robot:
        goal = robot.start_goal(action.name, action.goal(40))
        world.kill_action_server()
        with pytest.raises((pyros.ActionError, pyros.NodeDiedError)):
            goal.result(limit(10))


# --- the node -------------------------------------------------------------------------------


def test_node_death_fails_pending_and_later_calls(world: World) -> None:
    with world.spawn() as robot:
        topic = unique("dying")
        sub = robot.subscribe(topic)
        errors: list[BaseException] = []

        def wait() -> None:
            try:
                sub.get(timeout=limit(10))
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                errors.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.2)
        os.kill(robot.node_pid, signal.SIGKILL)
        waiter.join(limit(5))
        assert errors and isinstance(errors[0], pyros.NodeDiedError)
        with pytest.raises(pyros.NodeDiedError):
            robot.topics()


def test_info_describes_the_node(world: World) -> None:
    with world.spawn() as robot:
        info = robot.info()
        assert info["backend"] == world.backend
        assert info["graph_name"] == f"/pyros_{robot.name}"
        assert info["patterns"]["actions"] == ["*"]
        assert f"/pyros_{robot.name}" in robot.nodes()
