"""One websocket to a rosbridge server that stays up by itself: an asyncio loop on its own thread.

The backend's methods run on the node's threads; everything that touches the socket runs on
this module's loop thread (``pyros-rosbridge``), so the node's main loop never blocks on the
network:

* :meth:`Connection.send` queues a frame (FIFO) and returns; a writer task sends the queue.
  While the connection is down it raises :class:`~pyros.exceptions.ConnectionLostError`.
* :meth:`Connection.request` sends a frame and returns a future that the reply with the same
  ``id`` completes (``service_response``, ``status``); every open future fails with
  ``ConnectionLostError`` when the connection drops, so no call waits for an answer that
  cannot come.
* Every other frame goes to ``on_frame`` on the loop thread (topic messages, action feedback).

When the connection drops (server or relay restarted, network gone), the loop reconnects with
exponential backoff and jitter (:data:`BACKOFF_INITIAL` doubling up to :data:`BACKOFF_MAX`,
each delay drawn from ±:data:`BACKOFF_JITTER` of it), sends the frames of ``on_reconnect()``
first (the backend re-advertises and re-subscribes), and only then accepts new frames, so a
publish never overtakes its ``advertise``. ``on_state`` hears every change.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pyros.exceptions import ConnectionLostError, ProtocolError, PyrosError, SpawnError
from pyros_ros.rosbridge import wire

__all__ = [
    "Connection",
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "BACKOFF_JITTER",
    "SEND_QUEUE_BYTES",
]

BACKOFF_INITIAL = 0.2
"""Seconds before the first reconnect attempt."""

BACKOFF_MAX = 5.0
"""Longest wait between two reconnect attempts, in seconds."""

BACKOFF_JITTER = 0.25
"""Each wait is drawn uniformly from ``delay * (1 ± BACKOFF_JITTER)`` so that many clients of
one restarted server do not reconnect in lockstep."""

SEND_QUEUE_BYTES = 256 * 1024 * 1024
"""Bytes of frames that may wait to be sent before :meth:`Connection.send` refuses more."""

Frame = str | bytes


class Connection:
    """A self-healing websocket to a rosbridge v2 server.

    Args:
        url: ``ws://HOST:PORT[/path]`` or ``wss://...``.
        headers: extra handshake headers (``Authorization: Bearer <token>``).
        ssl_context: TLS context for ``wss://``; None uses the system's trust store.
        on_frame: called on the loop thread with every decoded message that is not the reply
            to a :meth:`request`; must not block.
        on_reconnect: called on the loop thread after a reconnect, before anything else is
            sent; returns the frames to send first (advertisements, subscriptions).
        on_state: called on the loop thread with each connection event (see
            :meth:`RosbridgeBackend.connection_info`); must not block.
        compression: ``"deflate"`` to offer permessage-deflate (RFC 7692), None for none.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str],
        ssl_context: ssl.SSLContext | None,
        on_frame: Callable[[dict[str, Any]], None],
        on_reconnect: Callable[[], list[Frame]],
        on_state: Callable[[dict[str, Any]], None],
        compression: str | None = None,
    ) -> None:
        self.url = url
        self._headers = headers
        self._ssl = ssl_context
        self._on_frame = on_frame
        self._on_reconnect = on_reconnect
        self._on_state = on_state
        self._compression = compression
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pyros-rosbridge", daemon=True
        )
        self._ws: ClientConnection | None = None
        self._queue: deque[Frame] = deque()
        self._queued_bytes = 0
        self._wake: asyncio.Event | None = None
        self._pending: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()  # _pending, _open
        self._open = False  # frames may be queued
        self._closing = False
        self._ids = itertools.count(1)
        self._main: asyncio.Future[None] | None = None
        self.connects = 0
        self.disconnects = 0
        self.down_since: float | None = None
        self.last_error: str | None = None

    # --- lifecycle (any thread) ------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Connect once; then keep the connection up until :meth:`stop`.

        Raises:
            SpawnError: the first connection failed within ``timeout`` seconds; the message
                says whether the server was unreachable, refused the handshake (HTTP status,
                e.g. 401 for a refused token) or did not answer in time.
        """
        self._thread.start()
        first = asyncio.run_coroutine_threadsafe(self._open_first(timeout), self._loop)
        try:
            first.result(timeout + 1.0)
        except SpawnError:
            self.stop()
            raise
        except Exception as exc:
            self.stop()
            raise SpawnError(
                f"cannot connect to the rosbridge server at {self.url}: {exc}"
            ) from exc
        self._main = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)  # type: ignore[assignment]

    def stop(self) -> None:
        """Close the websocket, fail what is pending, stop the loop thread. Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                done.result(3.0)
            except Exception:  # noqa: S110 - the loop is being torn down; nothing to report to
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(3.0)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        self._fail_pending(ConnectionLostError(f"connection to {self.url} closed"))

    @property
    def connected(self) -> bool:
        """True while frames can be sent."""
        return self._open

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop thread after ``delay`` seconds (0: as soon as it can).

        Does nothing once the connection is stopped.
        """
        if self._closing or self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, callback)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def next_id(self, prefix: str) -> str:
        """Return a fresh message id, ``"<prefix>:<n>"``."""
        return f"{prefix}:{next(self._ids)}"

    # --- sending (any thread) --------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        """Queue one frame for sending, in order; returns at once.

        Raises:
            ConnectionLostError: not connected now (reconnecting).
            PyrosError: :data:`SEND_QUEUE_BYTES` are already waiting (the server reads too
                slowly).
        """
        with self._lock:
            if not self._open:
                raise self._down_error()
            if self._queued_bytes + len(frame) > SEND_QUEUE_BYTES and self._queue:
                raise PyrosError(
                    f"{self._queued_bytes} bytes wait to be sent to {self.url}: the server "
                    "reads too slowly"
                )
            self._queue.append(frame)
            self._queued_bytes += len(frame)
            first = len(self._queue) == 1
        if first:
            self._loop.call_soon_threadsafe(self._kick)

    def request(self, message: dict[str, Any], binary: bool = False) -> Future[dict[str, Any]]:
        """Send ``message`` (which has an ``id``) and return a future of the reply to that id.

        The future gets the first ``service_response`` or ``status`` carrying the id, or
        fails with ``ConnectionLostError`` if the connection drops first. Call
        :meth:`forget` when giving up on it (timeout).

        Raises:
            ConnectionLostError: not connected now.
            MessageError: ``message`` cannot be encoded.
        """
        frame: Frame = wire.encode_cbor(message) if binary else wire.encode_json(message)
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending[message["id"]] = future
        try:
            self.send(frame)
        except BaseException:
            self.forget(message["id"])
            raise
        return future

    def expect(self, id: str) -> Future[dict[str, Any]]:
        """Return a future of the next ``service_response``/``status`` with ``id`` (sent later)."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending[id] = future
        return future

    def forget(self, id: str) -> None:
        """Stop waiting for the reply to ``id`` (a late reply is then ignored)."""
        with self._lock:
            self._pending.pop(id, None)

    def _down_error(self) -> ConnectionLostError:
        reason = f": {self.last_error}" if self.last_error else ""
        if self._closing:
            return ConnectionLostError(f"the connection to {self.url} is closed")
        return ConnectionLostError(
            f"not connected to the rosbridge server at {self.url} (reconnecting{reason})"
        )

    def _fail_pending(self, error: PyrosError) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error)

    # --- the loop thread -------------------------------------------------------------------

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _connect(self, timeout: float) -> ClientConnection:
        return await connect(
            self.url,
            additional_headers=self._headers,
            ssl=self._ssl if self.url.startswith("wss://") else None,
            open_timeout=timeout,
            max_size=None,
            compression="deflate" if self._compression == "deflate" else None,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=1,
            write_limit=2**20,
        )

    async def _open_first(self, timeout: float) -> None:
        try:
            self._ws = await self._connect(timeout)
        except InvalidStatus as exc:
            status = exc.response.status_code
            why = {
                401: "refused the token (401 Unauthorized)",
                403: "refused the token (403 Forbidden)",
            }.get(status, f"refused the websocket handshake (HTTP {status})")
            raise SpawnError(f"the rosbridge server at {self.url} {why}") from exc
        except InvalidURI as exc:
            raise SpawnError(f"{self.url!r} is not a ws:// or wss:// URL: {exc}") from exc
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise SpawnError(
                f"the rosbridge server at {self.url} did not complete the websocket handshake "
                f"within {timeout:g} s"
            ) from exc
        except ssl.SSLError as exc:
            raise SpawnError(
                f"TLS with {self.url} failed: {exc} (pass cafile= for a self-signed certificate)"
            ) from exc
        except (OSError, InvalidHandshake) as exc:
            raise SpawnError(f"cannot reach the rosbridge server at {self.url}: {exc}") from exc
        self._wake = asyncio.Event()
        self.connects = 1
        with self._lock:
            self._open = True
        self._on_state({"event": "connected", "url": self.url, "connects": 1})

    async def _serve(self) -> None:
        """Read and write until stopped, reconnecting whenever the connection drops."""
        while not self._closing:
            ws = self._ws
            assert ws is not None
            writer = asyncio.create_task(self._write(ws))
            error: BaseException | None = None
            try:
                await self._read(ws)
            except ConnectionClosed as exc:
                error = exc
            finally:
                writer.cancel()
            if self._closing:
                return
            await self._lost(error)
            if not await self._reconnect():
                return

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            try:
                message = wire.decode(frame)
            except ProtocolError as exc:
                self._on_state({"event": "error", "url": self.url, "error": str(exc)})
                continue
            ident = message.get("id")
            if ident is not None and message["op"] in ("service_response", "status"):
                with self._lock:
                    future = self._pending.pop(str(ident), None)
                if future is not None:
                    if not future.done():
                        future.set_result(message)
                    continue
            try:
                self._on_frame(message)
            except Exception as exc:  # a bad frame must not end the connection
                self._on_state(
                    {"event": "error", "url": self.url, "error": f"{type(exc).__name__}: {exc}"}
                )

    async def _write(self, ws: ClientConnection) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            while self._queue:
                with self._lock:
                    frame = self._queue.popleft()
                    self._queued_bytes -= len(frame)
                await ws.send(frame)
            wake.clear()
            if not self._queue:
                await wake.wait()

    async def _lost(self, error: BaseException | None) -> None:
        with self._lock:
            self._open = False
            self._queue.clear()
            self._queued_bytes = 0
        self.disconnects += 1
        self.down_since = time.monotonic()
        self.last_error = str(error) if error else "the server closed the connection"
        self._fail_pending(
            ConnectionLostError(f"lost the connection to {self.url} mid-call: {self.last_error}")
        )
        self._on_state({"event": "disconnected", "url": self.url, "error": self.last_error})

    async def _reconnect(self) -> bool:
        delay = BACKOFF_INITIAL
        attempt = 0
        while not self._closing:
            await asyncio.sleep(delay * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER))
            attempt += 1
            try:
                ws = await self._connect(max(2.0, delay * 2))
            except (OSError, InvalidHandshake, TimeoutError, asyncio.TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self._ws = ws
            down_for = time.monotonic() - (self.down_since or time.monotonic())
            try:
                for frame in self._on_reconnect():
                    await ws.send(frame)
            except ConnectionClosed:
                continue
            self.connects += 1
            self.down_since = None
            with self._lock:
                self._open = True
            self._on_state(
                {
                    "event": "reconnected",
                    "url": self.url,
                    "attempts": attempt,
                    "down_for": down_for,
                    "connects": self.connects,
                }
            )
            return True
        return False

    async def _shutdown(self) -> None:
        with self._lock:
            self._open = False
        if self._ws is not None:
            await self._ws.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
