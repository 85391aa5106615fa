"""The cloud side of pyros: a robot-side connector and a websocket relay.

* :mod:`pyros.cloud.device_protocol`: the connector <-> relay wire format (sans-I/O).
* :mod:`pyros.cloud.relay`: the relay server (``pyros relay``), rosbridge v2 for operators.
* :mod:`pyros.cloud.connector`: the robot-side connector (``pyros connector``).

Importing ``pyros`` never imports this package; the relay and the connector import
``websockets`` and are loaded only by their commands.
"""
