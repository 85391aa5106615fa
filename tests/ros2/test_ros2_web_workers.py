"""Many worker processes, one ROS 2 node: the Flask example under gunicorn and the Celery
example in a prefork pool, on the ros2 backend, against real rclpy peers.

What rclpy cannot do by itself: every gunicorn or Celery worker that imports rclpy becomes a
DDS participant of its own, and rclpy does not survive a fork. Here the workers attach to one
shared pyros node, and an independent rclpy peer sees exactly one ``/pyros_<name>`` in the
graph, before and after a worker is SIGKILLed, and none once the node is stopped. The
throughput is printed (``pytest -s``) and recorded as a property; no speed is asserted.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ros2_support import RclpyPeer, limit, wait_for

import pyros
from pyros._process import pid_alive
from pyros._shared import list_nodes, stop_shared
from tests.cloud.redis_support import redis_server
from tests.support import RUNTIME_DIR, free_port
from tests.web_workers import (
    CLIENT_THREADS,
    WORKERS,
    CeleryWorker,
    Gunicorn,
    example_env,
    http,
    statuses_until,
    wait_serving,
)

pytestmark = pytest.mark.slow

pytest.importorskip("flask", reason="the Flask example needs flask")
pytest.importorskip("gunicorn", reason="the gunicorn test needs gunicorn")
pytest.importorskip("celery", reason="the Celery example needs celery")
pytest.importorskip("redis", reason="the Celery example's broker needs redis")

from celery import Celery  # noqa: E402

REQUESTS = 200
TASKS = 100


def pyros_nodes(observer: RclpyPeer) -> set[str]:
    """The pyros nodes an independent rclpy node sees in the graph."""
    return {name for name in observer.request("nodes") if name.startswith("/pyros_")}


def worker_env(node_name: str, **extra: str) -> dict[str, str]:
    """This process's environment (the session's ROS 2 domain, loopback discovery) for an
    example's workers on the ros2 backend."""
    return example_env(
        dict(os.environ), node_name, "ros2", PYROS_TOPICS="*", PYROS_SERVICES="*", **extra
    )


@pytest.fixture(scope="module")
def robot(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    peer = module_peers("web_robot")
    peer.request("talk", topic="/chatter", rate=50.0)
    peer.request("service", name="/set_flag", kind="setbool")
    peer.request("subscribe", topic="/web_out", type="std_msgs/msg/String", qos={"depth": 500})
    return peer


@pytest.fixture
def node_name() -> Iterator[str]:
    """A unique shared-node name; the node is stopped at teardown if a test left it running."""
    name = f"web2_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    yield name
    if any(entry["name"] == name for entry in list_nodes()):
        stop_shared(name, timeout=limit(10))


# --- gunicorn --------------------------------------------------------------------------------


@pytest.fixture
def gunicorn(node_name: str, tmp_path: Path) -> Iterator[Gunicorn]:
    """gunicorn with 4 sync workers serving the Flask example on the ros2 backend."""
    env = worker_env(node_name, PYROS_FIRST_MESSAGE_TIMEOUT=str(limit(5)))
    server = Gunicorn(env, free_port(), tmp_path / "gunicorn.log")
    try:
        yield server
    finally:
        server.stop()


def mixed_requests(url: str, count: int, tag: str) -> tuple[list[str], float]:
    """``count`` concurrent requests: publish, latest-message read and SetBool call in turn."""

    def one(i: int) -> str | None:
        if i % 3 == 0:
            status, body = http(
                url + "/topics/web_out", "POST", {"message": {"data": f"{tag} {i}"}}
            )
            ok = status == 200 and body == {"topic": "/web_out"}
        elif i % 3 == 1:
            status, body = http(url + "/topics/chatter")
            ok = status == 200 and body["message"]["data"].startswith("hello ")
        else:
            flag = i % 2 == 0
            status, body = http(url + "/services/set_flag", "POST", {"data": flag})
            ok = status == 200 and body["success"] is flag and body["message"].endswith(str(flag))
        return None if ok else f"{i}: {status} {body}"

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        failures = [outcome for outcome in pool.map(one, range(count)) if outcome]
    elapsed = time.perf_counter() - started
    assert not failures, f"{len(failures)} of {count} requests failed: {failures[:10]}"
    return [f"{tag} {i}" for i in range(0, count, 3)], elapsed


def wait_received(robot: RclpyPeer, expected: list[str]) -> None:
    missing = set(expected)
    while missing:
        missing.discard(
            robot.event(limit(15), event="message", topic="/web_out")["message"]["data"]
        )


def test_gunicorn_workers_share_one_ros2_node(
    robot: RclpyPeer,
    gunicorn: Gunicorn,
    node_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    url = gunicorn.url
    graph_name = f"/pyros_{node_name}"
    first = wait_serving(gunicorn, limit(60))
    assert first["node"] == node_name and first["backend"] == "ros2"
    node_pid = first["node_pid"]
    seen = statuses_until(
        gunicorn, lambda seen: {s["worker_pid"] for s in seen} == gunicorn.workers()
    )
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert len(gunicorn.workers()) == WORKERS
    wait_for(lambda: "/set_flag" in http(url + "/services")[1], limit(10), "/set_flag")
    http(
        url + "/topics/web_out", "POST", {"message": {"data": "warm-up"}, "type": "std_msgs/String"}
    )
    wait_received(robot, ["warm-up"])

    published, elapsed = mixed_requests(url, REQUESTS, "load")
    rate = REQUESTS / elapsed
    wait_for(lambda: graph_name in pyros_nodes(robot), limit(10), graph_name)
    nodes = pyros_nodes(robot)
    record_property("requests_per_second", round(rate, 1))
    record_property("pyros_nodes_in_graph", len(nodes))
    print(
        f"\ngunicorn ({WORKERS} sync workers, ros2): {REQUESTS} requests in {elapsed:.2f} s = "
        f"{rate:.0f} requests/s; pyros nodes in the ROS 2 graph: {sorted(nodes)}"
    )
    assert nodes == {graph_name}
    wait_received(robot, published)
    assert http(url + "/")[1]["clients"] == WORKERS

    before = gunicorn.workers()
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        now = gunicorn.workers()  # one look: the victim gone and its replacement there
        return len(now) == WORKERS and victim not in now and bool(now - before)

    wait_for(replaced, limit(15), "gunicorn to replace the killed worker")
    (replacement,) = gunicorn.workers() - before
    published, _ = mixed_requests(url, 100, "after-kill")
    wait_received(robot, published)
    seen = statuses_until(gunicorn, lambda seen: replacement in {s["worker_pid"] for s in seen})
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert pyros_nodes(robot) == {graph_name}

    gunicorn.stop()
    assert pid_alive(node_pid)
    stop_shared(node_name, timeout=limit(10))
    wait_for(lambda: not pid_alive(node_pid), limit(2), "the node to exit")
    wait_for(lambda: not pyros_nodes(robot), limit(2), "the node to leave the graph")
    assert not (RUNTIME_DIR / node_name).exists()


# --- Celery ----------------------------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on 127.0.0.1 (no persistence); its ``redis://`` URL."""
    with redis_server(tmp_path) as server:
        yield f"redis://127.0.0.1:{server.port}"


@pytest.fixture
def celery_worker(redis_url: str, node_name: str, tmp_path: Path) -> Iterator[CeleryWorker]:
    """``celery worker --pool prefork --concurrency 4`` running the example on ros2."""
    env = worker_env(
        node_name, CELERY_BROKER_URL=f"{redis_url}/0", CELERY_RESULT_BACKEND=f"{redis_url}/1"
    )
    worker = CeleryWorker(env, tmp_path / "celery.log", f"pyros_ros2_{os.getpid()}@localhost")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def test_celery_prefork_pool_shares_one_ros2_node(
    robot: RclpyPeer,
    celery_worker: CeleryWorker,
    redis_url: str,
    node_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    from examples.celery_app import call_service

    graph_name = f"/pyros_{node_name}"
    assert len(celery_worker.pool()) == WORKERS
    producer = Celery("pyros_ros2_producer", broker=f"{redis_url}/0", backend=f"{redis_url}/1")
    producer.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    try:
        started = time.perf_counter()
        # The first task starts the shared node; a new ROS 2 node may need a moment (DDS
        # discovery, seconds on a busy machine) before it sees /set_flag.
        deadline = time.monotonic() + limit(10)
        while True:
            try:
                producer.send_task(call_service.name, args=["/set_flag", {"data": True}]).get(
                    timeout=limit(60)
                )
                break
            except pyros.NotExposedError:
                assert time.monotonic() < deadline, "the shared node never found /set_flag"
                time.sleep(0.2)
        flags = [i % 3 != 0 for i in range(TASKS)]
        results = [
            producer.send_task(call_service.name, args=["/set_flag", {"data": flag}])
            for flag in flags
        ]
        answers = [result.get(timeout=limit(60)) for result in results]
        elapsed = time.perf_counter() - started
        for result in results:
            result.forget()
        wrong = [
            (flag, answer)
            for flag, answer in zip(flags, answers, strict=True)
            if answer["success"] is not flag or not answer["message"].endswith(str(flag))
        ]
        assert not wrong, f"{len(wrong)} wrong results: {wrong[:5]}"
        with pytest.raises(pyros.NotExposedError):
            producer.send_task(call_service.name, args=["/no_such_service"]).get(timeout=limit(30))
    finally:
        producer.close()
    wait_for(lambda: graph_name in pyros_nodes(robot), limit(10), graph_name)
    nodes = pyros_nodes(robot)
    with pyros.connect(node_name) as observer:
        attached = observer.info()["clients"] - 1  # not counting this observer
        node_pid = observer.node_pid
    record_property("tasks_per_second", round(TASKS / elapsed, 1))
    record_property("pyros_nodes_in_graph", len(nodes))
    print(
        f"\ncelery prefork x{WORKERS} (ros2): {TASKS} SetBool tasks in {elapsed:.2f} s "
        f"({TASKS / elapsed:.0f} tasks/s, the first starts the node); pool processes "
        f"attached: {attached}; pyros nodes in the ROS 2 graph: {sorted(nodes)}"
    )
    assert nodes == {graph_name}
    assert 1 <= attached <= WORKERS

    celery_worker.stop()
    assert pid_alive(node_pid)
    stop_shared(node_name, timeout=limit(10))
    wait_for(lambda: not pid_alive(node_pid), limit(2), "the node to exit")
    wait_for(lambda: not pyros_nodes(robot), limit(2), "the node to leave the graph")
