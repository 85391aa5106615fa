"""Many worker processes, one ROS 2 node: the Flask example under gunicorn and the Celery
example in a prefork pool, on the ros2 backend, against real rclpy peers.

What rclpy cannot do by itself: every gunicorn or Celery worker that imports rclpy becomes a
DDS participant of its own, and rclpy does not survive a fork. Here the workers attach to one
shared pyros node, and an independent rclpy peer sees exactly one ``/pyros_<name>`` in the
graph, before and after a worker is SIGKILLed, and none once the node is stopped. The
throughput is printed (``pytest -s``) and recorded as a property; no speed is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
from ros2_support import RclpyPeer, limit, wait_for

import pyros
from pyros._process import pid_alive
from pyros._shared import list_nodes, stop_shared
from tests.support import RUNTIME_DIR

pytestmark = pytest.mark.slow

pytest.importorskip("flask", reason="the Flask example needs flask")
pytest.importorskip("gunicorn", reason="the gunicorn test needs gunicorn")
pytest.importorskip("celery", reason="the Celery example needs celery")
pytest.importorskip("redis", reason="the Celery example's broker needs redis")

from celery import Celery  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WORKERS = 4
REQUESTS = 200
CLIENT_THREADS = 20
TASKS = 100

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> set[int]:
    """Pids of the live (not zombie) children of ``pid``."""
    found = set()
    for child in psutil.Process(pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def end(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc`` and its children, SIGKILL what lingers after ``grace`` s; reap."""
    kids = children(proc.pid) if proc.poll() is None else set()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(limit(5))
    for pid in kids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(pid) for pid in kids), limit(5), "the children to end")


def pyros_nodes(observer: RclpyPeer) -> set[str]:
    """The pyros nodes an independent rclpy node sees in the graph."""
    return {name for name in observer.request("nodes") if name.startswith("/pyros_")}


def worker_env(node_name: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)  # the session's ROS 2 domain, loopback discovery
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        PYROS_NODE=node_name,
        PYROS_BACKEND="ros2",
        PYROS_TOPICS="*",
        PYROS_SERVICES="*",
        PYROS_IDLE_TIMEOUT="30",
        **extra,
    )
    return env


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


def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """Send one request; return ``(status, decoded JSON body)``, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=limit(30)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        finally:
            exc.close()


@pytest.fixture
def gunicorn(node_name: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """gunicorn with 4 sync workers serving the Flask example on the ros2 backend."""
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--chdir",
            str(REPO_ROOT),
            "examples.flask_app:app",
        ],
        env=worker_env(node_name, PYROS_FIRST_MESSAGE_TIMEOUT=str(limit(5))),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        end(proc, limit(15))
        log.close()


def first_status(proc: subprocess.Popen[bytes], url: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + limit(60)
    while True:
        assert proc.poll() is None, f"gunicorn exited:\n{log.read_text()[-3000:]}"
        try:
            status, body = http(url + "/")
            if status == 200:
                return dict(body)
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gunicorn did not serve:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def statuses_until(url: str, done: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit(30)
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        while not done(seen):
            assert time.monotonic() < deadline, f"statuses seen: {seen[-8:]}"
            for status, body in pool.map(lambda _: http(url + "/"), range(CLIENT_THREADS)):
                assert status == 200, body
                seen.append(body)
    return seen


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
    gunicorn: tuple[subprocess.Popen[bytes], str],
    node_name: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    proc, url = gunicorn
    graph_name = f"/pyros_{node_name}"
    first = first_status(proc, url, tmp_path / "gunicorn.log")
    assert first["node"] == node_name and first["backend"] == "ros2"
    node_pid = first["node_pid"]
    seen = statuses_until(url, lambda seen: {s["worker_pid"] for s in seen} == children(proc.pid))
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert len(children(proc.pid)) == WORKERS
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

    before = children(proc.pid)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: len(children(proc.pid)) == WORKERS and victim not in children(proc.pid),
        limit(15),
        "gunicorn to replace the killed worker",
    )
    (replacement,) = children(proc.pid) - before
    published, _ = mixed_requests(url, 100, "after-kill")
    wait_received(robot, published)
    seen = statuses_until(url, lambda seen: replacement in {s["worker_pid"] for s in seen})
    assert {status["node_pid"] for status in seen} == {node_pid}
    assert pyros_nodes(robot) == {graph_name}

    end(proc, limit(15))
    assert pid_alive(node_pid)
    stop_shared(node_name, timeout=limit(10))
    wait_for(lambda: not pid_alive(node_pid), limit(2), "the node to exit")
    wait_for(lambda: not pyros_nodes(robot), limit(2), "the node to leave the graph")
    assert not (RUNTIME_DIR / node_name).exists()


# --- Celery ----------------------------------------------------------------------------------


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on 127.0.0.1 (no persistence); its ``redis://`` URL."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    log = open(tmp_path / "redis.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _ping(port) or proc.poll() is not None, limit(10), "redis")
        assert proc.poll() is None, (tmp_path / "redis.log").read_text()
        yield f"redis://127.0.0.1:{port}"
    finally:
        end(proc, limit(5))
        log.close()


@pytest.fixture
def celery_worker(
    redis_url: str, node_name: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``celery worker --pool prefork --concurrency 4`` running the example on ros2."""
    log_path = tmp_path / "celery.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "examples.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(WORKERS),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"pyros_ros2_{os.getpid()}@localhost",
        ],
        env=worker_env(
            node_name, CELERY_BROKER_URL=f"{redis_url}/0", CELERY_RESULT_BACKEND=f"{redis_url}/1"
        ),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: " ready." in log_path.read_text(errors="replace") or proc.poll() is not None,
            limit(30),
            "celery to start",
        )
        assert proc.poll() is None, log_path.read_text()
        yield proc
    finally:
        end(proc, limit(20))
        log.close()


def test_celery_prefork_pool_shares_one_ros2_node(
    robot: RclpyPeer,
    celery_worker: subprocess.Popen[bytes],
    redis_url: str,
    node_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    from examples.celery_app import call_service

    graph_name = f"/pyros_{node_name}"
    assert len(children(celery_worker.pid)) == WORKERS
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

    end(celery_worker, limit(20))
    assert pid_alive(node_pid)
    stop_shared(node_name, timeout=limit(10))
    wait_for(lambda: not pid_alive(node_pid), limit(2), "the node to exit")
    wait_for(lambda: not pyros_nodes(robot), limit(2), "the node to leave the graph")
