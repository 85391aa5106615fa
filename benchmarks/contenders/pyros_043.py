"""Contender ``pyros 0.4.3``: the original Pyros from PyPI (patched for Python 3, see
``benchmarks/original_pyros.py``), run with the Python of its scratch venv.

Its API, as its users called it: ``PyrosROS(name).start()`` forks the ROS node process,
``PyrosClient(name)`` finds its services, ``client.setup(publishers=..., subscribers=...,
services=...)`` says what to expose (regular expressions; "publishers" are topics the graph
publishes and the client reads, "subscribers" topics the client writes to).
``topic_inject(name, dict)`` publishes; ``topic_extract(name)`` returns the latest message
the node holds (or None): there is no stream, so a client polls. Each poll is one request
over ZeroMQ (pyzmp opens a new REQ socket per call, pickles both ways). The node refreshes its
view of the ROS graph once a second.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import harness

POLL_SLEEP = 0.002
"""Seconds between two ``topic_extract`` polls where a loop waits for something to happen
(spawn, discovery); the round-trip and stream loops poll back to back."""

_count = 0


def _import() -> tuple[Any, Any]:
    from pyros_interfaces_ros import PyrosROS

    from pyros.client import PyrosClient

    return PyrosClient, PyrosROS


def _start(publishers: list[str], subscribers: list[str], services: list[str]) -> tuple[Any, Any]:
    global _count
    client_class, node_class = _import()
    _count += 1
    node = node_class(f"pyros043_{os.getpid()}_{_count}", argv=[])
    node.start()
    client = client_class(node.name)
    client.setup(publishers=publishers, subscribers=subscribers, services=services, params=[])
    return node, client


def _stop(node: Any) -> None:
    node.shutdown(join=True, timeout=10)


def _await_echo(client: Any, index: int, deadline: float) -> None:
    """Inject small message ``index`` until its echo can be extracted (the node discovers
    the topics only on its next graph refresh)."""
    wanted = harness.small_text(index)
    while time.monotonic() < deadline:
        client.topic_inject("/bench/in", {"data": wanted})
        for _ in range(5):
            echo = client.topic_extract("/bench/out")
            if echo is not None and echo.get("data") == wanted:
                return
            time.sleep(POLL_SLEEP)
    raise TimeoutError("no echo from /bench/out")


def footprint() -> dict[str, Any]:
    """Import time and RSS of ``pyros.client`` + ``pyros_interfaces_ros`` (a client imports
    both: the node is forked from it); RSS once the node answers a round trip."""
    before = harness.rss_bytes()
    started = time.perf_counter()
    _import()
    import_s = time.perf_counter() - started
    after_import = harness.rss_bytes()
    node, client = _start(["/bench/out"], ["/bench/in"], [])
    try:
        _await_echo(client, 0, time.monotonic() + 30)
        ready = harness.rss_bytes()
        children = _children_rss()
    finally:
        _stop(node)
    return {
        "import_s": import_s,
        "rss_before": before,
        "rss_after_import": after_import,
        "rss_after_ready": ready,
        "node_rss": children,
    }


def _shutdown_manager() -> None:
    """Stop the multiprocessing manager process pyzmp starts at import (else it outlives us)."""
    import sys

    if "pyzmp" in sys.modules:
        from pyzmp.master import manager

        manager.shutdown()


def _children_rss() -> int:
    """RSS of this process's children (the forked node, pyzmp's multiprocessing manager)."""
    total = 0
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                parent = f.read().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if parent == me:
            try:
                total += harness.rss_bytes(int(entry))
            except (OSError, RuntimeError):
                pass
    return total


def spawn_to_ready() -> float:
    """``PyrosROS(...)`` to the first echo extracted: start, client, setup, then inject on
    /bench/in and poll /bench/out until the echo is there."""
    _import()
    started = time.perf_counter()
    node, client = _start(["/bench/out"], ["/bench/in"], [])
    try:
        _await_echo(client, 0, time.monotonic() + 30)
        return time.perf_counter() - started
    finally:
        _stop(node)


def round_trip(size: str, count: int) -> list[float]:
    """``topic_inject`` on the in-topic to the ``topic_extract`` that returns the echo
    (polled back to back). The large message's bytes travel base64-encoded, as Pyros's
    rosbridge-derived conversion expects for uint8[]."""
    import base64

    large = size == "large"
    topic_in, topic_out = harness.round_trip_topics(large)
    node, client = _start([topic_out], [topic_in], [])
    data = base64.b64encode(harness.large_data()).decode("ascii")
    samples = []
    try:
        if large:
            _await_large(client)
        else:
            _await_echo(client, -100, time.monotonic() + 30)
        for index in range(-5, count):
            message, wanted = harness.round_trip_fields(large, index, data)
            started = time.perf_counter()
            client.topic_inject(topic_in, message)
            deadline = time.monotonic() + 10
            while True:
                echo = client.topic_extract(topic_out)
                if echo is not None:
                    if large:
                        got = harness.large_index(echo["layout"]["data_offset"])
                    else:
                        got = echo["data"]
                    if got == wanted:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no echo of message {index}")
            if index >= 0:
                samples.append(time.perf_counter() - started)
    finally:
        _stop(node)
    return samples


def _await_large(client: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topics = client.topics()
        if "/bench/in_large" in topics and "/bench/out_large" in topics:
            return
        time.sleep(0.05)
    raise TimeoutError("the large topics were not exposed")


def stream(rate: float, window: float) -> dict[str, Any]:
    """Distinct talker messages seen by polling ``topic_extract("/bench/stream")`` back to
    back for the window (its only way to read a topic)."""
    node, client = _start(["/bench/stream"], [], [])
    peer = harness.ask("start_peer", kind="talker", topic="/bench/stream", rate=rate)
    try:
        deadline = time.monotonic() + 30
        while client.topic_extract("/bench/stream") is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no message on /bench/stream")
            time.sleep(POLL_SLEEP)
        seen: list[int] = []
        last = None
        polls = 0
        started = time.perf_counter()
        more = harness.deadline_loop(window)
        while more():
            message = client.topic_extract("/bench/stream")
            polls += 1
            if message is not None:
                index = harness.talker_index(message["data"])
                if index != last:
                    seen.append(index)
                    last = index
        elapsed = time.perf_counter() - started
    finally:
        harness.ask("stop_peer", id=peer["id"])
        _stop(node)
    summary = harness.stream_summary(seen, elapsed)
    summary["polls_per_s"] = polls / elapsed
    return summary


def service(count: int) -> list[float]:
    """``client.service_call("/set_flag", {"data": True})`` return to return."""
    node, client = _start([], [], ["/set_flag"])
    samples = []
    try:
        deadline = time.monotonic() + 30
        while "/set_flag" not in client.services():
            if time.monotonic() > deadline:
                raise TimeoutError("/set_flag was not exposed")
            time.sleep(0.05)
        for index in range(-5, count):
            started = time.perf_counter()
            response = client.service_call("/set_flag", {"data": True})
            if index >= 0:
                samples.append(time.perf_counter() - started)
            if not (response and response.get("success")):
                raise RuntimeError(f"bad response {response!r}")
    finally:
        _stop(node)
    return samples


def discovery(count: int) -> list[float]:
    """Expose ``/bench/new_.*`` before the topic exists; a talker then creates it. From the
    moment the orchestrator sees it in the master to the first ``topic_extract`` that returns
    a message (a thread polls every 2 ms from before the talker starts)."""
    node, client = _start([f"/bench/new_{os.getpid()}_.*"], [], [])
    samples = []
    try:
        for index in range(count):
            topic = f"/bench/new_{os.getpid()}_{index}"
            found: list[float] = []
            stop = threading.Event()

            def poll(
                topic: str = topic, found: list[float] = found, stop: threading.Event = stop
            ) -> None:
                while not stop.is_set():
                    if client.topic_extract(topic) is not None:
                        found.append(time.monotonic())
                        return
                    time.sleep(POLL_SLEEP)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            peer = harness.ask("start_peer", kind="talker", topic=topic, rate=1000.0)
            try:
                poller.join(30)
            finally:
                stop.set()
                harness.ask("stop_peer", id=peer["id"])
            if not found:
                raise TimeoutError(f"{topic} never became readable")
            samples.append(found[0] - peer["appeared"])
    finally:
        _stop(node)
    return samples


if __name__ == "__main__":
    harness.serve_ops(globals(), at_exit=_shutdown_manager)
