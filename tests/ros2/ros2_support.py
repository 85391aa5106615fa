"""Helpers behind the ROS 2 fixtures: a private loopback-only domain and real rclpy peers.

Everything stays on this machine: every process gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST`` and the test session's random ``ROS_DOMAIN_ID`` (see :func:`domain_env`), and no
``ROS_STATIC_PEERS``.

Imported by ``tests/ros2/conftest.py`` and the test modules here (pytest puts this directory
on ``sys.path``). It imports no pytest and no ROS library. Peers talk JSON lines
(:mod:`tests.json_lines`); time limits come from :mod:`tests.support`.
"""

from __future__ import annotations

import itertools
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.json_lines import dumps, loads
from tests.support import SCALE, limit

__all__ = [
    "PEER",
    "SCALE",
    "limit",
    "ros2_missing_reason",
    "pick_domain",
    "domain_env",
    "RclpyPeer",
    "PeerError",
    "wait_for",
]

HERE = Path(__file__).resolve().parent
PEER = HERE / "peers" / "peer.py"


def ros2_missing_reason() -> str | None:
    """Return why the ROS 2 tests cannot run here, or None if rclpy is installed."""
    from pyros_ros.environment import find_ros2

    if find_ros2() is None:
        return "ROS 2 is not installed (pip install 'pyros[ros2]', or source /opt/ros/<distro>)"
    return None


def pick_domain(avoid: tuple[int, ...] = ()) -> int:
    """Return a random ROS domain id in 1..100, not one of ``avoid``."""
    choices = [d for d in range(1, 101) if d not in avoid]
    return random.SystemRandom().choice(choices)


def domain_env(domain: int, log_dir: Path) -> dict[str, str]:
    """The variables every ROS 2 process of the session gets: loopback discovery only."""
    return {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something true and return that.

    Raises:
        AssertionError: still false after ``timeout`` (already scaled) seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class PeerError(Exception):
    """The peer could not do what it was asked (its exception, as text)."""


class RclpyPeer:
    """``peers/peer.py``: a real rclpy node in its own process, driven by JSON lines.

    Args:
        node_name: the peer's node name.
        env: its environment (the session's domain).
        log: file receiving its stderr.
        args: extra arguments (``--allow-undeclared``, ``--params JSON``...).

    Attributes:
        name: the node's full name, ``/talker``.
        proc: its process.
    """

    def __init__(
        self, node_name: str, env: dict[str, str], log: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.name = "/" + node_name
        self.log = log
        self._stderr = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), "--node-name", node_name, *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"peer-{node_name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line == "READY":
                self._ready.set()
                continue
            if not line.startswith("{"):
                continue
            data = loads(line)
            if "id" in data:
                with self._lock:
                    box = self._replies.setdefault(data["id"], queue.Queue())
                box.put(data)
            else:
                self._events.put(data)
        self._events.put(None)

    def wait_ready(self, timeout: float) -> RclpyPeer:
        """Wait for ``READY``; AssertionError (with its stderr) if it does not come."""
        if not self._ready.wait(timeout):
            raise AssertionError(f"peer {self.name} not ready in {timeout:g} s{self.stderr()}")
        return self

    def stderr(self) -> str:
        self._stderr.flush()
        text = self.log.read_text(errors="replace")[-3000:]
        return f"\n--- stderr of peer {self.name} ---\n{text}" if text else ""

    def send(self, op: str, **args: Any) -> int:
        """Send a request without waiting; return its id (for :meth:`reply`)."""
        ident = next(self._ids)
        with self._lock:
            self._replies.setdefault(ident, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(dumps({"id": ident, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return ident

    def reply(self, ident: int, timeout: float | None = None) -> Any:
        """Wait for the reply to request ``ident`` and return its result.

        Raises:
            PeerError: the peer failed to do it.
            AssertionError: no reply in time.
        """
        with self._lock:
            box = self._replies[ident]
        wait = limit(10) if timeout is None else timeout
        try:
            reply = box.get(timeout=wait)
        except queue.Empty:
            raise AssertionError(
                f"peer {self.name}: no reply in {wait:g} s{self.stderr()}"
            ) from None
        with self._lock:
            self._replies.pop(ident, None)
        if "error" in reply:
            raise PeerError(reply["error"])
        return reply["result"]

    def request(self, op: str, timeout: float | None = None, **args: Any) -> Any:
        """Run one op in the peer and return its result (see ``peers/peer.py``)."""
        return self.reply(self.send(op, **args), timeout)

    def event(self, timeout: float | None = None, **match: Any) -> dict[str, Any]:
        """Return the next event whose keys equal ``match``; others are dropped.

        Raises:
            AssertionError: none within ``timeout`` (default 5 s, scaled), or the peer exited.
        """
        wait = limit(5) if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            try:
                event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"peer {self.name}: no event {match} in {wait:g} s") from None
            if event is None:
                self._events.put(None)
                raise AssertionError(f"peer {self.name} exited ({self.proc.poll()}){self.stderr()}")
            if all(event.get(key) == value for key, value in match.items()):
                return event

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield the events already received, without waiting."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if event is None:
                self._events.put(None)
                return
            yield event

    def begin_stop(self) -> None:
        """Close stdin: the peer leaves the graph cleanly and exits."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def stop(self) -> int:
        """End the peer (stdin closed, SIGTERM after 5 s, SIGKILL after 5 s more); reap it."""
        self.begin_stop()
        for signum in (None, signal.SIGTERM, signal.SIGKILL):
            if signum is not None and self.proc.poll() is None:
                self.proc.send_signal(signum)
            try:
                self.proc.wait(limit(5))
                break
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(limit(5))
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()
        assert self.proc.returncode is not None
        return self.proc.returncode
