"""The relay's sans-I/O parts in memory: tokens, limits, the store, rosbridge checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyros.cloud import device_protocol as dp
from pyros.cloud import rosbridge as rb
from pyros.cloud.auth import AuthError, Grant, Tokens, TokensFileError, is_loopback
from pyros.cloud.limits import Limits, SendQueue, TokenBucket
from pyros.cloud.store import Registry, full_name, split_name

pytestmark = pytest.mark.cloud

TOKENS = {
    "devices": {"robot1": "s1", "robot2": {"token": "s2", "read": ["robot1"]}},
    "operators": {"op": {"read": ["robot*"], "command": ["robot1"]}},
}


def test_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    tokens = Tokens.load(path)
    assert tokens.device("robot1", "s1").read == ("*",)
    assert tokens.device("robot2", "s2").read == ("robot1",)
    for device, token in (("robot1", "s2"), ("robot3", "s1"), ("robot1", None), (None, "s1")):
        with pytest.raises(AuthError) as caught:
            tokens.device(device, token)
        assert caught.value.status == 401
    grant = tokens.operator("op")
    assert grant.may_read("robot7") and not grant.may_read("drone1")
    assert grant.may_command("robot1") and not grant.may_command("robot2")
    with pytest.raises(AuthError):
        tokens.operator("s1")
    with pytest.raises(AuthError):
        tokens.operator(None)
    assert not Grant().may_read("robot1")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"devices": [], "operators": {}},
        {"devices": {"a/b": "t"}},
        {"devices": {"r": ""}},
        {"devices": {"r": {"read": ["*"]}}},
        {"devices": {"r": {"token": "t", "read": "*"}}},
        {"operators": {"t": ["robot1"]}},
        {"operators": {"t": {"read": ["*"], "write": ["*"]}}},
        {"operators": {"": {"read": []}}},
        {"users": {}},
    ],
)
def test_bad_tokens_files(data: Any) -> None:
    with pytest.raises(TokensFileError):
        Tokens.from_data(data)


def test_unreadable_tokens_file(tmp_path: Path) -> None:
    with pytest.raises(TokensFileError):
        Tokens.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TokensFileError):
        Tokens.load(tmp_path / "bad.json")


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "2001:db8::1", "name", None, ""):
        assert not is_loopback(host), host


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.1) and not bucket.take(0.1)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]


def test_send_queue_drops_the_oldest() -> None:
    queue = SendQueue(max_frames=3, max_bytes=100)
    for frame in "abcde":
        queue.put(frame)
    assert len(queue) == 3 and queue.pop() == "c"
    assert queue.take_dropped() == 2 and queue.take_dropped() == 0
    assert queue.put("x" * 150) == 2  # the newest stays, however large
    assert queue.pop() == "x" * 150 and queue.total_dropped == 4
    with pytest.raises(IndexError):
        queue.pop()


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Limits(max_message_bytes=10, max_frame_bytes=5)
    with pytest.raises(ValueError):
        Limits(rate=0)
    assert Limits().max_message_bytes == 16 << 20


def test_names() -> None:
    assert split_name("/robot1/turtle1/pose") == ("robot1", "/turtle1/pose")
    for name in ("/robot1", "/robot1/", "robot1/x", "/", "//x"):
        assert split_name(name) is None, name
    assert full_name("robot1", "/chat") == "/robot1/chat"


def test_registry_sessions_and_duplicates() -> None:
    registry = Registry()
    hello = dp.decode_from_device(
        dp.encode(dp.hello("r", "s1", topics={"/a": "t"}, dropped={"/a": 2}))
    )
    assert registry.hello("r", hello, 1.0) == 0
    record = registry.get("r")
    assert record is not None and record.online and record.dropped == {"/a": 2}
    assert registry.accept(record, 1, 2.0) and registry.accept(record, 5, 2.0)  # a gap is fine
    assert not registry.accept(record, 5, 2.0) and not registry.accept(record, 3, 2.0)
    assert record.received == 2 and record.last_seen == 2.0
    registry.disconnected("r", 3.0)
    assert registry.hello("r", hello, 4.0) == 5  # same session: resume after 5
    assert record.dropped == {"/a": 4}
    other = dict(hello, session="s2")
    assert registry.hello("r", other, 5.0) == 0
    assert registry.hello("r", hello, 6.0) == 5  # earlier sessions are remembered too
    registry.store(record, "/a", {"x": 1}, "frame", 7.0)
    (listed,) = registry.describe(7.0, lambda device: device == "r")
    assert listed["latest"] == {"/a": 7.0} and listed["online"] is True
    assert registry.describe(7.0, lambda device: False) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"op": "subscribe", "topic": "/r/a"}, {"throttle_rate": 0, "queue_length": 0}),
        ({"op": "subscribe", "topic": "r/a", "throttle_rate": 100}, {"topic": "/r/a"}),
        ({"op": "call_service", "service": "/r/s", "args": []}, {"args": {}, "timeout": None}),
        ({"op": "call_service", "service": "/r/s", "args": [{"a": 1}]}, {"args": {"a": 1}}),
        ({"op": "call_service", "id": 5, "service": "/r/s", "timeout": 2}, {"id": 5}),
        ({"op": "publish", "topic": "/r/c", "msg": {"x": 1}}, {"msg": {"x": 1}}),
        ({"op": "unsubscribe", "id": "s:1", "topic": "/r/a"}, {"id": "s:1"}),
        ({"op": "set_level", "level": "none"}, {"level": "none"}),
    ],
)
def test_operator_messages(message: dict[str, Any], expected: dict[str, Any]) -> None:
    decoded = rb.decode_operator(json.dumps(message))
    assert {key: decoded[key] for key in expected} == expected


def test_status_levels() -> None:
    assert rb.level_allows("warning", "error") and rb.level_allows("warning", "warning")
    assert not rb.level_allows("error", "warning") and not rb.level_allows("none", "error")
    assert rb.level_allows("info", "info")


def test_rosapi_answers() -> None:
    view = rb.FleetView(
        topics={
            "/r/b": "std_msgs/String",
            "/r/a": "turtlesim/Pose",
            "/r/cmd": "geometry_msgs/Twist",
        },
        services={"/r/reset": "std_srvs/Empty", "/rosapi/topics": "rosapi_msgs/srv/Topics"},
        actions={"/r/turn": "turtlesim/action/RotateAbsolute"},
        params=["/r/sim:background_r", "/r/run_id"],
        nodes={"/r": rb.NodeView(["/r/a", "/r/b"], ["/r/cmd"], ["/r/reset"])},
    )

    def answer(rosapi_service: str, /, **args: Any) -> dict[str, Any]:
        return rb.rosapi_response(rosapi_service, args, view, now=12.5)

    assert answer("/rosapi/topics") == {
        "topics": ["/r/a", "/r/b", "/r/cmd"],
        "types": ["turtlesim/Pose", "std_msgs/String", "geometry_msgs/Twist"],
    }
    assert answer("/rosapi/topic_type", topic="/r/a") == {"type": "turtlesim/Pose"}
    assert answer("/rosapi/topic_type", topic="/nope") == {"type": ""}
    assert answer("/rosapi/topics_for_type", type="std_msgs/String") == {"topics": ["/r/b"]}
    assert answer("/rosapi/topics_for_type", type="std_msgs/msg/String") == {"topics": ["/r/b"]}
    assert answer("/rosapi/services")["services"] == ["/r/reset", "/rosapi/topics"]
    assert answer("/rosapi/service_type", service="/r/reset") == {"type": "std_srvs/Empty"}
    assert answer("/rosapi/services_for_type", type="std_srvs/srv/Empty") == {
        "services": ["/r/reset"]
    }
    assert answer("/rosapi/service_node", service="/r/reset") == {"node": "/r"}
    assert answer("/rosapi/nodes") == {"nodes": ["/r"]}
    assert answer("/rosapi/node_details", node="/r") == {
        "subscribing": ["/r/cmd"],
        "publishing": ["/r/a", "/r/b"],
        "services": ["/r/reset"],
    }
    assert answer("/rosapi/publishers", topic="/r/a") == {"publishers": ["/r"]}
    assert answer("/rosapi/subscribers", topic="/r/cmd") == {"subscribers": ["/r"]}
    assert answer("/rosapi/action_servers") == {"action_servers": ["/r/turn"]}
    assert answer("/rosapi/get_param_names") == {"names": ["/r/run_id", "/r/sim:background_r"]}
    assert answer("/rosapi/has_param", name="/r/run_id") == {"exists": True}
    assert answer("/rosapi/has_param", name="/r/nope") == {"exists": False}
    assert answer("/rosapi/get_time") == {"time": {"sec": 12, "nanosec": 500000000}}
    with pytest.raises(KeyError):
        answer("/rosapi/params")


def test_type_spellings_and_encodings() -> None:
    assert rb.same_type("turtlesim/Pose", "turtlesim/msg/Pose")
    assert rb.same_type("std_srvs/srv/Empty", "std_srvs/Empty")
    assert not rb.same_type("turtlesim/Pose", "turtlesim/msg/Color")
    import cbor2

    frame = rb.encode_cbor(rb.publish("/r/a", {"x": 1.5, "n": [1, 2]}))
    assert cbor2.loads(frame) == {"op": "publish", "topic": "/r/a", "msg": {"x": 1.5, "n": [1, 2]}}
    text = rb.encode(rb.publish("/r/a", {"data": "é" * 100}))
    pieces = [json.loads(f) for f in rb.fragments(text, 40, "m1")]
    assert {p["total"] for p in pieces} == {len(pieces)} and len(pieces) > 2
    assert "".join(p["data"] for p in pieces) == text
    defrag = rb.Defragmenter(10_000)
    assert [defrag.add(p) for p in reversed(pieces)][-1] == text


def test_png_encoding_is_rosbridges() -> None:
    import base64
    import io

    from PIL import Image

    text = rb.encode(rb.publish("/r/a", {"data": "hello" * 37}))
    frame = json.loads(rb.encode_png(text))
    assert frame["op"] == "png"
    image = Image.open(io.BytesIO(base64.b64decode(frame["data"])))
    assert image.mode == "RGB"
    assert image.tobytes().rstrip(b"\n").decode() == text
