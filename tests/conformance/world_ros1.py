"""The ROS 1 world: a real rosmaster on loopback and rospy peers, as tests/ros1 uses them.

The master (``rosmaster --core``) listens on 127.0.0.1 on a free port; the peers and the pyros
nodes of the suite run with ``ROS_IP=127.0.0.1`` and a private ``ROS_HOME``. The peers are the
scripts of ``tests/ros1/peers/`` (started with :class:`tests.ros1.ros1_support.Peer`):

* ``/set_flag`` (``setbool_server``), ``/trigger`` (``trigger_server``), ``/fail``
  (``failing_server``: its handler raises) and ``/slow`` (``trigger_server --delay 1``);
* ``/fibonacci`` (``fibonacci_server``), an actionlib server. Debian's ROS 1 has no Fibonacci
  action type, so it serves ``actionlib/Test`` (goal ``goal``, result ``result``, feedback
  ``feedback``, all int32) with the Fibonacci steps: goal = the order n, feedback = the
  sequence's length as it grows every 10 ms, result = its final length (n + 1); a negative
  order is rejected, an order above 46 aborted. :data:`FIBONACCI` spells that for the suite.

Where ROS 1 differs from the mock (and says so here, the one place):

* action types are reported as actionlib names them, ``pkg/Name`` (``actionlib/Test``);
* parameters are global, on the master's parameter server (as on the mock).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.conformance.worlds import ActionProfile, World, register, restore_environ, start_graph
from tests.ros1.ros1_support import PEERS_DIR, Peer, Ros1Master, limit, ros1_missing_reason

__all__ = ["FIBONACCI", "WORLD"]

FIBONACCI = ActionProfile(
    name="/fibonacci",
    type_suffix="actionlib/Test",
    goal=lambda n: {"goal": n},
    result_length=lambda result: int(result["result"]),
    feedback_value=lambda feedback: int(feedback["feedback"]),
    bad_goal=({"goal": "ten"}, "goal"),
)
"""``/fibonacci`` as ``actionlib/Test`` spells it (see the module docstring)."""

_PEERS: list[tuple[str, list[str]]] = [
    ("setbool_server", ["--name", "/set_flag", "--node-name", "conformance_set_flag"]),
    ("trigger_server", ["--name", "/trigger", "--node-name", "conformance_trigger"]),
    ("failing_server", ["--name", "/fail", "--node-name", "conformance_fail"]),
    ("trigger_server", ["--name", "/slow", "--delay", "1", "--node-name", "conformance_slow"]),
]
_ACTION_SERVER = ("fibonacci_server", ["--name", "/fibonacci", "--node-name", "conformance_fib"])
"""Replaced under the same node name, so the master replaces the killed one's registrations."""

_ENVIRONMENT = ("ROS_IP", "ROS_HOSTNAME", "ROS_HOME", "ROS_LOG_DIR")
"""What the suite's pyros nodes inherit while the world runs (``pyros.spawn`` passes this
process's environment on): loopback only, a private ROS_HOME. The master's URI goes in the
``master_uri`` option instead, so that nothing else in the test run takes this process for a
ROS 1 one."""


def _available() -> str | None:
    missing = ros1_missing_reason()
    if missing:
        return missing
    from pyros_ros.environment import find_ros1

    if not any(Path(directory, "actionlib", "__init__.py").is_file() for directory in find_ros1()):
        return "ROS 1 actionlib is not installed (apt-get install python3-actionlib)"
    return None


class _Ros1Graph:
    """The master and peers of one test session."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="pyros-conformance-ros1-"))
        self.master = Ros1Master(self.home / "ros_home")
        self.peers: list[Peer] = []
        self.action_server: Peer | None = None
        self.standby: Peer | None = None
        self._count = 0
        self._saved = {key: os.environ.get(key) for key in _ENVIRONMENT}
        os.environ.pop("ROS_HOSTNAME", None)
        for key in ("ROS_IP", "ROS_HOME", "ROS_LOG_DIR"):
            os.environ[key] = self.master.env[key]

    def start_peer(self, script: str, args: list[str], stdin: bool = False) -> Peer:
        self._count += 1
        log = self.home / f"peer-{script}-{self._count}.stderr"
        return Peer(PEERS_DIR / f"{script}.py", args, self.master.env, log, stdin=stdin)

    def start(self) -> None:
        # Start every peer first and wait for them after: rospy nodes start in parallel.
        self.peers = [self.start_peer(script, args) for script, args in _PEERS]
        self.action_server = self.start_peer(*_ACTION_SERVER)
        script, args = _ACTION_SERVER
        self.standby = self.start_peer(script, [*args, "--standby"], stdin=True)
        for peer in [*self.peers, self.action_server]:
            peer.wait_ready(limit(20))

    def kill_action_server(self) -> None:
        """SIGKILL the action server (no unregistering, as in a crash) and bring up another.

        The replacement is a standby process started with the world (a test must not leave a
        process it started behind), told to join the graph now; a second kill starts a new one.
        """
        assert self.action_server is not None
        self.action_server.proc.send_signal(signal.SIGKILL)
        self.action_server.stop()
        replacement, self.standby = self.standby, None
        if replacement is None:
            replacement = self.start_peer(*_ACTION_SERVER)
        else:
            assert replacement.proc.stdin is not None
            replacement.proc.stdin.write("go\n")
            replacement.proc.stdin.flush()
        self.action_server = replacement
        replacement.wait_ready(limit(20))

    def stop(self) -> None:
        peers = [*self.peers, *(peer for peer in (self.action_server, self.standby) if peer)]
        for peer in peers:
            peer.begin_stop()
        for peer in peers:
            peer.stop()
        self.master.stop()
        restore_environ(self._saved)
        shutil.rmtree(self.home, ignore_errors=True)


def _start() -> Callable[[], None]:
    graph = _Ros1Graph()
    return start_graph(WORLD, graph, lambda: {"master_uri": graph.master.uri})


WORLD = register(
    World(
        "ros1",
        action=FIBONACCI,
        start=_start,
        available=_available,
    )
)
"""The ROS 1 world (skipped, with the reason, where ROS 1 or actionlib is missing)."""
