"""The fleet dashboard: a browser app for the relay's operators (``pyros dashboard``).

Installed with the ``dashboard`` extra (``pip install 'pyros[dashboard]'``: NiceGUI, httpx and
Pillow); the relay and the rest of pyros never import it, and importing this package imports
no UI library either (only :mod:`pyros.dashboard.app` does).

* :mod:`pyros.dashboard.app`: the pages (NiceGUI) and the web server.
* :mod:`pyros.dashboard.link`: the dashboard's operator connection to the relay (rosbridge v2
  and ``GET /api/devices``, with the signed-in token), reconnecting by itself.
* :mod:`pyros.dashboard.rosbridge_client`: the operator side of rosbridge v2, sans-I/O.
* :mod:`pyros.dashboard.fleet`: devices, topic streams, plots, poses and images, sans-I/O.
* :mod:`pyros.dashboard.forms`: forms generated from message types, sans-I/O.
* :mod:`pyros.dashboard.process`: starts and stops ``pyros dashboard`` as a child process
  (``pyros relay --dashboard``, ``pyros demo --dashboard``).

How it is served: the dashboard is its own process and its own port (by default
``127.0.0.1:8080``), an operator of the relay like roslibpy or roslibjs; the relay answers
``GET /dashboard`` with a redirect to it. See the README section "The fleet dashboard".
"""

from __future__ import annotations

__all__ = ["DEFAULT_PORT"]

DEFAULT_PORT = 8080
"""The dashboard's default TCP port."""
