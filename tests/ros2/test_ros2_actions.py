"""Actions on the ros2 backend, through the client, against a real rclpy ``ActionServer``.

The peer serves ``test_msgs/action/Fibonacci`` (one feedback per step, the sequence so far;
order < 0 is rejected, order 99 aborted). Servers that leave mid-goal are peers of their own:
one leaves the graph cleanly, one is SIGKILLed with a short DDS lease (set by a Fast DDS
profile in its environment only), so that its absence is noticed within a second instead of
Fast DDS's default 20 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ros2_support import RclpyPeer, limit, wait_for

import pyros
from tests.fastdds import SHORT_LEASE

SERVER = "fib_server_a"
ACTION = "/fibonacci"


def fibonacci(order: int) -> list[int]:
    sequence = [0, 1]
    for _ in range(1, max(order, 1)):
        sequence.append(sequence[-1] + sequence[-2])
    return sequence


@pytest.fixture(scope="module")
def server(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    peer = module_peers(SERVER)
    peer.request("action", name=ACTION, period=0.02)
    peer.request("action", name="/slow_fibonacci", period=0.5)
    return peer


@pytest.fixture(scope="module")
def client(server: RclpyPeer) -> Iterator[pyros.Client]:
    with pyros.spawn("ros2", actions=["*"], ready_timeout=limit(20)) as client:
        wait_for(lambda: "/slow_fibonacci" in client.actions(), limit(10), "the actions")
        yield client


def test_actions_are_listed_and_described(client: pyros.Client, server: RclpyPeer) -> None:
    assert client.actions()[ACTION] == "test_msgs/action/Fibonacci"
    wait_for(lambda: server.name in client.action_info(ACTION)["servers"], limit(10), "server")
    info = client.action_info(ACTION)
    assert info["type"] == "test_msgs/action/Fibonacci"
    assert info["servers"] == [server.name]
    with pytest.raises(pyros.NotExposedError):
        client.action_info("/no_such_action")


def test_send_goal_returns_the_result_after_feedback_in_order(client: pyros.Client) -> None:
    feedback: list[list[int]] = []
    result = client.send_goal(
        ACTION, {"order": 6}, feedback=lambda f: feedback.append(f["sequence"]), timeout=limit(10)
    )
    assert result == {"sequence": fibonacci(6)}
    assert feedback == [fibonacci(step) for step in range(2, 7)]


def test_start_goal_iterates_over_feedback(client: pyros.Client) -> None:
    goal = client.start_goal(ACTION, {"order": 4})
    with goal:
        seen = [message["sequence"] for message in goal]
        assert goal.result(timeout=limit(5)) == {"sequence": fibonacci(4)}
        assert goal.status == "succeeded"
    assert seen == [fibonacci(step) for step in range(2, 5)]
    assert len(goal.id) == 36  # a UUID


def test_a_goal_is_cancelled_on_the_server(client: pyros.Client, server: RclpyPeer) -> None:
    goal = client.start_goal("/slow_fibonacci", {"order": 20})
    with goal:
        first = next(iter(goal))
        assert first == {"sequence": [0, 1, 1]}
        goal.cancel()
        with pytest.raises(pyros.ActionError) as info:
            goal.result(timeout=limit(5))
        assert info.value.status == "canceled"
        assert goal.status == "canceled"
    assert server.event(event="cancel", action="/slow_fibonacci")


def test_send_goal_timeout_cancels_the_goal(client: pyros.Client, server: RclpyPeer) -> None:
    began = time.monotonic()
    with pytest.raises(pyros.TimeoutError):
        client.send_goal("/slow_fibonacci", {"order": 20}, timeout=0.3)
    assert time.monotonic() - began < limit(2)
    assert server.event(event="cancel", action="/slow_fibonacci")


def test_rejected_and_aborted_goals_raise_action_error(client: pyros.Client) -> None:
    with pytest.raises(pyros.ActionError) as info:
        client.send_goal(ACTION, {"order": -1}, timeout=limit(5))
    assert info.value.status == "rejected"
    with pytest.raises(pyros.ActionError) as info:
        client.send_goal(ACTION, {"order": 99}, timeout=limit(10))
    assert info.value.status == "aborted"
    assert info.value.result in ({"sequence": [-1]}, {"sequence": []})  # as rclpy sends it


@pytest.mark.parametrize(
    ("goal", "field"),
    [({"order": "six"}, "order"), ({"ordr": 6}, "ordr"), ({"order": 2**31}, "order")],
)
def test_a_goal_that_does_not_fit_names_the_field(
    client: pyros.Client, goal: dict[str, Any], field: str
) -> None:
    with pytest.raises(pyros.MessageError) as info:
        client.send_goal(ACTION, goal, timeout=limit(5))
    assert info.value.field == field


def test_goals_to_unknown_actions(client: pyros.Client) -> None:
    with pytest.raises(pyros.NotExposedError):
        client.send_goal("/no_such_action", {"order": 1}, timeout=limit(5))


def test_goals_in_parallel(client: pyros.Client) -> None:
    goals = [client.start_goal(ACTION, {"order": order}) for order in range(2, 8)]
    try:
        results = [goal.result(timeout=limit(10)) for goal in goals]
    finally:
        for goal in goals:
            goal.close()
    assert results == [{"sequence": fibonacci(order)} for order in range(2, 8)]


def test_a_server_that_leaves_mid_goal_aborts_it(
    client: pyros.Client, ros2_peer: Callable[..., RclpyPeer]
) -> None:
    quitter = ros2_peer("fib_quitter_a")
    quitter.request("action", name="/quitting", period=0.05, exit_at=2)
    wait_for(lambda: "/quitting" in client.actions(), limit(10), "/quitting")
    began = time.monotonic()
    with pytest.raises((pyros.ActionError, pyros.NodeDiedError)) as info:
        client.send_goal("/quitting", {"order": 10}, timeout=limit(20))
    assert time.monotonic() - began < limit(3)
    assert isinstance(info.value, pyros.ActionError) and info.value.status == "aborted"
    assert quitter.proc.wait(limit(5)) == 0


def test_a_server_killed_mid_goal_aborts_it_after_its_lease(
    client: pyros.Client,
    ros2_peer: Callable[..., RclpyPeer],
    tmp_path: Path,
) -> None:
    profile = tmp_path / "short_lease.xml"
    profile.write_text(SHORT_LEASE)
    killed = ros2_peer("fib_killed_a", env={"FASTDDS_DEFAULT_PROFILES_FILE": str(profile)})
    killed.request("action", name="/killed", period=0.05, kill_at=2)
    wait_for(lambda: "/killed" in client.actions(), limit(10), "/killed")
    began = time.monotonic()
    with pytest.raises(pyros.ActionError) as info:
        client.send_goal("/killed", {"order": 10}, timeout=limit(20))
    assert time.monotonic() - began < limit(4)
    assert info.value.status == "aborted"
    assert killed.proc.wait(limit(5)) == -9
