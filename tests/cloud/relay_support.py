"""What the relay tests share: a relay process, raw websocket devices and operators, and a real
roslibpy operator in a helper process. Every process started here is stopped by PID and reaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from pyros.cloud import device_protocol as dp
from tests.support import limit, stop_process

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

TOKENS = {
    "devices": {
        "robot1": "robot1-secret",
        "robot2": "robot2-secret",
        "robot3": {"token": "robot3-secret", "read": ["robot1"]},
    },
    "operators": {
        "op-all": {"read": ["*"], "command": ["robot1"]},
        "op-robot2": {"read": ["robot2"], "command": []},
    },
}
"""The tokens file of most tests."""

DEVICE_TOKENS = {"robot1": "robot1-secret", "robot2": "robot2-secret", "robot3": "robot3-secret"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class RelayProcess:
    """A ``python -m pyros relay`` subprocess on a free loopback port."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyros", "relay", "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        self.stderr = ""
        self.port = 0
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], limit(15.0))
        line = self.process.stdout.readline() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"relay did not start: {line!r} {self.stderr!r}")
        self.url = line.split("listening on", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> int:
        """Stop the relay; keep its stderr in :attr:`stderr`; return its exit code."""
        code = stop_process(self.process, limit(10.0))
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()
        return code


@contextmanager
def relay_process(tmp_path: Path, *args: str, tokens: Any = TOKENS) -> Iterator[RelayProcess]:
    """Run a relay (with ``tokens`` written to a file, or none when None); check a clean exit."""
    extra = list(args)
    if tokens is not None:
        path = tmp_path / "tokens.json"
        path.write_text(json.dumps(tokens))
        extra = ["--tokens", str(path), *extra]
    relay = RelayProcess(extra)
    try:
        yield relay
    finally:
        code = relay.stop()
    assert code == 0, relay.stderr
    assert "Traceback" not in relay.stderr, relay.stderr


# --- raw websocket peers ---------------------------------------------------------------------


async def open_device(
    port: int,
    device: str,
    *,
    token: str | None = None,
    topics: dict[str, str] | None = None,
    services: dict[str, str] | None = None,
    commands: tuple[str, ...] = (),
    latest: tuple[str, ...] = (),
    actions: dict[str, str] | None = None,
    params: tuple[str, ...] = (),
    session: str | None = None,
    scheme: str = "ws",
    **connect_options: Any,
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect a raw device, say hello, return (connection, welcome).

    ``latest`` names the topics whose latest value the relay replays to late subscribers.
    """
    token = token if token is not None else DEVICE_TOKENS.get(device, "")
    # Unbounded receive queue: tests leave acks unread, and a full queue would stop the client
    # from reading the relay's close frame (a close then waits close_timeout).
    connect_options.setdefault("max_queue", None)
    ws = await connect(
        f"{scheme}://127.0.0.1:{port}{dp.DEVICE_PATH}",
        additional_headers=dp.handshake_headers(device, token),
        open_timeout=limit(10.0),
        **connect_options,
    )
    await ws.send(
        dp.encode(
            dp.hello(
                device,
                session or f"session-{device}",
                topics=topics or {"/data": "std_msgs/String"},
                services=services or {},
                commands=commands,
                latest=latest,
                actions=actions,
                params=params,
            )
        )
    )
    welcome = await recv_json(ws)
    assert welcome["op"] == "welcome", welcome
    return ws, welcome


async def open_operator(
    port: int, token: str | None = "op-all", *, query: str = ""
) -> ClientConnection:
    """Connect a raw rosbridge operator (Authorization header unless ``token`` is None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(
        f"ws://127.0.0.1:{port}/{query}",
        additional_headers=headers,
        open_timeout=limit(10.0),
        max_queue=None,
        max_size=None,
    )


async def recv_json(ws: ClientConnection, timeout: float | None = None) -> dict[str, Any]:
    """Receive one JSON frame within ``timeout`` (scaled default 10 s)."""
    frame = await asyncio.wait_for(ws.recv(), timeout if timeout is not None else limit(10.0))
    message: dict[str, Any] = json.loads(frame)
    return message


async def recv_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """Receive frames until one satisfies ``predicate`` (others are skipped)."""
    deadline = asyncio.get_running_loop().time() + limit(timeout)
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        message = await recv_json(ws, max(remaining, 0.001))
        if predicate(message):
            return message


async def no_message(ws: ClientConnection, seconds: float = 0.3) -> bool:
    """Return True when nothing arrives on ``ws`` for ``seconds``."""
    try:
        await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    return False


# --- the roslibpy operator -----------------------------------------------------------------


class RoslibpyOperator:
    """Drive ``roslibpy_operator.py`` (a real roslibpy client) in a subprocess."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "roslibpy_operator.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._number = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "reply" in message:
                with self._cond:
                    self._replies[message["reply"]] = message
                    self._cond.notify_all()
            else:
                self._events.put(message)

    def request(self, cmd: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        """Send one command; return its reply."""
        self._number += 1
        number = self._number
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"n": number, "cmd": cmd, **fields}) + "\n")
        self.process.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: number in self._replies, limit(timeout)):
                raise TimeoutError(f"no reply to {cmd} {fields}")
            return self._replies.pop(number)

    def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """Return the next topic message event."""
        return self._events.get(timeout=limit(timeout))

    def pending_messages(self) -> list[dict[str, Any]]:
        """Return every topic message event received so far and not taken yet."""
        found = []
        while True:
            try:
                found.append(self._events.get_nowait())
            except queue.Empty:
                return found

    def close(self) -> str:
        """Close the client, reap the process, return its stderr."""
        if self.process.poll() is None:
            try:
                self.request("close", timeout=10.0)
            except (TimeoutError, BrokenPipeError, OSError):
                pass
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(limit(10.0))
        except subprocess.TimeoutExpired:
            stop_process(self.process, limit(5.0))
        self._reader.join(limit(5.0))
        assert self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()
        return stderr


@contextmanager
def roslibpy_operator(
    port: int, token: str | None = "op-all", *, secure: bool = False
) -> Iterator[RoslibpyOperator]:
    """A connected roslibpy operator (``wss://`` when ``secure``); closed and reaped after."""
    operator = RoslibpyOperator()
    try:
        reply = operator.request("connect", host="127.0.0.1", port=port, token=token, secure=secure)
        assert reply["ok"], reply
        yield operator
    finally:
        operator.close()


def run(scenario: Awaitable[T], seconds: float = 30.0) -> T:
    """Run an async scenario in a new event loop, failing it after ``limit(seconds)``."""
    return asyncio.run(asyncio.wait_for(scenario, limit(seconds)))


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` until it returns something true; return it (or fail)."""
    deadline = time.monotonic() + limit(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
