"""The ros2 node process over its life: discovery of late names, leaving the graph, domains,
bad options, and how it finds ROS 2 (the wheels' bootstrap not needed; only the node imports
rclpy).

The observer of the graph is a pyros node too (the module's ``client``), except where a test
needs an independent rclpy view.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from ros2_support import RclpyPeer, limit, pick_domain, wait_for

import pyros
from pyros._process import pid_alive

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def peer(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    peer = module_peers("life_peer")
    peer.request("talk", topic="/life_chatter", rate=20.0)
    return peer


@pytest.fixture(scope="module")
def client(peer: RclpyPeer) -> Iterator[pyros.Client]:
    with pyros.spawn(
        "ros2", topics=["*"], services=["*"], actions=["*"], ready_timeout=limit(20)
    ) as client:
        wait_for(lambda: peer.name in client.nodes(), limit(10), "the peer")
        yield client


def first_seen(listing: Callable[[], dict[str, str]], name: str, since: float) -> float:
    """Seconds from ``since`` until ``name`` is in ``listing()`` (polled every 5 ms)."""
    wait_for(lambda: name in listing(), limit(10), name, interval=0.005)
    return time.monotonic() - since


def test_names_that_appear_later_are_exposed_within_half_a_second(
    client: pyros.Client, peer: RclpyPeer
) -> None:
    began = time.monotonic()
    peer.request("publisher", topic="/late/topic", type="std_msgs/msg/String")
    topic = first_seen(client.topics, "/late/topic", began)
    began = time.monotonic()
    peer.request("service", name="/late/service", kind="trigger")
    service = first_seen(client.services, "/late/service", began)
    began = time.monotonic()
    peer.request("action", name="/late/action")
    action = first_seen(client.actions, "/late/action", began)
    print(
        f"late names exposed after: topic {topic:.3f} s, service {service:.3f} s, "
        f"action {action:.3f} s"
    )
    assert max(topic, service, action) <= limit(0.5)
    assert client.topics()["/late/topic"] == "std_msgs/msg/String"
    assert client.call("/late/service")["success"] is True


def test_a_subscription_to_a_late_topic_gets_its_first_messages(
    client: pyros.Client, peer: RclpyPeer
) -> None:
    with client.subscribe("/late/talk") as sub:
        assert sub.type is None
        peer.request("talk", topic="/late/talk", rate=20.0)
        assert sub.get(timeout=limit(3))["data"].startswith("hello ")


def test_close_takes_the_node_out_of_the_graph(client: pyros.Client) -> None:
    other = pyros.spawn("ros2", ready_timeout=limit(20))
    name = other.info()["graph_name"]
    wait_for(lambda: name in client.nodes(), limit(10), name)
    other.close()
    began = time.monotonic()
    wait_for(lambda: name not in client.nodes(), limit(2), f"{name} to leave")
    print(f"{name} left the graph {time.monotonic() - began:.3f} s after close() returned")


OWNER = """
import sys, time
import pyros
client = pyros.spawn("ros2", name=sys.argv[1], ready_timeout=60)
print(client.node_pid, flush=True)
time.sleep(600)
"""


def test_a_killed_owners_node_exits_and_leaves_the_graph(client: pyros.Client) -> None:
    name = f"owned{os.getpid()}"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, name], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        node_pid = int(owner.stdout.readline())
        wait_for(lambda: f"/pyros_{name}" in client.nodes(), limit(10), "the owned node")
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        killed = time.monotonic()
        wait_for(lambda: not pid_alive(node_pid), limit(2), "the node process to exit")
        exited = time.monotonic() - killed
        wait_for(lambda: f"/pyros_{name}" not in client.nodes(), limit(2), "the node to leave")
        left = time.monotonic() - killed
        print(
            f"owner SIGKILLed: node exited after {exited:.3f} s, left the graph after {left:.3f} s"
        )
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait()
        assert owner.stdout is not None
        owner.stdout.close()


def test_a_domain_with_no_peers_has_empty_lists(peer: RclpyPeer, ros2_domain: int) -> None:
    empty = pick_domain(avoid=(ros2_domain, int(os.environ["ROS_DOMAIN_ID"])))
    with pyros.spawn(
        "ros2", domain_id=empty, topics=["*"], services=["*"], params=["*"], actions=["*"]
    ) as lonely:
        assert lonely.topics() == {}
        assert lonely.services() == {}
        assert lonely.actions() == {}
        assert lonely.params() == []
        assert lonely.nodes() == [lonely.info()["graph_name"]]
        assert peer.name not in lonely.nodes()


@pytest.mark.parametrize(
    "options",
    [{"domain_id": 500}, {"domain_id": "abc"}, {"domain_id": True}, {"master_uri": "http://x"}],
)
def test_bad_options_are_spawn_errors(options: dict[str, object]) -> None:
    with pytest.raises(pyros.SpawnError):
        pyros.spawn("ros2", ready_timeout=limit(20), **options)  # type: ignore[arg-type]


def test_an_rmw_that_is_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
    with pytest.raises(pyros.SpawnError, match="ros-rmw-cyclonedds-cpp"):
        pyros.spawn("ros2", ready_timeout=limit(20))


def test_the_node_finds_its_libraries_without_the_wheels_bootstrap(
    peer: RclpyPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wheels' .pth re-executes every interpreter with LD_LIBRARY_PATH set; with that
    turned off and no LD_LIBRARY_PATH, the node loads the libraries itself."""
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    monkeypatch.setenv("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "1")
    with pyros.spawn("ros2", topics=["*"], ready_timeout=limit(20)) as bare:
        # /proc/<pid>/environ shows what the process started with: no re-exec added it.
        started_with = psutil.Process(bare.node_pid).environ()
        assert "LD_LIBRARY_PATH" not in started_with
        wait_for(lambda: "/life_chatter" in bare.topics(), limit(10), "/life_chatter")
        with bare.subscribe("/life_chatter") as sub:
            assert sub.get(timeout=limit(5))["data"].startswith("hello ")
        peer.request("subscribe", topic="/bare", type="geometry_msgs/msg/Twist")
        wait_for(lambda: "/bare" in bare.topics(), limit(10), "/bare")
        bare.publish("/bare", {"linear": {"x": 1.0}}, "geometry_msgs/Twist")
        got = peer.event(event="message", topic="/bare")["message"]
        assert got["linear"] == {"x": 1.0, "y": 0.0, "z": 0.0}


def test_only_the_node_imports_rclpy() -> None:
    code = (
        "import sys, pyros, pyros_ros, pyros_ros.ros2, pyros_ros.environment; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rclpy', 'rosidl_parser', 'rcl_interfaces', 'std_msgs', 'numpy')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


PRUNE = """
import sys, time
from pyros_ros.environment import setup_ros2
setup_ros2()
from pyros_ros.ros2 import session as ros2_session
ros2_session.CLIENT_IDLE = 0.5
s = ros2_session.Session("pyros_prune_test", None)
try:
    deadline = time.monotonic() + 20
    while "/prune_me" not in s.services() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(s.call("/prune_me", "std_srvs/srv/Trigger", {}, 10.0)["success"], len(s._clients))
    sys.stdout.flush()
    sys.stdin.readline()  # the server is gone now
    deadline = time.monotonic() + 10
    while s._clients and time.monotonic() < deadline:
        time.sleep(0.05)
    print(len(s._clients))
finally:
    s.stop()
"""


def test_clients_of_services_that_left_are_destroyed(ros2_peer: Callable[..., RclpyPeer]) -> None:
    """A long-running node must not keep two DDS endpoints for every service it ever called."""
    server = ros2_peer("prune_server")
    server.request("service", name="/prune_me", kind="trigger")
    backend = subprocess.Popen(
        [sys.executable, "-c", PRUNE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert backend.stdout is not None and backend.stdin is not None
        assert backend.stdout.readline().split() == ["True", "1"]
        assert server.stop() == 0
        backend.stdin.write("\n")
        backend.stdin.flush()
        assert backend.stdout.readline().strip() == "0"
        assert backend.wait(limit(10)) == 0
    finally:
        if backend.poll() is None:
            backend.kill()
        backend.wait()
        for stream in (backend.stdin, backend.stdout):
            if stream is not None:
                stream.close()
