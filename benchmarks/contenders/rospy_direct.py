"""Contender ``rospy``: the program is itself a rospy node (the floor every bridge adds to).

Run with the project's ``.venv`` Python; ROS 1 comes onto ``sys.path`` with
``pyros_ros.environment.setup_ros1()`` as the test peers do. rospy allows one node per
process, so :func:`start` runs once; the orchestrator uses a fresh process for the ops that
measure a start (``footprint``, ``spawn_to_ready``).
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import harness

_rospy: Any = None


def _import() -> Any:
    from pyros_ros.environment import setup_ros1

    setup_ros1()
    import rospy

    return rospy


def start() -> Any:
    """Import rospy and ``init_node`` once for this process."""
    global _rospy
    if _rospy is None:
        rospy = _import()
        rospy.init_node(f"bench_rospy_{os.getpid()}", argv=[], disable_signals=True)
        _rospy = rospy
    return _rospy


class _Echoes:
    """A rospy subscriber whose messages queue up with their receive time."""

    def __init__(self, rospy: Any, topic: str, cls: Any) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.subscriber = rospy.Subscriber(topic, cls, self.queue.put, tcp_nodelay=True)

    def get(self, timeout: float = 10.0) -> Any:
        return self.queue.get(timeout=timeout)


def _connected(publisher: Any, subscriber: Any) -> None:
    deadline = time.monotonic() + 10.0
    while publisher.get_num_connections() < 1 or subscriber.get_num_connections() < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("rospy: no connection to the echo peer within 10 s")
        time.sleep(0.001)


def _first_echo(publisher: Any, echoes: _Echoes, message: Any) -> None:
    """Publish ``message`` every 50 ms until the echo peer sends it back: a just-made rospy
    connection can drop the first message (the peer's publisher may not list our subscriber
    yet), as with any rospy node."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        publisher.publish(message)
        try:
            while echoes.get(timeout=0.05).data != message.data:
                pass
            return
        except queue.Empty:
            continue
    raise TimeoutError("rospy: no echo within 10 s")


def footprint() -> dict[str, Any]:
    """``import rospy`` (after ``setup_ros1``) time and RSS, then RSS after ``init_node`` and
    one round trip through the echo peer."""
    before = harness.rss_bytes()
    started = time.perf_counter()
    _import()
    import_s = time.perf_counter() - started
    after_import = harness.rss_bytes()
    spawn_to_ready()
    return {
        "import_s": import_s,
        "rss_before": before,
        "rss_after_import": after_import,
        "rss_after_ready": harness.rss_bytes(),
    }


def spawn_to_ready() -> float:
    """``rospy.init_node`` call to the first echo received (publisher and subscriber made,
    connected, one message sent and echoed)."""
    _import()  # as an application would have imported it already
    from std_msgs.msg import String

    started = time.perf_counter()
    rospy = start()
    echoes = _Echoes(rospy, "/bench/out", String)
    publisher = rospy.Publisher("/bench/in", String, queue_size=100, tcp_nodelay=True)
    _connected(publisher, echoes.subscriber)
    _first_echo(publisher, echoes, String(data=harness.small_text(0)))
    elapsed = time.perf_counter() - started
    echoes.subscriber.unregister()
    publisher.unregister()
    return elapsed


def round_trip(size: str, count: int) -> list[float]:
    """``publisher.publish`` to the subscriber callback getting the echo, one at a time (the
    time is read in the callback, on rospy's receive thread)."""
    rospy = start()
    large = size == "large"
    if large:
        from std_msgs.msg import UInt8MultiArray as cls
    else:
        from std_msgs.msg import String as cls
    topic_in, topic_out = harness.round_trip_topics(large)
    received: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()
    subscriber = rospy.Subscriber(
        topic_out, cls, lambda m: received.put((time.perf_counter(), m)), tcp_nodelay=True
    )
    publisher = rospy.Publisher(topic_in, cls, queue_size=100, tcp_nodelay=True)
    _connected(publisher, subscriber)
    data = harness.large_data()
    samples = []
    for index in range(-5, count):
        fields, wanted = harness.round_trip_fields(large, index, data)
        message = cls(data=fields["data"])
        if large:
            message.layout.data_offset = fields["layout"]["data_offset"]
        started = time.perf_counter()
        publisher.publish(message)
        try:
            while True:
                at, echo = received.get(timeout=0.5 if index < 0 else 10.0)
                if (harness.large_index(echo.layout.data_offset) if large else echo.data) == wanted:
                    break
        except queue.Empty:
            if index >= 0:
                raise TimeoutError(f"no echo of message {index}") from None
            continue  # a warm-up message lost on a fresh connection: not counted
        if index >= 0:
            samples.append(at - started)
    subscriber.unregister()
    publisher.unregister()
    return samples


def stream(rate: float, window: float) -> dict[str, Any]:
    """Messages/s and loss of the talker's ``/bench/stream`` in a rospy subscriber callback."""
    rospy = start()
    from std_msgs.msg import String

    counter = harness.StreamCounter()
    subscriber = rospy.Subscriber(
        "/bench/stream", String, lambda message: counter.on_text(message.data), tcp_nodelay=True
    )
    peer = harness.ask("start_peer", kind="talker", topic="/bench/stream", rate=rate)
    try:
        return counter.measure(window, 10.0)
    finally:
        harness.ask("stop_peer", id=peer["id"])
        subscriber.unregister()


def service(count: int, persistent: bool = False) -> list[float]:
    """A SetBool call through ``rospy.ServiceProxy``: a new proxy per request (the plain way,
    one TCP connection per call) or one ``persistent=True`` proxy for all."""
    rospy = start()
    from std_srvs.srv import SetBool

    rospy.wait_for_service("/set_flag", timeout=10.0)
    proxy = rospy.ServiceProxy("/set_flag", SetBool, persistent=True) if persistent else None
    samples = []
    for index in range(-5, count):
        started = time.perf_counter()
        if proxy is None:
            rospy.ServiceProxy("/set_flag", SetBool)(data=True)
        else:
            proxy(data=True)
        if index >= 0:
            samples.append(time.perf_counter() - started)
    if proxy is not None:
        proxy.close()
    return samples


def discovery(count: int) -> list[float]:
    """A rospy subscriber to a topic that does not exist yet; a talker then creates it. From
    the moment the orchestrator sees the topic in the master to the first callback."""
    rospy = start()
    from std_msgs.msg import String

    samples = []
    for index in range(count):
        topic = f"/bench/new_{os.getpid()}_{index}"
        arrival = harness.FirstArrival()
        subscriber = rospy.Subscriber(topic, String, arrival.on_message, tcp_nodelay=True)
        try:
            samples.append(arrival.after_talker_starts(topic, 10.0))
        finally:
            subscriber.unregister()
    return samples


if __name__ == "__main__":
    harness.serve_ops(globals())
