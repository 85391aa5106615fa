"""The ros2 backend end to end: ``pyros.spawn("ros2")`` against real rclpy peers.

One rclpy peer (``/robot_c``) and one pyros node are shared by the module: the peer talks on
``/chatter``, latches ``/status``, serves ``/set_flag``, ``/trigger`` and ``/slow``, and holds
parameters; tests add what they need to it. Every Backend method except the actions (see
``test_ros2_actions.py``) is exercised here through the client, bad input included.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ros2_support import RclpyPeer, limit, wait_for

import pyros

ROBOT = "robot_c"
PARAMS = {
    "gains.p": 1.5,
    "gains.i": 0.25,
    "label": "kitchen",
    "flags": [True, False],
    "counts": [1, 2, 3],
}


@pytest.fixture(scope="module")
def robot(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    peer = module_peers(ROBOT, "--params", json.dumps(PARAMS))
    peer.request("talk", topic="/chatter", rate=20.0)
    peer.request(
        "publisher",
        topic="/status",
        type="std_msgs/msg/String",
        qos={"durability": "transient_local", "depth": 1},
    )
    peer.request("publish", topic="/status", message={"data": "ready"})
    peer.request("service", name="/set_flag", kind="setbool")
    peer.request("service", name="/trigger", kind="trigger")
    peer.request("service", name="/slow", kind="slow", delay=3.0)
    peer.request("subscribe", topic="/commands", type="std_msgs/msg/String")
    return peer


@pytest.fixture(scope="module")
def client(robot: RclpyPeer) -> Iterator[pyros.Client]:
    with pyros.spawn(
        "ros2", topics=["*"], services=["*"], params=["*"], actions=["*"], ready_timeout=limit(20)
    ) as client:
        wait_for(lambda: "/chatter" in client.topics(), limit(10), "the peer's /chatter")
        # Node names arrive after the endpoints (on ROS 2's ros_discovery_info topic).
        wait_for(lambda: robot.name in client.nodes(), limit(10), "the peer's node name")
        yield client


def test_graph_lists_the_peers_topics_services_and_nodes(
    client: pyros.Client, robot: RclpyPeer
) -> None:
    topics = client.topics()
    assert topics["/chatter"] == "std_msgs/msg/String"
    assert topics["/status"] == "std_msgs/msg/String"
    assert not any("/_" in name for name in topics)  # hidden names stay hidden
    services = wait_for(
        lambda: "/slow" in client.services() and client.services(), limit(5), "the peer's services"
    )
    assert services["/set_flag"] == "std_srvs/srv/SetBool"
    assert services["/trigger"] == "std_srvs/srv/Trigger"
    assert services[f"/{ROBOT}/get_parameters"] == "rcl_interfaces/srv/GetParameters"
    nodes = client.nodes()
    me = client.info()["graph_name"]
    assert me.startswith("/pyros_")
    assert nodes.count(me) == 1 and robot.name in nodes
    assert nodes == sorted(nodes)
    # The pyros node serves nothing itself (no parameter or type description services).
    assert not any(name.startswith(me + "/") for name in services)


def test_subscribe_receives_the_talker_in_order(client: pyros.Client) -> None:
    with client.subscribe("/chatter") as sub:
        assert sub.type == "std_msgs/msg/String"
        counts = [int(sub.get(timeout=limit(5))["data"].split()[1]) for _ in range(5)]
    assert counts == sorted(counts) and len(set(counts)) == 5


def test_a_late_subscriber_gets_the_latched_message(client: pyros.Client) -> None:
    with client.subscribe("/status") as sub:
        assert sub.get(timeout=limit(5)) == {"data": "ready"}


@pytest.mark.parametrize("type_name", ["std_msgs/String", "std_msgs/msg/String"])
def test_publish_reaches_the_peer_in_both_type_spellings(
    client: pyros.Client, robot: RclpyPeer, type_name: str
) -> None:
    topic = "/commands" if type_name == "std_msgs/String" else "/commands2"
    if topic == "/commands2":
        robot.request("subscribe", topic=topic, type="std_msgs/msg/String")
        wait_for(lambda: topic in client.topics(), limit(5), topic)
    client.publish(topic, {"data": f"go {type_name}"}, type_name)
    assert robot.event(event="message", topic=topic)["message"] == {"data": f"go {type_name}"}
    client.publish(topic, {"data": "again"})  # the type is known now
    assert robot.event(event="message", topic=topic)["message"] == {"data": "again"}


def test_rich_messages_round_trip(client: pyros.Client, robot: RclpyPeer) -> None:
    robot.request("subscribe", topic="/seq", type="test_msgs/msg/UnboundedSequences")
    message = {
        "bool_values": [True, False],
        "byte_values": b"\x00\xff",
        "char_values": b"ab",
        "uint8_values": bytes(range(5)),
        "float32_values": [1.5, -2.0],
        "float64_values": [0.1, 1e300],
        "int8_values": [-128, 127],
        "uint64_values": [2**64 - 1],
        "string_values": ["a", "é"],
        "basic_types_values": [{"int32_value": -7, "bool_value": True}],
    }
    client.publish("/seq", message, "test_msgs/msg/UnboundedSequences")
    got = robot.event(event="message", topic="/seq")["message"]
    assert got["bool_values"] == [True, False]
    assert got["byte_values"] == [0, 255] and got["char_values"] == [97, 98]
    assert got["uint8_values"] == [0, 1, 2, 3, 4]
    assert got["float32_values"] == [1.5, -2.0] and got["float64_values"] == [0.1, 1e300]
    assert got["int8_values"] == [-128, 127] and got["uint64_values"] == [2**64 - 1]
    assert got["string_values"] == ["a", "é"]
    assert got["basic_types_values"][0]["int32_value"] == -7
    assert got["basic_types_values"][0]["bool_value"] is True

    # Peer -> pyros: uint8[] and byte[] come as bytes, time and duration as {sec, nanosec}.
    robot.request("publisher", topic="/builtins", type="test_msgs/msg/Builtins")
    robot.request("publisher", topic="/blob", type="std_msgs/msg/UInt8MultiArray")
    wait_for(lambda: "/blob" in client.topics(), limit(5), "/blob")
    with client.subscribe("/builtins") as builtins, client.subscribe("/blob") as blob:
        wait_for(lambda: client.topic_info("/blob")["subscribers"], limit(5), "a subscriber")
        time.sleep(0.2)  # the peer's publishers match the new subscriptions
        robot.request(
            "publish",
            topic="/builtins",
            message={
                "duration_value": {"sec": -1, "nanosec": 5},
                "time_value": {"sec": 7, "nanosec": 9},
            },
        )
        robot.request("publish", topic="/blob", message={"data": [1, 2, 255]})
        assert builtins.get(timeout=limit(5)) == {
            "duration_value": {"sec": -1, "nanosec": 5},
            "time_value": {"sec": 7, "nanosec": 9},
        }
        got = blob.get(timeout=limit(5))
        assert got["data"] == b"\x01\x02\xff"
        assert got["layout"] == {"dim": [], "data_offset": 0}


def test_time_is_accepted_as_secs_nsecs_and_seconds(client: pyros.Client, robot: RclpyPeer) -> None:
    robot.request("subscribe", topic="/header", type="std_msgs/msg/Header")
    wait_for(lambda: "/header" in client.topics(), limit(5), "/header")
    for stamp, expected in (
        ({"secs": 3, "nsecs": 4}, {"sec": 3, "nanosec": 4}),
        ({"sec": 5, "nanosec": 6}, {"sec": 5, "nanosec": 6}),
        (1.5, {"sec": 1, "nanosec": 500_000_000}),
    ):
        client.publish("/header", {"stamp": stamp, "frame_id": "map"}, "std_msgs/Header")
        got = robot.event(event="message", topic="/header")["message"]
        assert got == {"stamp": expected, "frame_id": "map"}


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"linear": {"x": "fast"}}, "linear.x"),
        ({"linear": {"w": 1.0}}, "linear.w"),
        ({"angular": [1, 2, 3]}, "angular"),
        ({"lineer": {}}, "lineer"),
    ],
)
def test_a_message_that_does_not_fit_names_the_field(
    client: pyros.Client, message: dict[str, Any], field: str
) -> None:
    with pytest.raises(pyros.MessageError) as info:
        client.publish("/cmd_vel_bad", message, "geometry_msgs/msg/Twist")
    assert info.value.field == field
    assert field in str(info.value)


def test_bad_values_and_unknown_types(client: pyros.Client) -> None:
    cases = [
        ("test_msgs/msg/BasicTypes", {"int8_value": 128}, "int8_value"),
        ("test_msgs/msg/BasicTypes", {"float32_value": 1e39}, "float32_value"),
        ("test_msgs/msg/BasicTypes", {"bool_value": 1}, "bool_value"),
        ("test_msgs/msg/Arrays", {"int32_values": [1, 2]}, "int32_values"),
        ("test_msgs/msg/BoundedSequences", {"int32_values": [1, 2, 3, 4]}, "int32_values"),
        ("test_msgs/msg/UnboundedSequences", {"uint8_values": [1, 256]}, "uint8_values[1]"),
        ("test_msgs/msg/Strings", {"bounded_string_value": "x" * 23}, "bounded_string_value"),
    ]
    for type_name, message, field in cases:
        with pytest.raises(pyros.MessageError) as info:
            client.publish("/bad_" + type_name.split("/")[-1], message, type_name)
        assert info.value.field == field, (type_name, message, str(info.value))
    for unknown in ("std_msgs/Strin", "no_such_pkg/msg/X", "std_srvs/srv/SetBool", "nonsense"):
        with pytest.raises(pyros.MessageError):
            client.publish("/bad_type", {}, unknown)
    with pytest.raises(pyros.MessageError):  # /chatter is a std_msgs/msg/String in the graph
        client.publish("/chatter", {"data": 1.0}, "std_msgs/msg/Float64")
    assert "/chatter" in client.topics()  # the node keeps serving


def test_services_are_called_with_plain_dicts(client: pyros.Client, robot: RclpyPeer) -> None:
    reply = client.call("/set_flag", {"data": True})
    assert reply["success"] is True and reply["message"].endswith("is True")
    assert robot.event(event="call", service="/set_flag")["request"] == {"data": True}
    assert client.call("/set_flag", {"data": False})["success"] is False
    reply = client.call("/trigger")
    assert reply["success"] is True and reply["message"].startswith("call ")
    with pytest.raises(pyros.MessageError) as info:
        client.call("/set_flag", {"data": "yes"})
    assert info.value.field == "data"
    with pytest.raises(pyros.NotExposedError):
        client.call("/no_such_service", {})


def test_service_calls_from_many_threads(client: pyros.Client) -> None:
    def call(index: int) -> bool:
        return bool(client.call("/set_flag", {"data": index % 2 == 0})["success"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(40)))
    assert results == [index % 2 == 0 for index in range(40)]


def test_a_slow_service_times_out_and_the_node_keeps_serving(client: pyros.Client) -> None:
    began = time.monotonic()
    with pytest.raises(pyros.TimeoutError):
        client.call("/slow", {}, timeout=0.5)
    assert time.monotonic() - began < limit(2)
    assert client.call("/set_flag", {"data": True})["success"] is True


def test_a_server_that_leaves_mid_call_is_a_service_error(
    client: pyros.Client, ros2_peer: Callable[..., RclpyPeer]
) -> None:
    quitter = ros2_peer("quitter_c")
    quitter.request("service", name="/quit", kind="exit")
    wait_for(lambda: "/quit" in client.services(), limit(5), "/quit")
    began = time.monotonic()
    with pytest.raises(pyros.ServiceError):
        client.call("/quit", {}, timeout=limit(10))
    assert time.monotonic() - began < limit(3)
    assert quitter.proc.wait(limit(5)) == 0


def test_parameters_of_every_node_are_listed_read_and_written(
    client: pyros.Client, robot: RclpyPeer
) -> None:
    names = wait_for(
        lambda: f"/{ROBOT}:gains.p" in client.params() and client.params(),
        limit(5),
        "the peer's parameters",
    )
    assert {f"/{ROBOT}:{name}" for name in PARAMS} <= set(names)
    assert not any(name.startswith(client.info()["graph_name"] + ":") for name in names)
    assert client.get_param(f"/{ROBOT}:gains.p") == 1.5
    assert client.get_param(f"/{ROBOT}:label") == "kitchen"
    assert client.get_param(f"/{ROBOT}:flags") == [True, False]
    assert client.get_param(f"/{ROBOT}:counts") == [1, 2, 3]
    assert client.get_param(f"/{ROBOT}:gains") == {"p": 1.5, "i": 0.25}  # a prefix

    client.set_param(f"/{ROBOT}:gains.p", 2)  # an int for a double parameter
    assert client.get_param(f"/{ROBOT}:gains.p") == 2.0
    assert robot.request("param", name="gains.p") == 2.0
    client.set_param(f"/{ROBOT}:gains", {"p": 3.5, "i": 0.5})
    assert robot.request("param", name="gains.i") == 0.5
    client.set_param(f"/{ROBOT}:counts", [4, 5])
    assert robot.request("param", name="counts") == [4, 5]

    with pytest.raises(KeyError):
        client.get_param(f"/{ROBOT}:no_such_param")
    with pytest.raises(KeyError):
        client.get_param("/no_such_node:x")
    with pytest.raises(pyros.MessageError):
        client.set_param(f"/{ROBOT}:label", None)
    with pytest.raises(pyros.PyrosError, match="refused"):  # a double cannot become a str
        client.set_param(f"/{ROBOT}:gains.p", "high")
    with pytest.raises(pyros.PyrosError, match="refused"):  # not declared
        client.set_param(f"/{ROBOT}:undeclared", 1)
    with pytest.raises(pyros.PyrosError, match="refused"):  # declared: cannot be undeclared
        client.delete_param(f"/{ROBOT}:label")
    assert client.get_param(f"/{ROBOT}:label") == "kitchen"


def test_parameters_of_a_node_that_allows_undeclared_ones(
    client: pyros.Client, ros2_peer: Callable[..., RclpyPeer]
) -> None:
    free = ros2_peer("free_c", "--allow-undeclared")
    wait_for(lambda: "/free_c/set_parameters" in client.services(), limit(5), "its services")
    client.set_param("/free_c:mode", "auto")
    assert client.get_param("/free_c:mode") == "auto"
    assert "/free_c:mode" in client.params()
    client.set_param("/free_c:blob", b"\x00\x01")
    assert client.get_param("/free_c:blob") == b"\x00\x01"
    client.delete_param("/free_c:mode")
    with pytest.raises(KeyError):
        client.get_param("/free_c:mode")
    with pytest.raises(KeyError):
        client.delete_param("/free_c:mode")
    assert free.stop() == 0
    wait_for(lambda: "/free_c" not in client.nodes(), limit(5), "the peer to leave")
    with pytest.raises(KeyError):  # the node is gone
        client.get_param("/free_c:blob")


def test_graph_descriptions(client: pyros.Client, robot: RclpyPeer) -> None:
    with client.subscribe("/chatter") as sub:
        sub.get(timeout=limit(5))
        info = client.topic_info("/chatter")
    me = client.info()["graph_name"]
    assert info["type"] == "std_msgs/msg/String"
    assert info["publishers"] == [robot.name]
    assert me in info["subscribers"]
    assert {"node": robot.name, "reliability": "reliable", "durability": "volatile"}.items() <= (
        info["publisher_qos"][0].items()
    )
    latched = client.topic_info("/status")["publisher_qos"][0]
    assert latched["durability"] == "transient_local"
    assert client.service_info("/set_flag") == {
        "type": "std_srvs/srv/SetBool",
        "providers": [robot.name],
    }
    node = client.node_info(robot.name)
    assert node["publishes"]["/chatter"] == "std_msgs/msg/String"
    assert node["subscribes"]["/commands"] == "std_msgs/msg/String"
    assert node["services"]["/set_flag"] == "std_srvs/srv/SetBool"
    for bad in (
        lambda: client.topic_info("/nope"),
        lambda: client.service_info("/nope"),
        lambda: client.node_info("/nope"),
    ):
        with pytest.raises(pyros.NotExposedError):
            bad()


def test_definitions_come_from_the_installed_interface_files(client: pyros.Client) -> None:
    assert "string data" in client.definition("std_msgs/String")
    assert "string data" in client.definition("std_msgs/msg/String")
    setbool = client.definition("std_srvs/srv/SetBool")
    assert "bool data" in setbool and "---" in setbool
    fibonacci = client.definition("test_msgs/action/Fibonacci")
    assert "int32 order" in fibonacci and fibonacci.count("---") == 2
    assert "Vector3  linear" in client.definition("geometry_msgs/Twist").replace("\t", " ")
    for unknown in ("std_msgs/Strin", "nope_msgs/msg/X", "std_msgs/srv/String"):
        with pytest.raises(pyros.MessageError):
            client.definition(unknown)


def test_a_topic_whose_publishers_are_gone_leaves_the_list(
    client: pyros.Client, robot: RclpyPeer
) -> None:
    robot.request("publisher", topic="/short_lived", type="std_msgs/msg/String")
    wait_for(lambda: "/short_lived" in client.topics(), limit(5), "/short_lived")
    robot.request("destroy", name="/short_lived")
    wait_for(lambda: "/short_lived" not in client.topics(), limit(5), "/short_lived to go")


def test_publishing_from_many_threads(client: pyros.Client, robot: RclpyPeer) -> None:
    # Keep-last 100 on both sides: 100 messages at once fit (the default 10 would drop).
    robot.request("subscribe", topic="/many", type="std_msgs/msg/String", qos={"depth": 100})
    wait_for(lambda: "/many" in client.topics(), limit(5), "/many")
    client.publish("/many", {"data": "first"}, "std_msgs/msg/String", qos={"depth": 100})
    robot.event(event="message", topic="/many")
    barrier = threading.Barrier(4)

    def send(thread: int) -> None:
        barrier.wait()
        for index in range(25):
            client.publish("/many", {"data": f"{thread}:{index}"})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(4)))
    got = {robot.event(event="message", topic="/many")["message"]["data"] for _ in range(100)}
    assert got == {f"{t}:{i}" for t in range(4) for i in range(25)}
