"""Contenders ``pyros``, ``pyros on ros2`` and ``pyros-rosbridge``: this repository's client,
``pyros.spawn(BACKEND)``, one node process.

Run by ``benchmarks/run.py``; see ``harness`` for the protocol. The backend comes from
``PYROS_BENCH_BACKEND`` (the contender's environment):

* ``ros1``: the ROS 1 world's master, from ``ROS_MASTER_URI`` (the project's ``.venv``);
* ``ros2``: the ROS 2 world, run with the Python of the ROS 2 wheels venv, into which the
  orchestrator installs this repository (editable): the node process imports rclpy from
  there; this (the client) process does not. The node's environment is the world's, without
  the library paths that the rclpy contender is given: the node finds ROS 2 by itself. Only
  this backend runs ``action``;
* ``rosbridge``: the same rosbridge-server-rs as the ``roslibpy`` contender (ROS 2 world; URL
  from ``ROSBRIDGE_URL``; the project's ``.venv``).

Every op starts its own node and closes it; timings are taken in this (the client) process.
The node exposes ``/bench/*`` topics, the ``/set_flag`` service and (ros2) ``/bench/*``
actions.
"""

from __future__ import annotations

import os
import time
from typing import Any

import harness

TOPICS = ["/bench/*"]
SERVICES = ["/set_flag"]
ACTIONS = {"ros2": ["/bench/*"]}
"""Per backend: the actions exposed (only ros2 runs the action op)."""

BACKEND = os.environ["PYROS_BENCH_BACKEND"]

BACKEND_OPTIONS: dict[str, dict[str, str]] = {
    "ros1": {"master_uri": "ROS_MASTER_URI"},
    "ros2": {},
    # The benchmark's rosbridge-server-rs runs with --no-rosapi: the node cannot list the
    # graph, so it subscribes and calls with type "" and the server finds the types.
    "rosbridge": {"url": "ROSBRIDGE_URL"},
}
"""Per backend: each ``spawn`` option and the environment variable that gives it."""

DISCOVERY_TIMEOUT = {"ros1": 10.0, "ros2": 10.0, "rosbridge": 30.0}
"""Seconds to wait for a new topic's first message. Without rosapi the rosbridge backend asks
for the topic again every 0.1 s until it exists."""

DDS = BACKEND == "ros2"
"""Wait until the new node has discovered a service or action before the first call, as
rclpy's ``wait_for_service``/``wait_for_server`` do for the rclpy contender."""


def _spawn() -> Any:
    import pyros

    options = {name: os.environ[variable] for name, variable in BACKEND_OPTIONS[BACKEND].items()}
    return pyros.spawn(
        BACKEND, topics=TOPICS, services=SERVICES, actions=ACTIONS.get(BACKEND, []), **options
    )


def _discovered(client: Any, listing: str, name: str) -> None:
    """Wait until the new node has discovered ``name`` (DDS discovery: 0.1 s to seconds)."""
    more = harness.deadline_loop(30.0)
    while more():
        if name in getattr(client, listing)():
            return
        time.sleep(0.01)
    raise TimeoutError(f"{name} not discovered within 30 s")


def footprint() -> dict[str, Any]:
    """``import pyros`` time and RSS, then RSS once a node is spawned and a round trip done."""
    before = harness.rss_bytes()
    started = time.perf_counter()
    import pyros  # noqa: F401

    import_s = time.perf_counter() - started
    after_import = harness.rss_bytes()
    with _spawn() as client:
        _first_round_trip(client, 0)
        ready = harness.rss_bytes()
        node = harness.rss_bytes(client.node_pid)
    return {
        "import_s": import_s,
        "rss_before": before,
        "rss_after_import": after_import,
        "rss_after_ready": ready,
        "node_rss": node,
    }


def _first_round_trip(client: Any, index: int) -> None:
    """Publish small message ``index`` every 50 ms until its echo comes back (a just-made
    rospy connection can drop the first message, as with any rospy node)."""
    wanted = harness.small_text(index)
    with client.subscribe("/bench/out") as sub:
        more = harness.deadline_loop(10.0)
        while more():
            client.publish("/bench/in", {"data": wanted}, type="std_msgs/String")
            try:
                while sub.get(timeout=0.05)["data"] != wanted:
                    pass
                return
            except TimeoutError:
                continue
    raise TimeoutError("no echo within 10 s")


def spawn_to_ready() -> float:
    """``pyros.spawn(...)`` call to the first echo received: spawn, subscribe to /bench/out,
    publish on /bench/in, receive the echo."""
    import pyros  # imported before the clock starts, as in an application

    del pyros
    started = time.perf_counter()
    client = _spawn()
    try:
        _first_round_trip(client, 0)
        return time.perf_counter() - started
    finally:
        client.close()


def round_trip(size: str, count: int) -> list[float]:
    """``client.publish`` on the in-topic to ``sub.get()`` returning the echo, one at a time."""
    large = size == "large"
    topic_in, topic_out = harness.round_trip_topics(large)
    type_name = harness.LARGE_TYPE if large else "std_msgs/String"
    data = harness.large_data()
    samples = []
    with _spawn() as client, client.subscribe(topic_out, queue_size=10) as sub:
        for index in range(-5, count):  # 5 warm-up messages, not counted
            message, wanted = harness.round_trip_fields(large, index, data)
            started = time.perf_counter()
            client.publish(topic_in, message, type=type_name)
            while True:
                try:
                    echo = sub.get(timeout=0.5 if index < 0 else 10.0)
                except TimeoutError:
                    if index >= 0:
                        raise
                    break  # a warm-up message lost on a fresh connection: not counted
                got = harness.large_index(echo["layout"]["data_offset"]) if large else echo["data"]
                if got == wanted:
                    break
            if index >= 0:
                samples.append(time.perf_counter() - started)
    return samples


def stream(rate: float, window: float) -> dict[str, Any]:
    """Messages/s and loss of the talker peer's ``/bench/stream`` received by a subscription."""
    with _spawn() as client, client.subscribe("/bench/stream", queue_size=1_000_000) as sub:
        peer = harness.ask("start_peer", kind="talker", topic="/bench/stream", rate=rate)
        try:
            sub.get(timeout=10.0)  # the talker is connected
            indices = []
            started = time.perf_counter()
            more = harness.deadline_loop(window)
            while more():
                try:
                    message = sub.get(timeout=0.2)
                except TimeoutError:
                    continue
                indices.append(harness.talker_index(message["data"]))
            elapsed = time.perf_counter() - started
        finally:
            harness.ask("stop_peer", id=peer["id"])
        summary = harness.stream_summary(indices, elapsed)
        summary["queue_dropped"] = sub.dropped
        return summary


def service(count: int) -> list[float]:
    """``client.call("/set_flag", {"data": True})`` return to return, one at a time (ros2:
    once the node has discovered the service)."""
    samples = []
    with _spawn() as client:
        if DDS:
            _discovered(client, "services", "/set_flag")
        for index in range(-5, count):
            started = time.perf_counter()
            client.call("/set_flag", {"data": True})
            if index >= 0:
                samples.append(time.perf_counter() - started)
    return samples


def discovery(count: int) -> list[float]:
    """A subscription to a topic that does not exist yet; a talker peer then creates it. From
    the moment the topic appears (ROS 1: the orchestrator sees it in the master, polling
    ``getTopicTypes``; ROS 2: the talker's ``create_publisher`` returns) to the first
    message's callback here."""
    samples = []
    with _spawn() as client:
        for index in range(count):
            topic = f"/bench/new_{os.getpid()}_{index}"
            arrival = harness.FirstArrival()
            with client.subscribe(topic, arrival.on_message):
                samples.append(arrival.after_talker_starts(topic, DISCOVERY_TIMEOUT[BACKEND]))
    return samples


def action(count: int, order: int) -> list[float]:
    """``client.send_goal`` (goal sent, accepted, result received) of a Fibonacci goal, one at
    a time after 5 warm-up goals, once the node has discovered the action."""
    samples = []
    with _spawn() as client:
        _discovered(client, "actions", "/bench/fibonacci")
        for index in range(-5, count):
            started = time.perf_counter()
            result = client.send_goal("/bench/fibonacci", {"order": order}, timeout=10.0)
            if index >= 0:
                samples.append(time.perf_counter() - started)
            assert len(result["sequence"]) == order + 1
    return samples


if __name__ == "__main__":
    harness.serve_ops(globals())
