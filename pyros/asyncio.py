"""The asyncio client: the same names as the sync client, with ``await``.

.. code-block:: python

    import pyros.asyncio

    async def main():
        async with await pyros.asyncio.spawn("mock", topics=["/turtle1/*"]) as robot:
            await robot.publish("/turtle1/cmd_vel", {"linear": {"x": 1.0}})
            async with await robot.subscribe("/turtle1/pose") as poses:
                async for pose in poses:
                    print(pose)

Like websockets' ``sync``/``asyncio`` split and ``zmq.asyncio``: :func:`spawn`,
:func:`connect`, :func:`attach`, :class:`Client` and :class:`Subscription` mirror
:mod:`pyros.client`. One client has one DEALER socket with many requests in flight (the
protocol's pending table matches replies to futures) and one SUB socket read by a task that
also watches the node's heartbeat. Use a client from the event loop that made it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio

from pyros._process import NodeProcess
from pyros._protocol import (
    CLIENT_PREFIX,
    HEARTBEAT_PREFIX,
    MESSAGE_PREFIX,
    ClientProtocol,
    Failure,
    Message,
    StreamProtocol,
)
from pyros._runtime import node_directory, remove_node_directory
from pyros.client import (
    CALL_MARGIN,
    REQUEST_TIMEOUT,
    SubscriptionState,
    check_usable,
    find_node,
    node_exited,
    start_owned_node,
)
from pyros.exceptions import NodeDiedError, NotExposedError, PyrosError, TimeoutError

__all__ = ["Client", "Subscription", "spawn", "connect", "attach"]

_STREAM_POLL = 0.1

AsyncMessageHandler = Callable[[dict[str, Any]], Awaitable[Any] | Any]


async def spawn(
    backend: str = "mock",
    *,
    topics: Iterable[str] = (),
    services: Iterable[str] = (),
    params: Iterable[str] = (),
    name: str | None = None,
    ready_timeout: float = 10.0,
    **backend_options: Any,
) -> Client:
    """Start a node process owned by this program; see :func:`pyros.spawn` for the arguments.

    The blocking start-up runs in the loop's default executor.

    Raises:
        SpawnError, TimeoutError: as :func:`pyros.spawn`.
    """
    loop = asyncio.get_running_loop()
    process = await loop.run_in_executor(
        None,
        start_owned_node,
        backend,
        topics,
        services,
        params,
        name,
        ready_timeout,
        dict(backend_options),
    )
    client = Client(process.report, process=process)
    await client._hello(ready_timeout)
    return client


async def connect(name: str, *, timeout: float = 5.0) -> Client:
    """Attach to running node ``name``; see :func:`pyros.connect`.

    Raises:
        NodeDiedError: no node of that name runs.
        TimeoutError: it did not answer within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    description = await loop.run_in_executor(None, find_node, name, timeout)
    client = Client(description, process=None)
    try:
        await client._hello(timeout)
    except BaseException:
        await client.close()
        raise
    return client


async def attach(name: str, backend: str = "mock", **options: Any) -> Client:
    """Connect to shared node ``name``, starting it if needed; see :func:`pyros.attach`."""
    from pyros._shared import ensure_shared, name_lock

    loop = asyncio.get_running_loop()
    timeout = float(options.get("ready_timeout", 10.0))
    lock = name_lock(name)
    await loop.run_in_executor(None, lock.__enter__)
    try:
        await loop.run_in_executor(None, lambda: ensure_shared(name, backend, **options))
        return await connect(name, timeout=timeout)
    finally:
        lock.__exit__(None, None, None)


class Client:
    """An asyncio connection to one node process; an async context manager.

    Made by :func:`spawn`, :func:`connect` or :func:`attach`. Methods and errors are those of
    :class:`pyros.Client`, as coroutines.
    """

    def __init__(self, description: dict[str, Any], *, process: NodeProcess | None) -> None:
        endpoints = description["endpoints"]
        self.id = uuid.uuid4().hex
        self.name: str = description["name"]
        self.node_pid: int = description["pid"]
        self.description = description
        self._process = process
        self._pid = os.getpid()
        self._closed = False
        self._dead: PyrosError | None = None
        self._context = zmq.asyncio.Context()
        self._dealer = self._context.socket(zmq.DEALER)
        self._dealer.linger = 0
        self._dealer.connect(endpoints["request"])
        self._sub = self._context.socket(zmq.SUB)
        self._sub.linger = 0
        self._sub.rcvhwm = 100_000
        self._sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_PREFIX)
        self._sub.setsockopt(zmq.SUBSCRIBE, CLIENT_PREFIX + self.id.encode())
        self._sub.connect(endpoints["stream"])
        self._protocol = ClientProtocol()
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._subscriptions: dict[bytes, Subscription] = {}
        self._tokens = 0
        self._replies = asyncio.ensure_future(self._read_replies())
        self._stream = asyncio.ensure_future(self._read_stream())

    # --- public API: the same as pyros.Client ---------------------------------------------

    async def topics(self) -> dict[str, str]:
        """Return the exposed topics that exist now; see :meth:`pyros.Client.topics`."""
        result: dict[str, str] = await self._request("topics", {})
        return result

    async def services(self) -> dict[str, str]:
        """Return the exposed services that exist now; see :meth:`pyros.Client.services`."""
        result: dict[str, str] = await self._request("services", {})
        return result

    async def params(self) -> list[str]:
        """Return the exposed parameter names; see :meth:`pyros.Client.params`."""
        result: list[str] = await self._request("params", {})
        return result

    async def publish(self, topic: str, message: dict[str, Any], type: str | None = None) -> None:
        """Publish one message; see :meth:`pyros.Client.publish` (same errors)."""
        await self._request("publish", {"topic": topic, "message": message, "type": type})

    async def subscribe(
        self,
        topic: str,
        callback: AsyncMessageHandler | None = None,
        *,
        queue_size: int = 100,
    ) -> Subscription:
        """Receive ``topic``; see :meth:`pyros.Client.subscribe`.

        ``callback`` may be a plain function or a coroutine function; it runs in this event
        loop, one message at a time, in order.
        """
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._check_usable()
        self._tokens += 1
        token = f"{self.id}/{self._tokens}".encode()
        subscription = Subscription(self, topic, token, callback, queue_size)
        self._subscriptions[token] = subscription
        self._sub.setsockopt(zmq.SUBSCRIBE, MESSAGE_PREFIX + token)
        try:
            result = await self._request("subscribe", {"topic": topic, "token": token})
        except BaseException:
            self._forget(token)
            raise
        subscription.topic = result["topic"]
        subscription.type = result["type"]
        return subscription

    async def call(
        self, service: str, request: dict[str, Any] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Call a service; see :meth:`pyros.Client.call` (same errors)."""
        result: dict[str, Any] = await self._request(
            "call",
            {"service": service, "request": request, "timeout": timeout},
            timeout=timeout + CALL_MARGIN,
        )
        return result

    async def get_param(self, name: str) -> Any:
        """Return a parameter's value; raises ``KeyError`` if unset."""
        return await self._request("get_param", {"name": name})

    async def set_param(self, name: str, value: Any) -> None:
        """Set a parameter to plain data."""
        await self._request("set_param", {"name": name, "value": value})

    async def info(self) -> dict[str, Any]:
        """Return the node's status; see :meth:`pyros.Client.info`."""
        result: dict[str, Any] = await self._request("info", {})
        return result

    @property
    def owns_node(self) -> bool:
        """True if this client started the node and stops it on :meth:`close`."""
        return self._process is not None

    async def close(self, timeout: float = 5.0) -> None:
        """Close the client; an owned node is shut down and waited for. Idempotent."""
        if self._closed:
            return
        if os.getpid() != self._pid:
            self._closed = True
            return
        if self._process is not None and self._dead is None:
            try:
                await self._request("shutdown", {}, timeout=timeout)
            except PyrosError:
                pass
        self._closed = True
        self._die(PyrosError("the client is closed"), closing=True)
        for task in (self._replies, self._stream):
            task.cancel()
        await asyncio.gather(self._replies, self._stream, return_exceptions=True)
        for subscription in list(self._subscriptions.values()):
            await subscription._stop_callbacks()
        self._dealer.close(linger=0)
        self._sub.close(linger=0)
        self._context.term()
        if self._process is not None:
            process = self._process
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, process.wait, timeout)
            await loop.run_in_executor(None, process.stop)
            remove_node_directory(node_directory(self.name))

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "dead" if self._dead else "open"
        return f"<pyros.asyncio.Client node={self.name!r} pid={self.node_pid} {state}>"

    # --- internals ------------------------------------------------------------------------

    def _check_usable(self) -> None:
        check_usable(self._pid, self._closed, self._dead)

    async def _hello(self, timeout: float) -> None:
        await self._request("hello", {"client": self.id}, timeout=timeout)

    async def _request(
        self, op: str, args: dict[str, Any], *, timeout: float | None = REQUEST_TIMEOUT
    ) -> Any:
        self._check_usable()
        request_id, frame = self._protocol.send_request(
            op, args, now=time.monotonic(), timeout=timeout
        )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        try:
            await self._dealer.send(frame)
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no reply to {op!r} within {timeout} s") from None
        finally:
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

    async def _read_stream(self) -> None:
        stream = StreamProtocol(now=time.monotonic())
        while True:
            if await self._sub.poll(int(_STREAM_POLL * 1000)):
                now = time.monotonic()
                while int(self._sub.get(zmq.EVENTS)) & zmq.POLLIN:
                    frames = await self._sub.recv_multipart()
                    event = stream.receive(frames, now)
                    if isinstance(event, Message):
                        target = self._subscriptions.get(event.token)
                        if target is not None:
                            target._deliver(event.message)
            error = stream.node_dead(time.monotonic()) or node_exited(self._process, self.node_pid)
            if error is not None:
                self._die(error)
                return

    def _die(self, error: PyrosError, *, closing: bool = False) -> None:
        if self._dead is not None:
            return
        self._dead = error
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error if closing else NodeDiedError(str(error)))
        self._waiters.clear()
        for subscription in self._subscriptions.values():
            subscription._fail(None if closing else error)

    def _forget(self, token: bytes) -> None:
        self._subscriptions.pop(token, None)
        if not self._closed:
            self._sub.setsockopt(zmq.UNSUBSCRIBE, MESSAGE_PREFIX + token)


class Subscription(SubscriptionState):
    """The messages of one topic, for asyncio; ``async for`` and ``async with``.

    See :class:`pyros.Subscription`; :meth:`get` is a coroutine.
    """

    def __init__(
        self,
        client: Client,
        topic: str,
        token: bytes,
        callback: AsyncMessageHandler | None,
        queue_size: int,
    ) -> None:
        super().__init__(topic, token, callback, queue_size)
        self._client = client
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        if callback is not None:
            self._runner = asyncio.ensure_future(self._run_callbacks())

    async def get(self, timeout: float | None = None) -> dict[str, Any]:
        """Return the next message; see :meth:`pyros.Subscription.get` (same errors)."""
        if self._callback is not None:
            raise PyrosError(f"subscription to {self.topic} delivers to its callback")
        return await self._next(timeout)

    async def _next(self, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._queue:
            if self._error is not None:
                raise NodeDiedError(str(self._error)) from self._error
            if self._closed:
                raise PyrosError(f"subscription to {self.topic} is closed")
            self._ready.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"no message on {self.topic} within {timeout} s")
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except asyncio.TimeoutError:
                continue
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                yield await self.get()
            except NodeDiedError:
                raise
            except PyrosError:
                if self._closed:
                    return
                raise

    async def close(self) -> None:
        """Stop receiving; wakes tasks waiting in :meth:`get`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        await self._stop_callbacks()
        client = self._client
        if client._closed or client._dead is not None or os.getpid() != client._pid:
            return
        client._forget(self.token)
        try:
            await client._request("unsubscribe", {"token": self.token})
        except (NodeDiedError, NotExposedError):
            pass

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<pyros.asyncio.Subscription {self.topic} type={self.type}>"

    def _deliver(self, message: dict[str, Any]) -> None:
        self.received += 1
        self._push(message)
        self._ready.set()

    def _fail(self, error: PyrosError | None) -> None:
        if error is None:
            self._closed = True
        else:
            self._error = error
        self._ready.set()

    async def _run_callbacks(self) -> None:
        assert self._callback is not None
        while True:
            try:
                message = await self._next(None)
            except PyrosError:
                return
            try:
                result = self._callback(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._report_callback_error()

    async def _stop_callbacks(self) -> None:
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
