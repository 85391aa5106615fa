"""Message definitions: the .msg/.srv parser, defaults, and check_message with its field paths."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyros._message_definitions import MESSAGE_DEFINITIONS, SERVICE_DEFINITIONS
from pyros.exceptions import MessageError
from pyros.message_types import (
    INT_RANGES,
    REGISTRY,
    Constant,
    Field,
    TypeRegistry,
    canonical_type,
    check_message,
    check_request,
    check_response,
    coerce_bytes,
    coerce_primitive,
    coerce_time,
    default_message,
    default_request,
    default_response,
    is_message_type,
    is_service_type,
    message_fields,
    message_spec,
    parse_message,
    parse_service,
    service_spec,
    split_array,
)

ZERO_VECTOR = {"x": 0.0, "y": 0.0, "z": 0.0}


def error_of(type_name: str, data: object, field_prefix: str = "") -> MessageError:
    with pytest.raises(MessageError) as info:
        check_message(type_name, data, field_prefix)
    return info.value


# --- parser --------------------------------------------------------------------------------


def test_parse_fields_constants_comments_and_arrays() -> None:
    spec = parse_message(
        "my_pkg/Thing",
        """
        # a leading comment line
        Header header
        uint8 RED=1          # constant with a comment
        float64 SCALE = 2.5
        bool ON=true
        string GREETING= hello # not a comment
        int32 count  # trailing comment
        float64[3] position
        uint8[] data
        Other[] others
        geometry_msgs/Point[2] corners
        time stamp
        """,
    )
    assert spec.type == "my_pkg/Thing"
    assert spec.fields == (
        Field("header", "std_msgs/Header", "std_msgs/Header", False, None),
        Field("count", "int32", "int32", False, None),
        Field("position", "float64[3]", "float64", True, 3),
        Field("data", "uint8[]", "uint8", True, None),
        Field("others", "my_pkg/Other[]", "my_pkg/Other", True, None),
        Field("corners", "geometry_msgs/Point[2]", "geometry_msgs/Point", True, 2),
        Field("stamp", "time", "time", False, None),
    )
    assert spec.constants == (
        Constant("RED", "uint8", 1),
        Constant("SCALE", "float64", 2.5),
        Constant("ON", "bool", True),
        Constant("GREETING", "string", "hello # not a comment"),
    )
    assert spec.field_names == ("header", "count", "position", "data", "others", "corners", "stamp")
    assert spec.fields[1].is_primitive and not spec.fields[0].is_primitive


def test_parse_accepts_tabs_and_ros2_style_type_name() -> None:
    spec = parse_message("pkg/msg/Tabbed", "float32\tx\n\tint8 \t y\n")
    assert spec.type == "pkg/Tabbed"
    assert [(f.name, f.type) for f in spec.fields] == [("x", "float32"), ("y", "int8")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("int32", "expected 'type name'"),
        ("int32 a b", "expected 'type name'"),
        ("int32 1abc", "not a valid field name"),
        ("int32 x\nfloat64 x", "declared twice"),
        ("float64[x] a", "not a valid field type"),
        ("a/b/c d", "not a valid field type"),
        ("uint8 BIG=256", "out of range"),
        ("int32 N=1.5", "bad value"),
        ("bool FLAG=maybe", "not a bool"),
        ("time T=3", "primitive type"),
        ("geometry_msgs/Point P=1", "primitive type"),
        ("int32 1N=1", "not a valid constant name"),
    ],
)
def test_parse_errors_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse_message("pkg/Bad", "# comment\n" + text)
    assert "pkg/Bad line " in str(info.value)


def test_parse_rejects_bad_type_name() -> None:
    with pytest.raises(ValueError, match="pkg/Type"):
        parse_message("NoPackage", "int32 x")


def test_parse_service_halves() -> None:
    spec = parse_service("pkg/srv/Add", "int64 a\nint64 b\n---\nint64 sum  # a + b\n")
    assert spec.type == "pkg/Add"
    assert spec.request.type == "pkg/AddRequest"
    assert spec.request.field_names == ("a", "b")
    assert spec.response.type == "pkg/AddResponse"
    assert spec.response.field_names == ("sum",)


@pytest.mark.parametrize("text", ["int32 a\n", "int32 a\n---\n---\nint32 b\n"])
def test_parse_service_needs_one_separator(text: str) -> None:
    with pytest.raises(ValueError, match="exactly one '---'"):
        parse_service("pkg/Broken", text)


def test_parse_service_error_line_numbers_count_the_whole_file() -> None:
    with pytest.raises(ValueError, match="line 4"):
        parse_service("pkg/Broken", "int32 a\n---\nbool ok\nbool ok\n")


def test_canonical_type() -> None:
    assert canonical_type("geometry_msgs/Twist") == "geometry_msgs/Twist"
    assert canonical_type("geometry_msgs/msg/Twist") == "geometry_msgs/Twist"
    assert canonical_type("std_srvs/srv/SetBool") == "std_srvs/SetBool"
    for bad in ("Twist", "a/b/c/d", "", "pkg/1x", "pkg/Type[]"):
        with pytest.raises(MessageError) as info:
            canonical_type(bad)
        assert info.value.field is None


# --- built-in registry ---------------------------------------------------------------------


REQUIRED_MESSAGES = [
    "std_msgs/String",
    "std_msgs/Bool",
    *(f"std_msgs/{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    "std_msgs/Float32",
    "std_msgs/Float64",
    "std_msgs/Empty",
    "std_msgs/Header",
    "std_msgs/Time",
    "std_msgs/Duration",
    "std_msgs/ColorRGBA",
    "geometry_msgs/Vector3",
    "geometry_msgs/Point",
    "geometry_msgs/Quaternion",
    "geometry_msgs/Pose",
    "geometry_msgs/Twist",
    "geometry_msgs/Pose2D",
    "turtlesim/Pose",
    "sensor_msgs/Image",
]


def test_required_types_are_built_in() -> None:
    for type_name in REQUIRED_MESSAGES:
        assert is_message_type(type_name), type_name
    for type_name in ("std_srvs/Empty", "std_srvs/SetBool", "std_srvs/Trigger"):
        assert is_service_type(type_name), type_name
    assert not is_message_type("nope/Nothing")
    assert not is_service_type("std_msgs/String")
    assert REGISTRY.message_types() == sorted(MESSAGE_DEFINITIONS)
    assert REGISTRY.service_types() == sorted(SERVICE_DEFINITIONS)


@pytest.mark.parametrize("type_name", sorted(MESSAGE_DEFINITIONS))
def test_every_builtin_message_defaults_and_checks_to_itself(type_name: str) -> None:
    default = default_message(type_name)
    assert list(default) == list(message_spec(type_name).field_names)
    assert check_message(type_name, default) == default
    assert check_message(type_name, {}) == default


def test_builtin_field_lists() -> None:
    assert [f.name for f in message_fields("turtlesim/Pose")] == [
        "x",
        "y",
        "theta",
        "linear_velocity",
        "angular_velocity",
    ]
    assert {f.type for f in message_fields("turtlesim/Pose")} == {"float32"}
    assert [(f.name, f.type) for f in message_fields("geometry_msgs/Twist")] == [
        ("linear", "geometry_msgs/Vector3"),
        ("angular", "geometry_msgs/Vector3"),
    ]
    assert message_fields("sensor_msgs/Image")[0].type == "std_msgs/Header"
    assert message_fields("geometry_msgs/msg/Pose") == message_fields("geometry_msgs/Pose")


def test_defaults_follow_ros() -> None:
    assert default_message("std_msgs/String") == {"data": ""}
    assert default_message("std_msgs/Bool") == {"data": False}
    assert default_message("std_msgs/Int64") == {"data": 0}
    assert default_message("std_msgs/Float32") == {"data": 0.0}
    assert type(default_message("std_msgs/Float32")["data"]) is float
    assert default_message("std_msgs/Empty") == {}
    assert default_message("std_msgs/Time") == {"data": {"secs": 0, "nsecs": 0}}
    assert default_message("geometry_msgs/Twist") == {"linear": ZERO_VECTOR, "angular": ZERO_VECTOR}
    assert default_message("sensor_msgs/Image") == {
        "header": {"seq": 0, "stamp": {"secs": 0, "nsecs": 0}, "frame_id": ""},
        "height": 0,
        "width": 0,
        "encoding": "",
        "is_bigendian": 0,
        "step": 0,
        "data": b"",
    }
    assert default_message("sensor_msgs/LaserScan")["ranges"] == []


def test_defaults_are_fresh_objects() -> None:
    first = default_message("sensor_msgs/JointState")
    first["name"].append("elbow")
    first["header"]["stamp"]["secs"] = 5
    assert default_message("sensor_msgs/JointState")["name"] == []
    assert default_message("sensor_msgs/JointState")["header"]["stamp"]["secs"] == 0


def test_unknown_type() -> None:
    error = error_of("nope/Nothing", {})
    assert error.field is None
    assert "nope/Nothing" in str(error)
    assert error_of("nope/Nothing", {}, field_prefix="goal").field == "goal"
    with pytest.raises(MessageError, match="unknown message type"):
        default_message("nope/Nothing")
    with pytest.raises(MessageError, match="unknown service type"):
        service_spec("nope/Nothing")
    with pytest.raises(MessageError):
        check_message("not a type name", {})


# --- check_message: normalisation ----------------------------------------------------------


def test_check_fills_defaults_and_converts_ints_to_floats() -> None:
    result = check_message("geometry_msgs/Twist", {"linear": {"x": 1}, "angular": {"z": -2}})
    assert result == {
        "linear": {"x": 1.0, "y": 0.0, "z": 0.0},
        "angular": {"x": 0.0, "y": 0.0, "z": -2.0},
    }
    assert type(result["linear"]["x"]) is float
    assert list(result) == ["linear", "angular"]


def test_check_normalises_arrays_bytes_and_times() -> None:
    image = check_message(
        "sensor_msgs/Image",
        {"header": {"stamp": 1.5}, "data": bytearray(b"\x01\x02"), "width": 2},
    )
    assert image["header"] == {"seq": 0, "stamp": {"secs": 1, "nsecs": 500_000_000}, "frame_id": ""}
    assert image["data"] == b"\x01\x02" and type(image["data"]) is bytes
    assert check_message("sensor_msgs/Image", {"data": [0, 255]})["data"] == b"\x00\xff"
    scan = check_message("sensor_msgs/LaserScan", {"ranges": (1, 2.5)})
    assert scan["ranges"] == [1.0, 2.5] and type(scan["ranges"]) is list
    assert all(type(value) is float for value in scan["ranges"])
    assert check_message("std_msgs/Duration", {"data": {"secs": 1, "nsecs": 1_500_000_000}}) == {
        "data": {"secs": 2, "nsecs": 500_000_000}
    }


def test_check_shares_no_mutable_object_with_the_input() -> None:
    data = {"name": ["a"], "position": [1.0], "header": {"frame_id": "base"}}
    result = check_message("sensor_msgs/JointState", data)
    result["name"].append("b")
    result["header"]["frame_id"] = "other"
    assert data == {"name": ["a"], "position": [1.0], "header": {"frame_id": "base"}}


def test_fixed_arrays_default_filled_and_checked() -> None:
    registry = TypeRegistry(
        {
            "pkg/Fixed": "float64[3] v\nuint8[4] raw\ngeometry_msgs/Point[2] corners\n",
            "geometry_msgs/Point": MESSAGE_DEFINITIONS["geometry_msgs/Point"],
        }
    )
    default = registry.default_message("pkg/Fixed")
    assert default == {
        "v": [0.0, 0.0, 0.0],
        "raw": b"\x00\x00\x00\x00",
        "corners": [ZERO_VECTOR, ZERO_VECTOR],
    }
    assert default["corners"][0] is not default["corners"][1]
    checked = registry.check_message("pkg/Fixed", {"v": [1, 2, 3], "corners": [{"x": 1}, {}]})
    assert checked["v"] == [1.0, 2.0, 3.0]
    assert checked["corners"] == [{"x": 1.0, "y": 0.0, "z": 0.0}, ZERO_VECTOR]
    with pytest.raises(MessageError) as info:
        registry.check_message("pkg/Fixed", {"v": [1.0, 2.0]})
    assert info.value.field == "v"
    with pytest.raises(MessageError) as info:
        registry.check_message("pkg/Fixed", {"raw": b"\x00"})
    assert info.value.field == "raw"
    with pytest.raises(MessageError) as info:
        registry.check_message("pkg/Fixed", {"corners": [{}, {"q": 1}]})
    assert info.value.field == "corners[1].q"


def test_byte_is_signed_and_stays_a_list() -> None:
    registry = TypeRegistry({"pkg/Bytes": "byte[] signed\nchar[] text\n"})
    checked = registry.check_message("pkg/Bytes", {"signed": [-1, 5], "text": b"hi"})
    assert checked == {"signed": [-1, 5], "text": b"hi"}
    with pytest.raises(MessageError) as info:
        registry.check_message("pkg/Bytes", {"signed": [0, 128]})
    assert info.value.field == "signed[1]"


# --- check_message: errors and their field paths -------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "data", "field"),
    [
        ("geometry_msgs/Twist", {"linear": {"x": "fast"}}, "linear.x"),
        ("geometry_msgs/Twist", {"linear": {"x": True}}, "linear.x"),
        ("geometry_msgs/Twist", {"linear": {"w": 1.0}}, "linear.w"),
        ("geometry_msgs/Twist", {"sideways": {}}, "sideways"),
        ("geometry_msgs/Twist", {"linear": [1, 2, 3]}, "linear"),
        ("geometry_msgs/Pose", {"orientation": {"w": None}}, "orientation.w"),
        ("std_msgs/Int8", {"data": 128}, "data"),
        ("std_msgs/UInt8", {"data": -1}, "data"),
        ("std_msgs/UInt64", {"data": 2**64}, "data"),
        ("std_msgs/Int32", {"data": 1.0}, "data"),
        ("std_msgs/Bool", {"data": 1}, "data"),
        ("std_msgs/String", {"data": b"bytes"}, "data"),
        ("std_msgs/Time", {"data": {"secs": 1, "nanos": 2}}, "data.nanos"),
        ("std_msgs/Time", {"data": {"secs": 1.5}}, "data.secs"),
        ("std_msgs/Time", {"data": math.inf}, "data"),
        ("sensor_msgs/Image", {"data": [1, 2, 3, 256]}, "data[3]"),
        ("sensor_msgs/Image", {"data": "not bytes"}, "data"),
        ("sensor_msgs/Image", {"header": {"stamp": {"sec": 1, "nsecs": 0}}}, "header.stamp.sec"),
        ("sensor_msgs/Image", {"header": {"seq": -1}}, "header.seq"),
        ("sensor_msgs/LaserScan", {"ranges": [1.0, 2.0, 3.0, "x"]}, "ranges[3]"),
        ("sensor_msgs/LaserScan", {"ranges": "1,2"}, "ranges"),
        ("sensor_msgs/LaserScan", {"ranges": 3.0}, "ranges"),
        ("sensor_msgs/JointState", {"name": ["a", 2]}, "name[1]"),
        ("std_msgs/Empty", {"data": 1}, "data"),
        ("std_msgs/Empty", {1: 1}, "1"),
    ],
)
def test_errors_name_the_field(type_name: str, data: object, field: str) -> None:
    error = error_of(type_name, data)
    assert error.field == field
    assert repr(field) in str(error)


def test_whole_message_errors_have_no_field() -> None:
    for data in (None, 5, "x", [1]):
        assert error_of("geometry_msgs/Twist", data).field is None


def test_field_prefix_is_put_in_front_of_every_path() -> None:
    assert error_of("geometry_msgs/Twist", {"linear": {"x": "a"}}, "goal").field == "goal.linear.x"
    assert error_of("geometry_msgs/Twist", {"linear": {"w": 1}}, "goal").field == "goal.linear.w"
    assert error_of("geometry_msgs/Twist", 3, "goal").field == "goal"
    assert check_message("std_msgs/Bool", {"data": True}, "goal") == {"data": True}


def test_unknown_field_message_lists_the_fields() -> None:
    error = error_of("geometry_msgs/Twist", {"linear": {"w": 1.0}})
    assert "geometry_msgs/Vector3 has no field 'w'" in str(error)
    assert "x, y, z" in str(error)


# --- services ------------------------------------------------------------------------------


def test_service_requests_and_responses() -> None:
    assert default_request("std_srvs/SetBool") == {"data": False}
    assert default_response("std_srvs/SetBool") == {"success": False, "message": ""}
    assert default_request("std_srvs/Empty") == {} == default_response("std_srvs/Empty")
    assert default_request("std_srvs/Trigger") == {}
    assert default_response("std_srvs/srv/Trigger") == {"success": False, "message": ""}
    assert check_request("std_srvs/SetBool", {"data": True}) == {"data": True}
    assert check_response("std_srvs/Trigger", {"success": True}) == {
        "success": True,
        "message": "",
    }
    with pytest.raises(MessageError) as info:
        check_request("std_srvs/SetBool", {"data": "yes"})
    assert info.value.field == "data"
    with pytest.raises(MessageError) as info:
        check_request("std_srvs/Empty", {"data": True})
    assert info.value.field == "data"
    with pytest.raises(MessageError) as info:
        check_response("std_srvs/Trigger", {"success": True, "message": 3}, "response")
    assert info.value.field == "response.message"
    with pytest.raises(MessageError, match="unknown service type"):
        check_request("nope/Nothing", {})
    # Service halves are message types under their ROS 1 names.
    assert message_spec("std_srvs/SetBoolRequest").field_names == ("data",)
    assert is_message_type("std_srvs/TriggerResponse")


# --- registry behaviour --------------------------------------------------------------------


def test_registry_reports_unknown_nested_types() -> None:
    registry = TypeRegistry({"pkg/Outer": "Inner inner\n"})
    with pytest.raises(MessageError, match="pkg/Inner") as info:
        registry.check_message("pkg/Outer", {})
    assert info.value.field is None
    registry.register_message("pkg/Inner", "int32 value\n")
    assert registry.check_message("pkg/Outer", {}) == {"inner": {"value": 0}}


def test_registry_rejects_recursive_types() -> None:
    registry = TypeRegistry({"pkg/Loop": "Loop[] children\n"})
    with pytest.raises(MessageError, match="contains itself"):
        registry.default_message("pkg/Loop")


def test_reregistering_rebuilds_dependent_types() -> None:
    registry = TypeRegistry({"pkg/Inner": "int32 a\n", "pkg/Outer": "Inner inner\n"})
    assert registry.default_message("pkg/Outer") == {"inner": {"a": 0}}
    registry.register_message("pkg/Inner", "string b\n")
    assert registry.default_message("pkg/Outer") == {"inner": {"b": ""}}
    with pytest.raises(MessageError) as info:
        registry.check_message("pkg/Outer", {"inner": {"a": 1}})
    assert info.value.field == "inner.a"


def test_registry_rejects_bad_definitions() -> None:
    with pytest.raises(ValueError, match="line 1"):
        TypeRegistry({"pkg/Bad": "int32\n"})
    registry = TypeRegistry()
    assert registry.message_types() == [] and registry.service_types() == []
    with pytest.raises(ValueError):
        registry.register_service("pkg/Bad", "int32 a\n")


# --- properties ----------------------------------------------------------------------------


@given(st.sampled_from(sorted(INT_RANGES)), st.data())
def test_ints_in_range_round_trip_and_outside_fail(base: str, data: st.DataObject) -> None:
    registry = _single_field_registry(base)
    low, high = INT_RANGES[base]
    value = data.draw(st.integers(low, high))
    assert registry.check_message(f"pkg/{base.title()}", {"v": value}) == {"v": value}
    outside = data.draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    with pytest.raises(MessageError) as info:
        registry.check_message(f"pkg/{base.title()}", {"v": outside})
    assert info.value.field == "v"


@given(st.floats(allow_nan=False), st.floats(allow_nan=False, width=32))
def test_floats_round_trip(value64: float, value32: float) -> None:
    checked = check_message("geometry_msgs/Pose2D", {"x": value64, "y": value32})
    assert checked == {"x": value64, "y": value32, "theta": 0.0}
    assert check_message("std_msgs/Float32", {"data": value32}) == {"data": value32}


@given(st.lists(st.floats(allow_nan=False)), st.integers(-(2**63), 2**63 - 1))
def test_float_arrays_round_trip_and_ints_become_floats(values: list[float], number: int) -> None:
    result = check_message("sensor_msgs/JointState", {"position": values + [number]})
    assert result["position"] == values + [float(number)]
    assert all(type(item) is float for item in result["position"])


@given(st.binary(max_size=64))
def test_bytes_round_trip_in_every_accepted_form(data: bytes) -> None:
    for given_form in (data, bytearray(data), list(data), memoryview(data)):
        assert check_message("sensor_msgs/Image", {"data": given_form})["data"] == data


@given(st.text())
def test_strings_round_trip(text: str) -> None:
    assert check_message("std_msgs/String", {"data": text}) == {"data": text}


@given(st.integers(1000, 2**32 - 1000), st.integers(-(10**11), 10**11))
def test_times_normalise_nsecs_into_range(secs: int, nsecs: int) -> None:
    result = check_message("std_msgs/Time", {"data": {"secs": secs, "nsecs": nsecs}})["data"]
    assert 0 <= result["nsecs"] < 10**9
    assert result["secs"] * 10**9 + result["nsecs"] == secs * 10**9 + nsecs


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("std_msgs/Duration", {"secs": 2**33}),  # ROS 1 durations are int32 seconds
        ("std_msgs/Duration", 2.0**33),
        ("std_msgs/Time", {"secs": -1}),  # ...and times uint32
        ("std_msgs/Time", 1e300),
    ],
)
def test_times_out_of_ros_range_are_refused(type_name: str, value: object) -> None:
    with pytest.raises(MessageError) as info:
        check_message(type_name, {"data": value})
    assert info.value.field == "data"


def test_float32_beyond_its_range_is_refused_but_inf_and_nan_are_kept() -> None:
    with pytest.raises(MessageError, match="out of range for float32") as info:
        check_message("geometry_msgs/Point32", {"x": 1e300})
    assert info.value.field == "x"
    assert check_message("geometry_msgs/Point32", {"x": float("inf")})["x"] == float("inf")
    assert check_message("geometry_msgs/Point", {"x": 1e300})["x"] == 1e300  # float64


def test_ros2_time_spelling_is_accepted() -> None:
    stamp = check_message("std_msgs/Header", {"stamp": {"sec": 3, "nanosec": 5}})["stamp"]
    assert stamp == {"secs": 3, "nsecs": 5}


def _single_field_registry(base: str) -> TypeRegistry:
    return TypeRegistry({f"pkg/{base.title()}": f"{base} v\n"})


# --- the existing primitive helpers keep their behaviour -----------------------------------


def test_primitive_helpers_unchanged() -> None:
    assert split_array("float64[3]") == ("float64", True, 3)
    assert split_array("uint8[]") == ("uint8", True, None)
    assert split_array("string") == ("string", False, None)
    assert coerce_primitive("float32", 1, "x") == 1.0
    assert coerce_bytes([1, 2], "d") == b"\x01\x02"
    assert coerce_time(2.25, "t") == {"secs": 2, "nsecs": 250_000_000}
    with pytest.raises(MessageError) as info:
        coerce_primitive("int8", 200, "a.b")
    assert info.value.field == "a.b"


def test_uint8_arrays_accept_base64_strings_as_rosbridge_sends_them() -> None:
    from pyros.message_types import coerce_bytes

    assert coerce_bytes("AAEC", "data") == b"\x00\x01\x02"
    with pytest.raises(MessageError) as info:
        coerce_bytes("not base64!", "data")
    assert info.value.field == "data"
