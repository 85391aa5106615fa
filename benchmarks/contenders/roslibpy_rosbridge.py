"""Contender ``roslibpy``: roslibpy (the project's ``.venv``) through a rosbridge v2 server.

The server is rosbridge-server-rs on ROS 2 Jazzy wheels, so this contender lives in the ROS 2
world: its peers are the rclpy nodes of ``benchmarks/peers/ros2_peer.py`` and its floor is the
``rclpy`` contender, not rospy. URL from ``ROSBRIDGE_URL``. Messages are JSON over one
websocket; ``uint8[]`` travels base64-encoded (the rosbridge protocol's rule).
"""

from __future__ import annotations

import base64
import os
import queue
import time
from typing import Any
from urllib.parse import urlparse

import harness

STRING = "std_msgs/msg/String"
LARGE = "std_msgs/msg/UInt8MultiArray"


def _import() -> Any:
    import roslibpy

    return roslibpy


def _connect() -> Any:
    roslibpy = _import()
    url = urlparse(os.environ["ROSBRIDGE_URL"])
    ros = roslibpy.Ros(host=url.hostname, port=url.port)
    ros.run(timeout=10)
    return ros


def _close(ros: Any) -> None:
    ros.close()


def _echo_ready(ros: Any, index: int) -> None:
    """Publish small message ``index`` every 20 ms until its echo arrives (the server's ROS 2
    publisher and subscription must first be matched by DDS discovery)."""
    roslibpy = _import()
    received: queue.SimpleQueue[Any] = queue.SimpleQueue()
    out = roslibpy.Topic(ros, "/bench/out", STRING)
    out.subscribe(received.put)
    into = roslibpy.Topic(ros, "/bench/in", STRING)
    into.advertise()
    wanted = harness.small_text(index)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            into.publish(roslibpy.Message({"data": wanted}))
            try:
                while received.get(timeout=0.02)["data"] != wanted:
                    pass
                return
            except queue.Empty:
                continue
        raise TimeoutError("no echo through rosbridge")
    finally:
        out.unsubscribe()
        into.unadvertise()


def footprint() -> dict[str, Any]:
    """``import roslibpy`` time and RSS; RSS once connected and one echo came back."""
    before = harness.rss_bytes()
    started = time.perf_counter()
    _import()
    import_s = time.perf_counter() - started
    after_import = harness.rss_bytes()
    ros = _connect()
    try:
        _echo_ready(ros, 0)
        ready = harness.rss_bytes()
    finally:
        _close(ros)
    return {
        "import_s": import_s,
        "rss_before": before,
        "rss_after_import": after_import,
        "rss_after_ready": ready,
    }


def spawn_to_ready() -> float:
    """``roslibpy.Ros(...).run()`` to the first echo received."""
    _import()
    started = time.perf_counter()
    ros = _connect()
    try:
        _echo_ready(ros, 0)
        return time.perf_counter() - started
    finally:
        _close(ros)


def round_trip(size: str, count: int) -> list[float]:
    """``topic.publish`` to the subscription callback getting the echo (time read in the
    callback, on roslibpy's network thread), one at a time."""
    roslibpy = _import()
    large = size == "large"
    topic_in, topic_out = harness.round_trip_topics(large)
    type_name = LARGE if large else STRING
    ros = _connect()
    received: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()
    out = roslibpy.Topic(ros, topic_out, type_name, queue_length=10)
    out.subscribe(lambda m: received.put((time.perf_counter(), m)))
    into = roslibpy.Topic(ros, topic_in, type_name, queue_size=10)
    into.advertise()
    data = base64.b64encode(harness.large_data()).decode("ascii")
    samples = []
    try:
        index = -5
        deadline = time.monotonic() + 30
        while index < count:  # the first messages may be lost while DDS matches: resend
            message, wanted = harness.round_trip_fields(large, index, data)
            started = time.perf_counter()
            into.publish(roslibpy.Message(message))
            try:
                while True:
                    at, echo = received.get(timeout=1.0 if index < 0 else 10.0)
                    if large:
                        got = harness.large_index(echo["layout"]["data_offset"])
                    else:
                        got = echo["data"]
                    if got == wanted:
                        break
            except queue.Empty:
                if index >= 0 or time.monotonic() > deadline:
                    raise TimeoutError(f"no echo of message {index}") from None
                continue
            if index >= 0:
                samples.append(at - started)
            index += 1
    finally:
        out.unsubscribe()
        into.unadvertise()
        _close(ros)
    return samples


def stream(rate: float, window: float) -> dict[str, Any]:
    """Messages/s and loss of the rclpy talker's ``/bench/stream`` in a roslibpy callback."""
    roslibpy = _import()
    ros = _connect()
    counter = harness.StreamCounter()
    topic = roslibpy.Topic(ros, "/bench/stream", STRING, queue_length=0)
    topic.subscribe(lambda message: counter.on_text(message["data"]))
    peer = harness.ask("start_peer", kind="talker", topic="/bench/stream", rate=rate)
    try:
        return counter.measure(window, 30.0)
    finally:
        harness.ask("stop_peer", id=peer["id"])
        topic.unsubscribe()
        _close(ros)


def service(count: int) -> list[float]:
    """``roslibpy.Service(...).call(request)`` (blocking) return to return."""
    roslibpy = _import()
    ros = _connect()
    proxy = roslibpy.Service(ros, "/set_flag", "std_srvs/srv/SetBool")
    samples = []
    try:
        for index in range(-5, count):
            started = time.perf_counter()
            proxy.call(roslibpy.ServiceRequest({"data": True}), timeout=10)
            if index >= 0:
                samples.append(time.perf_counter() - started)
    finally:
        _close(ros)
    return samples


def discovery(count: int) -> list[float]:
    """Subscribe (with its type) to a topic no node publishes yet; an rclpy talker then
    creates it. From the talker's ``create_publisher`` return to the first callback."""
    roslibpy = _import()
    ros = _connect()
    samples = []
    try:
        for index in range(count):
            topic_name = f"/bench/new_{os.getpid()}_{index}"
            arrival = harness.FirstArrival()
            topic = roslibpy.Topic(ros, topic_name, STRING)
            topic.subscribe(arrival.on_message)
            try:
                samples.append(arrival.after_talker_starts(topic_name, 30.0))
            finally:
                topic.unsubscribe()
    finally:
        _close(ros)
    return samples


if __name__ == "__main__":
    harness.serve_ops(globals())
