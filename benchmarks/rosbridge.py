"""The ROS 2 side of the benchmark: the venv with ROS 2 Jazzy wheels and rosbridge-server-rs.

The launcher lives in :mod:`tests.rosbridge_server` (shared with the tests that need a real
rosbridge server); this module keeps the benchmarks' import path.
"""

from __future__ import annotations

from tests.rosbridge_server import REQUIREMENTS, Ros2Venv, RosbridgeServer, ensure

__all__ = ["REQUIREMENTS", "Ros2Venv", "RosbridgeServer", "ensure"]
