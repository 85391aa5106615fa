"""The rosbridge world: rosbridge-server-rs on ROS 2 Jazzy wheels, with rclpy peers.

The server and the peers run from the ROS 2 Jazzy venv of :mod:`tests.rosbridge_server`
(with the test-built ``rosapi_msgs``, so the server answers rosapi); the pyros node of the
``rosbridge`` backend runs in the project's venv and imports no ROS. The peers are
``tests/rosbridge/peers/conformance.py``, one process per role: ``/conformance_robot``
(``/set_flag``, ``/trigger``, ``/slow``, parameters), ``/conformance_fail`` (``/fail``) and
``/conformance_actions`` (``/fibonacci``, test_msgs/action/Fibonacci), the last two with a 1 s
DDS lease so that the server sees them gone within about a second after they die. A standby
of each of those two is started with the others and takes over (``GO``) when a test took the
first away: no test leaves a process it started behind.

Loopback only: the server binds 127.0.0.1 on a free port; every ROS 2 process runs with
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a domain of its own, :data:`DOMAIN`: this
session's :data:`tests.rosbridge_server.DOMAIN_ID` (drawn from 101..215, away from the other
ROS 2 tests of the machine) plus 2, so that the peers of ``tests/rosbridge`` (which offer a
``/fibonacci`` too) are not in the same graph when both run in one session.

Where rosbridge differs (said here, the one place):

* types are reported as the ROS 2 graph names them (``std_srvs/srv/SetBool``);
* parameters belong to ROS 2 nodes: the suite's is ``/conformance_robot:gain``;
* a ROS 2 service cannot answer with an error: ``/fail``'s server leaves the graph while
  answering, and the backend reports a call whose server left as a ``ServiceError``;
* rosbridge has no node of its own per client: the server is one ROS node
  (``/rosbridge_websocket``) for all its websocket clients, so a pyros node on the rosbridge
  backend cannot appear in ``nodes()`` as ``/pyros_<name>`` (:data:`UNSUPPORTED`);
* an action server that dies mid-goal goes unnoticed (:data:`UNSUPPORTED`): rosbridge v2
  has no message for it and rosapi hides the hidden ``_action`` endpoints that would show it.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conformance.worlds import World, register, start_graph
from tests.fastdds import SHORT_LEASE
from tests.rosbridge_server import DOMAIN_ID, LineProcess, RosbridgeServer, ensure, ros_env
from tests.support import limit

__all__ = ["WORLD", "UNSUPPORTED", "PEER", "DOMAIN"]

DOMAIN = DOMAIN_ID + 2
"""The world's ROS 2 domain (see the module docstring)."""

PEER = Path(__file__).resolve().parents[1] / "rosbridge" / "peers" / "conformance.py"
"""The rclpy peer script (``--role robot|fail|actions``)."""

UNSUPPORTED = {
    "test_an_action_server_dying_mid_goal_never_hangs": (
        "rosbridge v2 has no message for an action server that left, rosbridge-server-rs "
        "keeps waiting for the result, and its rosapi hides the action's endpoints (hidden "
        "_action names), so the backend cannot see the server go; the goal waits"
    ),
    "test_info_describes_the_node": (
        "a rosbridge client is no ROS node: rosbridge-server-rs is one node "
        "(/rosbridge_websocket) for all its clients, so /pyros_<name> is not in nodes()"
    ),
}
"""Conformance tests that cannot pass on rosbridge, with why (``World.unsupported``: marked
``xfail(strict=True)`` for this world only)."""

SERVICES = ("/set_flag", "/trigger", "/slow", "/fail")


def _missing() -> str | None:
    try:
        venv = ensure()
    except FileNotFoundError as exc:
        return str(exc)
    if not venv.rosapi:
        return f"no rosapi_msgs in {venv.root}: run `python -m tests.rosbridge_server --install`"
    return None


class _Graph:
    """The server and the peers of one test session."""

    def __init__(self) -> None:
        self.venv = ensure()
        self.home = Path(tempfile.mkdtemp(prefix="pyros-conformance-rosbridge-"))
        (self.home / "lease.xml").write_text(SHORT_LEASE)
        self.peers: dict[str, LineProcess] = {}
        self.standbys: dict[str, LineProcess] = {}
        self.retired: list[LineProcess] = []
        self.server: RosbridgeServer | None = None
        self.restarts = 0

    def start_peer(self, role: str, standby: bool = False) -> LineProcess:
        env = {**ros_env(DOMAIN), **self.venv.env}
        if role in ("fail", "actions"):
            # Fast DDS 2.x (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE; 3.x FASTDDS_...
            env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(self.home / "lease.xml")
            env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(self.home / "lease.xml")
        self.restarts += 1
        peer = LineProcess(
            [self.venv.python, str(PEER), "--role", role, *(["--standby"] if standby else [])],
            env,
            self.home / f"{role}-{self.restarts}.log",
        )
        if standby:
            self.standbys[role] = peer
        else:
            self.peers[role] = peer
        return peer

    def start(self) -> None:
        started = [self.start_peer(role) for role in ("robot", "fail", "actions")]
        started += [self.start_peer(role, standby=True) for role in ("fail", "actions")]
        for peer in started:
            peer.wait_ready(limit(60))
        self.server = RosbridgeServer(self.venv, self.home / "server.log", domain_id=DOMAIN)
        self.wait_for_graph()

    def replace(self, role: str) -> None:
        """Have the standby of ``role`` serve (or, used up, start a new peer)."""
        standby = self.standbys.pop(role, None)
        if standby is None:
            self.start_peer(role).wait_ready(limit(60))
            return
        standby.send("GO")
        if standby.next_line(limit(30)) != "SERVING":
            raise RuntimeError(f"the standby {role} peer did not start serving")
        self.retired.append(self.peers[role])
        self.peers[role] = standby

    def wait_for_graph(self) -> None:
        assert self.server is not None
        self.server.wait_for_graph(services=SERVICES, actions=["/fibonacci"], timeout=limit(30))

    def restore_fail(self) -> None:
        """Bring ``/fail`` back if a test made its server leave."""
        if self.peers["fail"].proc.poll() is None:
            return
        self.replace("fail")
        self.wait_for_graph()

    def kill_action_server(self) -> None:
        """SIGKILL the action server (as in a crash) and start another for later tests."""
        self.peers["actions"].proc.send_signal(signal.SIGKILL)
        self.replace("actions")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for peer in [*self.peers.values(), *self.standbys.values(), *self.retired]:
            peer.stop()
        shutil.rmtree(self.home, ignore_errors=True)


_graph: list[_Graph] = []


class RosbridgeWorld(World):
    """The rosbridge world; :meth:`spawn` first brings back a ``/fail`` server that left."""

    def spawn(self, **patterns):  # type: ignore[no-untyped-def, override]
        """Spawn a node on the rosbridge backend against this session's server."""
        if _graph:
            _graph[0].restore_fail()
        return super().spawn(**patterns)


def _start() -> Callable[[], None]:
    graph = _Graph()

    def options() -> dict[str, Any]:
        assert graph.server is not None
        return {"url": graph.server.url}

    stop = start_graph(WORLD, graph, options)
    _graph.append(graph)

    def cleanup() -> None:
        _graph.clear()
        stop()

    return cleanup


WORLD = register(
    RosbridgeWorld(
        "rosbridge",
        types_ros2=True,
        param="/conformance_robot:gain",
        param_listed="/conformance_robot:gain",
        start=_start,
        kill_action_server=lambda: None,  # replaced by the running graph's
        available=_missing,
        unsupported=UNSUPPORTED,
    )
)
