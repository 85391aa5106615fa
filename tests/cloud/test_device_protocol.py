"""The device protocol in memory: constructors, encode, and both decoders (no sockets)."""

from __future__ import annotations

import json

import pytest

from pyros.cloud import device_protocol as dp

pytestmark = pytest.mark.cloud


def test_hello_round_trip_fills_defaults() -> None:
    frame = dp.encode(
        dp.hello(
            "robot1",
            "s-1",
            topics={"/turtle1/pose": "turtlesim/Pose"},
            services={"/reset": "std_srvs/Empty"},
            commands=["/turtle1/cmd_vel"],
            dropped={"/turtle1/pose": 12},
        )
    )
    message = dp.decode_from_device(frame)
    assert message == {
        "op": "hello",
        "device": "robot1",
        "session": "s-1",
        "topics": {"/turtle1/pose": "turtlesim/Pose"},
        "services": {"/reset": "std_srvs/Empty"},
        "commands": ["/turtle1/cmd_vel"],
        "dropped": {"/turtle1/pose": 12},
        "command_topics": {},
        "actions": {},
        "params": [],
        "latest": [],
        "definitions": {},
        "version": dp.PROTOCOL_VERSION,
    }
    minimal = dp.decode_from_device('{"op": "hello", "device": "r", "session": "s"}')
    assert minimal["topics"] == {} and minimal["commands"] == [] and minimal["dropped"] == {}
    assert minimal["command_topics"] == {} and minimal["actions"] == {}


def test_stats_round_trip_and_checks() -> None:
    assert dp.decode_from_device(dp.encode(dp.stats(3, 7))) == {
        "op": "stats",
        "buffered": 3,
        "dropped": 7,
    }
    for bad in ('{"op":"stats","buffered":-1,"dropped":0}', '{"op":"stats","buffered":1}'):
        with pytest.raises(dp.DeviceProtocolError):
            dp.decode_from_device(bad)


def test_every_device_op_round_trips() -> None:
    for message in (
        dp.publish("/chatter", {"data": "hi"}, 17),
        dp.service_response("c1", {"success": True}),
        dp.service_response("c2", "no such service", result=False),
        dp.status("error", "refused", "p1"),
        dp.status("info", "hello"),
        dp.subscribe("/robot2/chat"),
        dp.unsubscribe("/robot2/chat"),
    ):
        assert dp.decode_from_device(dp.encode(message)) == message


def test_every_relay_op_round_trips() -> None:
    assert dp.decode_from_relay(dp.encode(dp.welcome("r", 5))) == dp.welcome("r", 5)
    assert dp.decode_from_relay(dp.encode(dp.ack(120))) == dp.ack(120)
    assert dp.decode_from_relay(dp.encode(dp.command("/cmd", {"x": 1}, "p1")))["id"] == "p1"
    assert dp.decode_from_relay(dp.encode(dp.command("/cmd", {"x": 1})))["id"] is None
    call = dp.call_service("c42", "/reset")
    assert dp.decode_from_relay(dp.encode(call)) == call
    assert dp.decode_from_relay(dp.encode(dp.status("warning", "w"))) == dp.status("warning", "w")


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (b"\x00\xff", "binary"),
        ("{not json", "bad JSON"),
        ("[1, 2]", "JSON object"),
        ('{"topic": "/x"}', "missing field 'op'"),
        ('{"op": 3}', "must be a string"),
        ('{"op": "explode"}', "unknown op 'explode'"),
        ('{"op": "welcome", "device": "r", "resume_after": 0}', "unknown op"),
        ('{"op": "publish", "topic": "/x", "msg": {}, "seq": 0}', ">= 1"),
        ('{"op": "publish", "topic": "/x", "msg": {}, "seq": true}', "integer"),
        ('{"op": "publish", "topic": "x", "msg": {}, "seq": 1}', "starting with '/'"),
        ('{"op": "publish", "topic": "/x", "msg": [], "seq": 1}', "an object, not an array"),
        ('{"op": "hello", "device": "r", "session": "s", "version": 2}', "version 2"),
        ('{"op": "hello", "device": "", "session": "s"}', "empty"),
        ('{"op": "hello", "device": "r", "session": "s", "topics": {"/a": 1}}', "type strings"),
        ('{"op": "status", "level": "fatal", "msg": "x"}', "level"),
        ('{"op": "service_response", "id": "c", "result": true, "values": 3}', "object"),
    ],
)
def test_bad_device_frames_raise_a_clear_error(frame: str | bytes, fragment: str) -> None:
    with pytest.raises(dp.DeviceProtocolError) as caught:
        dp.decode_from_device(frame)
    assert fragment in str(caught.value)


def test_errors_carry_the_id_and_op() -> None:
    with pytest.raises(dp.DeviceProtocolError) as caught:
        dp.decode_from_device('{"op": "service_response", "id": "c9"}')
    assert caught.value.id == "c9" and caught.value.op == "service_response"


def test_failed_service_response_values_become_text() -> None:
    frame = json.dumps({"op": "service_response", "id": "c", "result": False, "values": {"a": 1}})
    message = dp.decode_from_device(frame)
    assert isinstance(message["values"], str) and '"a"' in message["values"]


def test_handshake_helpers() -> None:
    headers = dp.handshake_headers("robot1", "secret")
    assert headers == {"Authorization": "Bearer secret", "X-Pyros-Device": "robot1"}
    assert dp.bearer_token(headers["Authorization"]) == "secret"
    assert dp.bearer_token("Basic abc") is None and dp.bearer_token(None) is None
    assert dp.device_query("robot 1", "a&b") == "device=robot%201&token=a%26b"


def test_encode_refuses_bytes() -> None:
    with pytest.raises(dp.DeviceProtocolError):
        dp.encode({"op": "publish", "msg": {"data": b"\x01"}})


def test_a_command_carries_the_advertised_type() -> None:
    frame = dp.encode(dp.command("/cmd", {"x": 1}, "p1", "geometry_msgs/Twist"))
    assert dp.decode_from_relay(frame)["type"] == "geometry_msgs/Twist"
    assert dp.decode_from_relay(dp.encode(dp.command("/cmd", {}, "p2")))["type"] is None
    with pytest.raises(dp.DeviceProtocolError):
        dp.decode_from_relay('{"op": "publish", "topic": "/cmd", "msg": {}, "type": 3}')
