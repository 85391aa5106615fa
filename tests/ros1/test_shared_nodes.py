"""Shared nodes on a real rosmaster: one node for many processes, and nothing left when it ends.

A shared node (``pyros.attach``, ``pyros node start``) ends in two ways: ``idle_timeout``
seconds after its last client is gone, or on ``pyros node stop NAME``. Either way its process
must be gone and the master must hold no registration of ``/pyros_<name>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from ros1_support import REPO_ROOT, Ros1Master, limit

import pyros
from pyros._process import pid_alive
from pyros._shared import list_nodes, stop_shared
from tests.support import RUNTIME_DIR, wait_until

IDLE = limit(1.0)
"""Idle timeout (seconds) of the nodes started here."""


@pytest.fixture
def ros_env(ros1_master: Ros1Master, monkeypatch: pytest.MonkeyPatch) -> Ros1Master:
    """Make nodes and subprocesses started here inherit the master's loopback environment."""
    for key, value in ros1_master.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    return ros1_master


@pytest.fixture
def node_name(ros_env: Ros1Master, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique node name; the node is stopped at teardown if the test left it running."""
    name = f"shared{os.getpid()}_{request.node.name[5:15]}"
    yield name
    if any(entry["name"] == name for entry in list_nodes()):
        stop_shared(name, timeout=limit(10))


def pyros_nodes(master: Ros1Master) -> set[str]:
    return {node for node in master.node_names() if node.startswith("/pyros_")}


def assert_gone(master: Ros1Master, name: str, pid: int) -> None:
    """The node's process, its registrations in the master and its directory are all gone."""
    assert wait_until(lambda: not pid_alive(pid), limit(2)), f"node process {pid} still runs"
    assert master.entries_of(f"/pyros_{name}") == []
    assert f"/pyros_{name}" not in master.node_names()
    assert not (RUNTIME_DIR / name).exists()
    assert name not in [entry["name"] for entry in list_nodes()]


def test_idle_shared_node_exits_after_its_last_client_and_unregisters(
    ros_env: Ros1Master, node_name: str
) -> None:
    client = pyros.attach(
        node_name, "ros1", topics=["*"], idle_timeout=IDLE, master_uri=ros_env.uri
    )
    pid = client.node_pid
    client.publish("/idle_out", {"data": "x"}, type="std_msgs/String")
    subscription = client.subscribe("/idle_out")  # a topic that exists: subscribed at once
    graph_name = f"/pyros_{node_name}"
    assert {("publisher", "/idle_out"), ("subscriber", "/idle_out")} <= set(
        ros_env.entries_of(graph_name)
    )

    time.sleep(2 * IDLE)  # an attached client keeps the node up, however long it is quiet
    assert pid_alive(pid)
    assert client.topics()["/idle_out"] == "std_msgs/String"

    subscription.close()
    client.close()
    closed = time.monotonic()
    assert wait_until(lambda: not pid_alive(pid), IDLE + limit(5)), "the idle node did not exit"
    assert time.monotonic() - closed >= 0.5 * IDLE, "the node exited before its idle timeout"
    assert_gone(ros_env, node_name, pid)


ATTACHER = textwrap.dedent(
    """
    import json, os, sys
    import pyros

    name, uri, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = pyros.attach(name, "ros1", services=["*"], idle_timeout=idle, master_uri=uri)
    client.services()
    print(json.dumps({"pid": os.getpid(), "node_pid": client.node_pid}), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    client.close()
    """
)


def test_processes_attaching_at_once_make_one_node_that_idles_out(
    ros_env: Ros1Master, node_name: str
) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", ATTACHER, node_name, ros_env.uri, str(IDLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    try:
        reports = []
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line, f"attacher {worker.pid} exited with {worker.wait(limit(10))}"
            reports.append(json.loads(line))
        node_pids = {report["node_pid"] for report in reports}
        assert len(node_pids) == 1, f"several nodes started: {node_pids}"
        (pid,) = node_pids
        assert pyros_nodes(ros_env) == {f"/pyros_{node_name}"}
        with pyros.connect(node_name) as observer:
            assert observer.info()["clients"] == len(workers) + 1
    finally:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
        codes = [worker.wait(limit(15)) for worker in workers]
        for worker in workers:
            assert worker.stdout is not None
            worker.stdout.close()
    assert codes == [0] * len(workers)
    assert wait_until(lambda: not pid_alive(pid), IDLE + limit(5)), "the idle node did not exit"
    assert_gone(ros_env, node_name, pid)


def run_pyros(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pyros ARGS`` (the ``pyros`` command) and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "pyros", *args],
        capture_output=True,
        text=True,
        timeout=limit(30),
    )


def test_pyros_node_stop_ends_the_node_and_unregisters(ros_env: Ros1Master, node_name: str) -> None:
    started = run_pyros(
        "node",
        "start",
        node_name,
        "--backend",
        "ros1",
        "--master-uri",
        ros_env.uri,
        "--topics",
        "*",
        "--services",
        "*",
    )
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.split("pid ")[1].split(",")[0])
    graph_name = f"/pyros_{node_name}"
    listed = json.loads(run_pyros("node", "list").stdout)  # JSON when piped, a table on a tty
    assert {"name": node_name, "pid": pid, "backend": "ros1", "shared": True} in listed

    client = pyros.connect(node_name)
    try:
        client.publish("/stop_out", {"data": 1}, type="std_msgs/Int32")
        assert ("publisher", "/stop_out") in ros_env.entries_of(graph_name)
        assert pyros_nodes(ros_env) == {graph_name}

        stopped = run_pyros("node", "stop", node_name)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == f"stopped {node_name}"
        assert_gone(ros_env, node_name, pid)
        assert node_name not in run_pyros("node", "list").stdout

        # A client still attached learns that the node is gone.
        with pytest.raises(pyros.NodeDiedError):
            client.topics()
    finally:
        client.close()
    again = run_pyros("node", "stop", node_name)
    assert again.returncode == 1 and "NodeDiedError" in again.stderr
