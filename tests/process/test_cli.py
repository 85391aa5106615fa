"""The ``pyros`` command, run as a user would run it, against mock-backend nodes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from pyros._process import pid_alive
from tests.support import RUNTIME_DIR, limit, wait_until

pytestmark = pytest.mark.process


def pyros_command() -> list[str]:
    """The installed ``pyros`` script beside this Python, else ``python -m pyros``."""
    script = Path(sys.executable).parent / "pyros"
    if script.exists():
        return [str(script)]
    found = shutil.which("pyros")
    return [found] if found else [sys.executable, "-m", "pyros"]


def run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*pyros_command(), *args],
        capture_output=True,
        text=True,
        timeout=limit(timeout),
        env=os.environ.copy(),
    )


def test_demo_drives_the_turtle_and_exits_zero() -> None:
    result = run("demo", "--duration", "2")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("t=")]
    assert len(lines) >= 5
    xs = [float(line.split("x=")[1].split()[0]) for line in lines]
    ys = [float(line.split("y=")[1].split()[0]) for line in lines]
    assert max(xs) - min(xs) > 0.5 and max(ys) - min(ys) > 0.5, "the turtle did not move"


def test_topics_and_services() -> None:
    result = run("topics")
    assert result.returncode == 0, result.stderr
    assert "/turtle1/pose\tturtlesim/Pose" in result.stdout
    result = run("services", "--services", "/re*")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/reset\tstd_srvs/Empty"


def test_echo_prints_json_lines() -> None:
    result = run("echo", "/turtle1/pose", "-n", "2")
    assert result.returncode == 0, result.stderr
    poses = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(poses) == 2 and {"x", "y", "theta"} <= set(poses[0])


def test_call_prints_the_response() -> None:
    result = run("call", "/set_flag", '{"data": true}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["success"] is True


def test_errors_exit_one_with_a_message() -> None:
    result = run("call", "/set_flag", '{"data": "yes"}')
    assert result.returncode == 1
    assert "MessageError" in result.stderr and "data" in result.stderr
    result = run("pub", "/turtle1/cmd_vel", "{not json")
    assert result.returncode == 2
    assert "JSON" in result.stderr
    result = run("topics", "--backend", "nope")
    assert result.returncode == 1 and "unknown backend" in result.stderr


def test_shared_node_start_use_list_stop() -> None:
    started = run("node", "start", "cli_shared", "--topics", "*", "--params", "*")
    assert started.returncode == 0, started.stderr
    node_pid = int(started.stdout.split("pid ")[1].split(",")[0])
    try:
        assert psutil.pid_exists(node_pid)
        listed = run("node", "list")
        assert f"cli_shared\t{node_pid}\tmock\tshared" in listed.stdout
        assert (
            run("param", "set", "/cli/value", '{"a": [1, 2]}', "--name", "cli_shared").returncode
            == 0
        )
        got = run("param", "get", "/cli/value", "--name", "cli_shared")
        assert json.loads(got.stdout) == {"a": [1, 2]}
        status = json.loads(run("node", "status", "cli_shared").stdout)
        assert status["pid"] == node_pid and status["shared"] is True
        image = {"height": 1, "width": 2, "encoding": "mono8", "step": 2, "data": [7, 9]}
        with subprocess.Popen(
            [*pyros_command(), "echo", "/cli/image", "-n", "1", "--name", "cli_shared"],
            stdout=subprocess.PIPE,
            text=True,
        ) as echo:
            wait_until(
                lambda: run("node", "status", "cli_shared").stdout.count('"subscriptions": 1'),
                limit(5),
            )
            published = run(
                "pub",
                "/cli/image",
                json.dumps(image),
                "--type",
                "sensor_msgs/Image",
                "--name",
                "cli_shared",
            )
            assert published.returncode == 0, published.stderr
            out, _ = echo.communicate(timeout=limit(10))
        assert base64.b64decode(json.loads(out)["data"]) == bytes([7, 9])
    finally:
        stopped = run("node", "stop", "cli_shared")
    assert stopped.returncode == 0, stopped.stderr
    # Detached nodes are children of init, which reaps them a moment later.
    assert wait_until(lambda: not pid_alive(node_pid), limit(2))
    assert not (RUNTIME_DIR / "cli_shared").exists()
    assert run("node", "stop", "cli_shared").returncode == 1
