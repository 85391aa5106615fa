"""The ROS 2 side of the benchmark: a venv with ROS 2 Jazzy wheels and rosbridge-server-rs.

:func:`ensure` makes ``<cache>/ros2-jazzy/venv`` with ``pip install rosbridge-server-rs
ros-jazzy-rclpy ros-jazzy-std-msgs ros-jazzy-std-srvs
ros-jazzy-rmw-fastrtps-cpp ros-jazzy-test-msgs`` (never the project's ``.venv``), then does what
the wheels leave to a sourced ROS installation: marks the server binary executable, links
``librmw_implementation.so`` to Fast DDS's ``librmw_fastrtps_cpp.so``, and computes the
environment the binary needs (``LD_LIBRARY_PATH`` over the wheels' libraries, ``LD_PRELOAD``
of libpython, ``ROS_DISTRO=jazzy``, ``AMENT_PREFIX_PATH``). :class:`RosbridgeServer` runs it on
127.0.0.1 with ``--no-rosapi``.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REQUIREMENTS", "Ros2Venv", "RosbridgeServer", "ensure"]

REQUIREMENTS = [
    "rosbridge-server-rs",
    "ros-jazzy-rclpy",
    "ros-jazzy-std-msgs",
    "ros-jazzy-std-srvs",
    "ros-jazzy-rmw-fastrtps-cpp",
    "ros-jazzy-test-msgs",  # test_msgs/action/Fibonacci, the action scenario's server
]


@dataclass
class Ros2Venv:
    """A ready ROS 2 wheels venv.

    Attributes:
        python: its interpreter (runs the rclpy peers and the rclpy contender).
        server: the rosbridge-server-rs binary for Jazzy.
        env: what rclpy needs on top of the caller's environment.
        server_env: what the server binary needs on top of that (``LD_PRELOAD``).
        versions: installed versions of the requirements.
    """

    python: str
    server: str
    env: dict[str, str]
    server_env: dict[str, str]
    versions: dict[str, str]


def _stamp() -> str:
    return hashlib.sha256(repr(REQUIREMENTS).encode()).hexdigest()[:16]


def ensure(cache: Path, *, install: bool, log: Path) -> Ros2Venv:
    """Return the ROS 2 venv, installing it into ``cache`` if needed.

    Raises:
        RuntimeError: not installed and installs are disabled, or a step failed.
    """
    root = cache / "ros2-jazzy"
    venv = root / "venv"
    stamp = root / "stamp"
    if not (stamp.exists() and stamp.read_text() == _stamp()):
        if not install:
            raise RuntimeError(f"not installed in {root} and installs are disabled (--no-install)")
        root.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], log)
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS], log)
        stamp.write_text(_stamp())
    site = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    server = site / "rosbridge_server_rs" / "rosbridge_server_rs_jazzy"
    if not server.exists():
        raise RuntimeError(f"rosbridge-server-rs ships no Jazzy binary at {server}")
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
    versions = {}
    for line in subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        check=False,
    ).stdout.splitlines():
        name, _, version = line.partition("==")
        if name in REQUIREMENTS:
            versions[name] = version
    return Ros2Venv(str(venv / "bin" / "python"), str(server), env, server_env, versions)


class RosbridgeServer:
    """rosbridge-server-rs on 127.0.0.1 on a free port, in a ROS 2 environment.

    Args:
        venv: the ROS 2 venv.
        env: the ROS 2 world's environment (domain id, localhost-only discovery).
        log: file receiving the server's output.
    """

    def __init__(self, venv: Ros2Venv, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [venv.server, "--bind", f"127.0.0.1:{self.port}", "--no-rosapi", "--log-ansi", "false"],
            env={**env, **venv.server_env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"rosbridge-server-rs did not listen (exit {self.proc.poll()}); see {log}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}... exited with {code} (see {log})")
