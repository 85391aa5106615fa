"""A real rosbridge v2 server for the tests: rosbridge-server-rs on ROS 2 Jazzy wheels.

Shared by the rosbridge backend's tests (``tests/rosbridge/``), the cloud tests and the
benchmarks. Everything ROS 2 lives in its own venv (:func:`ensure`), never in the project's
``.venv``: that one may hold ROS 2 Kilted wheels for the ``ros2`` backend, and the server and
its rclpy peers must share one distribution (Jazzy, the one rosbridge-server-rs ships a binary
for). The pyros node of the ``rosbridge`` backend imports no ROS at all, so it runs in the
project's venv and reaches the server over a websocket.

The venv (default ``<repo>/.venv-ros2-jazzy``, or ``$PYROS_ROS2_JAZZY_VENV``) is made by
``python -m tests.rosbridge_server --install`` (``scripts/test`` runs it) with::

    pip install rosbridge-server-rs ros-jazzy-rclpy ros-jazzy-std-msgs ros-jazzy-std-srvs
                ros-jazzy-geometry-msgs ros-jazzy-test-msgs ros-jazzy-rmw-fastrtps-cpp

:func:`ensure` then does what the wheels leave to a sourced ROS installation: marks the server
binary executable, links ``librmw_implementation.so`` to Fast DDS's ``librmw_fastrtps_cpp.so``
and computes the environment (``LD_LIBRARY_PATH`` over the wheels' libraries, ``LD_PRELOAD``
of libpython for the server, ``ROS_DISTRO=jazzy``, ``AMENT_PREFIX_PATH``).

The server runs with ``--no-rosapi``: its built-in rosapi services need the ``rosapi_msgs``
package, which has no wheel. So it offers no topic, service or node listing; the tests check
that the backend says so clearly.

Loopback only: :func:`ros_env` sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and one random
``ROS_DOMAIN_ID`` per test session, and the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REQUIREMENTS",
    "VENV",
    "Ros2Venv",
    "RosbridgeServer",
    "LineProcess",
    "ensure",
    "install",
    "ros_env",
    "free_port",
]

REPO = Path(__file__).resolve().parents[1]

REQUIREMENTS = [
    "rosbridge-server-rs",
    "ros-jazzy-rclpy",
    "ros-jazzy-std-msgs",
    "ros-jazzy-std-srvs",
    "ros-jazzy-geometry-msgs",
    "ros-jazzy-test-msgs",
    "ros-jazzy-rmw-fastrtps-cpp",
]
"""What the ROS 2 Jazzy venv holds: the server, rclpy for the peers, and the message packages
the peers use (``test_msgs`` has the ``Fibonacci`` action)."""

VENV = Path(os.environ.get("PYROS_ROS2_JAZZY_VENV", REPO / ".venv-ros2-jazzy"))
"""Where the ROS 2 Jazzy venv lives."""

DOMAIN_ID = random.randint(101, 215)
"""This session's ROS 2 domain, drawn once per test session. Other engineers' ROS 2 tests on
this machine draw theirs from 1..100 and offer services of the same names (``/set_flag``),
so ours come from above: 101..215 (Fast DDS ports stay below 65535 up to domain 232)."""


@dataclass
class Ros2Venv:
    """A ready ROS 2 Jazzy wheels venv.

    Attributes:
        root: the venv directory.
        python: its interpreter (runs the rclpy peers).
        server: the rosbridge-server-rs binary for Jazzy.
        env: what rclpy and the server need on top of :func:`ros_env`.
        server_env: what the server binary needs on top of that (``LD_PRELOAD``).
    """

    root: Path
    python: str
    server: str
    env: dict[str, str]
    server_env: dict[str, str]


def install(venv: Path = VENV, log: Path | None = None) -> None:
    """Make the venv and pip-install :data:`REQUIREMENTS` into it (a no-op when done).

    Raises:
        RuntimeError: a step failed (the message names it).
    """
    stamp = venv / ".pyros-requirements"
    if stamp.exists() and stamp.read_text() == "\n".join(REQUIREMENTS):
        return
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS],
    ]
    for argv in steps:
        out = open(log, "ab") if log else None  # noqa: SIM115
        try:
            code = subprocess.call(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            if out:
                out.close()
        if code != 0:
            raise RuntimeError(f"{' '.join(argv[:6])}... exited with {code}")
    stamp.write_text("\n".join(REQUIREMENTS))


def ensure(venv: Path = VENV) -> Ros2Venv:
    """Return the ROS 2 Jazzy venv, set up for running the server and rclpy.

    Raises:
        FileNotFoundError: the venv is not installed (run ``python -m tests.rosbridge_server
            --install``).
    """
    site = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    server = site / "rosbridge_server_rs" / "rosbridge_server_rs_jazzy"
    if not server.exists():
        raise FileNotFoundError(
            f"no rosbridge-server-rs in {venv}: run `python -m tests.rosbridge_server --install`"
        )
    if not os.access(server, os.X_OK):
        server.chmod(0o755)
    rmw = venv / "lib" / "librmw_implementation.so"
    if not rmw.exists():
        rmw.symlink_to("librmw_fastrtps_cpp.so")
    libraries = [str(venv / "lib"), *sorted(str(p) for p in site.glob("ros_*.libs"))]
    libpython = Path(sysconfig.get_config_var("LIBDIR") or "") / str(
        sysconfig.get_config_var("INSTSONAME")
    )
    env = {
        "LD_LIBRARY_PATH": ":".join(libraries),
        "ROS_DISTRO": "jazzy",
        "AMENT_PREFIX_PATH": str(venv),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1",  # the wheels' .pth would re-exec to set the above
    }
    server_env = {"LD_PRELOAD": str(libpython)} if libpython.exists() else {}
    return Ros2Venv(venv, str(venv / "bin" / "python"), str(server), env, server_env)


def ros_env(domain_id: int = DOMAIN_ID) -> dict[str, str]:
    """Return this process's environment without ROS variables, on a loopback-only domain."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROS_", "LD_", "AMENT_", "PYTHONPATH", "RMW_"))
    }
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(domain_id),
        PYTHONUNBUFFERED="1",
    )
    return env


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RosbridgeServer:
    """rosbridge-server-rs on 127.0.0.1, ``--no-rosapi``, in a ROS 2 Jazzy environment.

    Args:
        venv: the ROS 2 venv (:func:`ensure`).
        log: file receiving the server's output (appended to across restarts).
        port: the port to bind; None picks a free one. :meth:`restart` keeps it.
        domain_id: ROS 2 domain of the server's node.
        extra_args: more command-line options for the server.

    Attributes:
        url: ``ws://127.0.0.1:PORT``.
        proc: the running server process.
    """

    def __init__(
        self,
        venv: Ros2Venv,
        log: Path,
        port: int | None = None,
        domain_id: int = DOMAIN_ID,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.venv = venv
        self.log = log
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.env = {**ros_env(domain_id), **venv.env, **venv.server_env}
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts TCP connections.

        Raises:
            RuntimeError: it exited or did not listen within ``timeout`` seconds.
        """
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.venv.server,
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--no-rosapi",
                    "--log-ansi",
                    "false",
                    *self.extra_args,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    code = self.proc.poll()
                    self.stop()
                    raise RuntimeError(
                        f"rosbridge-server-rs did not listen on {self.port} (exit {code}); "
                        f"see {self.log}"
                    ) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (no close frames: connections just break) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        """Start again on the same port after :meth:`kill` or :meth:`stop`."""
        self.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; always reaped. Idempotent."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class LineProcess:
    """A child process whose stdout lines a thread reads (an rclpy peer in the Jazzy venv).

    Args:
        argv: the command.
        env: its environment.
        log: file receiving its stderr.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
            )
        self.log = log
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._done = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def next_line(self, timeout: float) -> str:
        """Return the next stdout line.

        Raises:
            RuntimeError: no line within ``timeout`` seconds, or the process exited.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._lines:
                remaining = deadline - time.monotonic()
                if self._done or remaining <= 0:
                    tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                    raise RuntimeError(
                        f"{self.proc.args[1:3]}: no output (exit {self.proc.poll()}): {tail}"
                    )
                self._cond.wait(remaining)
            return self._lines.pop(0)

    def send(self, line: str) -> None:
        """Write one line to the process's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_ready(self, timeout: float) -> None:
        """Wait for the ``READY`` line.

        Raises:
            RuntimeError: another line came first, or none in time.
        """
        line = self.next_line(timeout)
        if line != "READY":
            raise RuntimeError(f"{self.proc.args[1:3]}: expected READY, got {line!r}")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; always reaped. Idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.rosbridge_server --install``: make the ROS 2 Jazzy venv."""
    parser = argparse.ArgumentParser(prog="python -m tests.rosbridge_server")
    parser.add_argument("--install", action="store_true", help=f"make {VENV} if missing")
    args = parser.parse_args(argv)
    if args.install:
        install()
    venv = ensure()
    print(f"rosbridge-server-rs: {venv.server}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
