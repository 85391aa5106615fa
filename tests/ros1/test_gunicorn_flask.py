"""examples/flask_app.py under gunicorn with 4 sync workers, against a real rosmaster.

The point of pyros: many web worker processes, one ROS node. The gunicorn test starts a real
gunicorn (``python -m gunicorn``, bound to 127.0.0.1 on a free port) whose workers attach to
one shared pyros node running the ``ros1`` backend, drives 200 concurrent HTTP requests
through it (publish, latest-message reads, service calls against rospy peers), counts the
``/pyros_*`` nodes in the master, SIGKILLs a worker and checks that the replacement works
with the same node. The measured throughput is printed (``pytest -s``) and recorded as a
property (``--junitxml``); no speed is asserted.

A second test drives the same app in-process with Flask's test client and the mock backend,
to pin the HTTP mapping of pyros errors.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from ros1_support import Peer, Ros1Master, limit

from pyros._process import pid_alive
from pyros._shared import list_nodes, stop_shared
from tests.support import RUNTIME_DIR, free_port, wait_until
from tests.web_workers import (
    CLIENT_THREADS,
    WORKERS,
    Gunicorn,
    example_env,
    http,
    statuses_until,
    wait_serving,
)

pytestmark = pytest.mark.slow

pytest.importorskip("flask", reason="the Flask example needs flask (pip install flask)")
pytest.importorskip("gunicorn", reason="the gunicorn test needs gunicorn (pip install gunicorn)")

REQUESTS = 200


def pyros_nodes(master: Ros1Master) -> set[str]:
    """The pyros nodes the master knows (pyros registers nodes as ``/pyros_<name>``)."""
    return {node for node in master.node_names() if node.startswith("/pyros_")}


@pytest.fixture
def node_name(ros1_master: Ros1Master) -> Iterator[str]:
    """A unique shared-node name; the node is stopped at teardown if a test left it running."""
    name = f"web{os.getpid()}"
    yield name
    if any(entry["name"] == name for entry in list_nodes()):
        stop_shared(name, timeout=limit(10))


@pytest.fixture
def gunicorn(
    ros1_master: Ros1Master, node_name: str, tmp_path: Path
) -> Iterator[Callable[[], Gunicorn]]:
    """Factory of one gunicorn serving the Flask example with the ros1 backend."""
    started: list[Gunicorn] = []

    def start() -> Gunicorn:
        env = example_env(ros1_master.env, node_name, "ros1", PYROS_TOPICS="*", PYROS_SERVICES="*")
        server = Gunicorn(env, free_port(), tmp_path / "gunicorn.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def mixed_requests(server: Gunicorn, count: int, tag: str) -> tuple[list[str], float]:
    """Run ``count`` concurrent requests: publish, latest-message read, SetBool call in turn.

    Returns:
        The ``data`` strings published, and the wall time in seconds.

    Raises:
        AssertionError: listing every request that did not succeed with the right answer.
    """

    def one(i: int) -> str | None:
        kind = i % 3
        if kind == 0:
            data = f"{tag} {i}"
            status, body = http(
                server.url + "/topics/web_out",
                "POST",
                {"message": {"data": data}, "type": "std_msgs/String"},
            )
            if status != 200 or body != {"topic": "/web_out"}:
                return f"publish {i}: {status} {body}"
        elif kind == 1:
            status, body = http(server.url + "/topics/chatter")
            if status != 200 or not body["message"]["data"].startswith("hello "):
                return f"read {i}: {status} {body}"
        else:
            flag = i % 2 == 0
            status, body = http(server.url + "/services/set_flag", "POST", {"data": flag})
            if status != 200 or body != {"success": flag, "message": f"flag is {flag}"}:
                return f"call {i} ({flag}): {status} {body}"
        return None

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        outcomes = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    failures = [outcome for outcome in outcomes if outcome is not None]
    assert not failures, f"{len(failures)} of {count} requests failed: {failures[:10]}"
    return [f"{tag} {i}" for i in range(0, count, 3)], elapsed


def wait_received(listener: Peer, expected: list[str]) -> None:
    """Read the listener's lines until every string in ``expected`` has arrived."""
    missing = set(expected)
    deadline = time.monotonic() + limit(15)
    while missing:
        remaining = deadline - time.monotonic()
        assert remaining > 0, (
            f"{len(missing)} published messages never arrived: {sorted(missing)[:5]}"
        )
        missing.discard(listener.read_json(remaining)["msg"]["data"])


def test_gunicorn_workers_share_one_ros_node(
    ros1_master: Ros1Master,
    ros1_peer: Callable[..., Peer],
    gunicorn: Callable[[], Gunicorn],
    node_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    graph_name = f"/pyros_{node_name}"
    ros1_peer("talker", "--topic", "/chatter", "--rate", "50")
    ros1_peer("setbool_server")
    listener = ros1_peer("listener", "--topic", "/web_out", "--type", "std_msgs/String")
    server = gunicorn()
    cold = time.perf_counter()
    first = wait_serving(server, limit(30))
    record_property("first_request_seconds", round(time.perf_counter() - cold, 3))
    node_pid = first["node_pid"]
    assert first["node"] == node_name and first["backend"] == "ros1"

    # Every worker attaches (one client each); the listener hears the app's publisher.
    seen = statuses_until(server, lambda seen: {s["worker_pid"] for s in seen} == server.workers())
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert len(server.workers()) == WORKERS
    deadline = time.monotonic() + limit(10)
    while True:  # until the listener's connection to the app's new publisher is up
        status, body = http(
            server.url + "/topics/web_out",
            "POST",
            {"message": {"data": "warm-up"}, "type": "std_msgs/String"},
        )
        assert status == 200, body
        try:
            listener.read_json(0.2)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the listener never received the app's messages"

    # 200 concurrent requests, 20 at a time: all succeed, through one node.
    published, elapsed = mixed_requests(server, REQUESTS, "load")
    rate = REQUESTS / elapsed
    nodes = pyros_nodes(ros1_master)
    record_property("requests_per_second", round(rate, 1))
    record_property("pyros_nodes_in_master", len(nodes))
    print(
        f"\ngunicorn ({WORKERS} sync workers, {CLIENT_THREADS} client threads): {REQUESTS} "
        f"requests in {elapsed:.2f} s = {rate:.0f} requests/s; pyros nodes in the master: "
        f"{sorted(nodes)}"
    )
    assert nodes == {graph_name}
    wait_received(listener, published)
    clients = http(server.url + "/")[1]["clients"]
    assert clients == WORKERS, f"the node counts {clients} clients for {WORKERS} workers"

    # SIGKILL a worker: gunicorn replaces it, the new one attaches to the same node, and the
    # node forgets the dead worker's client.
    before = server.workers()
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(
        lambda: (
            len(server.workers()) == WORKERS
            and victim not in server.workers()
            and server.workers() - before
        ),
        limit(15),
    ), f"gunicorn did not replace worker {victim}:\n{server.log_tail()}"
    replacement = min(server.workers() - before)
    published, elapsed = mixed_requests(server, 100, "after-kill")
    print(f"after SIGKILL of worker {victim}: 100 requests in {elapsed:.2f} s, all succeeded")
    wait_received(listener, published)
    seen = statuses_until(server, lambda seen: replacement in {s["worker_pid"] for s in seen})
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert wait_until(lambda: http(server.url + "/")[1]["clients"] == WORKERS, limit(5)), (
        "the node still counts the killed worker's client"
    )
    nodes = pyros_nodes(ros1_master)
    record_property("pyros_nodes_after_worker_kill", len(nodes))
    assert nodes == {graph_name}

    # The node outlives the web server; stopping it unregisters everything.
    server.stop()
    assert pid_alive(node_pid)
    assert graph_name in ros1_master.node_names()
    stop_shared(node_name, timeout=limit(10))
    assert wait_until(lambda: not pid_alive(node_pid), limit(2))
    assert ros1_master.entries_of(graph_name) == []
    assert pyros_nodes(ros1_master) == set()
    assert not (RUNTIME_DIR / node_name).exists()


# --- the same app in-process, mock backend: the HTTP mapping of pyros errors ---------------------


@pytest.fixture
def mock_app() -> Iterator[Any]:
    """The Flask example with the mock backend and a node of its own, via Flask's test client."""
    from examples.flask_app import Settings, create_app

    name = f"flaskmock{os.getpid()}"
    settings = Settings(
        node=name, backend="mock", idle_timeout=limit(10), first_message_timeout=limit(0.5)
    )
    app = create_app(settings)
    try:
        yield app.test_client()
    finally:
        app.extensions["pyros"].close()
        if any(entry["name"] == name for entry in list_nodes()):
            stop_shared(name, timeout=limit(10))


def test_flask_app_answers_and_maps_pyros_errors_to_http(mock_app: Any) -> None:
    index = mock_app.get("/").get_json()
    assert index["backend"] == "mock" and index["worker_pid"] == os.getpid()
    assert mock_app.get("/topics").get_json()["/turtle1/pose"] == "turtlesim/Pose"
    assert mock_app.get("/services").get_json()["/reset"] == "std_srvs/Empty"

    pose = mock_app.get("/topics/turtle1/pose")
    assert pose.status_code == 200
    assert set(pose.get_json()["message"]) >= {"x", "y", "theta"}
    typo = mock_app.get("/topics/turtle1/poze")  # a typo: at once, with the right name, not kept
    assert typo.status_code == 404 and "/turtle1/pose" in typo.get_json()["message"]
    assert "/turtle1/poze" not in mock_app.application.extensions["pyros"]._latest

    twist = {"message": {"linear": {"x": 1.0}}}
    assert mock_app.post("/topics/turtle1/cmd_vel", json=twist).get_json() == {
        "topic": "/turtle1/cmd_vel"
    }
    assert mock_app.post("/services/set_flag", json={"data": True}).get_json()["success"] is True
    assert mock_app.post("/services/reset").status_code == 200

    # bytes (uint8[]) come out base64, as rosbridge sends them
    image = {"height": 1, "width": 3, "encoding": "mono8", "step": 3, "data": [1, 2, 3]}
    published = mock_app.post(
        "/topics/camera/image", json={"message": image, "type": "sensor_msgs/Image"}
    )
    assert published.status_code == 200, published.get_json()
    silent = mock_app.get("/topics/camera/image")  # subscribed now; nothing published since
    assert silent.status_code == 504 and silent.get_json()["error"] == "TimeoutError"
    mock_app.post("/topics/camera/image", json={"message": image})
    got = mock_app.get("/topics/camera/image").get_json()
    assert got["message"]["data"] == "AQID"

    bad = mock_app.post("/topics/turtle1/cmd_vel", json={"message": {"linear": {"x": "fast"}}})
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "MessageError" and bad.get_json()["field"] == "linear.x"
    assert mock_app.post("/services/no_such_service").status_code == 404
    assert mock_app.post("/topics/turtle1/cmd_vel", data="not json").status_code == 400
    assert mock_app.post("/topics/turtle1/cmd_vel", json={"message": [1]}).status_code == 400
    assert mock_app.post("/services/reset?timeout=soon").status_code == 400
