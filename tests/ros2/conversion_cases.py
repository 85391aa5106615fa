"""ROS 2 messages <-> dicts (pyros_ros.ros2.conversion) on rclpy's generated classes.

Run by ``test_ros2_conversion.py`` in a fresh interpreter (``python -m pytest`` on this file),
never in the test run's own process, where ROS 1's message packages may be imported already.
They import rclpy's message classes (no context, no DDS, no thread) after
:func:`pyros_ros.environment.setup_ros2`. test_msgs has a message for every field kind.
"""

from __future__ import annotations

import base64
import os
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from pyros.exceptions import MessageError


@pytest.fixture(scope="module")
def conv() -> Iterator[ModuleType]:
    saved = dict(os.environ)
    from pyros_ros.environment import setup_ros2

    setup_ros2()
    from pyros_ros.ros2 import conversion

    with warnings.catch_warnings():
        # rclpy's type support imports lark-parser, which imports the deprecated sre_parse.
        warnings.simplefilter("ignore", DeprecationWarning)
        conversion.message_class("std_msgs/msg/String")
    yield conversion
    os.environ.clear()
    os.environ.update(saved)


def round_trip(conv: ModuleType, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
    cls = conv.message_class(type_name)
    result: dict[str, Any] = conv.to_dict(conv.from_dict(cls, data))
    return result


def test_type_names_in_both_spellings(conv: ModuleType) -> None:
    string = conv.message_class("std_msgs/msg/String")
    assert conv.message_class("std_msgs/String") is string
    assert conv.graph_name(string) == "std_msgs/msg/String"
    setbool = conv.service_class("std_srvs/SetBool")
    assert conv.service_class("std_srvs/srv/SetBool") is setbool
    assert conv.graph_name(setbool) == "std_srvs/srv/SetBool"
    fibonacci = conv.action_class("test_msgs/Fibonacci")
    assert conv.graph_name(fibonacci) == "test_msgs/action/Fibonacci"
    assert conv.split_type("a/msg/B") == ("a", "msg", "B")


@pytest.mark.parametrize(
    ("kind", "name", "match"),
    [
        ("msg", "std_msgs/Strin", "no Strin"),
        ("msg", "no_such_pkg/msg/X", "no ROS 2 package 'no_such_pkg'"),
        ("msg", "json/Thing", "no ROS 2 package 'json'"),  # a Python package, not ROS
        ("msg", "std_srvs/srv/SetBool", "is a service type"),
        ("srv", "std_msgs/String", "with srv definitions"),
        ("msg", "String", "not a ROS type name"),
        ("msg", "std_msgs/msg/String/x", "not a ROS type name"),
        ("action", "std_msgs/action/String", "with action definitions"),
    ],
)
def test_unknown_and_malformed_types(conv: ModuleType, kind: str, name: str, match: str) -> None:
    load = {"msg": conv.message_class, "srv": conv.service_class, "action": conv.action_class}
    with pytest.raises(MessageError, match=match):
        load[kind](name)


def test_defaults_come_from_the_message_definition(conv: ModuleType) -> None:
    defaults = round_trip(conv, "test_msgs/msg/Defaults", {})
    assert defaults["bool_value"] is True and defaults["byte_value"] == 50
    assert defaults["char_value"] == 100 and defaults["float32_value"] == 1.125
    assert defaults["int64_value"] == -40000000
    basic = round_trip(conv, "test_msgs/msg/BasicTypes", {})
    assert basic == {
        "bool_value": False,
        "byte_value": 0,
        "char_value": 0,
        "float32_value": 0.0,
        "float64_value": 0.0,
        "int8_value": 0,
        "uint8_value": 0,
        "int16_value": 0,
        "uint16_value": 0,
        "int32_value": 0,
        "uint32_value": 0,
        "int64_value": 0,
        "uint64_value": 0,
    }


def test_fixed_arrays_are_lists_and_bytes(conv: ModuleType) -> None:
    out = round_trip(
        conv,
        "test_msgs/msg/Arrays",
        {
            "bool_values": [True, False, True],
            "byte_values": b"\x01\x02\xff",
            "char_values": [97, 98, 99],
            "uint8_values": bytearray(b"xyz"),
            "float32_values": [0.5, 1, -2.25],
            "int64_values": [-(2**63), 0, 2**63 - 1],
            "uint64_values": [0, 1, 2**64 - 1],
            "string_values": ["a", "", "ü"],
            "basic_types_values": [{"int8_value": -1}, {}, {"bool_value": True}],
        },
    )
    assert out["bool_values"] == [True, False, True]
    assert out["byte_values"] == b"\x01\x02\xff" and out["char_values"] == b"abc"
    assert out["uint8_values"] == b"xyz"
    assert out["float32_values"] == [0.5, 1.0, -2.25]
    assert all(type(value) is float for value in out["float32_values"])
    assert out["int64_values"] == [-(2**63), 0, 2**63 - 1]
    assert out["uint64_values"] == [0, 1, 2**64 - 1]
    assert all(type(value) is int for value in out["uint64_values"])
    assert out["string_values"] == ["a", "", "ü"]
    assert [b["int8_value"] for b in out["basic_types_values"]] == [-1, 0, 0]
    default = round_trip(conv, "test_msgs/msg/Arrays", {})
    assert default["uint8_values"] == b"\x00\x00\x00" and default["int32_values"] == [0, 0, 0]


def test_sequences_and_their_bounds(conv: ModuleType) -> None:
    out = round_trip(
        conv,
        "test_msgs/msg/BoundedSequences",
        {"uint8_values": [1, 2], "byte_values": b"", "int16_values": [-3], "string_values": []},
    )
    assert out["uint8_values"] == b"\x01\x02" and out["byte_values"] == b""
    assert out["int16_values"] == [-3] and out["string_values"] == []
    base64_text = base64.b64encode(b"\x00\x10").decode()
    out = round_trip(conv, "test_msgs/msg/UnboundedSequences", {"uint8_values": base64_text})
    assert out["uint8_values"] == b"\x00\x10"  # base64 text: how rosbridge sends uint8[] in JSON
    big = bytes(range(256)) * 4096
    assert (
        round_trip(conv, "test_msgs/msg/UnboundedSequences", {"uint8_values": big})["uint8_values"]
        == big
    )


def test_strings_and_wide_strings(conv: ModuleType) -> None:
    out = round_trip(
        conv,
        "test_msgs/msg/WStrings",
        {"wstring_value": "ハロー", "array_of_wstrings": ["a", "b", "c"]},
    )
    assert out["wstring_value"] == "ハロー" and out["array_of_wstrings"] == ["a", "b", "c"]
    assert out["wstring_value_default3"] == "ハローワールド"
    strings = round_trip(conv, "test_msgs/msg/Strings", {"bounded_string_value": "x" * 22})
    assert strings["bounded_string_value"] == "x" * 22
    assert strings["string_value_default1"] == "Hello world!"


def test_time_and_duration(conv: ModuleType) -> None:
    out = round_trip(
        conv,
        "test_msgs/msg/Builtins",
        {"time_value": {"secs": 5, "nsecs": 1_500_000_000}, "duration_value": -0.25},
    )
    assert out["time_value"] == {"sec": 6, "nanosec": 500_000_000}
    assert out["duration_value"] == {"sec": -1, "nanosec": 750_000_000}
    assert round_trip(conv, "builtin_interfaces/msg/Time", {"sec": 1, "nanosec": 2}) == {
        "sec": 1,
        "nanosec": 2,
    }


def test_services_and_actions_parts(conv: ModuleType) -> None:
    setbool = conv.service_class("std_srvs/srv/SetBool")
    assert conv.to_dict(conv.from_dict(setbool.Request, {"data": True})) == {"data": True}
    assert conv.to_dict(setbool.Response(success=True, message="ok")) == {
        "success": True,
        "message": "ok",
    }
    fibonacci = conv.action_class("test_msgs/action/Fibonacci")
    assert conv.to_dict(conv.from_dict(fibonacci.Goal, {"order": 5})) == {"order": 5}
    assert conv.to_dict(fibonacci.Feedback(sequence=[0, 1, 1])) == {"sequence": [0, 1, 1]}


def test_nested_messages_by_value(conv: ModuleType) -> None:
    data = {"array_of_arrays": [{"int8_values": [1, 2, 3]}, {}, {}]}
    out = round_trip(conv, "test_msgs/msg/MultiNested", data)
    assert out["array_of_arrays"][0]["int8_values"] == [1, 2, 3]
    assert out["unbounded_sequence_of_unbounded_sequences"] == []
    data["array_of_arrays"][0]["int8_values"][0] = 100  # the message shares nothing with it
    again = round_trip(conv, "test_msgs/msg/MultiNested", {"array_of_arrays": [{}, {}, {}]})
    assert again["array_of_arrays"][0]["int8_values"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("type_name", "data", "field"),
    [
        ("test_msgs/msg/BasicTypes", {"int8_value": -129}, "int8_value"),
        ("test_msgs/msg/BasicTypes", {"uint64_value": -1}, "uint64_value"),
        ("test_msgs/msg/BasicTypes", {"float32_value": 3.5e38}, "float32_value"),
        ("test_msgs/msg/BasicTypes", {"float64_value": "1"}, "float64_value"),
        ("test_msgs/msg/BasicTypes", {"bool_value": 0}, "bool_value"),
        ("test_msgs/msg/BasicTypes", {"byte_value": 256}, "byte_value"),
        ("test_msgs/msg/BasicTypes", {"int32_value": 1.0}, "int32_value"),
        ("test_msgs/msg/BasicTypes", {"nope": 1}, "nope"),
        ("test_msgs/msg/Arrays", {"float64_values": [1.0, 2.0]}, "float64_values"),
        ("test_msgs/msg/Arrays", {"uint8_values": b"ab"}, "uint8_values"),
        ("test_msgs/msg/Arrays", {"int8_values": [1, 2, 128]}, "int8_values[2]"),
        ("test_msgs/msg/Arrays", {"string_values": ["a", "b", 3]}, "string_values[2]"),
        ("test_msgs/msg/BoundedSequences", {"bool_values": [True] * 4}, "bool_values"),
        ("test_msgs/msg/UnboundedSequences", {"float32_values": [1.0, 1e39]}, "float32_values[1]"),
        ("test_msgs/msg/UnboundedSequences", {"uint8_values": "not base64!"}, "uint8_values"),
        ("test_msgs/msg/UnboundedSequences", {"int32_values": (1, "2")}, "int32_values[1]"),
        ("test_msgs/msg/UnboundedSequences", {"int32_values": 5}, "int32_values"),
        ("test_msgs/msg/Strings", {"bounded_string_value": "x" * 23}, "bounded_string_value"),
        (
            "test_msgs/msg/Nested",
            {"basic_types_value": {"int8_value": 1000}},
            "basic_types_value.int8_value",
        ),
        ("test_msgs/msg/Nested", {"basic_types_value": 3}, "basic_types_value"),
        (
            "test_msgs/msg/MultiNested",
            {"array_of_arrays": [{}, {"uint16_values": [1, -1, 0]}, {}]},
            "array_of_arrays[1].uint16_values[1]",
        ),
        ("test_msgs/msg/Builtins", {"time_value": {"secs": 1, "nanos": 2}}, "time_value.nanos"),
        ("test_msgs/msg/Builtins", {"time_value": {"sec": 2**31}}, "time_value.sec"),
        ("test_msgs/msg/Builtins", {"duration_value": "1s"}, "duration_value"),
    ],
)
def test_what_does_not_fit_names_the_field(
    conv: ModuleType, type_name: str, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(MessageError) as info:
        conv.from_dict(conv.message_class(type_name), data)
    assert info.value.field == field, str(info.value)
    assert repr(field.split(".")[-1].split("[")[0]) in str(info.value) or field in str(info.value)


def test_not_a_dict(conv: ModuleType) -> None:
    with pytest.raises(MessageError) as info:
        conv.from_dict(conv.message_class("std_msgs/msg/String"), ["x"])
    assert info.value.field is None and "expected a dict" in str(info.value)
    with pytest.raises(TypeError):
        conv.to_dict("not a message")
