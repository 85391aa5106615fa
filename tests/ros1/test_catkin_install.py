"""The catkin path: scripts/catkin-check builds this repository in a scratch workspace with
Debian's catkin, then starts the installed command (install/bin/pyros, rosrun pyros pyros,
roslaunch --nodes on the launch files). It must fail when the installed command cannot import
pyros (it once printed OK while saying so)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ros1_support import REPO_ROOT, limit

_NEEDED = ("catkin", "make", "g++", "python3-zmq", "python3-msgpack", "python3-psutil",
           "python3-click", "python3-yaml", "rosbash", "python3-roslaunch")  # fmt: skip


def _missing_packages() -> list[str]:
    missing = []
    for package in _NEEDED:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package],
            capture_output=True,
            text=True,
        ).stdout
        if not status.startswith("ii"):
            missing.append(package)
    return missing


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system"),
    pytest.mark.skipif(
        os.geteuid() != 0 and bool(_missing_packages()),
        reason="scripts/catkin-check would need root to apt-get install what is missing",
    ),
]


def _check(workspace: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "catkin-check"), str(workspace)],
        capture_output=True,
        text=True,
        timeout=limit(400),
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_catkin_install_gives_a_working_command_and_fails_when_it_cannot_import(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "PYROS_BACKEND"))}
    env.pop("PYTHONPATH", None)
    result = _check(tmp_path / "ws", env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "catkin-check: OK" in out
    assert "pyros 0.5.0" in out.split("+ rosrun pyros pyros --version")[1]
    assert "/pyros_connector_robot1" in out
    # A dependency the installed command cannot import: the check must fail, not print OK.
    broken = tmp_path / "broken"
    (broken / "zmq").mkdir(parents=True)
    (broken / "zmq" / "__init__.py").write_text("raise ImportError('zmq hidden by the test')\n")
    result = _check(tmp_path / "ws", {**env, "PYTHONPATH": str(broken)})
    assert result.returncode != 0, result.stdout[-3000:]
    assert "catkin-check: OK" not in result.stdout
    assert "zmq hidden by the test" in result.stdout + result.stderr
