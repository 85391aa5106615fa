"""The client API against real node processes running the mock backend.

Every test here starts at least one real ``python -m pyros._node`` process and talks to it over
real ZeroMQ sockets; the autouse fixture in tests/conftest.py checks that nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import zmq

import pyros
from pyros._protocol import PROTOCOL_VERSION, encode
from tests.support import RUNTIME_DIR, limit, wait_until

pytestmark = pytest.mark.process

TWIST = "geometry_msgs/Twist"


@pytest.fixture(scope="module")
def robot():
    """One node for the read-mostly tests of this module."""
    client = pyros.spawn("mock", topics=["*"], services=["*"], params=["*"])
    yield client
    client.close()


@pytest.fixture
def fresh():
    """A node of its own, for tests that break or kill it."""
    client = pyros.spawn("mock", topics=["*"], services=["*"], params=["*"])
    yield client
    client.close()


# --- the contract, happy path ---------------------------------------------------------------


def test_topics_lists_the_turtle_with_types(robot: pyros.Client) -> None:
    topics = robot.topics()
    assert topics["/turtle1/cmd_vel"] == TWIST
    assert topics["/turtle1/pose"] == "turtlesim/Pose"


def test_services_and_params(robot: pyros.Client) -> None:
    services = robot.services()
    assert services["/reset"] == "std_srvs/Empty"
    assert services["/set_flag"] == "std_srvs/SetBool"
    assert "/turtlesim/background_r" in robot.params()


def test_patterns_limit_what_is_exposed() -> None:
    with pyros.spawn("mock", topics=["/turtle1/pose"], services=["/reset"]) as client:
        assert set(client.topics()) == {"/turtle1/pose"}
        assert set(client.services()) == {"/reset"}
        assert client.params() == []
        with pytest.raises(pyros.NotExposedError, match="cmd_vel"):
            client.publish("/turtle1/cmd_vel", {})
        with pytest.raises(pyros.NotExposedError):
            client.subscribe("/turtle1/cmd_vel")
        with pytest.raises(pyros.NotExposedError):
            client.call("/set_flag", {"data": True})
        with pytest.raises(pyros.NotExposedError):
            client.get_param("/turtlesim/background_r")
        with pytest.raises(pyros.NotExposedError):
            client.set_param("/x", 1)
        assert client.call("/reset") == {}


def test_publish_subscribe_round_trip_on_a_new_topic(robot: pyros.Client) -> None:
    with robot.subscribe("/chatter_rt") as sub:
        robot.publish("/chatter_rt", {"data": "hello"}, type="std_msgs/String")
        assert sub.get(timeout=limit(2)) == {"data": "hello"}
        for i in range(50):
            robot.publish("/chatter_rt", {"data": f"m{i}"})
        assert [sub.get(timeout=limit(2))["data"] for _ in range(50)] == [
            f"m{i}" for i in range(50)
        ]
    assert robot.topics().get("/chatter_rt") == "std_msgs/String"


def test_messages_carry_bytes_and_nested_fields(robot: pyros.Client) -> None:
    image = {
        "header": {"stamp": {"secs": 12, "nsecs": 345}, "frame_id": "cam"},
        "height": 2,
        "width": 3,
        "encoding": "mono8",
        "step": 3,
        "data": bytes(range(6)),
    }
    with robot.subscribe("/camera") as sub:
        robot.publish("/camera", image, type="sensor_msgs/Image")
        received = sub.get(timeout=limit(2))
    assert received["data"] == bytes(range(6))
    assert received["header"]["stamp"] == {"secs": 12, "nsecs": 345}
    assert received["header"]["frame_id"] == "cam"


def test_callback_subscription(robot: pyros.Client) -> None:
    got: list[dict] = []
    done = threading.Event()

    def on_message(message: dict) -> None:
        got.append(message)
        if len(got) == 3:
            done.set()

    with robot.subscribe("/cb_topic", on_message) as sub:
        for i in range(3):
            robot.publish("/cb_topic", {"data": i}, type="std_msgs/Int32")
        assert done.wait(limit(2))
        with pytest.raises(pyros.PyrosError, match="callback"):
            sub.get(timeout=0.1)
    assert [m["data"] for m in got] == [0, 1, 2]


def test_iteration_ends_when_closed(robot: pyros.Client) -> None:
    sub = robot.subscribe("/turtle1/pose")
    seen = []
    for pose in sub:
        seen.append(pose)
        if len(seen) == 3:
            sub.close()
    assert len(seen) == 3 and {"x", "y", "theta"} <= set(seen[0])


def test_driving_the_turtle_moves_it(fresh: pyros.Client) -> None:
    with fresh.subscribe("/turtle1/pose", queue_size=1) as poses:
        start = poses.get(timeout=limit(2))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            fresh.publish("/turtle1/cmd_vel", {"linear": {"x": 2.0}})
            time.sleep(0.05)
        moved = poses.get(timeout=limit(2))
    assert moved["x"] > start["x"] + 1.0
    fresh.call("/reset")


def test_services_answer(robot: pyros.Client) -> None:
    reply = robot.call("/set_flag", {"data": True})
    assert reply["success"] is True and "true" in reply["message"].lower()
    assert robot.call("/trigger")["success"] is True


def test_params_round_trip(robot: pyros.Client) -> None:
    robot.set_param("/app/config", {"speed": 1.5, "name": "r2", "tags": ["a", "b"]})
    assert robot.get_param("/app/config") == {"speed": 1.5, "name": "r2", "tags": ["a", "b"]}
    assert robot.get_param("/app/config/speed") == 1.5
    assert "/app/config/speed" in robot.params()
    assert robot.get_param("/turtlesim/background_r") == 69


def test_unset_param_is_a_key_error(robot: pyros.Client) -> None:
    with pytest.raises(KeyError):
        robot.get_param("/does/not/exist")


def test_info(robot: pyros.Client) -> None:
    info = robot.info()
    assert info["pid"] == robot.node_pid
    assert info["backend"] == "mock"
    assert info["graph_name"] == f"/pyros_{robot.name}"
    assert info["clients"] >= 1


# --- bad input ------------------------------------------------------------------------------


def test_message_errors_name_the_field_and_the_node_keeps_serving(robot: pyros.Client) -> None:
    with pytest.raises(pyros.MessageError) as info:
        robot.publish("/turtle1/cmd_vel", {"linear": {"x": "fast"}})
    assert info.value.field == "linear.x"
    with pytest.raises(pyros.MessageError) as info:
        robot.publish("/turtle1/cmd_vel", {"linear": {"w": 1.0}})
    assert info.value.field == "linear.w"
    with pytest.raises(pyros.MessageError) as info:
        robot.publish("/turtle1/cmd_vel", {"angular": [1, 2]})
    assert info.value.field == "angular"
    with pytest.raises(pyros.MessageError):
        robot.publish("/turtle1/cmd_vel", "not a dict")  # type: ignore[arg-type]
    with pytest.raises(pyros.MessageError):
        robot.publish("/turtle1/cmd_vel", {"linear": {1, 2}})  # type: ignore[dict-item]
    with pytest.raises(pyros.MessageError, match="pkg/Type"):
        robot.publish("/brand_new_topic", {"data": 1})
    with pytest.raises(pyros.MessageError):
        robot.publish("/turtle1/cmd_vel", {}, type="std_msgs/String")
    with pytest.raises(pyros.MessageError) as info:
        robot.call("/set_flag", {"data": "yes"})
    assert info.value.field == "data"
    robot.publish("/turtle1/cmd_vel", {"linear": {"x": 0.0}})
    assert robot.call("/trigger")["success"]


def test_invalid_names_are_refused(robot: pyros.Client) -> None:
    for name in ("/bad name", "/1abc", "", "/a//b", "~private"):
        with pytest.raises(pyros.NotExposedError, match="not a valid"):
            robot.publish(name, {"data": 1}, type="std_msgs/Int32")
    with pytest.raises(pyros.MessageError, match="pkg/Type"):
        robot.publish("/x", {}, type="NoSlash")


def test_failing_and_missing_services(robot: pyros.Client) -> None:
    with pytest.raises(pyros.ServiceError):
        robot.call("/fail")
    with pytest.raises(pyros.NotExposedError, match="does not exist"):
        robot.call("/no_such_service")
    assert robot.call("/trigger")["success"]


def test_garbage_frames_do_not_hurt_the_node(fresh: pyros.Client) -> None:
    endpoints = fresh.description["endpoints"]
    context = zmq.Context()
    try:
        dealer = context.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(endpoints["request"])
        for frames in (
            [b"\xc1garbage"],
            [b""],
            [b"a", b"b", b"c"],
            [encode([PROTOCOL_VERSION, 5, "explode", {}])],
            [encode([PROTOCOL_VERSION + 9, 6, "topics", {}])],
            [encode([PROTOCOL_VERSION, 7, "publish", {"topic": 3}])],
            [os.urandom(2000)],
        ):
            dealer.send_multipart(frames)
        dealer.rcvtimeo = int(limit(2) * 1000)
        replies = [dealer.recv() for _ in range(3)]  # ids 5, 6 and 7 are answered
        assert all(b"Error" in reply for reply in replies)
        xsub = context.socket(zmq.XSUB)
        xsub.linger = 0
        xsub.connect(endpoints["stream"])
        for junk in (b"\x05junk", b"", b"\x01s" + b"x" * 5000, os.urandom(100)):
            xsub.send(junk)
        dealer.close()
        xsub.close()
    finally:
        context.term()
    assert fresh.call("/trigger")["success"]
    with fresh.subscribe("/after_garbage") as sub:
        fresh.publish("/after_garbage", {"data": 1}, type="std_msgs/Int32")
        assert sub.get(timeout=limit(2)) == {"data": 1}


# --- concurrency ----------------------------------------------------------------------------


def test_sixteen_threads_get_their_own_answers(robot: pyros.Client) -> None:
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_ in range(20):
                value = index * 1000 + round_
                robot.set_param(f"/threads/t{index}", value)
                assert robot.get_param(f"/threads/t{index}") == value
                reply = robot.call("/set_flag", {"data": bool(round_ % 2)})
                assert reply["success"]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit(30))
    assert not errors, errors


def test_late_topic_is_exposed_and_delivered(robot: pyros.Client) -> None:
    with robot.subscribe("/appears_later") as sub:
        assert sub.type is None
        with pyros.spawn("mock", topics=["*"]) as other:
            assert "/appears_later" not in other.topics()
        robot.publish("/appears_later", {"data": "late"}, type="std_msgs/String")
        assert sub.get(timeout=limit(2)) == {"data": "late"}


# --- faults ---------------------------------------------------------------------------------


def test_sigkill_of_the_node_fails_pending_and_next_calls() -> None:
    client = pyros.spawn("mock", topics=["*"], services=["*"])
    sub = client.subscribe("/never")
    outcome: list[BaseException] = []

    def blocked_get() -> None:
        try:
            sub.get()
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=blocked_get)
    waiter.start()
    time.sleep(0.1)
    os.kill(client.node_pid, signal.SIGKILL)
    killed = time.monotonic()
    waiter.join(limit(2))
    assert not waiter.is_alive(), "a thread blocked in get() hung after the node died"
    assert isinstance(outcome[0], pyros.NodeDiedError)
    with pytest.raises(pyros.NodeDiedError):
        client.call("/trigger")
    assert time.monotonic() - killed < limit(2)
    client.close()
    assert not (RUNTIME_DIR / client.name).exists()


def test_node_exits_when_its_owner_is_sigkilled() -> None:
    script = (
        "import pyros, sys, time\n"
        "c = pyros.spawn('mock', topics=['*'])\n"
        "print(c.node_pid, c.name, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid_text, name = owner.stdout.readline().split()
        node_pid = int(pid_text)
        assert psutil.pid_exists(node_pid)
        owner.kill()
        owner.wait()
        killed = time.monotonic()
        assert wait_until(lambda: not psutil.pid_exists(node_pid), limit(2.5))
        assert time.monotonic() - killed < limit(2.5)
        assert not (RUNTIME_DIR / name).exists()
    finally:
        owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()


def test_close_stops_the_node_and_leaves_nothing() -> None:
    client = pyros.spawn("mock", topics=["*"])
    pid = client.node_pid
    directory = RUNTIME_DIR / client.name
    assert directory.is_dir() and (directory / "request.sock").exists()
    client.close()
    assert not psutil.pid_exists(pid)
    assert not directory.exists()
    with pytest.raises(pyros.PyrosError, match="closed"):
        client.topics()
    client.close()  # idempotent


def test_unknown_backend_and_bad_options_are_spawn_errors() -> None:
    with pytest.raises(pyros.SpawnError, match="unknown backend"):
        pyros.spawn("no_such_backend")
    with pytest.raises(pyros.SpawnError, match="options"):
        pyros.spawn("mock", colour="blue")


def test_get_timeout_is_a_timeout_error(robot: pyros.Client) -> None:
    with robot.subscribe("/silent") as sub:
        started = time.monotonic()
        with pytest.raises(pyros.TimeoutError):
            sub.get(timeout=0.2)
        with pytest.raises(TimeoutError):  # the builtin catches it too
            sub.get(timeout=0.05)
    assert time.monotonic() - started < limit(2)


def test_fork_child_gets_a_clear_error(robot: pyros.Client) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            robot.topics()
            os.write(write, b"no error")
        except pyros.ForkError:
            os.write(write, b"ForkError")
        except BaseException as exc:  # pragma: no cover - reported to the parent
            os.write(write, type(exc).__name__.encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 100) == b"ForkError"
    os.close(read)
    assert robot.call("/trigger")["success"]  # the parent's connection is unharmed


def test_connect_by_name_shares_the_node() -> None:
    with pyros.spawn("mock", name="test_shared_a", topics=["*"]) as owner:
        with pyros.connect("test_shared_a") as other:
            assert other.node_pid == owner.node_pid
            assert not other.owns_node
            with other.subscribe("/shared_chat") as sub:
                owner.publish("/shared_chat", {"data": "hi"}, type="std_msgs/String")
                assert sub.get(timeout=limit(2)) == {"data": "hi"}
        assert owner.call  # the node still serves the owner after the other client left
        assert "/turtle1/pose" in owner.topics()
    with pytest.raises(pyros.NodeDiedError):
        pyros.connect("test_shared_a", timeout=0.2)


def test_a_second_node_with_the_same_name_is_refused() -> None:
    with pyros.spawn("mock", name="test_dup"):
        with pytest.raises(pyros.SpawnError, match="already running"):
            pyros.spawn("mock", name="test_dup")


def test_idle_exit_waits_for_an_attach_holding_the_name_lock() -> None:
    from pyros._process import pid_alive
    from pyros._shared import name_lock, start_shared

    report = start_shared("idle_lock", idle_timeout=0.3)
    pid = report["pid"]
    with name_lock("idle_lock"):  # an attach() in progress holds this
        time.sleep(limit(1.0))
        assert pid_alive(pid), "the node idled out while an attach held the name lock"
    assert wait_until(lambda: not pid_alive(pid), limit(3))
    assert not (RUNTIME_DIR / "idle_lock").exists()


def test_attach_right_at_the_idle_deadline_never_fails() -> None:
    from pyros._process import pid_alive

    pids = set()
    for _ in range(15):
        with pyros.attach("idle_race", idle_timeout=0.2) as client:
            pids.add(client.node_pid)
            assert client.info()["name"] == "idle_race"
        time.sleep(0.19)
    assert wait_until(lambda: not any(pid_alive(pid) for pid in pids), limit(5))


def test_a_shared_node_whose_directory_vanishes_exits() -> None:
    import shutil

    from pyros._process import pid_alive
    from pyros._shared import start_shared

    report = start_shared("orphan_dir", idle_timeout=None)
    shutil.rmtree(RUNTIME_DIR / "orphan_dir")
    assert wait_until(lambda: not pid_alive(report["pid"]), limit(3))


def test_running_the_node_module_prints_no_warning() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "pyros._node", "--help"],
        capture_output=True,
        text=True,
        timeout=limit(20),
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr


def test_sockets_of_ended_threads_are_reclaimed(robot: pyros.Client) -> None:
    for _ in range(40):
        worker = threading.Thread(target=robot.topics)
        worker.start()
        worker.join(limit(10))
    robot.topics()
    assert len(robot._dealers) <= 3  # this thread's, and at most a couple not yet swept


def test_a_connected_client_notices_a_killed_shared_node_quickly() -> None:
    from pyros._shared import start_shared

    report = start_shared("killed_shared", idle_timeout=None)
    with pyros.connect("killed_shared") as client:
        os.kill(report["pid"], signal.SIGKILL)
        killed = time.monotonic()
        with pytest.raises(pyros.NodeDiedError):
            while True:
                client.info()
                time.sleep(0.02)
        assert time.monotonic() - killed < limit(1.0)
    from pyros._runtime import remove_node_directory

    remove_node_directory(RUNTIME_DIR / "killed_shared")
