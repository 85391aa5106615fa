"""The sync and the asyncio client pass the same tests (both pumps over one core).

Each test is written once, as a coroutine, and runs twice: against :mod:`pyros.asyncio`
directly, and against :mod:`pyros.client` through :class:`SyncApi`, which runs each blocking
call in a worker thread. Real node processes on the mock backend, real ZeroMQ sockets.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psutil
import pytest

import pyros
import pyros.asyncio
from tests.support import RUNTIME_DIR, limit, wait_until

pytestmark = pytest.mark.process


class _Proxy:
    """Wraps a sync object so that its methods are awaited like the asyncio client's."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await asyncio.to_thread(value, *args, **kwargs)
            return _wrap(result)

        return call

    def __aiter__(self) -> Any:
        iterator = iter(self._target)
        done = object()

        async def generate() -> Any:
            while True:
                item = await asyncio.to_thread(next, iterator, done)
                if item is done:
                    return
                yield item

        return generate()

    async def __aenter__(self) -> _Proxy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._target.close)


def _wrap(value: Any) -> Any:
    if isinstance(value, (pyros.Client, pyros.Subscription, pyros.Goal)):
        return _Proxy(value)
    return value


class SyncApi:
    """The sync client behind awaitable calls (blocking calls run in worker threads)."""

    kind = "sync"

    async def spawn(self, backend: str = "mock", **options: Any) -> Any:
        return _Proxy(await asyncio.to_thread(pyros.spawn, backend, **options))

    async def connect(self, name: str, **options: Any) -> Any:
        return _Proxy(await asyncio.to_thread(pyros.connect, name, **options))

    async def attach(self, name: str, backend: str = "mock", **options: Any) -> Any:
        return _Proxy(await asyncio.to_thread(pyros.attach, name, backend, **options))


class AsyncApi:
    """The asyncio client itself."""

    kind = "asyncio"

    async def spawn(self, backend: str = "mock", **options: Any) -> Any:
        return await pyros.asyncio.spawn(backend, **options)

    async def connect(self, name: str, **options: Any) -> Any:
        return await pyros.asyncio.connect(name, **options)

    async def attach(self, name: str, backend: str = "mock", **options: Any) -> Any:
        return await pyros.asyncio.attach(name, backend, **options)


@pytest.fixture(params=[SyncApi, AsyncApi], ids=["sync", "asyncio"])
def api(request: pytest.FixtureRequest) -> Any:
    return request.param()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), limit(60)))


async def value(result: Any) -> Any:
    """Await ``result`` if it is awaitable (a sync method behind the proxy), else return it."""
    return await result if inspect.isawaitable(result) else result


EVERYTHING = {"topics": ["*"], "services": ["*"], "params": ["*"], "actions": ["*"]}


def test_both_clients_have_the_same_public_names() -> None:
    for sync_cls, async_cls in (
        (pyros.Client, pyros.asyncio.Client),
        (pyros.Subscription, pyros.asyncio.Subscription),
        (pyros.Goal, pyros.asyncio.Goal),
    ):
        public = {name for name in dir(sync_cls) if not name.startswith("_")}
        assert public == {name for name in dir(async_cls) if not name.startswith("_")}
    for name in ("spawn", "connect", "attach"):
        assert callable(getattr(pyros.asyncio, name))


def test_publish_subscribe_get_and_iterate(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            sub = await robot.subscribe("/chat")
            assert sub.type is None and sub.topic == "/chat"
            await robot.publish("/chat", {"data": "a"}, type="std_msgs/String")
            await robot.publish("/chat", {"data": "b"})
            assert (await sub.get(timeout=limit(2)))["data"] == "a"
            assert (await sub.get(timeout=limit(2)))["data"] == "b"
            with pytest.raises(pyros.TimeoutError):
                await sub.get(timeout=0.05)
            await robot.publish("/chat", {"data": "c"})
            got = []
            async for message in sub:
                got.append(message["data"])
                await sub.close()
            assert got == ["c"]
        finally:
            await robot.close()

    run(scenario)


def test_queue_of_one_latest_and_dropped(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            sub = await robot.subscribe("/many", queue_size=1)
            assert await value(sub.latest()) is None
            await robot.publish("/many", {"data": 0}, type="std_msgs/Int32")
            for n in range(1, 50):
                await robot.publish("/many", {"data": n})
            assert (await sub.get(timeout=limit(2)))["data"] in range(50)
            await asyncio.sleep(0.1)
            latest = await value(sub.latest())
            assert latest == {"data": 49}
            assert (await value(sub.latest())) == {"data": 49}  # not consumed
            assert sub.dropped >= 1
            assert sub.received == 50
            await sub.close()
        finally:
            await robot.close()

    run(scenario)


def test_callbacks_run_in_order_and_errors_are_logged(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        got: list[int] = []

        def on_message(message: dict[str, Any]) -> None:
            if message["data"] == 3:
                raise RuntimeError("callback failed on purpose")
            got.append(message["data"])

        robot = await api.spawn(**EVERYTHING)
        try:
            sub = await robot.subscribe("/cb", on_message)
            await robot.publish("/cb", {"data": 0}, type="std_msgs/Int32")
            for n in range(1, 6):
                await robot.publish("/cb", {"data": n})
            for _ in range(100):
                if len(got) == 5:
                    break
                await asyncio.sleep(0.02)
            assert got == [0, 1, 2, 4, 5]
            assert sub.callback_errors == 1
            with pytest.raises(pyros.PyrosError, match="callback"):
                await sub.get(timeout=0.1)
            await sub.close()
        finally:
            await robot.close()

    with caplog.at_level("ERROR", logger="pyros"):
        run(scenario)
    assert any("callback failed on purpose" in r.getMessage() or r.exc_info for r in caplog.records)


def test_goals_with_feedback_cancel_and_errors(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            feedback: list[dict[str, Any]] = []
            result = await robot.send_goal(
                "/fibonacci", {"order": 6}, feedback=feedback.append, timeout=limit(5)
            )
            assert result == {"sequence": [0, 1, 1, 2, 3, 5, 8]}
            assert [len(f["sequence"]) for f in feedback] == [3, 4, 5, 6, 7]
            goal = await robot.start_goal("/fibonacci", {"order": 5})
            lengths = [len(f["sequence"]) async for f in goal]
            assert lengths == [3, 4, 5, 6] and goal.status == "succeeded"
            assert (await goal.result(limit(2)))["sequence"][-1] == 5
            goal = await robot.start_goal("/fibonacci", {"order": 40})
            await asyncio.sleep(0.05)
            await goal.cancel()
            with pytest.raises(pyros.ActionError) as info:
                await goal.result(limit(5))
            assert info.value.status == "canceled" and info.value.result is not None
            with pytest.raises(pyros.ActionError) as info:
                await robot.start_goal("/fibonacci", {"order": -1})
            assert info.value.status == "rejected"
            with pytest.raises(pyros.TimeoutError):
                await robot.send_goal("/fibonacci", {"order": 40}, timeout=0.05)
            with pytest.raises(pyros.MessageError) as error:
                await robot.send_goal("/fibonacci", {"order": 1.5})
            assert error.value.field == "order"
        finally:
            await robot.close()

    run(scenario)


def test_many_requests_in_flight(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            results = await asyncio.gather(
                *(robot.call("/set_flag", {"data": n % 2 == 0}) for n in range(32))
            )
            assert all(r["success"] for r in results)
        finally:
            await robot.close()

    run(scenario)


def test_bad_data_fails_at_once_with_the_field(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            started = time.monotonic()
            with pytest.raises(pyros.MessageError) as info:
                await robot.publish("/x", {"a": {1: "y"}}, type="pkg/Custom")
            assert info.value.field == "a"
            assert time.monotonic() - started < limit(1.0)
            with pytest.raises(ValueError):
                await robot.subscribe("/x", queue_size=0)
            with pytest.raises(ValueError):
                await robot.call("/trigger", timeout=float("nan"))
            assert (await robot.call("/trigger", timeout=1e9))["success"]  # long means forever
            assert (await robot.call("/slow", timeout=None))["success"]  # not the 5 s default
        finally:
            await robot.close()

    run(scenario)


def test_node_death_fails_waiters_and_later_calls(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        sub = await robot.subscribe("/turtle1/pose")
        await sub.get(timeout=limit(2))

        async def drain_forever() -> None:
            while True:
                await sub.get(timeout=limit(10))

        waiter = asyncio.ensure_future(drain_forever())
        await asyncio.sleep(0.1)
        os.kill(robot.node_pid, signal.SIGKILL)
        with pytest.raises(pyros.NodeDiedError):
            await asyncio.wait_for(waiter, limit(3))
        with pytest.raises(pyros.NodeDiedError):
            await robot.topics()
        await robot.close()

    run(scenario)


def test_a_refused_callback_subscription_leaves_nothing_running(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(topics=["/allowed"])
        threads_before = threading.active_count()
        tasks_before = len(asyncio.all_tasks())
        try:
            for _ in range(5):
                with pytest.raises(pyros.NotExposedError):
                    await robot.subscribe("/forbidden", lambda message: None)
            assert len(asyncio.all_tasks()) == tasks_before
            assert threading.active_count() <= threads_before + 1  # to_thread's worker
        finally:
            await robot.close()

    run(scenario)


def test_a_failed_spawn_leaves_nothing_behind(api: Any) -> None:
    async def scenario() -> None:
        before = {p.name for p in RUNTIME_DIR.iterdir()}
        children = {child.pid for child in psutil.Process().children(recursive=True)}
        with pytest.raises(pyros.SpawnError, match="unknown backend"):
            await api.spawn("no_such_backend", name="failed_spawn")
        with pytest.raises(ValueError, match="node name"):
            await api.spawn(name="../escape")
        assert {p.name for p in RUNTIME_DIR.iterdir()} == before
        left = {child.pid for child in psutil.Process().children(recursive=True)} - children
        assert not [pid for pid in left if psutil.pid_exists(pid)]

    run(scenario)


def test_connect_and_attach_refuse_another_configuration(api: Any) -> None:
    name = f"shared_{api.kind}"

    async def scenario() -> None:
        first = await api.attach(name, topics=["*"], idle_timeout=None)
        second = await api.attach(name, topics=["*"])
        third = await api.connect(name)
        try:
            assert first.node_pid == second.node_pid == third.node_pid
            assert not first.owns_node
            info = await third.info()
            assert info["backend"] == "mock" and info["patterns"]["topics"] == ["*"]
            with pytest.raises(pyros.SpawnError, match="topics patterns"):
                await api.attach(name)
            with pytest.raises(pyros.SpawnError, match="backend 'mock', not 'ros1'"):
                await api.attach(name, "ros1", topics=["*"])
            with pytest.raises(ValueError):
                await api.attach("../outside")
        finally:
            for client in (first, second, third):
                await client.close()

    run(scenario)
    from pyros._shared import stop_shared

    stop_shared(name)
    assert not (RUNTIME_DIR / f"{name}.lock").exists()
    assert not (RUNTIME_DIR / f"{name}.log").exists()


def test_a_stopped_node_is_stalled_not_dead_and_recovers(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            os.kill(robot.node_pid, signal.SIGSTOP)
            call = asyncio.ensure_future(robot.call("/trigger", timeout=limit(20)))
            for _ in range(100):
                if robot.stalled is not None:
                    break
                await asyncio.sleep(0.1)
            assert robot.stalled is not None and not call.done()
            os.kill(robot.node_pid, signal.SIGCONT)
            assert (await call)["success"]
            for _ in range(50):
                if robot.stalled is None:
                    break
                await asyncio.sleep(0.1)
            assert robot.stalled is None
            assert (await robot.topics())["/turtle1/pose"] == "turtlesim/Pose"
            os.kill(robot.node_pid, signal.SIGSTOP)
            assert await asyncio.to_thread(wait_until, lambda: robot.stalled is not None, limit(10))
            started = time.monotonic()
            await robot.close()  # a silent live node is terminated at once
            assert time.monotonic() - started < limit(2)
        finally:
            if psutil.pid_exists(robot.node_pid):
                os.kill(robot.node_pid, signal.SIGKILL)

    run(scenario)


def test_a_heavy_request_does_not_make_the_node_look_dead(api: Any) -> None:
    async def scenario() -> None:
        robot = await api.spawn(**EVERYTHING)
        try:
            await robot.publish("/big", {"data": [0.5]}, type="std_msgs/Float64MultiArray")
            big = asyncio.ensure_future(
                robot.publish("/big", {"data": [0.5] * 2_000_000})  # seconds of work in the node
            )
            for _ in range(5):
                assert (await robot.call("/trigger"))["success"]
            await big
            assert robot.stalled is None
        finally:
            await robot.close()

    run(scenario)


def test_async_with_works_without_await() -> None:
    async def scenario() -> None:
        async with pyros.asyncio.spawn("mock", topics=["*"], actions=["*"]) as robot:
            async with robot.subscribe("/turtle1/pose") as poses:
                pose = await poses.get(timeout=limit(2))
                assert {"x", "y", "theta"} <= set(pose)
            async with robot.start_goal("/fibonacci", {"order": 2}) as goal:
                assert goal.status in ("accepted", "executing", "succeeded")
        assert robot._core.closed

    run(scenario)


def test_event_handlers_and_async_callbacks() -> None:
    async def scenario() -> None:
        got: list[float] = []

        async def on_pose(pose: dict[str, Any]) -> None:
            await asyncio.sleep(0)
            got.append(pose["x"])

        async with pyros.asyncio.spawn("mock", topics=["*"]) as robot:
            async with robot.subscribe("/turtle1/pose", on_pose):
                for _ in range(100):
                    if len(got) >= 3:
                        break
                    await asyncio.sleep(0.02)
        assert len(got) >= 3

    run(scenario)


Scenario = Callable[[], Awaitable[None]]
