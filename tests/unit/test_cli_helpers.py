"""The pyros command's pure helpers: field paths, the --filter language, hz/bw/delay figures,
parameter dump files, output formats and the default backend. No node, no terminal."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pyros._cli.environment import default_backend
from pyros._cli.expressions import (
    MAX_EXPRESSION_LENGTH,
    FieldError,
    Filter,
    FilterError,
    format_path,
    get_field,
    parse_path,
    split_topic,
)
from pyros._cli.output import parse_data, table, to_json, to_yaml
from pyros._cli.params import flatten, nest, under
from pyros._cli.stats import BandwidthMeter, DelayMeter, RateMeter, stamp_seconds

POSE = {"x": 5.5, "y": 2.0, "theta": 0.25, "name": "turtle1", "ranges": [1.0, 2.0, 3.0]}
NESTED = {
    "header": {"stamp": {"secs": 10, "nsecs": 500_000_000}, "frame_id": "map"},
    "pose": {"position": {"x": 1.0, "y": -2.0}},
    "data": b"\x01\x02",
}


# --- field paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("pose.position.x", ("pose", "position", "x")),
        ("pose/position/x", ("pose", "position", "x")),
        ("/pose/position/x", ("pose", "position", "x")),
        ("ranges[2]", ("ranges", 2)),
        ("ranges.2", ("ranges", 2)),
        ("a[0].b[-1]", ("a", 0, "b", -1)),
        ("", ()),
    ],
)
def test_parse_path(text: str, path: tuple[object, ...]) -> None:
    assert parse_path(text) == path


@pytest.mark.parametrize("text", ["a..b", "a[x]", "a[", "a]"])
def test_parse_path_refuses_nonsense(text: str) -> None:
    with pytest.raises(FieldError):
        parse_path(text)


def test_get_field_and_its_errors() -> None:
    assert get_field(NESTED, ("pose", "position", "y")) == -2.0
    assert get_field(POSE, ("ranges", -1)) == 3.0
    with pytest.raises(FieldError, match="has no field 'thetta'.*did you mean 'theta'"):
        get_field(POSE, ("thetta",))
    with pytest.raises(FieldError, match="3 elements"):
        get_field(POSE, ("ranges", 3))
    with pytest.raises(FieldError, match="has no fields"):
        get_field(POSE, ("x", "y"))
    assert format_path(("a", 0, "b")) == "a[0].b"


def test_split_topic_finds_the_longest_existing_topic() -> None:
    topics = ["/turtle1/pose", "/turtle1/cmd_vel", "/scan"]
    assert split_topic("/turtle1/pose/x", topics) == ("/turtle1/pose", ("x",))
    assert split_topic("/turtle1/pose", topics) == ("/turtle1/pose", ())
    assert split_topic("/scan/ranges[0]", topics) == ("/scan", ("ranges", 0))
    assert split_topic("/scan[1]", topics) == ("/scan", (1,))
    assert split_topic("/not/yet", topics) == ("/not/yet", ())


# --- the filter language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("x > 5", True),
        ("m.x > 5 and msg.y < 3", True),
        ("0 < theta < 1", True),
        ("name == 'turtle1'", True),
        ("'turtle' in name", True),
        ("len(ranges) == 3 and ranges[0] == 1.0", True),
        ("abs(x - 6) < 1", True),
        ("max(ranges) >= 3 and min(ranges) > 0", True),
        ("not x > 5", False),
        ("x * 2 + y // 1 % 3 == 13.0", True),
        ("-x < 0", True),
        ("m['x'] == 5.5", True),
        ("x in [1, 5.5]", True),
        ("name != None", True),
        ("round(theta, 1) == 0.2", True),
    ],
)
def test_filter_evaluates(expression: str, expected: bool) -> None:
    assert Filter(expression)(POSE) is expected


def test_filter_nested_fields() -> None:
    assert Filter("pose.position.x == 1.0 and header.frame_id == 'map'")(NESTED)
    assert Filter("len(data) == 2")(NESTED)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "m.__class__",
        "x.__class__.__mro__",
        "(lambda: 1)()",
        "[a for a in ranges]",
        "open('/etc/passwd')",
        "x ** 2",
        "name.upper()",
        "9 ** 9 ** 9",
        "ranges[0:2]",
        "f'{x}'",
        "x if y else 1",
        "_secret > 1",
        "len(*ranges)",
        "x = 1",
        "",
        "x >",
        "a" * (MAX_EXPRESSION_LENGTH + 1),
        "-(" * 60 + "x" + ")" * 60,
        "x" + " + x" * 100,
    ],
)
def test_filter_refuses_what_the_language_lacks(expression: str) -> None:
    with pytest.raises(FilterError):
        Filter(expression)


def test_filter_errors_on_a_message_are_filter_errors() -> None:
    with pytest.raises(FilterError, match="no field 'z'"):
        Filter("z > 1")(POSE)
    with pytest.raises(FilterError, match="not a number"):
        Filter("name + 1 > 0")(POSE)
    with pytest.raises(FilterError, match="failed"):
        Filter("x / 0 > 1")(POSE)
    with pytest.raises(FilterError):
        Filter("name < 3")(POSE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_compiles_or_gives_a_filter_error(text: str) -> None:
    try:
        compiled = Filter(text)
    except FilterError:
        return
    try:
        compiled(POSE)
    except FilterError:
        pass


_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "m", "data"]), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(_plain)
def test_evaluation_on_any_message_gives_bool_or_filter_error(message: object) -> None:
    for expression in ("x > 1", "len(data) == 2", "m.x.y == 1", "x + y > 0", "data[0] == 1"):
        try:
            result = Filter(expression)(
                {"msg": message} if not isinstance(message, dict) else message
            )
        except FilterError:
            continue
        assert isinstance(result, bool)


# --- hz, bw, delay --------------------------------------------------------------------------


def test_rate_meter() -> None:
    meter = RateMeter(window=5)
    assert meter.live() is None
    for index in range(11):
        meter.add(100.0 + index * 0.1)
    live = meter.live()
    assert live is not None
    assert live["rate_hz"] == pytest.approx(10.0)
    assert live["window"] == 6  # five gaps: six messages
    assert live["std_dev_s"] == pytest.approx(0.0, abs=1e-9)
    summary = meter.summary()
    assert summary["messages"] == 11
    assert summary["seconds"] == pytest.approx(1.0)
    assert summary["rate_hz"] == pytest.approx(10.0)


def test_rate_meter_spread() -> None:
    meter = RateMeter()
    for arrival in (0.0, 0.1, 0.3, 0.4):
        meter.add(arrival)
    live = meter.live()
    assert live is not None
    assert live["min_s"] == pytest.approx(0.1) and live["max_s"] == pytest.approx(0.2)
    assert live["rate_hz"] == pytest.approx(3 / 0.4)
    assert live["std_dev_s"] == pytest.approx(
        math.sqrt(((0.1 - 0.4 / 3) ** 2 * 2 + (0.2 - 0.4 / 3) ** 2) / 3)
    )


def test_bandwidth_meter() -> None:
    meter = BandwidthMeter(window=100)
    assert meter.live() is None
    for index in range(11):
        meter.add(index * 0.5, 100)
    live = meter.live()
    assert live is not None
    assert live["bytes_per_s"] == pytest.approx(200.0)
    assert live["mean_bytes"] == 100
    summary = meter.summary()
    assert summary["bytes"] == 1100 and summary["bytes_per_s"] == pytest.approx(200.0)


def test_delay_meter_and_stamps() -> None:
    meter = DelayMeter()
    assert meter.live() is None and meter.summary()["messages"] == 0
    for delay in (0.1, 0.2, 0.3):
        meter.add(delay)
    live = meter.live()
    assert live is not None and live["mean_s"] == pytest.approx(0.2)
    assert stamp_seconds(NESTED) == pytest.approx(10.5)
    assert stamp_seconds({"header": {"stamp": {"sec": 3, "nanosec": 250_000_000}}}) == 3.25
    assert stamp_seconds(POSE) is None


# --- parameter files -------------------------------------------------------------------------


def test_nest_and_flatten_ros1() -> None:
    values = {"/gains/p": 1.5, "/gains/i": 0.1, "/name": "robot", "/other/x": 1}
    tree = nest(values)
    assert tree == {"gains": {"i": 0.1, "p": 1.5}, "name": "robot", "other": {"x": 1}}
    assert flatten(tree) == values
    assert nest({"/gains/p": 1.5}, "/gains") == {"p": 1.5}
    assert flatten({"p": 1.5}, "/gains") == {"/gains/p": 1.5}
    assert flatten(3, "/gains/p") == {"/gains/p": 3}


def test_nest_and_flatten_ros2() -> None:
    values = {"/talker:gains.p": 1.5, "/talker:use_sim_time": False}
    tree = nest(values)
    assert tree == {"/talker": {"ros__parameters": {"gains": {"p": 1.5}, "use_sim_time": False}}}
    assert flatten(tree) == values
    # The file ros2 param dump writes loads as it is.
    text = "/talker:\n  ros__parameters:\n    gains:\n      p: 1.5\n    use_sim_time: false\n"
    assert flatten(yaml.safe_load(text)) == values


def test_under() -> None:
    assert under("/a/b", "/") and under("/a/b", "/a") and not under("/ab", "/a")
    assert under("/talker:x", "/talker") and not under("/talker2:x", "/talker")


# --- output ----------------------------------------------------------------------------------


def test_json_yaml_and_table() -> None:
    assert to_json({"data": b"\x01\x02"}) == '{"data": "AQI="}'
    assert yaml.safe_load(to_yaml(NESTED))["data"] == "AQI="
    text = table(("TOPIC", "TYPE"), [("/a", "std_msgs/String"), ("/long/name", "x/Y")])
    assert text.splitlines() == [
        "TOPIC       TYPE",
        "/a          std_msgs/String",
        "/long/name  x/Y",
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"data": true}', {"data": True}),
        ("data: true", {"data": True}),
        ("{linear: {x: 1.0}}", {"linear": {"x": 1.0}}),
        ("1.5", 1.5),
        ("hello", "hello"),
    ],
)
def test_parse_data_reads_json_and_yaml(text: str, value: object) -> None:
    assert parse_data(text) == value


@pytest.mark.parametrize("text", ["{not: [closed", '{"a": ' + "9" * 5000 + "}", "a: b: c"])
def test_parse_data_errors_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_data(text)


# --- the default backend ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "mock"),
        ({"PYROS_BACKEND": "rosbridge", "ROS_MASTER_URI": "http://x:11311"}, "rosbridge"),
        ({"ROS_MASTER_URI": "http://127.0.0.1:11311"}, "ros1"),
        ({"ROS_VERSION": "1", "ROS_DISTRO": "noetic", "ROS_MASTER_URI": "http://a:1"}, "ros1"),
        ({"ROS_VERSION": "2", "ROS_MASTER_URI": "http://left:11311"}, "ros2"),
        ({"ROS_DISTRO": "jazzy"}, "ros2"),
        ({"AMENT_PREFIX_PATH": "/opt/ros/humble"}, "ros2"),
        ({"ROS_DISTRO": "noetic"}, "mock"),
    ],
)
def test_default_backend(environ: dict[str, str], expected: str) -> None:
    backend, why = default_backend(environ)
    assert backend == expected and why


def test_backend_options_name_their_backend() -> None:
    assert default_backend({"PYROS_BACKEND": "mock"}, master_uri=True)[0] == "ros1"
    assert default_backend({}, domain_id=True)[0] == "ros2"
    assert default_backend({}, url=True)[0] == "rosbridge"


# --- command-line values ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.floats().map(repr), st.integers().map(str)))
def test_numbers_on_the_command_line_are_in_range_or_usage_errors(text: str) -> None:
    import click

    from pyros.cli import COUNT, RATE, SECONDS

    for kind, low, high in ((RATE, 0.001, 1e6), (SECONDS, 0.0, 1e6)):
        try:
            value = kind.convert(text, None, None)
        except click.BadParameter:
            continue
        assert math.isfinite(value) and low <= value <= high
        assert value > 0
    try:
        count = COUNT.convert(text, None, None)
    except click.BadParameter:
        return
    assert 1 <= count <= 10**12


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_messages_on_the_command_line_parse_or_give_value_errors(text: str) -> None:
    try:
        parse_data(text)
    except ValueError:
        pass
