"""Contender ``rclpy``: the program is itself an rclpy node (the ROS 2 world's floor, against
which the roslibpy-through-rosbridge contender compares). Run with the ROS 2 wheels venv.

One node per process (:func:`start`), spun by a ``SingleThreadedExecutor`` on a background
thread; the ops that measure a start run in a fresh process.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import harness

_node: Any = None


def _import() -> Any:
    import rclpy

    return rclpy


def start() -> Any:
    """``rclpy.init()``, one node, an executor thread (once per process)."""
    global _node
    if _node is None:
        rclpy = _import()
        from rclpy.executors import SingleThreadedExecutor

        rclpy.init()
        _node = rclpy.create_node(f"bench_rclpy_{os.getpid()}")
        executor = SingleThreadedExecutor()
        executor.add_node(_node)
        threading.Thread(target=executor.spin, daemon=True).start()
    return _node


def _qos() -> Any:
    from rclpy.qos import QoSProfile

    return QoSProfile(depth=100)


def _echo_ready(node: Any, index: int) -> None:
    from std_msgs.msg import String

    received: queue.SimpleQueue[Any] = queue.SimpleQueue()
    subscription = node.create_subscription(String, "/bench/out", received.put, _qos())
    publisher = node.create_publisher(String, "/bench/in", _qos())
    wanted = harness.small_text(index)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            publisher.publish(String(data=wanted))
            try:
                while received.get(timeout=0.02).data != wanted:
                    pass
                return
            except queue.Empty:
                continue
        raise TimeoutError("no echo")
    finally:
        node.destroy_subscription(subscription)
        node.destroy_publisher(publisher)


def footprint() -> dict[str, Any]:
    """``import rclpy`` time and RSS; RSS after init, a node and one echo."""
    before = harness.rss_bytes()
    started = time.perf_counter()
    _import()
    import_s = time.perf_counter() - started
    after_import = harness.rss_bytes()
    _echo_ready(start(), 0)
    return {
        "import_s": import_s,
        "rss_before": before,
        "rss_after_import": after_import,
        "rss_after_ready": harness.rss_bytes(),
    }


def spawn_to_ready() -> float:
    """``rclpy.init()`` to the first echo received (DDS discovery of the echo peer included)."""
    _import()
    from std_msgs.msg import String  # noqa: F401 - imported before the clock starts

    started = time.perf_counter()
    _echo_ready(start(), 0)
    return time.perf_counter() - started


def round_trip(size: str, count: int) -> list[float]:
    """``publisher.publish`` to the subscription callback getting the echo, one at a time."""
    node = start()
    large = size == "large"
    if large:
        from std_msgs.msg import UInt8MultiArray as cls
    else:
        from std_msgs.msg import String as cls
    topic_in, topic_out = harness.round_trip_topics(large)
    received: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()
    subscription = node.create_subscription(
        cls, topic_out, lambda m: received.put((time.perf_counter(), m)), _qos()
    )
    publisher = node.create_publisher(cls, topic_in, _qos())
    data = harness.large_data()
    samples = []
    index = -5
    deadline = time.monotonic() + 30
    while index < count:
        fields, wanted = harness.round_trip_fields(large, index, data)
        message = cls(data=fields["data"])
        if large:
            message.layout.data_offset = fields["layout"]["data_offset"]
        started = time.perf_counter()
        publisher.publish(message)
        try:
            while True:
                at, echo = received.get(timeout=0.5 if index < 0 else 10.0)
                got = harness.large_index(echo.layout.data_offset) if large else echo.data
                if got == wanted:
                    break
        except queue.Empty:
            if index >= 0 or time.monotonic() > deadline:
                raise TimeoutError(f"no echo of message {index}") from None
            continue  # not matched yet: resend the warm-up message
        if index >= 0:
            samples.append(at - started)
        index += 1
    node.destroy_subscription(subscription)
    node.destroy_publisher(publisher)
    return samples


def stream(rate: float, window: float) -> dict[str, Any]:
    """Messages/s and loss of the talker's ``/bench/stream`` in an rclpy callback."""
    node = start()
    from std_msgs.msg import String

    counter = harness.StreamCounter()
    subscription = node.create_subscription(
        String, "/bench/stream", lambda message: counter.on_text(message.data), _qos()
    )
    peer = harness.ask("start_peer", kind="talker", topic="/bench/stream", rate=rate)
    try:
        return counter.measure(window, 30.0)
    finally:
        harness.ask("stop_peer", id=peer["id"])
        node.destroy_subscription(subscription)


def service(count: int) -> list[float]:
    """``client.call(request)`` (blocking, the executor thread completes it) return to return."""
    node = start()
    from std_srvs.srv import SetBool

    client = node.create_client(SetBool, "/set_flag")
    if not client.wait_for_service(timeout_sec=30):
        raise TimeoutError("/set_flag not available")
    samples = []
    for index in range(-5, count):
        started = time.perf_counter()
        client.call(SetBool.Request(data=True), timeout_sec=10)
        if index >= 0:
            samples.append(time.perf_counter() - started)
    node.destroy_client(client)
    return samples


def discovery(count: int) -> list[float]:
    """A subscription to a topic no node publishes yet; a talker then creates it. From the
    talker's ``create_publisher`` return to the first callback here."""
    node = start()
    from std_msgs.msg import String

    samples = []
    for index in range(count):
        topic = f"/bench/new_{os.getpid()}_{index}"
        arrival = harness.FirstArrival()
        subscription = node.create_subscription(String, topic, arrival.on_message, _qos())
        try:
            samples.append(arrival.after_talker_starts(topic, 30.0))
        finally:
            node.destroy_subscription(subscription)
    return samples


def action(count: int, order: int) -> list[float]:
    """``send_goal_async`` to the result (``get_result_async`` done) of a Fibonacci goal, one
    goal at a time after 5 warm-up goals; the executor thread completes both futures."""
    node = start()
    from rclpy.action import ActionClient
    from test_msgs.action import Fibonacci

    client = ActionClient(node, Fibonacci, "/bench/fibonacci")
    if not client.wait_for_server(timeout_sec=30):
        raise TimeoutError("/bench/fibonacci not available")

    def wait(future: Any) -> Any:
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not future.done() and not done.wait(10):
            raise TimeoutError("no answer from /bench/fibonacci")
        return future.result()

    samples = []
    for index in range(-5, count):
        started = time.perf_counter()
        handle = wait(client.send_goal_async(Fibonacci.Goal(order=order)))
        result = wait(handle.get_result_async()).result
        if index >= 0:
            samples.append(time.perf_counter() - started)
        assert len(result.sequence) == order + 1
    client.destroy()
    return samples


if __name__ == "__main__":
    harness.serve_ops(globals())
