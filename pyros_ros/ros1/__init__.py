"""The ``ros1`` backend: ROS 1 through rospy, in the pyros node process.

Importing this package imports no ROS library (the node imports it, then calls
:meth:`Ros1Backend.start`, which finds ROS 1 and imports rospy). The modules that do import
ROS are imported only after :func:`pyros_ros.environment.setup_ros1`:

- :mod:`pyros_ros.ros1.conversion`: ROS 1 messages <-> plain dicts (genpy);
- :mod:`pyros_ros.ros1.service_client`: TCPROS service calls with deadlines (rosgraph);
- :mod:`pyros_ros.ros1.actions`: goals through actionlib, with a watchdog (rospy, actionlib);
- :mod:`pyros_ros.ros1.master`: the master's XML-RPC API (no ROS import; safe anywhere);
- :mod:`pyros_ros.ros1.graph`: what the master's replies mean: live topics, actionlib
  actions, nodes (no ROS import; safe anywhere).
"""

from __future__ import annotations

from pyros_ros.ros1.backend import Ros1Backend

__all__ = ["Ros1Backend"]
