"""The ROS side of pyros: backends that talk to real ROS graphs, and what they need.

- :mod:`pyros_ros.environment` finds an installed ROS and puts it on ``sys.path``;
- :mod:`pyros_ros.ros1` is the ``ros1`` backend (rospy, a ROS 1 master) and its ROS message
  <-> dict conversion;
- :mod:`pyros_ros.ros2` is the ``ros2`` backend (rclpy, a ROS 2 graph) and its conversion.

Importing this package (or :mod:`pyros_ros.ros1`, :mod:`pyros_ros.ros2`) imports no ROS
library and leaves ``sys.path`` alone: only a node process that starts a backend does either.
``pyros_ros`` depends on :mod:`pyros`, never the reverse.
"""

from __future__ import annotations

from pyros_ros.environment import find_ros1, find_ros2, setup_ros1, setup_ros2

__all__ = ["find_ros1", "setup_ros1", "find_ros2", "setup_ros2"]
