"""The ``ros2`` backend: ROS 2 through rclpy, in the pyros node process.

Importing this package imports no ROS library (the node imports it, then calls
:meth:`Ros2Backend.start`, which finds ROS 2 with :func:`pyros_ros.environment.setup_ros2`
and imports rclpy). The modules that import ROS are imported only after that:

- :mod:`pyros_ros.ros2.conversion`: ROS 2 messages <-> plain dicts (rosidl introspection);
- :mod:`pyros_ros.ros2.graph`: rclpy's node, executor and everything that talks to the graph.
"""

from __future__ import annotations

from pyros_ros.ros2.backend import Ros2Backend

__all__ = ["Ros2Backend"]
