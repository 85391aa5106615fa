"""Running the ``pyros`` command as a user would: the installed script, a clean environment.

Shared by the mock tests (``tests/process/test_cli*.py``) and the ROS 1 tests
(``tests/ros1/test_cli_ros1.py``).
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support import limit

__all__ = ["pyros_command", "clean_env", "run", "run_on_terminal", "start"]

_ROS_VARIABLES = (
    "PYROS_BACKEND",
    "PYROS_NODE",
    "ROS_MASTER_URI",
    "ROS_VERSION",
    "ROS_DISTRO",
    "AMENT_PREFIX_PATH",
)


def pyros_command() -> list[str]:
    """The installed ``pyros`` script beside this Python, else ``python -m pyros``."""
    script = Path(sys.executable).parent / "pyros"
    if script.exists():
        return [str(script)]
    found = shutil.which("pyros")
    return [found] if found else [sys.executable, "-m", "pyros"]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ROS or pyros backend choice, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in _ROS_VARIABLES}
    env.update(extra or {})
    return env


def run(
    *args: str,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``pyros ARGS`` to the end with pipes for stdout and stderr (so: not a terminal)."""
    return subprocess.run(
        [*pyros_command(), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=limit(timeout),
        env=clean_env(env),
    )


def run_on_terminal(
    *args: str, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """Run ``pyros ARGS`` with stdout on a pseudo-terminal; return (exit code, what it showed)."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*pyros_command(), *args],
            stdout=secondary,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=clean_env(env),
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(limit(timeout))
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def start(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``pyros ARGS`` in the background with piped stdout and stderr."""
    return subprocess.Popen(
        [*pyros_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean_env(env),
    )
