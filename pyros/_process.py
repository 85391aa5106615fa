"""Starting, watching and stopping node processes. Knows nothing of the wire protocol.

A node always starts as a fresh interpreter (``python -m pyros._node``), never as a fork of the
caller: the caller may be a Flask worker with threads and open sockets. The start-up handshake
is process plumbing, not protocol: the node's configuration goes in as one JSON document on its
stdin, and the node answers on an inherited pipe with one JSON line, either
``{"ok": true, ...what the node reports...}`` or ``{"ok": false, "error": {"type", "message"}}``.

The node runs in its own session (``start_new_session``) so a Ctrl-C aimed at the caller's
terminal reaches the caller, which then closes the node cleanly, or dies, which the node
notices by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyros._runtime import node_directory, read_node_file, remove_node_directory
from pyros.exceptions import NodeDiedError, PyrosError, SpawnError, TimeoutError, from_wire

__all__ = [
    "NodeConfig",
    "NodeProcess",
    "new_name",
    "patterns",
    "start_owned_node",
    "find_node",
    "node_exited",
    "pid_alive",
    "wait_pid_gone",
    "terminate_pid",
]


@dataclass
class NodeConfig:
    """What a node process is told to do, sent as JSON on its stdin.

    Attributes:
        name: the node's name; it registers in the graph as ``/pyros_<name>`` and its sockets
            live in ``<runtime root>/<name>/``. Letters, digits and ``_``.
        backend: backend name (``mock``, ``ros1``...).
        options: backend options (``master_uri``...).
        topics, services, params, actions: glob patterns of what is exposed.
        owner_pid: exit when this process dies (None for a shared node).
        idle_timeout: seconds without any client after which the node exits; None never.
    """

    name: str
    backend: str = "mock"
    options: dict[str, Any] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    owner_pid: int | None = None
    idle_timeout: float | None = None

    @property
    def graph_name(self) -> str:
        """The node's name in the ROS graph, without the leading slash."""
        return f"pyros_{self.name}"

    @classmethod
    def make(
        cls,
        name: str,
        backend: str,
        *,
        topics: Iterable[str] = (),
        services: Iterable[str] = (),
        params: Iterable[str] = (),
        actions: Iterable[str] = (),
        owner_pid: int | None = None,
        idle_timeout: float | None = None,
        **options: Any,
    ) -> NodeConfig:
        """Build a configuration from what a user passed to ``spawn``/``attach``.

        Patterns may be one string or an iterable of them; the rest are backend options.

        Raises:
            TypeError: a pattern is not a string.
        """
        return cls(
            name=name,
            backend=backend,
            options=dict(options),
            topics=patterns(topics, "topics"),
            services=patterns(services, "services"),
            params=patterns(params, "params"),
            actions=patterns(actions, "actions"),
            owner_pid=owner_pid,
            idle_timeout=idle_timeout,
        )

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        """Parse a configuration.

        Raises:
            SpawnError: not a JSON object with the fields above.
        """
        try:
            data = json.loads(text)
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise SpawnError(f"bad node configuration: {exc}") from exc

    def to_json(self) -> str:
        """Serialize for :meth:`from_json`."""
        return json.dumps(asdict(self))

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data (what :meth:`NodeProcess.start` sends)."""
        return asdict(self)

    def public_options(self) -> dict[str, Any]:
        """Return the backend options with secrets (``token``, ``password``...) replaced by
        ``"sha256:<first 16 hex digits>"``, fit for ``node.json`` and ``info()``."""
        return {
            key: _redact(value) if _is_secret(key) else value
            for key, value in sorted(self.options.items())
        }

    def patterns(self) -> dict[str, list[str]]:
        """Return the glob patterns by kind: ``{"topics": [...], "services": ..., ...}``."""
        return {
            "topics": list(self.topics),
            "services": list(self.services),
            "params": list(self.params),
            "actions": list(self.actions),
        }

    def mismatch(self, description: dict[str, Any]) -> str:
        """Say how a running node (its ``node.json``) differs from this configuration.

        Returns:
            ``""`` when the node runs this backend with these options and patterns, else a
            phrase such as ``"backend 'mock', not 'ros1'"``.
        """
        backend = description.get("backend")
        if backend != self.backend:
            return f"backend {backend!r}, not {self.backend!r}"
        options = description.get("options", {})
        if options != json.loads(json.dumps(self.public_options())):
            return f"backend options {options!r}, not {self.public_options()!r}"
        running = description.get("patterns", {})
        for kind, wanted in self.patterns().items():
            if running.get(kind, []) != wanted:
                return f"{kind} patterns {running.get(kind, [])!r}, not {wanted!r}"
        return ""


_SECRET_WORDS = ("token", "password", "secret", "key")


def _is_secret(option: str) -> bool:
    return any(word in option.lower() for word in _SECRET_WORDS)


def _redact(value: Any) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    return "sha256:" + digest[:16]


def patterns(values: Iterable[str], what: str) -> list[str]:
    """Return glob patterns as a list; a single string is one pattern.

    Raises:
        TypeError: a pattern is not a string.
    """
    if isinstance(values, str):
        return [values]
    result = list(values)
    for pattern in result:
        if not isinstance(pattern, str):
            raise TypeError(f"{what} patterns must be strings, got {pattern!r}")
    return result


def start_owned_node(
    backend: str, *, name: str | None = None, ready_timeout: float = 10.0, **options: Any
) -> NodeProcess:
    """Start a node owned by this process and wait until it is ready (see ``pyros.spawn``,
    whose arguments these are). The asyncio client runs it in an executor.

    Raises:
        SpawnError, TimeoutError: the node could not start, or not in time.
        ValueError: ``name`` is not a valid node name.
    """
    config = NodeConfig.make(name or new_name(), backend, owner_pid=os.getpid(), **options)
    node_directory(config.name)  # checks the name before anything starts
    return NodeProcess.start(config.to_dict(), ready_timeout=ready_timeout)


def find_node(name: str, timeout: float) -> dict[str, Any]:
    """Return the description (``node.json``) of running node ``name``, waiting up to
    ``timeout`` seconds for it to appear.

    Raises:
        NodeDiedError: no live node of that name within ``timeout``.
        ValueError: ``name`` is not a valid node name.
    """
    directory = node_directory(name)
    deadline = time.monotonic() + timeout
    while True:
        description = read_node_file(directory)
        if description is not None and pid_alive(description.get("pid")):
            return description
        if time.monotonic() >= deadline:
            raise NodeDiedError(f"no pyros node named {name!r} is running (looked in {directory})")
        time.sleep(0.05)


def node_exited(process: NodeProcess | None, pid: int) -> NodeDiedError | None:
    """Return the error to raise if the node process is gone, else None.

    Nodes always run on this machine, so their process can be checked directly: this notices
    a killed node within one monitor poll (0.1 s).
    """
    if process is not None:
        code = process.exit_code()
        if code is not None:
            return NodeDiedError(f"the node process exited with code {code}")
        return None
    if not pid_alive(pid):
        return NodeDiedError(f"the node process {pid} is gone")
    return None


def new_name() -> str:
    """Return a fresh unique node name (12 hex digits)."""
    return uuid.uuid4().hex[:12]


class NodeProcess:
    """A node process this program started.

    Use :meth:`start`; the constructor only wraps an existing ``Popen``.

    Attributes:
        pid: the node's process id.
        report: what the node sent in its ready line (endpoints, name...).
    """

    def __init__(self, popen: subprocess.Popen[bytes], report: dict[str, Any]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.report = report
        self.detached = False

    @classmethod
    def start(
        cls,
        config: dict[str, Any],
        *,
        ready_timeout: float,
        env: dict[str, str] | None = None,
        detach: bool = False,
        log: Path | None = None,
    ) -> NodeProcess:
        """Start a node process and wait until it says it is ready.

        Args:
            config: JSON-serialisable node configuration, passed on the node's stdin.
            ready_timeout: seconds to wait for the ready line.
            env: environment for the node; None inherits this process's.
            detach: the node double-forks so that it is not this process's child: it
                outlives this process and is reaped by init, never left a zombie. Its
                :attr:`pid` then comes from its ready line; :meth:`stop` still works.
            log: file that receives the node's stdout and stderr (appended); None shares
                this process's. A detached node should have one: it must not hold this
                process's terminal or pipes open after this process is gone.

        Returns:
            The running node.

        Raises:
            SpawnError: the node reported an error (no ROS master, unknown backend...) or
                exited before it was ready.
            TimeoutError: no ready line within ``ready_timeout``; the process was killed.
        """
        read_fd, write_fd = os.pipe()
        output = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed below
        try:
            popen = subprocess.Popen(
                [sys.executable, "-m", "pyros._node", "--ready-fd", str(write_fd)]
                + (["--detach"] if detach else []),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=output,
                pass_fds=(write_fd,),
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise SpawnError(f"cannot start the node process: {exc}") from exc
        finally:
            if output is not None:
                output.close()
        os.close(write_fd)
        try:
            assert popen.stdin is not None
            try:
                popen.stdin.write(json.dumps(config).encode())
                popen.stdin.close()
            except BrokenPipeError:
                pass  # the node died at once; reading the ready pipe says so
            line = _read_line(read_fd, ready_timeout)
        except BaseException:  # Ctrl-C while the node starts: let it leave the graph cleanly
            _end(popen, config.get("name"))
            raise
        finally:
            os.close(read_fd)
        if line is None:
            _end(popen, config.get("name"))
            raise TimeoutError(f"the node was not ready within {ready_timeout:.1f} s")
        if not line:
            code = popen.wait(timeout=5)
            raise SpawnError(f"the node process exited with code {code} before it was ready")
        try:
            report = json.loads(line)
        except json.JSONDecodeError as exc:
            _kill(popen)
            raise SpawnError(f"the node sent an unreadable ready line: {line[:200]!r}") from exc
        if not report.get("ok"):
            error = from_wire(report.get("error"))
            try:
                popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill(popen)
            raise error if isinstance(error, SpawnError) else SpawnError(str(error))
        process = cls(popen, report)
        if detach:
            popen.wait(timeout=5)  # the intermediate process, exited right after forking
            process.pid = int(report["pid"])
            process.detached = True
        return process

    def exit_code(self) -> int | None:
        """Return the exit code if the process has ended (reaping it), else None.

        A detached process is not ours to reap: it reports 0 once gone.
        """
        if self.detached:
            return None if pid_alive(self.pid) else 0
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for the process to end; return its code or None."""
        if self.detached:
            return wait_pid_gone(self.pid, timeout)
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> int | None:
        """End the process: SIGTERM (the node then cleans up), SIGKILL after ``timeout`` s.

        Returns:
            The exit code (negative signal number if killed; None for a detached process
            that is not ours to reap).
        """
        if self.detached:
            terminate_pid(self.pid, timeout)
            return None
        if self._popen.poll() is None:
            try:
                self._popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                _kill(self._popen)
        return self._popen.wait()


def pid_alive(pid: object) -> bool:
    """Return True if a process with this pid exists (and is not a zombie)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    import psutil  # 10-15 ms: not on the way to starting a node (the command waits for that)

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_pid_gone(pid: int, timeout: float | None) -> int | None:
    """Wait until process ``pid`` (not our child) is gone; 0 if it went, None on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while pid_alive(pid):
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
    return 0


def terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM process ``pid``, then SIGKILL it if still there after ``timeout`` seconds."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        if wait_pid_gone(pid, timeout) is not None:
            return


def _read_line(fd: int, timeout: float) -> str | None:
    """Read one line from ``fd`` within ``timeout`` s; "" on EOF first, None on timeout."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


STOP_GRACE = 3.0
"""Seconds a node that is told to stop during its start-up gets to unregister from the
ROS graph before it is killed."""


def _end(popen: subprocess.Popen[bytes], name: object) -> None:
    """Stop a node that never became ready: SIGTERM (it then leaves the ROS graph and removes
    its directory), SIGKILL after :data:`STOP_GRACE` seconds, and remove what it left."""
    if popen.poll() is None:
        try:
            popen.send_signal(signal.SIGTERM)
            popen.wait(timeout=STOP_GRACE)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    _kill(popen)
    if isinstance(name, str):
        try:
            remove_node_directory(node_directory(name))
        except (ValueError, PyrosError):
            pass


def _kill(popen: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process if it still runs and reap it."""
    if popen.poll() is None:
        try:
            popen.kill()
        except ProcessLookupError:
            pass
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - a process that ignores SIGKILL
        raise PyrosError(f"node process {popen.pid} did not die after SIGKILL") from exc
