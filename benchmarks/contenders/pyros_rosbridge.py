"""Contender ``pyros-rosbridge``: this repository, ``pyros.spawn("rosbridge")``, through the
same rosbridge-server-rs as the ``roslibpy`` contender (ROS 2 world; URL from ``ROSBRIDGE_URL``).

Run by ``benchmarks/run.py`` with the project's ``.venv`` Python; see ``harness`` for the
protocol. Every op starts its own node and closes it; timings are taken in this (the client)
process. The node exposes ``/bench/*`` topics and the ``/set_flag`` service.
"""

from __future__ import annotations

import os
import time
from typing import Any

import harness

TOPICS = ["/bench/*"]
SERVICES = ["/set_flag"]


def _spawn() -> Any:
    import pyros

    # The benchmark's rosbridge-server-rs runs with --no-rosapi: the node cannot list the
    # graph, so it subscribes and calls with type "" and the server finds the types.
    return pyros.spawn(
        "rosbridge", topics=TOPICS, services=SERVICES, url=os.environ["ROSBRIDGE_URL"]
    )


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
    topic_in, topic_out = (
        ("/bench/in_large", "/bench/out_large") if large else ("/bench/in", "/bench/out")
    )
    type_name = harness.LARGE_TYPE if large else "std_msgs/String"
    data = harness.large_data()
    samples = []
    with _spawn() as client, client.subscribe(topic_out, queue_size=10) as sub:
        for index in range(-5, count):  # 5 warm-up messages, not counted
            if large:
                message = {"layout": harness.large_layout(index), "data": data}
            else:
                message = {"data": harness.small_text(index)}
            started = time.perf_counter()
            client.publish(topic_in, message, type=type_name)
            while True:
                try:
                    echo = sub.get(timeout=0.5 if index < 0 else 10.0)
                except TimeoutError:
                    if index >= 0:
                        raise
                    break  # a warm-up message lost on a fresh connection: not counted
                if large:
                    if harness.large_index(echo["layout"]["data_offset"]) == index:
                        break
                elif echo["data"] == harness.small_text(index):
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
    """``client.call("/set_flag", {"data": True})`` return to return, one at a time."""
    samples = []
    with _spawn() as client:
        for index in range(-5, count):
            started = time.perf_counter()
            client.call("/set_flag", {"data": True})
            if index >= 0:
                samples.append(time.perf_counter() - started)
    return samples


def discovery(count: int) -> list[float]:
    """A subscription to a topic that does not exist yet; a talker peer then creates it. From
    the talker's ``create_publisher`` return to the first message's callback here (the server
    has no rosapi: the backend asks for the topic again every 0.1 s until it exists)."""
    samples = []
    with _spawn() as client:
        for index in range(count):
            topic = f"/bench/new_{os.getpid()}_{index}"
            arrival = harness.FirstArrival()
            with client.subscribe(topic, arrival.on_message):
                samples.append(arrival.after_talker_starts(topic, 30.0))
    return samples


if __name__ == "__main__":
    harness.serve(
        {
            "footprint": footprint,
            "spawn_to_ready": spawn_to_ready,
            "round_trip": round_trip,
            "stream": stream,
            "service": service,
            "discovery": discovery,
        }
    )
