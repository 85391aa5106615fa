"""The rosbridge backend's sans-I/O layer (:mod:`pyros_ros.rosbridge.wire`), in memory."""

from __future__ import annotations

import json
import struct

import cbor2
import pytest

from pyros.exceptions import MessageError, ProtocolError
from pyros_ros.rosbridge import wire


def test_json_frames_carry_bytes_as_base64() -> None:
    frame = wire.encode_json({"op": "publish", "msg": {"data": b"\x00\x01\xff", "t": (1, 2)}})
    assert json.loads(frame) == {"op": "publish", "msg": {"data": "AAH/", "t": [1, 2]}}
    with pytest.raises(MessageError, match="object is not JSON data"):
        wire.encode_json({"op": "publish", "msg": {"x": object()}})


def test_cbor_frames_keep_bytes_and_decode_typed_arrays() -> None:
    assert wire.decode(wire.encode_cbor({"op": "publish", "msg": {"data": b"\x01"}})) == {
        "op": "publish",
        "msg": {"data": b"\x01"},
    }
    floats = cbor2.CBORTag(85, struct.pack("<3f", 1.0, 2.5, -3.0))  # float32 little endian
    ints = cbor2.CBORTag(74, struct.pack(">2i", -7, 9))  # int32 big endian
    raw = cbor2.CBORTag(64, b"\x05\x06")
    frame = cbor2.dumps({"op": "publish", "msg": {"f": floats, "i": ints, "b": raw}})
    assert wire.decode(frame)["msg"] == {"f": [1.0, 2.5, -3.0], "i": [-7, 9], "b": b"\x05\x06"}


@pytest.mark.parametrize("frame", ["}{", "[1, 2]", '{"no_op": 1}', b"\xff\x00"])
def test_undecodable_frames_are_protocol_errors_quoting_the_frame(frame: str | bytes) -> None:
    with pytest.raises(ProtocolError, match="rosbridge server sent"):
        wire.decode(frame)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"result": True, "status": 4, "values": {}}, ("succeeded", "")),
        ({"result": False, "status": 5, "values": {}}, ("canceled", "")),
        ({"result": False, "status": 6, "values": {"sequence": []}}, ("aborted", "")),
        ({"result": False, "status": 6, "values": "goal rejected"}, ("rejected", "goal rejected")),
        ({"result": True}, ("succeeded", "")),
        ({"result": False, "values": "boom"}, ("aborted", "boom")),
    ],
)
def test_goal_status_of_action_results(
    message: dict[str, object], expected: tuple[str, str]
) -> None:
    assert wire.goal_status(message) == expected


def test_ros2_parameter_values_both_ways() -> None:
    for value in (True, 3, 2.5, "x", [1, 2], [1.5], ["a"], [True], b"\x01\x02"):
        encoded = wire.to_parameter_value("/n:p", value)
        assert wire.parameter_value(encoded) == value
    assert wire.to_parameter_value("/n:p", [1, 2.5])["double_array_value"] == [1.0, 2.5]
    with pytest.raises(KeyError):
        wire.parameter_value({"type": 0})
    with pytest.raises(MessageError, match="/n:p"):
        wire.to_parameter_value("/n:p", {"a": 1})
    assert wire.split_param_name("talker:gains.p") == ("/talker", "gains.p")
    with pytest.raises(MessageError, match="<node>:<param>"):
        wire.split_param_name("/gains/p")


def test_status_texts_name_the_field() -> None:
    assert wire.status_field("field std_msgs/msg/String.data") == "data"
    assert wire.status_field("std_msgs/msg/String has no field datum") == "datum"
    assert wire.status_field("something else") is None
    assert wire.ros2_type("std_msgs/String", "msg") == "std_msgs/msg/String"
