"""Waiting on rclpy futures from threads that do not spin.

The ``ros2`` backend's methods run on the pyros node's threads while one executor thread
spins; they wait for rclpy futures (service responses, goal answers) with deadlines of their
own, and give up early when the server they wait for leaves the graph.

This module imports rclpy; import it only after :func:`pyros_ros.environment.setup_ros2`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rclpy.task import Future

__all__ = ["wait_future", "POLL_SERVER"]

POLL_SERVER = 0.05
"""Seconds between two looks at whether the server being waited for is still there."""


def wait_future(future: Future[Any], deadline: float, still_there: Callable[[], bool]) -> str:
    """Wait until ``future`` is done, ``deadline`` passes or its server leaves.

    Args:
        future: an rclpy future that the executor thread completes.
        deadline: ``time.monotonic()`` value after which to stop waiting.
        still_there: asked every :data:`POLL_SERVER` seconds; False means the server left
            the graph (``Client.service_is_ready``, ``ActionClient.server_is_ready``).

    Returns:
        ``"done"``, ``"timeout"`` or ``"gone"``.
    """
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    while not future.done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        if event.wait(min(remaining, POLL_SERVER)):
            break
        if not future.done() and not still_there():
            return "gone"
    return "done"
