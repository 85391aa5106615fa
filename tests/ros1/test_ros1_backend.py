"""The ros1 backend against a real rosmaster and real rospy peers, driven directly.

Each backend runs in its own driver process (``ros1_backend`` fixture; rospy allows one node
per process). No pyros node or client is involved: these check the Backend contract itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from ros1_support import REPO_ROOT, BackendDriver, Ros1Master, limit

from pyros.exceptions import (
    MessageError,
    NotExposedError,
    ParamNotSetError,
    PyrosError,
    ServiceError,
    SpawnError,
    TimeoutError,
)
from tests.support import free_port

# --- start and stop --------------------------------------------------------------------------


def test_start_registers_the_node_under_its_name(ros1_master: Ros1Master, ros1_backend) -> None:
    backend = ros1_backend("pyros_kitchen")
    assert backend.started["node"] == "/pyros_kitchen"
    assert "/pyros_kitchen" in ros1_master.node_names()
    assert ros1_master.topic_types()["/rosout"] == "rosgraph_msgs/Log"


def test_master_uri_option_wins_over_environment(ros1_master: Ros1Master, ros1_backend) -> None:
    env = dict(ros1_master.env, ROS_MASTER_URI=f"http://127.0.0.1:{free_port()}/")
    backend = ros1_backend(env=env, master_uri=ros1_master.uri)
    assert backend.started["node"] in ros1_master.node_names()


@pytest.mark.parametrize("via", ["option", "environment"])
def test_no_master_is_a_spawn_error_within_seconds(
    ros1_master: Ros1Master, ros1_backend, via: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    began = time.monotonic()
    with pytest.raises(SpawnError) as info:
        if via == "option":
            ros1_backend(master_uri=dead)
        else:
            ros1_backend(env=dict(ros1_master.env, ROS_MASTER_URI=dead))
    assert time.monotonic() - began < limit(5)  # a fresh Python importing rospy included
    message = str(info.value)
    assert dead in message
    assert ("master_uri option" if via == "option" else "ROS_MASTER_URI") in message


def test_a_live_node_of_the_same_name_is_not_replaced(
    ros1_master: Ros1Master, ros1_backend
) -> None:
    first = ros1_backend("pyros_same")
    with pytest.raises(SpawnError, match="already registered"):
        ros1_backend("pyros_same")
    assert first.request("topics")["/rosout"] == "rosgraph_msgs/Log"  # the first still works
    assert "/pyros_same" in ros1_master.node_names()


def test_an_illegal_node_name_is_a_spawn_error(ros1_backend) -> None:
    with pytest.raises(SpawnError, match="legal ROS node name"):
        ros1_backend("pyros_kitchen-1")


def test_stop_after_the_master_died(ros1_master: Ros1Master, ros1_backend) -> None:
    backend = ros1_backend()
    backend.request("publish", "/orphan", "std_msgs/String", {"data": "x"})
    ros1_master.stop()
    began = time.monotonic()
    backend.request("stop")  # nothing left to unregister: no error, no hang
    assert time.monotonic() - began < limit(3)
    with pytest.raises(PyrosError, match="not running"):
        backend.request("topics")


def test_unknown_option_is_a_type_error() -> None:
    from pyros_ros.ros1 import Ros1Backend

    with pytest.raises(TypeError):
        Ros1Backend("pyros_x", domain_id=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Ros1Backend("pyros_x", master_uri=11311)  # type: ignore[arg-type]


def test_importing_the_backend_touches_no_ros() -> None:
    code = (
        "import sys; before = list(sys.path)\n"
        "import pyros_ros, pyros_ros.ros1, pyros_ros.environment\n"
        "from pyros.backends import load\n"
        "assert load('ros1').name == 'ros1'\n"
        "assert sys.path == before, 'sys.path changed'\n"
        "ros = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rospy', 'rosgraph', 'genpy', 'roslib', 'std_msgs'))\n"
        "assert not ros, ros\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=limit(30)
    )
    assert result.returncode == 0, result.stderr


def test_stop_leaves_nothing_in_the_master(
    ros1_master: Ros1Master, ros1_peer, ros1_backend
) -> None:
    ros1_peer("talker", "--topic", "/chatter", "--rate", "20")
    ros1_peer("setbool_server")
    backend = ros1_backend()
    node = backend.started["node"]
    backend.request("subscribe", "/chatter", "std_msgs/String")
    backend.request("publish", "/cmd", "std_msgs/String", {"data": "x"})
    backend.request("call", "/set_flag", "std_srvs/SetBool", {"data": True}, 5.0)
    registered = set(ros1_master.entries_of(node))
    assert {
        ("publisher", "/rosout"),
        ("publisher", "/cmd"),
        ("subscriber", "/chatter"),
        ("service", f"{node}/get_loggers"),
        ("service", f"{node}/set_logger_level"),
    } <= registered

    backend.request("stop")
    assert ros1_master.entries_of(node) == []
    assert node not in ros1_master.node_names()
    backend.request("stop")  # idempotent
    assert backend.stop() == 0  # the driver exits cleanly after a second stop on EOF


def test_stop_removes_registrations_rospy_did_not_make(
    ros1_master: Ros1Master, ros1_backend
) -> None:
    backend = ros1_backend()
    node = backend.started["node"]
    node_api = ros1_master.call("lookupNode", node)
    ghosts = [
        ("registerPublisher", "/ghost_out", "std_msgs/String", node_api),
        ("registerSubscriber", "/ghost_in", "std_msgs/String", node_api),
        ("registerService", "/ghost_srv", "rosrpc://127.0.0.1:9", node_api),
    ]
    for method, *args in ghosts:
        ros1_master.call(method, *args, caller_id=node)
    assert {name for _, name in ros1_master.entries_of(node)} >= {
        "/ghost_out",
        "/ghost_in",
        "/ghost_srv",
    }
    backend.request("stop")
    assert ros1_master.entries_of(node) == []


# --- topics ----------------------------------------------------------------------------------


def test_topics_lists_the_graph(ros1_master: Ros1Master, ros1_peer, ros1_backend) -> None:
    ros1_peer("talker", "--topic", "/chatter")
    ros1_peer("listener", "--topic", "/only_subscribed", "--type", "geometry_msgs/Twist")
    topics = ros1_backend().request("topics")
    assert topics["/chatter"] == "std_msgs/String"
    assert topics["/only_subscribed"] == "geometry_msgs/Twist"
    assert topics["/rosout"] == "rosgraph_msgs/Log"


def test_topics_leaves_out_topics_whose_nodes_left(
    ros1_master: Ros1Master, ros1_peer, ros1_backend
) -> None:
    talker = ros1_peer("talker", "--topic", "/short_lived")
    listener = ros1_peer("listener", "--topic", "/heard_once", "--type", "std_msgs/Int32")
    backend = ros1_backend()
    topics = backend.request("topics")
    assert topics["/short_lived"] == "std_msgs/String" and "/heard_once" in topics
    talker.stop()  # SIGTERM: rospy unregisters; the master still remembers the types
    listener.stop()
    assert ros1_master.topic_types()["/short_lived"] == "std_msgs/String"
    topics = backend.request("topics")
    assert "/short_lived" not in topics and "/heard_once" not in topics
    assert topics["/rosout"] == "rosgraph_msgs/Log"
    # A topic nobody uses any more may come back with another type.
    backend.request("publish", "/short_lived", "std_msgs/Int32", {"data": 1})
    assert backend.request("topics")["/short_lived"] == "std_msgs/Int32"


def test_one_shot_publish_reaches_an_existing_listener(ros1_peer, ros1_backend) -> None:
    listener = ros1_peer("listener", "--topic", "/chatter")
    backend = ros1_backend()
    backend.request("publish", "/chatter", "std_msgs/String", {"data": "first and only"})
    assert listener.read_json(limit(5))["msg"] == {"data": "first and only"}
    backend.request("publish", "/chatter", "std_msgs/String", {})
    assert listener.read_json(limit(5))["msg"] == {"data": ""}


def test_publish_nested_and_bytes(ros1_peer, ros1_backend) -> None:
    twists = ros1_peer("listener", "--topic", "/cmd_vel", "--type", "geometry_msgs/Twist")
    images = ros1_peer("listener", "--topic", "/image", "--type", "sensor_msgs/Image")
    backend = ros1_backend()
    backend.request("publish", "/cmd_vel", "geometry_msgs/Twist", {"linear": {"x": 0.5}})
    assert twists.read_json(limit(5))["msg"] == {
        "linear": {"x": 0.5, "y": 0.0, "z": 0.0},
        "angular": {"x": 0.0, "y": 0.0, "z": 0.0},
    }
    pixels = bytes(range(256)) * 36
    image = {
        "header": {"seq": 3, "stamp": {"secs": 12, "nsecs": 345}, "frame_id": "cam"},
        "height": 3,
        "width": 1024,
        "encoding": "rgb8",
        "is_bigendian": 0,
        "step": 3072,
        "data": pixels,
    }
    backend.request("publish", "/image", "sensor_msgs/Image", image)
    received = images.read_json(limit(5))["msg"]
    assert received["header"].pop("seq") == 1  # rospy numbers header.seq per publisher
    image["header"].pop("seq")
    assert received == image


def test_publish_errors(ros1_peer, ros1_backend) -> None:
    ros1_peer("listener", "--topic", "/twist", "--type", "geometry_msgs/Twist")
    backend = ros1_backend()
    with pytest.raises(MessageError) as info:
        backend.request("publish", "/twist", "geometry_msgs/Twist", {"linear": {"z2": 1}})
    assert info.value.field == "linear.z2"
    with pytest.raises(MessageError) as info:
        backend.request("publish", "/twist", "geometry_msgs/Twist", {"linear": {"x": "1"}})
    assert info.value.field == "linear.x"
    with pytest.raises(MessageError, match="geometry_msgs/Twist"):
        backend.request("publish", "/twist", "std_msgs/String", {"data": "x"})
    with pytest.raises(MessageError):
        backend.request("publish", "/new", "no_such_msgs/Thing", {})
    backend.request("publish", "/mine", "std_msgs/String", {"data": "x"})
    with pytest.raises(MessageError, match="published here as std_msgs/String"):
        backend.request("publish", "/mine", "std_msgs/Int32", {"data": 1})
    assert backend.request("topics")["/mine"] == "std_msgs/String"  # the node lives on


def test_subscribe_to_a_talker_and_unsubscribe(
    ros1_master: Ros1Master, ros1_peer, ros1_backend
) -> None:
    ros1_peer("talker", "--topic", "/chatter", "--rate", "50")
    backend = ros1_backend()
    node = backend.started["node"]
    backend.request("subscribe", "/chatter", "std_msgs/String")
    received = [backend.next_message("/chatter", limit(5)) for _ in range(5)]
    numbers = [int(event["message"]["data"].split()[1]) for event in received]
    assert all(event["message"]["data"].startswith("hello ") for event in received)
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    assert ("subscriber", "/chatter") in ros1_master.entries_of(node)

    backend.request("unsubscribe", "/chatter")
    assert ("subscriber", "/chatter") not in ros1_master.entries_of(node)
    backend.request("unsubscribe", "/chatter")  # idempotent
    time.sleep(0.2)
    list(backend.messages("/chatter"))
    time.sleep(0.3)
    assert list(backend.messages("/chatter")) == []


def test_subscribe_errors(ros1_peer, ros1_backend) -> None:
    ros1_peer("talker", "--topic", "/chatter")
    backend = ros1_backend()
    with pytest.raises(MessageError):
        backend.request("subscribe", "/x", "std_msgs/NoSuchType")
    with pytest.raises(MessageError, match="std_msgs/String"):
        backend.request("subscribe", "/chatter", "std_msgs/Int32")


def test_resubscribing_to_an_own_topic_gets_the_first_message(ros1_backend) -> None:
    # Issue 11 item 10: the first message after subscribing again was lost 5 times of 5.
    backend = ros1_backend()
    backend.request("publish", "/again", "std_msgs/String", {"data": "before anyone listens"})
    for attempt in range(5):
        backend.request("subscribe", "/again", "std_msgs/String")
        backend.request("publish", "/again", "std_msgs/String", {"data": f"try {attempt}"})
        assert backend.next_message("/again", limit(2))["message"] == {"data": f"try {attempt}"}
        backend.request("unsubscribe", "/again")


def test_a_subscription_is_connected_to_other_publishers_when_it_returns(
    ros1_peer, ros1_backend
) -> None:
    ros1_peer("echo", "--in", "/ping", "--out", "/pong")
    backend = ros1_backend()
    backend.request("publish", "/ping", "std_msgs/String", {"data": "nobody hears the echo"})
    for attempt in range(3):
        backend.request("subscribe", "/pong", "std_msgs/String")
        # The echo answers within a millisecond or two: only a connected subscriber hears it.
        backend.request("publish", "/ping", "std_msgs/String", {"data": f"ping {attempt}"})
        assert backend.next_message("/pong", limit(2))["message"] == {"data": f"ping {attempt}"}
        backend.request("unsubscribe", "/pong")


def test_backend_publishes_to_its_own_subscription(ros1_backend) -> None:
    backend = ros1_backend()
    backend.request("subscribe", "/loop", "sensor_msgs/Image")
    backend.request("publish", "/loop", "sensor_msgs/Image", {"data": b"\x00\xff", "width": 2})
    message = backend.next_message("/loop", limit(5))["message"]
    assert message["data"] == b"\x00\xff" and message["width"] == 2


# --- services --------------------------------------------------------------------------------


def test_services_lists_types_and_follows_changes(
    ros1_master: Ros1Master, ros1_peer, ros1_backend
) -> None:
    backend = ros1_backend()
    node = backend.started["node"]
    assert backend.request("services")[f"{node}/get_loggers"] == "roscpp/GetLoggers"
    server = ros1_peer("setbool_server", "--name", "/set_flag")
    ros1_peer("trigger_server", "--name", "/trigger")
    services = backend.request("services")
    assert services["/set_flag"] == "std_srvs/SetBool"
    assert services["/trigger"] == "std_srvs/Trigger"
    assert backend.request("services") == services  # cached: same answer
    server.stop()
    assert "/set_flag" not in backend.request("services")


def test_call_setbool_and_trigger(ros1_peer, ros1_backend) -> None:
    ros1_peer("setbool_server")
    trigger = ros1_peer("trigger_server")
    backend = ros1_backend()
    assert backend.request("call", "/set_flag", "std_srvs/SetBool", {"data": True}, 5.0) == {
        "success": True,
        "message": "flag is True",
    }
    assert backend.request("call", "/set_flag", "std_srvs/SetBool", {}, 5.0) == {
        "success": False,
        "message": "flag is False",
    }
    for count in (1, 2, 3):
        reply = backend.request("call", "/trigger", "std_srvs/Trigger", {}, 5.0)
        assert reply == {"success": True, "message": f"call {count}"}
        assert trigger.read_json(limit(5)) == {"calls": count}


def test_call_survives_a_server_restart(ros1_peer, ros1_backend) -> None:
    first = ros1_peer("setbool_server", "--node-name", "flag_server")
    backend = ros1_backend()
    request = ("call", "/set_flag", "std_srvs/SetBool", {"data": True}, 5.0)
    assert backend.request(*request)["success"] is True
    first.stop()
    with pytest.raises(NotExposedError):
        backend.request(*request)
    ros1_peer("setbool_server", "--node-name", "flag_server")
    assert backend.request(*request) == {"success": True, "message": "flag is True"}


def test_concurrent_calls_share_the_connection_pool(ros1_peer, ros1_backend) -> None:
    trigger = ros1_peer("trigger_server")
    backend = ros1_backend()
    replies = backend.request(
        "concurrently", 6, "call", ["/trigger", "std_srvs/Trigger", {}, 5.0], 10, timeout=limit(30)
    )
    assert len(replies) == 60 and all(reply["success"] for reply in replies)
    assert sorted(int(reply["message"].split()[1]) for reply in replies) == list(range(1, 61))
    assert sorted(trigger.read_json(limit(5))["calls"] for _ in range(60)) == list(range(1, 61))


def test_concurrent_first_publishes_make_one_publisher(
    ros1_master: Ros1Master, ros1_peer, ros1_backend
) -> None:
    listener = ros1_peer("listener", "--topic", "/burst")
    backend = ros1_backend()
    backend.request("concurrently", 4, "publish", ["/burst", "std_msgs/String", {"data": "x"}], 5)
    received = [listener.read_json(limit(5))["msg"] for _ in range(20)]
    assert received == [{"data": "x"}] * 20
    publishers = dict(ros1_master.state()[0])["/burst"]
    assert publishers == [backend.started["node"]]


def test_call_errors(ros1_peer, ros1_backend) -> None:
    ros1_peer("failing_server", "--name", "/fail", "--error", "no coffee left")
    ros1_peer("setbool_server")
    backend = ros1_backend()
    with pytest.raises(ServiceError, match="no coffee left"):
        backend.request("call", "/fail", "std_srvs/Trigger", {}, 5.0)
    with pytest.raises(ServiceError, match="no coffee left"):  # and again, on a new connection
        backend.request("call", "/fail", "std_srvs/Trigger", {}, 5.0)
    with pytest.raises(NotExposedError):
        backend.request("call", "/nobody_here", "std_srvs/Trigger", {}, 5.0)
    with pytest.raises(MessageError) as info:
        backend.request("call", "/set_flag", "std_srvs/SetBool", {"data": "yes"}, 5.0)
    assert info.value.field == "data"
    with pytest.raises(MessageError) as info:
        backend.request("call", "/set_flag", "std_srvs/SetBool", {"dta": True}, 5.0)
    assert info.value.field == "dta"
    with pytest.raises(MessageError):
        backend.request("call", "/set_flag", "std_srvs/Trigger", {}, 5.0)
    with pytest.raises(MessageError):
        backend.request("call", "/set_flag", "std_srvs/NoSuchSrv", {}, 5.0)
    assert backend.request("call", "/set_flag", "std_srvs/SetBool", {"data": True}, 5.0)["success"]


def test_call_timeout(ros1_peer, ros1_backend) -> None:
    ros1_peer("trigger_server", "--name", "/slow", "--delay", "3")
    backend = ros1_backend()
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        backend.request("call", "/slow", "std_srvs/Trigger", {}, 0.3)
    assert 0.25 < time.monotonic() - began < limit(2)


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [True, 42, -(2**31), 2.5, "text", "", b"\x00\xffraw", [1, "two", 3.0], {"a": {"b": [1, 2]}}],
)
def test_param_round_trip(ros1_backend, value: object) -> None:
    backend = ros1_backend()
    backend.request("set_param", "/pyros_test/value", value)
    assert backend.request("get_param", "/pyros_test/value") == value
    names = backend.request("params")  # the leaves: a dict gives /pyros_test/value/a/b
    assert any(name.startswith("/pyros_test/value") for name in names)


def test_param_errors(ros1_master: Ros1Master, ros1_backend) -> None:
    backend = ros1_backend()
    with pytest.raises(ParamNotSetError):
        backend.request("get_param", "/not/set/anywhere")
    with pytest.raises(MessageError):
        backend.request("set_param", "/none", None)
    with pytest.raises(MessageError):
        backend.request("set_param", "/huge", 2**40)
    ros1_master.call("setParam", "/from/elsewhere", 7)
    assert backend.request("get_param", "/from/elsewhere") == 7
    assert backend.request("get_param", "/from") == {"elsewhere": 7}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, None),
        (2**40, None),
        ({"1a": 1}, None),  # the master would store it; the mock refuses it
        ({"gains": {"p": None}}, "gains.p"),
        ([1, 2, -(2**33)], "[2]"),
        ({"ok": [1, {"bad key": 2}]}, "ok[1]"),
    ],
)
def test_params_follow_the_mocks_rules(ros1_master: Ros1Master, ros1_backend, value, field) -> None:
    from pyros.backends.mock import MockBackend

    mock = MockBackend("pyros_rules")
    with pytest.raises(MessageError) as mocked:
        mock.set_param("/rules/value", value)
    backend = ros1_backend()
    with pytest.raises(MessageError) as info:
        backend.request("set_param", "/rules/value", value)
    assert info.value.field == mocked.value.field == field
    assert str(info.value) == str(mocked.value)
    assert "/rules/value" not in ros1_master.call("getParamNames")


def test_delete_param(ros1_master: Ros1Master, ros1_backend) -> None:
    backend = ros1_backend()
    backend.request("set_param", "/arm/gains", {"p": 1.5, "i": 0.25})
    backend.request("set_param", "/arm/name", "left")
    backend.request("delete_param", "/arm/gains/p")
    assert backend.request("get_param", "/arm/gains") == {"i": 0.25}
    backend.request("delete_param", "/arm")  # a whole namespace
    with pytest.raises(ParamNotSetError):
        backend.request("get_param", "/arm/name")
    assert not [name for name in ros1_master.call("getParamNames") if name.startswith("/arm")]
    with pytest.raises(ParamNotSetError):
        backend.request("delete_param", "/arm")


def test_driver_stop_is_clean(ros1_master: Ros1Master, ros1_backend) -> None:
    backend: BackendDriver = ros1_backend()
    node = backend.started["node"]
    assert backend.stop() == 0  # EOF on stdin: the driver stops the backend and exits 0
    assert node not in ros1_master.node_names()
