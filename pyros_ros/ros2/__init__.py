"""The ``ros2`` backend: ROS 2 through rclpy, in the pyros node process.

Importing this package imports no ROS library (the node imports it, then calls
:meth:`Ros2Backend.start`, which finds ROS 2 with :func:`pyros_ros.environment.setup_ros2`
and imports rclpy). The modules that import ROS are imported only after that:

- :mod:`pyros_ros.ros2.session`: rclpy's context, node and executor thread; graph queries,
  topics and services;
- :mod:`pyros_ros.ros2.conversion`: ROS 2 messages <-> plain dicts (rosidl introspection);
- :mod:`pyros_ros.ros2.qos`: QoS profiles as dicts, and adapting to the publishers;
- :mod:`pyros_ros.ros2.params`: ``<node>:<param>`` through the nodes' parameter services;
- :mod:`pyros_ros.ros2.actions`: goals through rclpy's ``ActionClient``;
- :mod:`pyros_ros.ros2.futures`: waiting on rclpy futures with deadlines.
"""

from __future__ import annotations

from pyros_ros.ros2.backend import Ros2Backend

__all__ = ["Ros2Backend"]
