"""The dashboard's I/O-free parts: forms from message types, the fleet model, the operator
side of rosbridge v2 (no browser, no sockets)."""

from __future__ import annotations

import base64
import json
import math

import pytest

from pyros.dashboard.fleet import (
    ImageError,
    TopicStream,
    extract_pose,
    fleet_rows,
    image_source,
    numeric_fields,
    parse_devices,
    tree_node_ids,
    tree_nodes,
)
from pyros.dashboard.forms import (
    JSON_FIELD,
    build_message,
    joystick_twist,
    message_form,
    service_form,
)
from pyros.dashboard.rosbridge_client import (
    ActionFeedback,
    ActionResult,
    RosbridgeClient,
    ServiceResult,
    Status,
    TopicMessage,
)

# --- forms -----------------------------------------------------------------------------------


def test_twist_form_has_one_float_field_per_component() -> None:
    fields = message_form("geometry_msgs/msg/Twist")
    assert [f.path for f in fields] == [
        "linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z",
    ]  # fmt: skip
    assert {f.kind for f in fields} == {"float"}
    message, errors = build_message("geometry_msgs/Twist", fields, {"linear.x": "1.5"})
    assert errors == {}
    assert message is not None and message["linear"]["x"] == 1.5


def test_malformed_values_are_named_and_nothing_is_built() -> None:
    fields = message_form("geometry_msgs/Twist")
    message, errors = build_message(
        "geometry_msgs/Twist", fields, {"linear.x": "fast", "angular.z": "1e400x"}
    )
    assert message is None
    assert set(errors) == {"linear.x", "angular.z"}
    assert "not a number" in errors["linear.x"]


def test_integer_ranges_booleans_time_and_arrays() -> None:
    fields = message_form("sensor_msgs/Image")
    kinds = {f.path: f.kind for f in fields}
    assert kinds["header.stamp"] == "time" and kinds["data"] == "bytes"
    assert kinds["height"] == "int"
    _, errors = build_message("sensor_msgs/Image", fields, {"is_bigendian": "300"})
    assert "out of range for uint8" in errors["is_bigendian"]
    message, errors = build_message(
        "sensor_msgs/Image", fields, {"header.stamp": "12.5", "data": "AAEC"}
    )
    assert errors == {}
    assert message is not None
    assert message["header"]["stamp"] == {"secs": 12, "nsecs": 500_000_000}
    assert message["data"] == b"\x00\x01\x02"
    joints = message_form("sensor_msgs/JointState")
    _, errors = build_message("sensor_msgs/JointState", joints, {"position": "{}"})
    assert "JSON list" in errors["position"]
    flag = service_form("std_srvs/SetBool")
    assert [(f.path, f.kind) for f in flag] == [("data", "bool")]
    message, errors = build_message("std_srvs/SetBool", flag, {"data": "yes"}, service=True)
    assert message == {"data": True} and errors == {}
    _, errors = build_message("std_srvs/SetBool", flag, {"data": "maybe"}, service=True)
    assert "true or false" in errors["data"]


def test_unknown_types_are_edited_as_one_json_object() -> None:
    fields = message_form("my_pkg/Thing")
    assert [(f.path, f.kind) for f in fields] == [(JSON_FIELD, "json")]
    message, errors = build_message("my_pkg/Thing", fields, {JSON_FIELD: '{"a": [1, 2]}'})
    assert message == {"a": [1, 2]} and errors == {}
    _, errors = build_message("my_pkg/Thing", fields, {JSON_FIELD: "[1]"})
    assert "JSON object" in errors[JSON_FIELD]
    assert service_form("std_srvs/Empty") == []


def test_joystick_up_drives_forward_and_right_turns_clockwise() -> None:
    forward = joystick_twist(0.0, 1.0, 2.0, 1.0)
    assert forward["linear"]["x"] == 2.0 and forward["angular"]["z"] == 0.0
    right = joystick_twist(1.0, 0.0, 2.0, 1.0)
    assert right["angular"]["z"] == -1.0
    assert joystick_twist(0.0, 5.0, 2.0, 1.0)["linear"]["x"] == 2.0  # clamped


# --- the fleet model ---------------------------------------------------------------------------


DEVICES = [
    {
        "id": "robot1",
        "online": True,
        "last_seen": 100.0,
        "topics": {"/turtle1/pose": "turtlesim/Pose"},
        "services": {"/reset": "std_srvs/Empty"},
        "commands": {"/turtle1/cmd_vel": "geometry_msgs/Twist"},
        "command_globs": ["/turtle1/*"],
        "actions": {"/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute"},
        "stats": {
            "messages_per_s": 30.0,
            "latency_ms": 1.5,
            "dropped": 2,
            "buffered": 0,
            "bytes_per_s": 2400.0,
        },
        "may_command": True,
        "received": 300,
    },
    {"id": "robot2", "online": False, "last_seen": 40.0, "commands": ["/cmd"], "received": 5},
]


def test_devices_with_and_without_the_stats_of_newer_relays() -> None:
    devices = parse_devices(DEVICES, 101.0)
    robot1, robot2 = devices["robot1"], devices["robot2"]
    assert robot1.stats.latency_ms == 1.5 and robot1.may_command
    assert robot1.is_command_topic("/turtle1/cmd_vel") and robot1.is_command_topic("/turtle1/x")
    assert robot2.command_globs == ["/cmd"] and not robot2.may_command
    assert robot2.stats.messages_per_s == 0.0  # offline
    later = [dict(DEVICES[1], online=True, received=25)]
    rate = parse_devices(later, 102.0, devices, elapsed=2.0)["robot2"].stats.messages_per_s
    assert rate == 10.0
    with pytest.raises(ValueError):
        parse_devices({"id": "x"}, 0.0)
    rows = fleet_rows(devices, "", 101.0)
    assert [(r["id"], r["online"], r["topics"]) for r in rows] == [
        ("robot1", "online", 1),
        ("robot2", "offline", 0),
    ]
    assert rows[0]["last_seen"] == "1.0 s" and rows[0]["latency_ms"] == "1.5"
    assert [r["id"] for r in fleet_rows(devices, "BOT2", 101.0)] == ["robot2"]
    assert [r["id"] for r in fleet_rows(devices, "r*1", 101.0)] == ["robot1"]


def test_topic_stream_rate_history_and_fields() -> None:
    stream = TopicStream("/robot1/turtle1/pose", "turtlesim/Pose")
    for n in range(50):
        stream.add({"x": float(n), "y": 1.0, "name": "t", "ok": True}, 10.0 + n * 0.1)
    assert stream.rate(14.9) == pytest.approx(10.0, rel=0.05)
    assert stream.fields() == ["x", "y"]
    assert stream.series("x", 14.0)[0] == (14.0, 40.0)
    assert stream.rate(100.0) == 0.0


def test_numbers_and_trees_of_nested_messages() -> None:
    msg = {"linear": {"x": 1.0}, "ranges": [1, 2, float("nan")], "data": "x" * 500}
    assert numeric_fields(msg) == {"linear.x": 1.0, "ranges[0]": 1.0, "ranges[1]": 2.0}
    nodes = tree_nodes(msg)
    assert nodes[0] == {
        "id": "linear",
        "label": "linear",
        "children": [{"id": "linear.x", "label": "x: 1.0"}],
    }
    assert "(500 characters)" in nodes[2]["label"]
    assert list(tree_node_ids(nodes)) == ["linear", "ranges"]


def test_poses_of_every_pose_type() -> None:
    quarter = {"x": 0.0, "y": 0.0, "z": math.sin(math.pi / 4), "w": math.cos(math.pi / 4)}
    pose = {"position": {"x": 1.0, "y": 2.0, "z": 0.0}, "orientation": quarter}
    assert extract_pose("turtlesim/Pose", {"x": 1, "y": 2, "theta": 0.5}) == (1.0, 2.0, 0.5)
    for kind, msg in [
        ("geometry_msgs/Pose", pose),
        ("geometry_msgs/msg/PoseStamped", {"pose": pose}),
        ("geometry_msgs/PoseWithCovarianceStamped", {"pose": {"pose": pose}}),
        ("nav_msgs/Odometry", {"pose": {"pose": pose}}),
    ]:
        found = extract_pose(kind, msg)
        assert found is not None, kind
        assert found[:2] == (1.0, 2.0) and found[2] == pytest.approx(math.pi / 2), kind
    assert extract_pose("std_msgs/String", {"data": "x"}) is None
    assert extract_pose("nav_msgs/Odometry", {"pose": {}}) is None


def test_images_compressed_passed_through_raw_converted_to_png() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    assert image_source("sensor_msgs/CompressedImage", {"format": "png", "data": png}) == (
        "data:image/png;base64," + png
    )
    raw = {"width": 2, "height": 1, "encoding": "bgr8", "step": 6, "data": [0, 0, 255, 0, 255, 0]}
    url = image_source("sensor_msgs/Image", raw)
    assert url.startswith("data:image/png;base64,")
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size == (2, 1) and image.getpixel((0, 0)) == (255, 0, 0)  # bgr -> red
    with pytest.raises(ImageError, match="do not hold"):
        image_source("sensor_msgs/Image", dict(raw, height=5))
    with pytest.raises(ImageError, match="encoding"):
        image_source("sensor_msgs/Image", dict(raw, encoding="yuv422"))


# --- the operator side of rosbridge v2 ---------------------------------------------------------


def test_requests_answers_and_refusals_are_correlated_by_id() -> None:
    client = RosbridgeClient()
    call_id, frame = client.call_service("/robot1/reset", {}, timeout=2.0)
    assert json.loads(frame) == {
        "op": "call_service", "id": call_id, "service": "/robot1/reset", "args": {},
        "timeout": 2.0,
    }  # fmt: skip
    answer = json.dumps({"op": "service_response", "id": call_id, "values": {}, "result": True})
    assert client.receive(answer) == [ServiceResult(call_id, True, {})]
    goal_id, frame = client.send_action_goal("/r/rotate", "turtlesim/action/RotateAbsolute", {})
    assert json.loads(frame)["feedback"] is True
    assert client.receive(
        json.dumps({"op": "action_feedback", "id": goal_id, "values": {"remaining": 1}})
    ) == [ActionFeedback(goal_id, {"remaining": 1})]
    refused = json.dumps({"op": "status", "level": "error", "id": goal_id, "msg": "no"})
    assert client.receive(refused) == [ActionResult(goal_id, False, None, "no")]
    publish_id, _ = client.publish("/robot1/cmd", {})
    refusal = json.dumps({"op": "status", "level": "error", "id": publish_id, "msg": "not allowed"})
    assert client.receive(refusal) == [Status("error", "not allowed", publish_id)]
    topic = json.dumps({"op": "publish", "topic": "/robot1/pose", "msg": {"x": 1}})
    assert client.receive(topic) == [TopicMessage("/robot1/pose", {"x": 1})]
    assert client.receive("not json")[0].level == "error"  # type: ignore[attr-defined]


def test_reconnect_restores_subscriptions_and_fails_calls_in_flight() -> None:
    client = RosbridgeClient()
    client.subscribe("/robot1/pose", "turtlesim/Pose", 50)
    assert client.advertise("/robot1/cmd", "geometry_msgs/Twist") is not None
    assert client.advertise("/robot1/cmd", "geometry_msgs/Twist") is None
    call_id, _ = client.call_service("/robot1/reset", {})
    goal_id, _ = client.send_action_goal("/robot1/go", "pkg/action/Go", {})
    frames = [json.loads(frame) for frame in client.resume()]
    assert [f["op"] for f in frames] == ["subscribe", "advertise"]
    assert frames[0]["throttle_rate"] == 50 and frames[0]["type"] == "turtlesim/Pose"
    assert client.connection_lost("gone") == [
        ServiceResult(call_id, False, "gone"),
        ActionResult(goal_id, False, None, "gone"),
    ]
    client.unsubscribe("/robot1/pose")
    assert [json.loads(f)["op"] for f in client.resume()] == ["advertise"]
