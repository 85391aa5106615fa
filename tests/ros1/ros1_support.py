"""Helpers behind the ROS 1 fixtures: a real rosmaster, peer processes, a backend driver.

Everything stays on loopback: the master listens on 127.0.0.1 on a free port and every process
started here gets ``ROS_IP=127.0.0.1`` and no ``ROS_HOSTNAME``.

Imported by ``tests/ros1/conftest.py``, by the test modules here (``from ros1_support import
limit``; pytest puts this directory on ``sys.path``) and by the peer scripts in ``peers/``
(which put it and the repository there themselves). It imports no pytest and no ROS library.
If ``pyros_ros`` is not installed, it appends this checkout to ``sys.path``.

Peers talk JSON lines on stdout (:mod:`tests.json_lines`); time limits and free ports come
from :mod:`tests.support`.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.json_lines import dumps, loads
from tests.support import SCALE, free_port, limit, stop_process

__all__ = [
    "REPO_ROOT",
    "PEERS_DIR",
    "SCALE",
    "limit",
    "find_rosmaster",
    "ros1_missing_reason",
    "Ros1Master",
    "Peer",
    "BackendDriver",
    "DriverError",
]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PEERS_DIR = HERE / "peers"

if importlib.util.find_spec("pyros_ros") is None:
    # Not installed (``pip install -e .``) and not on PYTHONPATH: test this checkout, as the
    # peer processes do.
    sys.path.append(str(REPO_ROOT))


# --- the ROS installation --------------------------------------------------------------------


def find_rosmaster() -> str | None:
    """Return the ``rosmaster`` executable: on ``PATH`` (Debian) or in ``/opt/ros/*/bin``."""
    found = shutil.which("rosmaster")
    if found:
        return found
    for candidate in sorted(Path("/opt/ros").glob("*/bin/rosmaster"), reverse=True):
        return str(candidate)
    return None


def ros1_missing_reason() -> str | None:
    """Return why ROS 1 tests cannot run here, or None if rospy and rosmaster are installed."""
    from pyros_ros.environment import find_ros1

    if not find_ros1():
        return "ROS 1 is not installed (no rospy in /opt/ros/*, /usr/lib/python3/dist-packages)"
    if find_rosmaster() is None:
        return "ROS 1 rosmaster is not installed (apt-get install python3-rosmaster)"
    return None


def loopback_env(master_uri: str, ros_home: Path) -> dict[str, str]:
    """The environment for ROS processes of one test: loopback master, private ROS_HOME."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ROS_HOSTNAME", "ROS_NAMESPACE", "ROS_PYTHON_LOG_CONFIG_FILE")
    }
    env.update(
        ROS_MASTER_URI=master_uri,
        ROS_IP="127.0.0.1",
        ROS_HOME=str(ros_home),
        ROS_LOG_DIR=str(ros_home / "log"),
        PYTHONUNBUFFERED="1",
    )
    return env


class Ros1Master:
    """A ``rosmaster --core`` on 127.0.0.1, started for one test.

    Attributes:
        uri: ``http://127.0.0.1:PORT/``.
        port: the TCP port.
        env: environment for peers and clients: ``ROS_MASTER_URI``, ``ROS_IP=127.0.0.1``,
            ``ROS_HOME``/``ROS_LOG_DIR`` in the test's temporary directory; no
            ``ROS_HOSTNAME``/``ROS_NAMESPACE``.
        proc: the master's process.
    """

    def __init__(self, ros_home: Path) -> None:
        executable = find_rosmaster()
        if executable is None:
            raise RuntimeError("rosmaster is not installed")
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}/"
        ros_home.mkdir(parents=True, exist_ok=True)
        self.env = loopback_env(self.uri, ros_home)
        self._log = open(ros_home / "rosmaster.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [executable, "--core", "-p", str(self.port)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(limit(10))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("getPid")
                return
            except OSError as exc:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rosmaster exited with {self.proc.returncode}") from exc
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"rosmaster on port {self.port} did not answer") from exc
                time.sleep(0.05)

    def call(self, method: str, *args: Any, caller_id: str = "/pyros_test") -> Any:
        """Call a Master API method as ``caller_id`` and return its value.

        Raises:
            RuntimeError: the master answered with a failure code.
            OSError: the master did not answer within 5 s (scaled).
        """
        with xmlrpc.client.ServerProxy(
            self.uri, transport=_TimeoutTransport(limit(5)), use_builtin_types=True
        ) as proxy:
            code, status, value = getattr(proxy, method)(caller_id, *args)
        if code != 1:
            raise RuntimeError(f"{method}{args}: {status}")
        return value

    def state(self) -> tuple[list[Any], list[Any], list[Any]]:
        """Return ``getSystemState``: ``(publishers, subscribers, services)``, each a list of
        ``[name, [node, ...]]``."""
        publishers, subscribers, services = self.call("getSystemState")
        return publishers, subscribers, services

    def node_names(self) -> set[str]:
        """Return every node named anywhere in :meth:`state`."""
        return {node for entries in self.state() for _, nodes in entries for node in nodes}

    def entries_of(self, node: str) -> list[tuple[str, str]]:
        """Return ``(kind, name)`` of every registration of ``node`` (kind: publisher,
        subscriber or service)."""
        kinds = ("publisher", "subscriber", "service")
        return [
            (kind, name)
            for kind, entries in zip(kinds, self.state(), strict=True)
            for name, nodes in entries
            if node in nodes
        ]

    def topic_types(self) -> dict[str, str]:
        """Return ``getTopicTypes`` as a dict."""
        return dict(self.call("getTopicTypes"))

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``predicate`` every 20 ms until true; AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.02)

    def stop(self) -> int:
        """End the master (SIGTERM, SIGKILL after 5 s scaled) and return its exit status."""
        stop_process(self.proc, limit(5))
        self._log.close()
        assert self.proc.returncode is not None
        return self.proc.returncode


class _TimeoutTransport(xmlrpc.client.Transport):
    """An XML-RPC transport with a socket timeout."""

    def __init__(self, timeout: float) -> None:
        super().__init__(use_builtin_types=True)
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class _LineProcess:
    """A child Python process whose stdout lines a thread reads into a queue."""

    def __init__(
        self, script: Path, args: list[str], env: dict[str, str], log_path: Path, stdin: bool
    ) -> None:
        self.script = script
        self._stderr = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{script.stem}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._dispatch(line.rstrip("\n"))
        self._dispatch(None)

    def _dispatch(self, line: str | None) -> None:
        self._lines.put(line)

    def next_line(self, timeout: float) -> str:
        """Return the next stdout line; AssertionError on timeout or exit."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"{self.script.name}: no output within {timeout} s{self.stderr_tail()}"
            ) from None
        if line is None:
            self._lines.put(None)
            raise AssertionError(
                f"{self.script.name} exited ({self.proc.poll()}){self.stderr_tail()}"
            )
        return line

    def stderr_tail(self) -> str:
        self._stderr.flush()
        text = self.log_path.read_text(errors="replace")[-3000:]
        return f"\n--- stderr of {self.script.name} ---\n{text}" if text else ""

    def begin_stop(self) -> None:
        """Ask the process to end without waiting: EOF on stdin (a driver then stops its
        backend and exits), else SIGTERM (rospy peers shut down cleanly on it)."""
        if self.proc.stdin is not None:
            if not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """End the process, reap it and return its status: :meth:`begin_stop`, wait up to 10 s
        (scaled), then SIGTERM and after 5 s more SIGKILL."""
        self.begin_stop()
        try:
            self.proc.wait(limit(10))
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.proc, limit(5))
        self._reader.join(limit(5))
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()
        assert self.proc.returncode is not None
        return self.proc.returncode


class Peer(_LineProcess):
    """A peer script from ``peers/`` running as a real rospy node.

    Created by the ``ros1_peer`` fixture, which waits for its ``READY`` line.
    """

    def wait_ready(self, timeout: float) -> None:
        line = self.next_line(timeout)
        if line != "READY":
            raise AssertionError(f"{self.script.name}: expected READY, got {line!r}")

    def read_json(self, timeout: float | None = None) -> Any:
        """Return the next output line decoded with :func:`loads` (AssertionError on timeout)."""
        return loads(self.next_line(limit(5) if timeout is None else timeout))

    def lines(self) -> list[str]:
        """Return every output line received so far and not yet read (does not wait)."""
        found = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return found
            if line is None:
                self._lines.put(None)
                return found
            found.append(line)


class DriverError(Exception):
    """The driver raised something that is not a pyros error (a bug, not a test outcome)."""


class BackendDriver(_LineProcess):
    """``peers/backend_driver.py``: one ``Ros1Backend`` in its own process, driven by JSON.

    rospy allows one node per process, so each backend under test lives in a driver process.
    :meth:`request` runs one backend method there; pyros errors come back as the same
    exception classes (``pyros.exceptions.from_wire``), anything else as :class:`DriverError`.
    Messages of subscribed topics queue up per topic for :meth:`next_message`.
    """

    started: dict[str, Any]
    """The start report: ``{"node": "/pyros_x", "start_seconds": s}``."""

    def __init__(self, script: Path, args: list[str], env: dict[str, str], log_path: Path):
        self.started = {}
        self._replies: dict[int, queue.Queue[Any]] = {}
        self._messages: dict[str, queue.Queue[Any]] = {}
        self._goal_events: dict[int, queue.Queue[Any]] = {}
        self._events: queue.Queue[Any] = queue.Queue()
        self._ids = iter(range(1, 1 << 62))
        self._lock = threading.Lock()
        super().__init__(script, args, env, log_path, stdin=True)

    def _dispatch(self, line: str | None) -> None:
        if line is None:
            self._events.put(None)
        if line is None or not line.startswith("{"):
            super()._dispatch(line)
            return
        data = loads(line)
        if "id" in data:
            with self._lock:
                box = self._replies.setdefault(data["id"], queue.Queue())
            box.put(data)
        elif data.get("event") == "message":
            with self._lock:
                box = self._messages.setdefault(data["topic"], queue.Queue())
            box.put(data)
        elif data.get("event") in ("feedback", "done"):
            with self._lock:
                box = self._goal_events.setdefault(data["goal"], queue.Queue())
            box.put(data)
        else:
            self._events.put(data)

    def wait_started(self, timeout: float) -> dict[str, Any]:
        """Wait for the driver's start report and return it (``{"node": "/pyros_x", ...}``).

        Raises:
            PyrosError: (a subclass) what ``Ros1Backend.start()`` raised.
            AssertionError: no report within ``timeout`` seconds, or the driver died.
        """
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            event = None
        if event is None:
            raise AssertionError(f"backend driver did not start{self.stderr_tail()}")
        if "error" in event:
            raise self._error(event["error"])
        return dict(event["started"])

    def _error(self, error: dict[str, Any]) -> BaseException:
        from pyros.exceptions import from_wire

        if error.get("pyros"):
            return from_wire(error)
        return DriverError(f"{error['type']}: {error['message']}\n{error.get('traceback', '')}")

    def request(self, op: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``backend.<op>(*args)`` in the driver and return its result.

        Raises:
            PyrosError: (a subclass) what the backend raised.
            DriverError: the backend raised a non-pyros exception.
            AssertionError: no reply within ``timeout`` seconds (default 10, scaled).
        """
        with self._lock:
            ident = next(self._ids)
            box = self._replies.setdefault(ident, queue.Queue())
        assert self.proc.stdin is not None
        self.proc.stdin.write(dumps({"id": ident, "op": op, "args": list(args)}) + "\n")
        self.proc.stdin.flush()
        wait = limit(10) if timeout is None else timeout
        try:
            reply = box.get(timeout=wait)
        except queue.Empty:
            raise AssertionError(
                f"backend driver: no reply to {op} within {wait} s{self.stderr_tail()}"
            ) from None
        finally:
            with self._lock:
                self._replies.pop(ident, None)
        if "error" in reply:
            raise self._error(reply["error"])
        return reply["result"]

    def next_message(self, topic: str, timeout: float | None = None) -> dict[str, Any]:
        """Return the next message the backend's subscription to ``topic`` delivered:
        ``{"message": dict, "monotonic": receive time}``."""
        with self._lock:
            box = self._messages.setdefault(topic, queue.Queue())
        wait = limit(5) if timeout is None else timeout
        try:
            return dict(box.get(timeout=wait))
        except queue.Empty:
            raise AssertionError(f"no message on {topic} within {wait} s") from None

    def next_goal_event(self, ref: int, timeout: float | None = None) -> dict[str, Any]:
        """Return the next event of the goal ``ref`` (from ``request("send_goal", ...)``):
        ``{"event": "feedback", "feedback": dict}`` or ``{"event": "done", "outcome":
        {"status", "result", "message"}}``."""
        with self._lock:
            box = self._goal_events.setdefault(ref, queue.Queue())
        wait = limit(5) if timeout is None else timeout
        try:
            return dict(box.get(timeout=wait))
        except queue.Empty:
            raise AssertionError(f"no event of goal {ref} within {wait} s") from None

    def goal_outcome(self, ref: int, timeout: float | None = None) -> tuple[list[Any], Any]:
        """Wait for the end of goal ``ref``; return ``(feedback dicts in order, outcome)``."""
        feedback = []
        wait = limit(10) if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            event = self.next_goal_event(ref, max(deadline - time.monotonic(), 0.001))
            if event["event"] == "done":
                return feedback, event["outcome"]
            feedback.append(event["feedback"])

    def messages(self, topic: str) -> Iterator[dict[str, Any]]:
        """Yield messages already queued for ``topic`` without waiting."""
        with self._lock:
            box = self._messages.setdefault(topic, queue.Queue())
        while True:
            try:
                yield box.get_nowait()
            except queue.Empty:
                return
