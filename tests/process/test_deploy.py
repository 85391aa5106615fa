"""The command lines of deploy/ (systemd units, Dockerfiles) run as written, so the files
cannot drift from the command: each is read from its file, only the paths, address and port
are swapped for test ones, and the relay and a connector then talk for real on loopback."""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.process.cli_support import clean_env, pyros_command
from tests.support import free_port, limit, wait_until

pytestmark = pytest.mark.process

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exec_start(unit: str) -> list[str]:
    for line in (DEPLOY / unit).read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise AssertionError(f"{unit} has no ExecStart")


def _docker_cmd(dockerfile: str) -> list[str]:
    for line in (DEPLOY / dockerfile).read_text().splitlines():
        if line.startswith("CMD "):
            return list(json.loads(line.removeprefix("CMD ")))
    raise AssertionError(f"{dockerfile} has no CMD")


def _swap(args: list[str], values: dict[str, str]) -> list[str]:
    """Replace the executable with this checkout's pyros and the given options' values."""
    assert Path(args[0]).name == "pyros", args
    result = [*pyros_command()]
    rest = args[1:]
    index = 0
    while index < len(rest):
        arg = rest[index]
        result.append(arg)
        if arg in values:
            result.append(values[arg])
            index += 2
            continue
        index += 1
    return result


@pytest.mark.parametrize(
    ("relay_source", "connector_source"),
    [
        (("unit", "pyros-relay.service"), ("unit", "pyros-connector.service")),
        (("docker", "relay.Dockerfile"), ("docker", "connector.Dockerfile")),
    ],
)
def test_deploy_command_lines_run(
    tmp_path: Path, relay_source: tuple[str, str], connector_source: tuple[str, str]
) -> None:
    read = {"unit": _exec_start, "docker": _docker_cmd}
    relay_args = read[relay_source[0]](relay_source[1])
    connector_args = read[connector_source[0]](connector_source[1])
    assert relay_args[1] == "relay" and connector_args[1] == "connector"
    port = free_port()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(
        json.dumps(
            {
                "devices": {"robot1": "device-secret"},
                "operators": {"operator-secret": {"read": ["*"], "command": ["*"]}},
            }
        )
    )
    relay = subprocess.Popen(
        _swap(relay_args, {"--host": "127.0.0.1", "--port": str(port), "--tokens": str(tokens)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
    )
    connector = None
    try:
        assert relay.stdout is not None
        for line in relay.stdout:
            if "listening on" in line:
                break
        connector = subprocess.Popen(
            _swap(
                connector_args,
                {"--relay": f"ws://127.0.0.1:{port}", "--backend": "mock"},
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env({"PYROS_DEVICE_TOKEN": "device-secret"}),
        )

        def online() -> bool:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/devices",
                headers={"Authorization": "Bearer operator-secret"},
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    devices = json.loads(response.read())
            except OSError:
                return False
            return any(d["id"] == "robot1" and d["online"] for d in devices)

        assert wait_until(online, limit(20)), "the connector never came online"
    finally:
        for proc in (connector, relay):
            if proc is not None:
                proc.terminate()
                proc.communicate(timeout=limit(15))
