"""The asyncio client: the same names as the sync client, with ``await``.

.. code-block:: python

    import pyros.asyncio

    async def main():
        async with pyros.asyncio.spawn("mock", topics=["/turtle1/*"]) as robot:
            await robot.publish("/turtle1/cmd_vel", {"linear": {"x": 1.0}})
            async with robot.subscribe("/turtle1/pose") as poses:
                async for pose in poses:
                    print(pose)

Like websockets' ``sync``/``asyncio`` split and ``zmq.asyncio``: :func:`spawn`,
:func:`connect`, :func:`attach`, :class:`Client`, :class:`Subscription` and :class:`Goal`
mirror :mod:`pyros.client`, over the same I/O-free core (:mod:`pyros._core`), so a behaviour
is written once. :func:`spawn`, :func:`connect`, :func:`attach`, :meth:`Client.subscribe` and
:meth:`Client.start_goal` may be awaited or used directly in ``async with``.

One client has one DEALER socket with many requests in flight (the protocol's pending table
matches replies to futures), one SUB socket per subscription and goal (read by the task that
waits on it, or by a task running its callback), and a monitor task that watches the node's
heartbeat and process. Use a client from the event loop that made it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import zmq
import zmq.asyncio

from pyros import _core
from pyros._core import ClientBase, Deadline, GoalCore, Op, Ops, SubscriptionCore
from pyros._process import NodeProcess, find_node, node_exited, start_owned_node
from pyros._protocol import ClientProtocol, Failure
from pyros._runtime import node_directory, remove_node_directory
from pyros._sockets import monitor_socket, read_stream_items, stream_socket
from pyros.exceptions import NodeDiedError, NotExposedError, PyrosError, TimeoutError

__all__ = ["Client", "Subscription", "Goal", "spawn", "connect", "attach"]

AsyncMessageHandler = Callable[[dict[str, Any]], Awaitable[Any] | Any]
T = TypeVar("T")
C = TypeVar("C", bound="_AsyncClosable")


class _AsyncClosable:
    """``async with`` support for what has an async ``close()``."""

    async def close(self) -> None:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Opening(Generic[C]):
    """An awaitable that is also an async context manager (``async with spawn(...) as c``)."""

    def __init__(self, coroutine: Coroutine[Any, Any, C]) -> None:
        self._coroutine = coroutine
        self._value: C | None = None
        self._used = False

    def __await__(self) -> Generator[Any, None, C]:
        self._used = True
        return self._coroutine.__await__()

    async def __aenter__(self) -> C:
        self._used = True
        self._value = await self._coroutine
        return self._value

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._value is not None:
            await self._value.close()

    def __del__(self) -> None:
        if not self._used:
            self._coroutine.close()  # never awaited: no "coroutine was never awaited" warning


def spawn(backend: str = "mock", **options: Any) -> _Opening[Client]:
    """Start a node process owned by this program; the arguments are :func:`pyros.spawn`'s.

    Await it (``robot = await spawn(...)``) or use it directly: ``async with spawn(...) as
    robot``. The blocking start-up runs in the loop's default executor.

    Raises:
        SpawnError, TimeoutError, ValueError: as :func:`pyros.spawn`.
    """

    async def opening() -> Client:
        loop = asyncio.get_running_loop()
        start = functools.partial(start_owned_node, backend, **options)
        process = await loop.run_in_executor(None, start)
        try:
            client = Client(process.report, process=process)
        except BaseException:
            await loop.run_in_executor(None, process.stop)
            raise
        try:
            await client._run(Ops.hello(client.id, float(options.get("ready_timeout", 10.0))))
        except BaseException:
            await client.close()
            raise
        return client

    return _Opening(opening())


def connect(name: str, *, timeout: float = 5.0) -> _Opening[Client]:
    """Attach to running node ``name``; see :func:`pyros.connect`. Await it or ``async with``.

    Raises:
        NodeDiedError: no node of that name runs.
        TimeoutError: it did not answer within ``timeout`` seconds.
        ValueError: ``name`` is not a valid node name.
    """

    async def opening() -> Client:
        loop = asyncio.get_running_loop()
        description = await loop.run_in_executor(None, find_node, name, timeout)
        client = Client(description, process=None)
        try:
            await client._run(Ops.hello(client.id, timeout))
        except BaseException:
            await client.close()
            raise
        return client

    return _Opening(opening())


def attach(name: str, backend: str = "mock", **options: Any) -> _Opening[Client]:
    """Connect to shared node ``name``, starting it if needed; see :func:`pyros.attach`.

    Await it or use it in ``async with``. The lock and the start-up run in the executor.

    Raises:
        SpawnError: the running node has another backend, options or patterns, or could not
            start.
        TimeoutError, ValueError: as :func:`pyros.attach`.
    """
    from pyros._shared import ensure_shared, name_lock, shared_config

    async def opening() -> Client:
        loop = asyncio.get_running_loop()
        ready_timeout = float(options.pop("ready_timeout", 10.0))
        options.setdefault("idle_timeout", 60.0)
        config = shared_config(name, backend, **options)
        lock = name_lock(name)
        await loop.run_in_executor(None, lock.__enter__)
        try:
            await loop.run_in_executor(None, ensure_shared, config, ready_timeout)
            return await connect(name, timeout=ready_timeout)
        finally:
            lock.__exit__(None, None, None)

    return _Opening(opening())


class Client(ClientBase, _AsyncClosable):
    """An asyncio connection to one node process; an async context manager.

    Made by :func:`spawn`, :func:`connect` or :func:`attach`. Methods, arguments and errors
    are those of :class:`pyros.Client`, as coroutines; the attributes and properties come
    from the same :class:`pyros._core.ClientBase`.
    """

    _process: NodeProcess | None

    def __init__(self, description: dict[str, Any], *, process: NodeProcess | None) -> None:
        super().__init__(description, process)
        core = self._core
        self._context = zmq.asyncio.Context()
        self._context.set(zmq.MAX_SOCKETS, 16384)
        self._dealer = self._context.socket(zmq.DEALER)
        self._dealer.linger = 0
        self._dealer.connect(core.endpoints["request"])
        self._protocol = ClientProtocol()
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._streams: set[_Stream] = set()
        self._dead = asyncio.get_running_loop().create_future()
        self._replies = asyncio.ensure_future(self._read_replies())
        self._monitor = asyncio.ensure_future(self._watch())

    # --- graph: see pyros.Client for what each returns and raises -------------------------

    async def topics(self) -> dict[str, str]:
        """Return the exposed topics that exist now; see :meth:`pyros.Client.topics`."""
        result: dict[str, str] = await self._run(Ops.simple("topics"))
        return result

    async def services(self) -> dict[str, str]:
        """Return the exposed services that exist now; see :meth:`pyros.Client.services`."""
        result: dict[str, str] = await self._run(Ops.simple("services"))
        return result

    async def params(self) -> list[str]:
        """Return the exposed parameter names; see :meth:`pyros.Client.params`."""
        result: list[str] = await self._run(Ops.simple("params"))
        return result

    async def actions(self) -> dict[str, str]:
        """Return the exposed actions; see :meth:`pyros.Client.actions`."""
        result: dict[str, str] = await self._run(Ops.simple("actions"))
        return result

    async def nodes(self) -> list[str]:
        """Return the graph's node names; see :meth:`pyros.Client.nodes`."""
        result: list[str] = await self._run(Ops.simple("nodes"))
        return result

    async def topic_info(self, topic: str) -> dict[str, Any]:
        """Describe a topic; see :meth:`pyros.Client.topic_info`."""
        result: dict[str, Any] = await self._run(Ops.describe("topic_info", "topic", topic))
        return result

    async def service_info(self, service: str) -> dict[str, Any]:
        """Describe a service; see :meth:`pyros.Client.service_info`."""
        op = Ops.describe("service_info", "service", service)
        result: dict[str, Any] = await self._run(op)
        return result

    async def action_info(self, action: str) -> dict[str, Any]:
        """Describe an action; see :meth:`pyros.Client.action_info`."""
        result: dict[str, Any] = await self._run(Ops.describe("action_info", "action", action))
        return result

    async def node_info(self, node: str) -> dict[str, Any]:
        """Describe a node; see :meth:`pyros.Client.node_info`."""
        result: dict[str, Any] = await self._run(Ops.describe("node_info", "node", node))
        return result

    async def definition(self, type: str) -> str:
        """Return a type's definition; see :meth:`pyros.Client.definition`."""
        result: str = await self._run(Ops.describe("definition", "type", type))
        return result

    # --- topics, services, parameters, actions --------------------------------------------

    async def publish(
        self,
        topic: str,
        message: dict[str, Any],
        type: str | None = None,
        *,
        qos: dict[str, Any] | None = None,
    ) -> None:
        """Publish one message; see :meth:`pyros.Client.publish` (same errors)."""
        await self._run(Ops.publish(topic, message, type, qos))

    def subscribe(
        self,
        topic: str,
        callback: AsyncMessageHandler | None = None,
        *,
        queue_size: int = 100,
        qos: dict[str, Any] | None = None,
    ) -> _Opening[Subscription]:
        """Receive ``topic``; see :meth:`pyros.Client.subscribe`. Await it or ``async with``.

        ``callback`` may be a plain function or a coroutine function; it runs in this event
        loop, one message at a time, in order.
        """
        return _Opening(self._subscribe(topic, callback, queue_size, qos))

    async def _subscribe(
        self, topic: str, callback: AsyncMessageHandler | None, queue_size: int, qos: Any
    ) -> Subscription:
        subscription: Subscription = self._begin(
            lambda token: Subscription(self, topic, token, callback, queue_size)
        )
        with subscription.opening():
            subscription.confirm(await self._run(Ops.subscribe(topic, subscription.token, qos)))
        if callback is not None:
            subscription._stream.run_callbacks(subscription._run_callbacks)
        return subscription

    async def call(
        self, service: str, request: dict[str, Any] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Call a service; see :meth:`pyros.Client.call` (same errors)."""
        result: dict[str, Any] = await self._run(Ops.call(service, request, timeout))
        return result

    async def get_param(self, name: str) -> Any:
        """Return a parameter's value; raises ``KeyError`` if unset."""
        return await self._run(Ops.get_param(name))

    async def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data; see :meth:`pyros.Client.set_param`."""
        await self._run(Ops.set_param(name, value))

    async def delete_param(self, name: str) -> None:
        """Delete a parameter; see :meth:`pyros.Client.delete_param`."""
        await self._run(Ops.delete_param(name))

    def start_goal(
        self,
        action: str,
        goal: dict[str, Any] | None = None,
        *,
        feedback: AsyncMessageHandler | None = None,
    ) -> _Opening[Goal]:
        """Send a goal; see :meth:`pyros.Client.start_goal`. Await it or ``async with``.

        ``feedback`` may be a plain function or a coroutine function; it runs in this loop.
        """
        return _Opening(self._start_goal(action, goal, feedback))

    async def _start_goal(
        self, action: str, goal: dict[str, Any] | None, feedback: AsyncMessageHandler | None
    ) -> Goal:
        handle: Goal = self._begin(lambda token: Goal(self, action, token, feedback))
        with handle.opening():
            handle.confirm(await self._run(Ops.send_goal(action, goal, handle.token)))
        if feedback is not None:
            handle._stream.run_callbacks(handle._run_callbacks)
        return handle

    async def send_goal(
        self,
        action: str,
        goal: dict[str, Any] | None = None,
        *,
        feedback: AsyncMessageHandler | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send a goal and wait for its result; see :meth:`pyros.Client.send_goal`."""
        timeout = _core.check_wait(timeout)
        async with self.start_goal(action, goal, feedback=feedback) as handle:
            try:
                return await handle.result(timeout)
            except TimeoutError:
                await handle.cancel()
                raise

    # --- the node -------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """Return the node's status; see :meth:`pyros.Client.info`."""
        result: dict[str, Any] = await self._run(Ops.simple("info"))
        return result

    async def close(self, timeout: float = 5.0) -> None:
        """Close the client; an owned node is shut down and waited for. Idempotent."""
        core = self._core
        if core.closed:
            return
        if core.owner_pid != os.getpid():
            core.closed = True
            return
        if self._process is not None and core.dead is None and core.stalled is None:
            try:
                await self._run(Ops.shutdown(timeout))
            except PyrosError:
                pass
        core.closed = True
        self._die(PyrosError("the client is closed"), closing=True)
        for task in (self._replies, self._monitor):
            task.cancel()
        await asyncio.gather(self._replies, self._monitor, return_exceptions=True)
        for stream in list(self._streams):
            await stream.stop_callbacks()
            stream.release()
        self._dealer.close(linger=0)
        self._context.term()
        if self._process is not None:
            process = self._process
            loop = asyncio.get_running_loop()
            if core.stalled is None:
                await loop.run_in_executor(None, process.wait, timeout)
            await loop.run_in_executor(None, process.stop, timeout if core.stalled is None else 0.5)
            remove_node_directory(node_directory(self.name))

    # --- internals ------------------------------------------------------------------------

    async def _run(self, op: Op) -> Any:
        self._core.check_usable()
        request_id, frame = self._protocol.send_request(
            op.op, op.args, now=time.monotonic(), timeout=op.timeout
        )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiters[request_id] = future
        # A timer, not asyncio.wait_for: before Python 3.12, wait_for loses a cancellation
        # that arrives as the reply does (the caller's task then never ends).
        timer = None
        if op.timeout is not None:
            error = TimeoutError(f"no reply to {op.op!r} within {op.timeout} s")
            timer = loop.call_later(op.timeout, _fail_future, future, error)
        try:
            await self._dealer.send(frame)
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.pop(request_id, None)
            self._protocol.cancel(request_id)

    async def _read_replies(self) -> None:
        while True:
            frame = await self._dealer.recv()
            event = self._protocol.receive_reply(frame)
            if event is None:
                continue
            future = self._waiters.pop(event.id, None)
            if future is None or future.done():
                continue
            if isinstance(event, Failure):
                future.set_exception(event.error)
            else:
                future.set_result(event.result)

    async def _watch(self) -> None:
        core = self._core
        socket: zmq.asyncio.Socket = monitor_socket(self._context, core)
        core.start_monitor(time.monotonic())
        try:
            while True:
                if await socket.poll(int(_core.MONITOR_POLL * 1000)):
                    now = time.monotonic()
                    while int(socket.get(zmq.EVENTS)) & zmq.POLLIN:
                        event = core.monitor_heard(await socket.recv_multipart(), now)
                        if event is not None:
                            self._on_event(event)
                core.check_stalled(time.monotonic())
                error = node_exited(self._process, core.node_pid)
                if error is not None:
                    self._die(error)
                    return
        finally:
            socket.close(linger=0)

    def _on_event(self, event: dict[str, Any]) -> None:
        for handler in list(self._event_handlers):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    task.add_done_callback(_log_task_failure)
            except Exception:
                _core.LOGGER.exception("pyros: an event handler raised")

    def _die(self, error: PyrosError, *, closing: bool = False) -> None:
        if not self._core.die(error):
            return
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error if closing else NodeDiedError(str(error)))
        self._waiters.clear()
        if not self._dead.done():
            self._dead.set_result(None)
        for stream in list(self._streams):
            stream.end(None if closing else error)


def _fail_future(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _log_task_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _core.LOGGER.error("pyros: an asyncio handler raised", exc_info=task.exception())


class _Stream:
    """One token's SUB socket, read by the task that waits on it or by a callback task."""

    def __init__(self, client: Client, token: bytes, core: SubscriptionCore | GoalCore) -> None:
        self.client = client
        self.core = core
        socket: zmq.asyncio.Socket = stream_socket(client._context, client._core, token)
        self.socket: zmq.asyncio.Socket | None = socket
        self._reader: zmq.Socket[bytes] = zmq.Socket.shadow(socket.underlying)
        self._reading = asyncio.Lock()
        self._changed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        client._streams.add(self)

    def drain(self) -> list[Any]:
        """Read what the socket holds into the core, without blocking."""
        if self.socket is None:
            return []
        brought = self.core.feed(read_stream_items(self._reader))  # the same socket, in sync
        self._changed.set()
        return brought

    async def wait(self, ready: Callable[[], T | None], timeout: float | None, what: str) -> T:
        """Return ``ready()`` once it is not None, reading the socket meanwhile.

        Raises:
            TimeoutError: still None after ``timeout`` seconds.
            Whatever ``ready`` raises (the stream ended).
        """
        deadline = Deadline(time.monotonic(), timeout, what)
        while True:
            value, remaining = deadline.check(ready, time.monotonic())
            if value is not None:
                return value
            self._changed.clear()
            if self._runner is not None or self.socket is None or self._reading.locked():
                waiter = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait(
                    {waiter, self.client._dead},
                    timeout=remaining,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                continue
            async with self._reading:
                await self._poll(remaining)

    async def _poll(self, remaining: float | None) -> None:
        socket = self.socket
        assert socket is not None
        poll = asyncio.ensure_future(
            socket.poll(None if remaining is None else int(remaining * 1000) + 1)
        )
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait(
                {poll, changed, self.client._dead}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            poll.cancel()
            changed.cancel()
        if self.socket is not None:
            self.drain()

    def run_callbacks(self, run: Callable[[list[Any]], Awaitable[None]]) -> None:
        """Read the socket on a task that runs ``run(feedback)`` after each read."""
        self._runner = asyncio.ensure_future(self._run(run))
        self._runner.add_done_callback(_log_task_failure)

    async def _run(self, run: Callable[[list[Any]], Awaitable[None]]) -> None:
        while self.socket is not None and not self.core.closed and self.core.error is None:
            await run(self.drain())
            if isinstance(self.core, GoalCore) and self.core.done:
                break
            socket = self.socket
            if socket is None:
                break
            poll = asyncio.ensure_future(socket.poll())
            try:
                await asyncio.wait({poll, self.client._dead}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                poll.cancel()
        self._changed.set()

    def end(self, error: PyrosError | None) -> None:
        """End the stream (node died: ``error``; closed: None) and wake its waiters."""
        self.core.fail(error)
        self._changed.set()

    async def stop_callbacks(self) -> None:
        """Stop the callback task, if any, and wait for it."""
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    def release(self) -> None:
        """Close the socket (the node then forgets the token). Idempotent."""
        self.end(None)
        socket, self.socket = self.socket, None
        if socket is not None:
            socket.close(linger=0)
        self.client._streams.discard(self)


class Subscription(SubscriptionCore, _AsyncClosable):
    """The messages of one topic, for asyncio; ``async for`` and ``async with``.

    See :class:`pyros.Subscription`; :meth:`get` and :meth:`close` are coroutines.
    """

    _stream_class = _Stream
    _stream: _Stream
    _client: Client

    async def get(self, timeout: float | None = None) -> dict[str, Any]:
        """Return the next message; see :meth:`pyros.Subscription.get` (same errors)."""
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        return await self._stream.wait(
            self.pop, _core.check_wait(timeout), f"message on {self.topic}"
        )

    def latest(self) -> dict[str, Any] | None:
        """Return the most recent message received, without consuming it; None before any."""
        if self._stream._runner is None and not self._stream._reading.locked():
            self._stream.drain()
        return SubscriptionCore.latest(self)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        while True:
            message = await self._stream.wait(self.next_message, None, "message")
            if message is _core.FINISHED:
                return
            yield cast("dict[str, Any]", message)

    async def close(self) -> None:
        """Stop receiving; wakes tasks waiting in :meth:`get`. Idempotent."""
        if self.closed:
            return
        await self._stream.stop_callbacks()
        self._stream.release()
        client = self._client
        core = client._core
        if core.closed or core.dead is not None or core.owner_pid != os.getpid():
            return
        try:
            await client._run(Ops.unsubscribe(self.token))
        except (NodeDiedError, NotExposedError):
            pass

    def __repr__(self) -> str:
        return f"<pyros.asyncio.Subscription {SubscriptionCore.__repr__(self)}>"

    async def _run_callbacks(self, feedback: list[Any]) -> None:
        while not self.closed and self._queue:
            message = self.pop()
            try:
                result = self._callback(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.report_callback_error()


class Goal(GoalCore, _AsyncClosable):
    """A goal sent to an action server, for asyncio; ``async for`` feedback, ``async with``.

    See :class:`pyros.Goal`; :meth:`result`, :meth:`cancel` and :meth:`close` are coroutines.
    """

    _stream_class = _Stream
    _stream: _Stream
    _client: Client

    @property
    def status(self) -> str:
        """The goal's state as last heard; see :attr:`pyros.Goal.status`."""
        if self._stream._runner is None and not self._stream._reading.locked():
            self._stream.drain()
        return self._state

    async def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the goal to end and return its result; see :meth:`pyros.Goal.result`."""
        wait = _core.check_wait(timeout)
        result = await self._stream.wait(self.outcome, wait, f"result on {self.action}")
        await self._stream.stop_callbacks()
        self._stream.release()
        return result

    async def cancel(self) -> None:
        """Ask the server to cancel the goal; see :meth:`pyros.Goal.cancel`."""
        if self.done:
            return
        await self._client._run(Ops.cancel_goal(self.token))
        self.canceling()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            feedback = await self._stream.wait(self.next_feedback, None, "feedback")
            if feedback is _core.FINISHED:
                return
            yield cast("dict[str, Any]", feedback)

    async def close(self) -> None:
        """Stop following the goal, cancelling it if it still runs. Idempotent."""
        if not self.done:
            try:
                await self.cancel()
            except PyrosError:
                pass
        await self._stream.stop_callbacks()
        self._stream.release()

    def __repr__(self) -> str:
        return f"<pyros.asyncio.Goal {GoalCore.__repr__(self)}>"

    async def _run_callbacks(self, feedback: list[Any]) -> None:
        for message in feedback:
            try:
                result = self._callback(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.report_callback_error()
