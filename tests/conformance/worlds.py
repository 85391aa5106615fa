"""The backends the conformance suite runs on, and the one place where they may differ.

A :class:`World` is one backend with a graph around it that offers what the suite needs:

* services ``/set_flag`` (std_srvs/SetBool: ``success`` True, ``message`` saying the old and
  new value), ``/trigger`` (std_srvs/Trigger, succeeds), ``/fail`` (its handler raises) and
  ``/slow`` (std_srvs/Trigger, answers after 1 s);
* an action ``/fibonacci`` whose goal of order ``n`` sends feedback as the sequence grows and
  ends with the sequence; a negative order is rejected and an order above 46 aborted
  (:class:`ActionProfile` says how goals, feedback and results are spelled on the backend);
* a parameter the suite may set (:attr:`World.param`).

The mock offers all of it built in; the ROS worlds start peers (a rosmaster and rospy nodes,
rclpy nodes, a rosbridge server) that behave the same. Each world registers itself in
:data:`WORLDS` from its own module (``tests/conformance/world_<backend>.py``); the suite is
parametrized over the worlds whose ``available()`` is true, and a world that is missing on
this machine is reported as skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyros

__all__ = [
    "ActionProfile",
    "World",
    "WORLDS",
    "register",
    "Graph",
    "start_graph",
    "restore_environ",
]


@dataclass(frozen=True)
class ActionProfile:
    """How the world's ``/fibonacci``-like action spells its messages.

    Attributes:
        name: the action's name.
        type_suffix: the end of its type name as the graph reports it.
        goal: builds the goal dict for an order ``n``.
        result_length: the length of the result's sequence for an order ``n``, read from
            a result dict (``None`` when the backend's action has no sequence).
        feedback_value: a number that grows with each feedback, read from a feedback dict.
        bad_goal: a goal whose field has the wrong type, and that field's name.
    """

    name: str = "/fibonacci"
    type_suffix: str = "Fibonacci"
    goal: Callable[[int], dict[str, Any]] = lambda n: {"order": n}
    result_length: Callable[[dict[str, Any]], int] = lambda r: len(r["sequence"])
    feedback_value: Callable[[dict[str, Any]], int] = lambda f: len(f["sequence"])
    bad_goal: tuple[dict[str, Any], str] = ({"order": "ten"}, "order")
    expected_length: Callable[[int], int] = lambda n: n + 1


@dataclass
class World:
    """One backend and its graph.

    Attributes:
        backend: the backend's name.
        options: backend options for ``pyros.spawn``.
        action: how its action is spelled.
        param: a parameter name the suite may set, get and delete.
        param_listed: how that parameter appears in ``params()``.
        types_ros2: type names are reported as ``pkg/msg/Type``.
        start: called once before the first test (peers, servers); returns a cleanup.
        kill_action_server: ends the action server abruptly (for the mid-goal test), and
            brings it back for later tests; None when the world cannot.
        unsupported: test name -> why this backend cannot pass it; such a test is marked
            ``xfail(strict=True)`` for this world only (it fails the run if it passes).
    """

    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    action: ActionProfile = field(default_factory=ActionProfile)
    param: str = "/conformance/gain"
    param_listed: str = "/conformance/gain"
    types_ros2: bool = False
    start: Callable[[], Callable[[], None]] | None = None
    kill_action_server: Callable[[], None] | None = None
    unsupported: dict[str, str] = field(default_factory=dict)
    available: Callable[[], str | None] = lambda: None
    """Returns None when the world can run here, else why it cannot (the skip reason)."""

    def type_name(self, package: str, kind: str, name: str) -> str:
        """Return a type name as this world's graph reports it (``std_msgs/String`` or
        ``std_msgs/msg/String``)."""
        return f"{package}/{kind}/{name}" if self.types_ros2 else f"{package}/{name}"

    @contextlib.contextmanager
    def spawn(self, **patterns: Any) -> Iterator[pyros.Client]:
        """Spawn a node on this world's backend exposing ``patterns`` (everything if none)."""
        exposed = {"topics": ["*"], "services": ["*"], "params": ["*"], "actions": ["*"]}
        exposed.update(patterns)
        with pyros.spawn(self.backend, **exposed, **self.options) as client:
            yield client


WORLDS: dict[str, World] = {}
"""Every world, by backend name (mock here; the others from their modules)."""


def register(world: World) -> World:
    """Add a world to :data:`WORLDS` and return it."""
    WORLDS[world.backend] = world
    return world


class Graph(Protocol):
    """The peers a ROS world starts for one test session."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def kill_action_server(self) -> None: ...


def start_graph(
    world: World, graph: Graph, options: Callable[[], dict[str, Any]] = dict
) -> Callable[[], None]:
    """Start ``graph`` for ``world`` (stopped again if that fails), and give the world the
    graph's ``kill_action_server`` and ``options()`` (read once started) for ``pyros.spawn``.

    Returns:
        The world's cleanup: takes both back and stops the graph.
    """
    try:
        graph.start()
    except BaseException:
        graph.stop()
        raise
    added = options()
    world.options.update(added)
    world.kill_action_server = graph.kill_action_server

    def cleanup() -> None:
        world.kill_action_server = None
        for key in added:
            world.options.pop(key, None)
        graph.stop()

    return cleanup


def restore_environ(saved: dict[str, str | None]) -> None:
    """Put back ``os.environ``'s values of ``saved``'s keys (None: the variable was unset)."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


register(World("mock"))
