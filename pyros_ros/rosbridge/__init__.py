"""The ``rosbridge`` backend: a ROS graph through a rosbridge v2 server, or a fleet through the
pyros relay, with no ROS installed.

Importing this package imports ``websockets`` (the node process does, when it starts the
backend); ``import pyros`` never does. Modules:

- :mod:`pyros_ros.rosbridge.backend`: :class:`RosbridgeBackend`;
- :mod:`pyros_ros.rosbridge.connection`: the self-healing websocket (asyncio on its own thread);
- :mod:`pyros_ros.rosbridge.wire`: rosbridge v2 messages, JSON and CBOR, with no I/O;
- :mod:`pyros_ros.rosbridge.typedefs`: messages checked against the server's own type
  definitions (rosapi), so errors name the field.
"""

from __future__ import annotations

from pyros_ros.rosbridge.backend import RosapiUnavailableError, RosbridgeBackend

__all__ = ["RosbridgeBackend", "RosapiUnavailableError"]
