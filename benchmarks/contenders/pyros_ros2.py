"""Contender ``pyros on ros2``: this repository's client, ``pyros.spawn("ros2")``.

The same ops as :mod:`pyros_ros1` (this module reuses them with its own ``_spawn``) in the ROS 2
world, plus ``action``. Run by ``benchmarks/run.py`` with the Python of the ROS 2 wheels venv,
into which the orchestrator installs this repository (editable): the node process imports
rclpy from there; this (the client) process does not. The node's environment is the world's,
without the library paths that the rclpy contender is given: the node finds ROS 2 by itself.
"""

from __future__ import annotations

import time
from typing import Any

import harness
import pyros_ros1

TOPICS = ["/bench/*"]
SERVICES = ["/set_flag"]
ACTIONS = ["/bench/*"]


def _spawn() -> Any:
    import pyros

    return pyros.spawn("ros2", topics=TOPICS, services=SERVICES, actions=ACTIONS)


pyros_ros1._spawn = _spawn  # every op of pyros_ros1 spawns through this


def _discovered(client: Any, listing: str, name: str) -> None:
    """Wait until the new node has discovered ``name`` (DDS discovery: 0.1 s to seconds), as
    rclpy's ``wait_for_service``/``wait_for_server`` do for the rclpy contender."""
    more = harness.deadline_loop(30.0)
    while more():
        if name in getattr(client, listing)():
            return
        time.sleep(0.01)
    raise TimeoutError(f"{name} not discovered within 30 s")


def service(count: int) -> list[float]:
    """``client.call("/set_flag", {"data": True})`` return to return, one at a time, once the
    node has discovered the service."""
    samples = []
    with _spawn() as client:
        _discovered(client, "services", "/set_flag")
        for index in range(-5, count):
            started = time.perf_counter()
            client.call("/set_flag", {"data": True})
            if index >= 0:
                samples.append(time.perf_counter() - started)
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
    harness.serve(
        {
            "footprint": pyros_ros1.footprint,
            "spawn_to_ready": pyros_ros1.spawn_to_ready,
            "round_trip": pyros_ros1.round_trip,
            "stream": pyros_ros1.stream,
            "service": service,
            "discovery": pyros_ros1.discovery,
            "action": action,
        }
    )
