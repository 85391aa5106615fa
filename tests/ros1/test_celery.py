"""examples/celery_app.py in a real Celery prefork worker, with a real Redis broker and ROS 1.

The test starts Debian's ``redis-server`` on a free loopback port (no persistence), a rosmaster,
a rospy SetBool server, and ``celery worker --pool prefork --concurrency 4`` running the example
with the ``ros1`` backend. It sends 100 tasks that call the service through pyros, checks every
result, and checks that the pool processes share one ``/pyros_*`` node in the master.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ros1_support import Peer, Ros1Master, limit

import pyros
from pyros._process import pid_alive
from pyros._shared import list_nodes, stop_shared
from tests.cloud.redis_support import redis_server
from tests.support import RUNTIME_DIR, wait_until
from tests.web_workers import WORKERS, CeleryWorker, example_env

pytestmark = pytest.mark.slow

pytest.importorskip("celery", reason="the Celery example needs celery (pip install celery)")
pytest.importorskip("redis", reason="the Celery example's broker needs redis (pip install redis)")

from celery import Celery  # noqa: E402

TASKS = 100


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on 127.0.0.1 (no RDB, no AOF); its ``redis://`` URL."""
    with redis_server(tmp_path) as server:
        yield f"redis://127.0.0.1:{server.port}"


@pytest.fixture
def node_name(ros1_master: Ros1Master) -> Iterator[str]:
    """A unique shared-node name; the node is stopped at teardown if a test left it running."""
    name = f"tasks{os.getpid()}"
    yield name
    if any(entry["name"] == name for entry in list_nodes()):
        stop_shared(name, timeout=limit(10))


@pytest.fixture
def celery_worker(
    ros1_master: Ros1Master, redis_url: str, node_name: str, tmp_path: Path
) -> Iterator[CeleryWorker]:
    """A Celery worker running the example with the ros1 backend, ready for tasks."""
    env = example_env(
        ros1_master.env,
        node_name,
        "ros1",
        PYROS_SERVICES="*",
        CELERY_BROKER_URL=f"{redis_url}/0",
        CELERY_RESULT_BACKEND=f"{redis_url}/1",
    )
    worker = CeleryWorker(env, tmp_path / "celery.log", f"pyros_test_{os.getpid()}@localhost")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def producer(redis_url: str) -> Iterator[Celery]:
    """A Celery app in this process that sends tasks to the worker by name."""
    app = Celery("pyros_test_producer", broker=f"{redis_url}/0", backend=f"{redis_url}/1")
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    try:
        yield app
    finally:
        app.close()


def test_prefork_pool_calls_a_rospy_service_through_one_node(
    ros1_master: Ros1Master,
    ros1_peer: Callable[..., Peer],
    celery_worker: CeleryWorker,
    producer: Celery,
    node_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    from examples.celery_app import call_service

    graph_name = f"/pyros_{node_name}"
    ros1_peer("setbool_server")
    assert len(celery_worker.pool()) == WORKERS

    started = time.perf_counter()
    flags = [i % 3 != 0 for i in range(TASKS)]
    results = [
        producer.send_task(call_service.name, args=["/set_flag", {"data": flag}]) for flag in flags
    ]
    answers = [result.get(timeout=limit(30)) for result in results]
    elapsed = time.perf_counter() - started
    for result in results:
        result.forget()
    wrong = [
        (i, answer)
        for i, (flag, answer) in enumerate(zip(flags, answers, strict=True))
        if answer != {"success": flag, "message": f"flag is {flag}"}
    ]
    assert not wrong, f"{len(wrong)} wrong results: {wrong[:5]}"

    nodes = {node for node in ros1_master.node_names() if node.startswith("/pyros_")}
    with pyros.connect(node_name) as observer:
        attached = observer.info()["clients"] - 1  # not counting this observer
        node_pid = observer.node_pid
    record_property("tasks_per_second", round(TASKS / elapsed, 1))
    record_property("pyros_nodes_in_master", len(nodes))
    record_property("pool_processes_attached", attached)
    print(
        f"\ncelery prefork x{WORKERS}: {TASKS} SetBool tasks in {elapsed:.2f} s "
        f"({TASKS / elapsed:.0f} tasks/s, first task starts the node); pool processes "
        f"attached: {attached}; pyros nodes in the master: {sorted(nodes)}"
    )
    assert nodes == {graph_name}
    assert 2 <= attached <= WORKERS, f"{attached} pool processes attached"

    # A failing task carries the pyros exception back to the caller.
    with pytest.raises(pyros.NotExposedError):
        producer.send_task(call_service.name, args=["/no_such_service"]).get(timeout=limit(30))

    # Stopping the worker leaves the node to its idle timeout; stopping the node unregisters it.
    celery_worker.stop()
    assert pid_alive(node_pid)
    stop_shared(node_name, timeout=limit(10))
    assert wait_until(lambda: not pid_alive(node_pid), limit(2))
    assert ros1_master.entries_of(graph_name) == []
    assert not {node for node in ros1_master.node_names() if node.startswith("/pyros_")}
    assert not (RUNTIME_DIR / node_name).exists()
