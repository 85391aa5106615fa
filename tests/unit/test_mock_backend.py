"""The mock backend in process: bus, turtle physics with injected time, services, params."""

from __future__ import annotations

import builtins
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyros.backends import load
from pyros.backends.base import GoalOutcome
from pyros.backends.mock import (
    ARENA_SIZE,
    COMMAND_TIMEOUT,
    TURTLE_START,
    MockBackend,
    Turtle,
)
from pyros.exceptions import (
    ActionError,
    MessageError,
    NotExposedError,
    ParamNotSetError,
    ServiceError,
    TimeoutError,
)
from tests.support import limit

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

START_POSE = {
    "x": TURTLE_START,
    "y": TURTLE_START,
    "theta": 0.0,
    "linear_velocity": 0.0,
    "angular_velocity": 0.0,
}


@pytest.fixture
def backend() -> Iterator[MockBackend]:
    """A started mock with its turtle but no turtle thread (rate=0): tests call tick()."""
    mock = MockBackend("test", rate=0)
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture
def bare() -> Iterator[MockBackend]:
    """A started mock without the turtle: an empty bus, the test services, no params."""
    mock = MockBackend("test", turtle=False)
    mock.start()
    yield mock
    mock.stop()


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + limit(seconds)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def turtle_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pyros-mock-turtle")]


def approx_pose(pose: dict[str, float]) -> Any:
    return pytest.approx(pose, abs=1e-9)


# --- construction --------------------------------------------------------------------------


def test_registered_under_its_name() -> None:
    assert load("mock") is MockBackend
    assert MockBackend.name == "mock"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"master_uri": "http://x:11311"}, TypeError),
        ({"rate": "30"}, TypeError),
        ({"rate": True}, TypeError),
        ({"turtle": 1}, TypeError),
        ({"rate": -1}, ValueError),
        ({"rate": math.inf}, ValueError),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        MockBackend("test", **options)


def test_nothing_exists_before_start() -> None:
    mock = MockBackend("test")
    assert mock.topics() == {} and mock.services() == {} and mock.params() == []
    assert mock.turtle is None


# --- bus -----------------------------------------------------------------------------------


def test_subscribers_get_normalised_messages_in_publish_order(bare: MockBackend) -> None:
    got: list[dict[str, Any]] = []
    bare.subscribe("/numbers", "std_msgs/Int32", got.append)
    for value in range(100):
        bare.publish("/numbers", "std_msgs/Int32", {"data": value})
    assert got == [{"data": value} for value in range(100)]
    bare.subscribe("/cmd", "geometry_msgs/Twist", got.append)
    bare.publish("/cmd", "geometry_msgs/Twist", {"linear": {"x": 1}})
    assert got[-1] == {
        "linear": {"x": 1.0, "y": 0.0, "z": 0.0},
        "angular": {"x": 0.0, "y": 0.0, "z": 0.0},
    }


def test_topic_lifecycle(bare: MockBackend) -> None:
    assert bare.topics() == {}
    bare.subscribe("/heard", "std_msgs/String", lambda message: None)
    assert bare.topics() == {"/heard": "std_msgs/String"}
    bare.unsubscribe("/heard")
    assert bare.topics() == {}
    bare.unsubscribe("/heard")  # idempotent
    bare.publish("/said", "std_msgs/String", {"data": "hi"})
    bare.subscribe("/said", "std_msgs/String", lambda message: None)
    bare.unsubscribe("/said")
    assert bare.topics() == {"/said": "std_msgs/String"}  # still has its publisher


def test_type_conflicts_are_message_errors(bare: MockBackend) -> None:
    bare.publish("/chatter", "std_msgs/String", {"data": "hi"})
    with pytest.raises(MessageError, match="std_msgs/String"):
        bare.publish("/chatter", "std_msgs/Int32", {"data": 1})
    with pytest.raises(MessageError, match="std_msgs/String"):
        bare.subscribe("/chatter", "std_msgs/Bool", lambda message: None)
    assert bare.topics() == {"/chatter": "std_msgs/String"}


def test_bad_messages_name_the_field_and_deliver_nothing(bare: MockBackend) -> None:
    got: list[dict[str, Any]] = []
    bare.subscribe("/cmd", "geometry_msgs/Twist", got.append)
    with pytest.raises(MessageError) as info:
        bare.publish("/cmd", "geometry_msgs/Twist", {"linear": {"x": "fast"}})
    assert info.value.field == "linear.x"
    with pytest.raises(MessageError) as info:
        bare.publish("/cmd", "geometry_msgs/Twist", {"linear": {"w": 1.0}})
    assert info.value.field == "linear.w"
    assert got == []


def test_ros2_type_names_are_the_same_type(bare: MockBackend) -> None:
    got: list[dict[str, Any]] = []
    bare.subscribe("/chatter", "std_msgs/msg/String", got.append)
    bare.publish("/chatter", "std_msgs/String", {"data": "a"})
    assert bare.topics() == {"/chatter": "std_msgs/String"}
    assert got == [{"data": "a"}]


def test_empty_type_means_the_topics_type(bare: MockBackend) -> None:
    with pytest.raises(MessageError, match="does not exist"):
        bare.publish("/new", "", {"data": 1})
    got: list[dict[str, Any]] = []
    bare.subscribe("/later", "", got.append)
    assert bare.topics() == {}  # no type known yet
    bare.publish("/later", "std_msgs/Int8", {"data": 1})
    bare.publish("/later", "", {"data": 2})
    assert got == [{"data": 1}, {"data": 2}]
    assert bare.topics() == {"/later": "std_msgs/Int8"}


def test_unregistered_types_carry_plain_dicts(bare: MockBackend) -> None:
    got: list[dict[str, Any]] = []
    bare.subscribe("/custom", "my_pkg/Thing", got.append)
    message = {"a": [1, (2, 3)], "b": {"c": bytearray(b"x")}, "d": None}
    bare.publish("/custom", "my_pkg/Thing", message)
    assert got == [{"a": [1, [2, 3]], "b": {"c": b"x"}, "d": None}]
    message["a"].append(4)
    assert got[0]["a"] == [1, [2, 3]]  # a copy was delivered
    with pytest.raises(MessageError) as info:
        bare.publish("/custom", "my_pkg/Thing", {"a": {"b": object()}})
    assert info.value.field == "a.b"
    with pytest.raises(MessageError):
        bare.publish("/custom", "my_pkg/Thing", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        bare.publish("/custom", "not-a-type", {})


@pytest.mark.parametrize("name", ["chatter", "/a b", "/1x", "", "/a//b"])
def test_invalid_topic_names(bare: MockBackend, name: str) -> None:
    with pytest.raises(NotExposedError):
        bare.publish(name, "std_msgs/String", {})
    with pytest.raises(NotExposedError):
        bare.subscribe(name, "std_msgs/String", lambda message: None)


def test_each_subscriber_gets_its_own_copy(bare: MockBackend) -> None:
    seen: list[dict[str, Any]] = []

    def vandal(message: dict[str, Any]) -> None:
        message["name"].append("vandalised")
        message["header"]["frame_id"] = "vandalised"

    bare.subscribe("/joints", "sensor_msgs/JointState", vandal)
    bare.subscribe("/joints", "sensor_msgs/JointState", seen.append)
    bare.publish("/joints", "sensor_msgs/JointState", {"name": ["elbow"]})
    assert seen[0]["name"] == ["elbow"]
    assert seen[0]["header"]["frame_id"] == ""


def test_callbacks_may_publish_and_order_is_kept(bare: MockBackend) -> None:
    log: list[tuple[str, int]] = []

    def echo(message: dict[str, Any]) -> None:
        log.append(("ping", message["data"]))
        bare.publish("/pong", "std_msgs/Int32", message)  # would deadlock under a bus lock
        if message["data"] < 3:
            bare.publish("/ping", "std_msgs/Int32", {"data": message["data"] + 1})
        log.append(("ping done", message["data"]))

    bare.subscribe("/ping", "std_msgs/Int32", echo)
    bare.subscribe("/pong", "std_msgs/Int32", lambda m: log.append(("pong", m["data"])))
    bare.publish("/ping", "std_msgs/Int32", {"data": 1})
    # Messages published inside a callback wait until the current one is delivered.
    assert log == [
        ("ping", 1),
        ("ping done", 1),
        ("pong", 1),
        ("ping", 2),
        ("ping done", 2),
        ("pong", 2),
        ("ping", 3),
        ("ping done", 3),
        ("pong", 3),
    ]


def test_callback_errors_reach_the_publisher_after_everyone_got_the_message(
    bare: MockBackend,
) -> None:
    got: list[dict[str, Any]] = []

    def broken(message: dict[str, Any]) -> None:
        raise ValueError("subscriber bug")

    bare.subscribe("/t", "std_msgs/Bool", broken)
    bare.subscribe("/t", "std_msgs/Bool", got.append)
    with pytest.raises(ValueError, match="subscriber bug"):
        bare.publish("/t", "std_msgs/Bool", {"data": True})
    assert got == [{"data": True}]
    bare.subscribe("/t", "std_msgs/Bool", broken)
    with pytest.raises(ExceptionGroup) as info:
        bare.publish("/t", "std_msgs/Bool", {"data": False})
    assert len(info.value.exceptions) == 2
    assert got[-1] == {"data": False}
    # The bus still works afterwards.
    bare.unsubscribe("/t")
    bare.publish("/t", "std_msgs/Bool", {"data": True})


def test_concurrent_publishers_keep_their_own_order(bare: MockBackend) -> None:
    got: list[dict[str, Any]] = []
    lock = threading.Lock()

    def record(message: dict[str, Any]) -> None:
        with lock:
            got.append(message)

    bare.subscribe("/mixed", "geometry_msgs/Pose2D", record)
    errors: list[BaseException] = []

    def publisher(index: int) -> None:
        try:
            for step in range(200):
                bare.publish("/mixed", "geometry_msgs/Pose2D", {"x": index, "y": step})
                bare.topics()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit(10))
    assert errors == []
    assert len(got) == 800
    for index in range(4):
        assert [m["y"] for m in got if m["x"] == index] == [float(step) for step in range(200)]


# --- turtle physics ------------------------------------------------------------------------


def test_turtle_starts_in_the_middle_like_turtlesim() -> None:
    assert TURTLE_START == pytest.approx(5.544445)
    assert ARENA_SIZE == pytest.approx(11.088889)
    assert Turtle(now=100.0).pose() == START_POSE


def test_turtle_drives_straight() -> None:
    turtle = Turtle(now=0.0)
    turtle.command(2.0, 0.0, now=0.0)
    pose = turtle.advance(0.25)
    assert pose == approx_pose({**START_POSE, "x": TURTLE_START + 0.5, "linear_velocity": 2.0})


def test_turtle_drives_a_half_circle() -> None:
    turtle = Turtle(now=0.0)
    turtle.command(1.0, math.pi, now=0.0)  # radius 1/pi, half a turn in one second
    pose = turtle.advance(1.0)
    assert pose["x"] == pytest.approx(TURTLE_START, abs=1e-9)
    assert pose["y"] == pytest.approx(TURTLE_START + 2 / math.pi, abs=1e-9)
    assert abs(pose["theta"]) == pytest.approx(math.pi, abs=1e-9)  # pi, give or take rounding


def test_turtle_path_does_not_depend_on_the_step_rate() -> None:
    coarse, fine = Turtle(now=0.0), Turtle(now=0.0)
    for turtle in (coarse, fine):
        turtle.command(1.5, 2.0, now=0.0)
    for step in range(1, 1001):
        fine.advance(step * 0.0009)
    assert coarse.advance(0.9) == approx_pose(fine.pose())


def test_turtle_stops_one_second_after_the_last_command() -> None:
    turtle = Turtle(now=0.0)
    turtle.command(1.0, 0.0, now=0.0)
    assert turtle.advance(0.5)["linear_velocity"] == 1.0
    pose = turtle.advance(60.0)
    assert pose["x"] == pytest.approx(TURTLE_START + COMMAND_TIMEOUT)
    assert pose["linear_velocity"] == 0.0 and pose["angular_velocity"] == 0.0
    # A fresh command renews the timeout from its own time.
    turtle.command(1.0, 0.0, now=60.0)
    turtle.command(1.0, 0.0, now=60.8)
    assert turtle.advance(100.0)["x"] == pytest.approx(TURTLE_START + 2.8)


def test_turtle_stops_at_the_walls_and_slides_along_them() -> None:
    turtle = Turtle(now=0.0)
    turtle.command(10.0, 0.0, now=0.0)
    pose = turtle.advance(1.0)
    assert pose["x"] == ARENA_SIZE and pose["y"] == TURTLE_START
    turtle.teleport(TURTLE_START, TURTLE_START, 0.3, now=1.0)
    turtle.command(10.0, 0.0, now=1.0)
    pose = turtle.advance(2.0)
    assert pose["x"] == ARENA_SIZE
    assert pose["y"] == pytest.approx(TURTLE_START + 10.0 * math.sin(0.3))
    turtle.teleport(1.0, 1.0, -2.0, now=2.0)
    turtle.command(10.0, 0.0, now=2.0)
    pose = turtle.advance(3.0)
    assert pose["x"] == 0.0 and pose["y"] == 0.0


def test_turtle_theta_wraps_into_minus_pi_pi() -> None:
    turtle = Turtle(now=0.0)
    turtle.command(0.0, 4.0, now=0.0)
    assert turtle.advance(1.0)["theta"] == pytest.approx(4.0 - 2 * math.pi)
    turtle.command(0.0, -4.0, now=1.0)
    assert turtle.advance(2.0)["theta"] == pytest.approx(0.0, abs=1e-9)
    turtle.command(0.0, -4.0, now=2.0)
    assert turtle.advance(3.0)["theta"] == pytest.approx(2 * math.pi - 4.0)
    turtle.teleport(5.0, 5.0, -math.pi, now=3.0)
    assert turtle.pose()["theta"] == math.pi


@given(st.floats(min_value=-100.0, max_value=100.0))
def test_teleport_wraps_any_angle(theta: float) -> None:
    turtle = Turtle(now=0.0)
    turtle.teleport(20.0, -3.0, theta, now=0.0)
    pose = turtle.pose()
    assert -math.pi < pose["theta"] <= math.pi
    assert math.sin(pose["theta"]) == pytest.approx(math.sin(theta), abs=1e-9)
    assert math.cos(pose["theta"]) == pytest.approx(math.cos(theta), abs=1e-9)
    assert (pose["x"], pose["y"]) == (ARENA_SIZE, 0.0)


def test_turtle_ignores_time_going_backwards_and_resets() -> None:
    turtle = Turtle(now=10.0)
    turtle.command(1.0, 0.0, now=10.0)
    moved = turtle.advance(10.5)
    assert turtle.advance(9.0) == moved
    turtle.reset(now=10.5)
    assert turtle.advance(11.0) == START_POSE


# --- the turtle inside the backend ---------------------------------------------------------


def test_turtle_topics_services_and_params(backend: MockBackend) -> None:
    assert backend.topics() == {
        "/turtle1/cmd_vel": "geometry_msgs/Twist",
        "/turtle1/pose": "turtlesim/Pose",
    }
    assert backend.services() == {
        "/reset": "std_srvs/Empty",
        "/turtle1/teleport_absolute": "turtlesim/TeleportAbsolute",
        "/set_flag": "std_srvs/SetBool",
        "/trigger": "std_srvs/Trigger",
        "/fail": "std_srvs/Trigger",
        "/slow": "std_srvs/Trigger",
    }
    assert backend.actions() == {
        "/fibonacci": "test_msgs/action/Fibonacci",
        "/turtle1/rotate_absolute": "turtlesim/action/RotateAbsolute",
    }
    assert backend.get_param("/turtlesim/background_r") == 69
    assert backend.get_param("/turtlesim/background_g") == 86
    assert backend.get_param("/turtlesim/background_b") == 255


def test_cmd_vel_moves_the_published_pose(backend: MockBackend) -> None:
    poses: list[dict[str, Any]] = []
    backend.subscribe("/turtle1/pose", "turtlesim/Pose", poses.append)
    backend.publish("/turtle1/cmd_vel", "geometry_msgs/Twist", {"linear": {"x": 1.0}})
    commanded = time.monotonic()
    pose = backend.tick(commanded + 10.0)  # long after the command timed out
    assert poses == [pose]
    assert pose["x"] == pytest.approx(TURTLE_START + 1.0)
    assert pose["linear_velocity"] == 0.0
    backend.publish("/turtle1/cmd_vel", "geometry_msgs/Twist", {"angular": {"z": 1.0}})
    # The turtle already lives at commanded + 10, so the command counts from there.
    pose = backend.tick(commanded + 10.5)
    assert pose["theta"] == pytest.approx(0.5)
    assert pose["angular_velocity"] == 1.0


def test_cmd_vel_must_be_a_twist(backend: MockBackend) -> None:
    with pytest.raises(MessageError):
        backend.publish("/turtle1/cmd_vel", "std_msgs/String", {"data": "go"})


def test_reset_and_teleport_services(backend: MockBackend) -> None:
    backend.publish("/turtle1/cmd_vel", "geometry_msgs/Twist", {"linear": {"x": 2.0}})
    assert backend.tick(time.monotonic() + 0.5)["x"] > TURTLE_START + 0.9
    assert backend.call("/reset", "std_srvs/Empty", {}, 1.0) == {}
    assert backend.tick() == START_POSE
    assert backend.call("/turtle1/teleport_absolute", "", {"x": 1, "y": 2, "theta": 3}, 1.0) == {}
    assert backend.tick() == approx_pose({**START_POSE, "x": 1.0, "y": 2.0, "theta": 3.0})


def test_tick_needs_a_turtle(bare: MockBackend) -> None:
    with pytest.raises(RuntimeError, match="no turtle"):
        bare.tick()
    assert bare.topics() == {} and bare.params() == []
    assert "/reset" not in bare.services()


def test_turtle_thread_publishes_at_its_rate_and_stop_ends_it() -> None:
    mock = MockBackend("threaded", rate=50)
    stamps: list[float] = []
    mock.start()
    try:
        assert len(turtle_threads()) == 1
        mock.subscribe("/turtle1/pose", "turtlesim/Pose", lambda m: stamps.append(time.monotonic()))
        assert wait_for(lambda: len(stamps) >= 11, 2.0)
    finally:
        mock.stop()
    assert turtle_threads() == []
    intervals = [b - a for a, b in zip(stamps, stamps[1:11], strict=False)]
    assert 0.01 < sum(intervals) / len(intervals) < limit(0.05)  # 50 Hz: 0.02 s apart
    count = len(stamps)
    time.sleep(0.06)
    assert len(stamps) == count  # nothing after stop()


def test_stop_clears_everything_and_start_again_works() -> None:
    mock = MockBackend("again", rate=100)
    mock.start()
    mock.start()  # a second start while running does nothing
    assert len(turtle_threads()) == 1
    mock.publish("/extra", "std_msgs/String", {"data": "x"})
    mock.set_param("/extra", 1)
    mock.call("/set_flag", "", {"data": True}, 1.0)
    mock.stop()
    mock.stop()  # idempotent
    assert mock.topics() == {} and mock.services() == {} and mock.params() == []
    assert turtle_threads() == [] and mock.turtle is None
    mock.start()
    try:
        assert "/extra" not in mock.topics() and "/reset" in mock.services()
        assert mock.call("/set_flag", "", {"data": True}, 1.0)["message"].endswith("(was False)")
        assert len(turtle_threads()) == 1
    finally:
        mock.stop()
    assert turtle_threads() == []


# --- services ------------------------------------------------------------------------------


def test_set_flag_keeps_the_flag(bare: MockBackend) -> None:
    assert bare.flag is False
    reply = bare.call("/set_flag", "std_srvs/SetBool", {"data": True}, 1.0)
    assert reply == {"success": True, "message": "flag set to True (was False)"}
    assert bare.flag is True
    reply = bare.call("/set_flag", "std_srvs/srv/SetBool", {"data": False}, 1.0)
    assert reply == {"success": True, "message": "flag set to False (was True)"}
    assert bare.flag is False


def test_trigger_counts_its_calls_across_threads(bare: MockBackend) -> None:
    assert bare.call("/trigger", "std_srvs/Trigger", {}, 1.0) == {
        "success": True,
        "message": "triggered 1 time",
    }

    def hammer() -> None:
        for _ in range(50):
            bare.call("/trigger", "std_srvs/Trigger", None, 1.0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit(10))
    assert bare.call("/trigger", "", {}, 1.0)["message"] == "triggered 402 times"


def test_fail_raises_service_error(bare: MockBackend) -> None:
    with pytest.raises(ServiceError, match="/fail") as info:
        bare.call("/fail", "std_srvs/Trigger", {}, 1.0)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_call_errors(bare: MockBackend) -> None:
    with pytest.raises(NotExposedError):
        bare.call("/nothing", "std_srvs/Empty", {}, 1.0)
    with pytest.raises(NotExposedError):
        bare.call("nothing", "std_srvs/Empty", {}, 1.0)
    with pytest.raises(MessageError) as info:
        bare.call("/set_flag", "std_srvs/SetBool", {"data": "yes"}, 1.0)
    assert info.value.field == "data"
    with pytest.raises(MessageError) as info:
        bare.call("/set_flag", "std_srvs/SetBool", {"value": True}, 1.0)
    assert info.value.field == "value"
    with pytest.raises(MessageError, match="std_srvs/SetBool"):
        bare.call("/set_flag", "std_srvs/Trigger", {}, 1.0)
    assert bare.flag is False


def test_call_honours_the_timeout(bare: MockBackend) -> None:
    def slow(request: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.1)
        return {"success": True, "message": "late"}

    bare.add_service("/slow", "std_srvs/Trigger", slow)
    assert bare.services()["/slow"] == "std_srvs/Trigger"
    with pytest.raises(TimeoutError) as info:
        bare.call("/slow", "std_srvs/Trigger", {}, 0.02)
    assert isinstance(info.value, builtins.TimeoutError)
    assert bare.call("/slow", "std_srvs/Trigger", {}, limit(5.0))["message"] == "late"


def test_added_services_of_any_type(bare: MockBackend) -> None:
    bare.add_service("/add", "my_pkg/AddTwoInts", lambda r: {"sum": r["a"] + r["b"]})
    assert bare.call("/add", "my_pkg/AddTwoInts", {"a": 2, "b": 3}, 1.0) == {"sum": 5}
    bare.add_service("/liar", "std_srvs/Trigger", lambda r: {"success": "yes"})
    with pytest.raises(ServiceError, match="invalid response"):
        bare.call("/liar", "std_srvs/Trigger", {}, 1.0)
    bare.remove_service("/liar")
    bare.remove_service("/liar")
    assert "/liar" not in bare.services()
    with pytest.raises(NotExposedError):
        bare.add_service("relative", "std_srvs/Empty", lambda r: {})
    with pytest.raises(MessageError):
        bare.add_service("/bad_type", "Empty", lambda r: {})


# --- parameters ----------------------------------------------------------------------------


def test_unset_params(bare: MockBackend) -> None:
    with pytest.raises(ParamNotSetError) as info:
        bare.get_param("/missing")
    assert isinstance(info.value, KeyError)
    assert "/missing" in str(info.value)
    bare.set_param("/a", 1)
    with pytest.raises(ParamNotSetError):
        bare.get_param("/a/b")  # /a is a value, not a namespace


def test_params_round_trip_plain_data(bare: MockBackend) -> None:
    values = {"/b": True, "/i": -3, "/f": 2.5, "/s": "x", "/y": b"\x00"}
    values["/l"] = [1, "two", [3.0]]  # XML-RPC arrays may mix types, as on ROS 1
    for name, value in values.items():
        bare.set_param(name, value)
    for name, value in values.items():
        assert bare.get_param(name) == value
    assert bare.params() == sorted(values)


def test_dict_params_make_namespaces_like_ros(bare: MockBackend) -> None:
    bare.set_param("/robot", {"name": "turtle", "limits": {"speed": 2.0, "turn": 1.0}})
    assert bare.get_param("/robot/name") == "turtle"
    assert bare.get_param("/robot/limits/speed") == 2.0
    assert bare.get_param("/robot/limits") == {"speed": 2.0, "turn": 1.0}
    assert bare.params() == ["/robot/limits/speed", "/robot/limits/turn", "/robot/name"]
    bare.set_param("/robot/limits/speed", 3.0)
    assert bare.get_param("/robot") == {
        "name": "turtle",
        "limits": {"speed": 3.0, "turn": 1.0},
    }
    # Setting a dict replaces the namespace; it does not merge.
    bare.set_param("/robot", {"id": 7})
    assert bare.get_param("/robot") == {"id": 7}
    with pytest.raises(ParamNotSetError):
        bare.get_param("/robot/name")
    # Setting below a plain value turns it into a namespace.
    bare.set_param("/robot/id/serial", "abc")
    assert bare.get_param("/robot") == {"id": {"serial": "abc"}}
    bare.set_param("/empty", {})
    assert bare.get_param("/empty") == {}
    assert "/empty" not in bare.params()
    assert bare.get_param("/robot/") == {"id": {"serial": "abc"}}


def test_root_param(backend: MockBackend) -> None:
    everything = backend.get_param("/")
    assert everything == {
        "turtlesim": {"background_r": 69, "background_g": 86, "background_b": 255}
    }
    backend.set_param("/", {"only": 1})
    assert backend.params() == ["/only"]
    with pytest.raises(MessageError):
        backend.set_param("/", 5)


def test_params_are_copied_both_ways(bare: MockBackend) -> None:
    value = {"list": [1, 2]}
    bare.set_param("/p", value)
    value["list"].append(3)
    assert bare.get_param("/p/list") == [1, 2]
    bare.get_param("/p")["list"].append(4)
    assert bare.get_param("/p/list") == [1, 2]


@pytest.mark.parametrize("name", ["relative", "/a b", "/1x", "", "~private"])
def test_invalid_param_names(bare: MockBackend, name: str) -> None:
    with pytest.raises(NotExposedError):
        bare.set_param(name, 1)
    with pytest.raises(NotExposedError):
        bare.get_param(name)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (object(), None),
        ({1: "x"}, None),
        ({"not a name": 1}, None),
        ({"1a": 1}, None),  # ROS names start with a letter
        (None, None),  # the ROS 1 parameter server has no nil
        ({"a": [1, None]}, "a[1]"),
        (2**40, None),  # XML-RPC ints are 32 bits
        ({"big": -(2**31) - 1}, "big"),
    ],
)
def test_invalid_param_values_are_refused_as_on_ros1(
    bare: MockBackend, value: object, field: str | None
) -> None:
    with pytest.raises(MessageError) as info:
        bare.set_param("/p", value)
    assert info.value.field == field
    assert bare.params() == []


# --- actions, graph information, latching -------------------------------------------------


class GoalRecorder:
    """Collects a goal's feedback and its outcome, from the goal's thread."""

    def __init__(self) -> None:
        self.feedback: list[dict[str, Any]] = []
        self.outcome: GoalOutcome | None = None
        self.done = threading.Event()

    def on_done(self, outcome: GoalOutcome) -> None:
        self.outcome = outcome
        self.done.set()


def test_fibonacci_goal_feedback_and_result(bare: MockBackend) -> None:
    goal = GoalRecorder()
    handle = bare.send_goal(
        "/fibonacci", "test_msgs/Fibonacci", {"order": 5}, goal.feedback.append, goal.on_done, 1
    )
    assert handle.id and goal.done.wait(limit(2))
    assert goal.outcome == GoalOutcome("succeeded", {"sequence": [0, 1, 1, 2, 3, 5]})
    assert [len(f["sequence"]) for f in goal.feedback] == [3, 4, 5, 6]


def test_goals_are_rejected_aborted_and_cancelled(bare: MockBackend) -> None:
    with pytest.raises(ActionError) as info:
        bare.send_goal("/fibonacci", "", {"order": -1}, print, print, 1)
    assert info.value.status == "rejected"
    aborted = GoalRecorder()
    bare.send_goal("/fibonacci", "", {"order": 47}, aborted.feedback.append, aborted.on_done, 1)
    assert aborted.done.wait(limit(5)) and aborted.outcome is not None
    assert aborted.outcome.status == "aborted" and "int32" in aborted.outcome.message
    cancelled = GoalRecorder()
    handle = bare.send_goal("/fibonacci", "", {"order": 40}, print, cancelled.on_done, 1)
    handle.cancel()
    assert cancelled.done.wait(limit(2)) and cancelled.outcome is not None
    assert cancelled.outcome.status == "canceled"
    with pytest.raises(MessageError) as error:
        bare.send_goal("/fibonacci", "", {"order": "x"}, print, print, 1)
    assert error.value.field == "order"
    with pytest.raises(NotExposedError):
        bare.send_goal("/nothing", "", {}, print, print, 1)


def test_rotate_absolute_turns_the_turtle_and_a_new_goal_preempts(backend: MockBackend) -> None:
    first = GoalRecorder()
    backend.send_goal("/turtle1/rotate_absolute", "", {"theta": 3.0}, print, first.on_done, 1)
    second = GoalRecorder()
    backend.send_goal(
        "/turtle1/rotate_absolute", "", {"theta": 0.5}, second.feedback.append, second.on_done, 1
    )
    assert first.done.wait(limit(2)) and first.outcome is not None
    assert first.outcome.status == "aborted"
    assert second.done.wait(limit(5)) and second.outcome is not None
    assert second.outcome.status == "succeeded"
    assert second.feedback and abs(backend.tick()["theta"] - 0.5) < 0.05


def test_graph_information(backend: MockBackend) -> None:
    assert backend.nodes() == ["/mock", "/test", "/turtlesim"]
    info = backend.topic_info("/turtle1/pose")
    assert info == {"type": "turtlesim/Pose", "publishers": ["/turtlesim"], "subscribers": []}
    assert backend.service_info("/reset") == {"type": "std_srvs/Empty", "providers": ["/turtlesim"]}
    assert backend.action_info("/fibonacci")["servers"] == ["/mock"]
    assert backend.node_info("/turtlesim")["subscribes"] == {
        "/turtle1/cmd_vel": "geometry_msgs/Twist"
    }
    assert "float32 x" in backend.definition("turtlesim/msg/Pose")
    assert backend.definition("std_srvs/srv/SetBool").count("---") == 1
    with pytest.raises(NotExposedError):
        backend.topic_info("/nothing")
    with pytest.raises(MessageError, match="did you mean std_msgs/String"):
        backend.definition("std_msgs/Strin")


def test_transient_local_topics_reach_late_subscribers(bare: MockBackend) -> None:
    latched = {"durability": "transient_local"}
    bare.publish("/map", "std_msgs/String", {"data": "the map"}, latched)
    got: list[dict[str, Any]] = []
    bare.subscribe("/map", "", got.append)
    assert got == [{"data": "the map"}]
    bare.publish("/events", "std_msgs/String", {"data": "gone"})
    bare.subscribe("/events", "", got.append)
    assert got == [{"data": "the map"}]  # a volatile topic replays nothing


def test_typos_in_known_packages_are_refused_but_own_types_are_not(bare: MockBackend) -> None:
    with pytest.raises(MessageError, match="did you mean std_msgs/String"):
        bare.publish("/t", "std_msgs/Strin", {"data": "x"})
    bare.publish("/mine", "my_robot_msgs/Custom", {"anything": [1, "two"]})


def test_delete_param(backend: MockBackend) -> None:
    backend.delete_param("/turtlesim/background_r")
    with pytest.raises(ParamNotSetError):
        backend.get_param("/turtlesim/background_r")
    backend.delete_param("/turtlesim")
    assert backend.params() == []
    with pytest.raises(ParamNotSetError):
        backend.delete_param("/turtlesim")
