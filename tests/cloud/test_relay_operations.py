"""Issue 13's operations: /healthz, Prometheus /metrics, JSON logs, tokens reloaded on SIGHUP."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    TOKENS,
    RelayProcess,
    open_device,
    open_operator,
    recv_until,
    wait_for,
)
from tests.support import limit

pytestmark = pytest.mark.cloud


def get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=limit(5)) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_healthz_metrics_json_logs_and_sighup(tmp_path: Path) -> None:
    tokens_path = tmp_path / "tokens.json"
    tokens_path.write_text(json.dumps(TOKENS))
    relay = RelayProcess(
        ["--tokens", str(tokens_path), "--log-format", "json", "--log-level", "info"]
    )
    try:

        async def scenario() -> None:
            status, body = get(relay.port, "/healthz")
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert get(relay.port, "/metrics")[0] == 401
            robot, _ = await open_device(relay.port, "robot1")
            operator = await open_operator(relay.port)
            await operator.send(json.dumps({"op": "subscribe", "topic": "/robot1/data"}))
            await asyncio.sleep(0.2)
            for seq in range(1, 6):
                await robot.send(dp.encode(dp.publish("/data", {"data": "x" * 10}, seq)))
            for _ in range(5):
                await recv_until(operator, lambda m: m.get("op") == "publish")
            with pytest.raises(InvalidStatus):
                await open_operator(relay.port, "wrong-token")
            status, body = get(relay.port, "/metrics", "op-all")
            assert status == 200
            found = samples(body)
            assert found[("pyros_relay_connections", (("kind", "device"),))] == 1
            assert found[("pyros_relay_connections", (("kind", "operator"),))] == 1
            assert found[("pyros_relay_devices_online", ())] == 1
            key = (("device", "robot1"), ("direction", "in"))
            assert found[("pyros_relay_messages_total", key)] == 5
            assert found[("pyros_relay_bytes_total", key)] > 5 * 10
            out = (("device", "robot1"), ("direction", "out"))
            assert found[("pyros_relay_messages_total", out)] == 5
            assert found[("pyros_relay_auth_failures_total", ())] == 2  # /metrics, wrong token
            assert ("pyros_relay_send_queue_frames", ()) in found
            assert found[("pyros_relay_dropped_total", (("reason", "send_queue"),))] == 0
            assert json.loads(get(relay.port, "/healthz")[1])["devices_online"] == 1

            # SIGHUP: a new operator token works at once; the open connections stay.
            tokens = dict(TOKENS, operators={**TOKENS["operators"], "op-new": {"read": ["*"]}})
            tokens_path.write_text(json.dumps(tokens))
            relay.process.send_signal(signal.SIGHUP)
            newcomer = await asyncio.to_thread(
                wait_for, lambda: get(relay.port, "/api/devices", "op-new")[0] == 200
            )
            assert newcomer
            await robot.send(dp.encode(dp.publish("/data", {"data": "after"}, 6)))
            after = await recv_until(operator, lambda m: m.get("op") == "publish")
            assert after["msg"] == {"data": "after"}
            tokens_path.write_text("{broken")
            relay.process.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            assert get(relay.port, "/api/devices", "op-new")[0] == 200  # old tokens kept
            await robot.close()
            await operator.close()

        asyncio.run(asyncio.wait_for(scenario(), limit(30)))
    finally:
        assert relay.stop() == 0
    lines = [json.loads(line) for line in relay.stderr.splitlines() if line.startswith("{")]
    events = {line.get("event") for line in lines}
    assert {"device_connected", "auth_failed", "tokens_reloaded", "tokens_reload_failed"} <= events
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    connected = next(line for line in lines if line.get("event") == "device_connected")
    assert connected["device"] == "robot1"


def test_cli_refuses_bad_values_in_one_line() -> None:
    import subprocess
    import sys

    for args in (
        ["relay", "--port", "99999"],
        ["relay", "--port", "-1"],
        ["relay", "--rate-limit", "nan"],
        ["relay", "--auth-timeout", "nan"],
        ["relay", "--ping-interval", "inf"],
        ["connector", "--relay", "ws://x", "--device", "d", "--token", "t", "--poll-interval", "0"],
        ["connector", "--relay", "ws://x", "--device", "d", "--token", ""],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "pyros", *args],
            capture_output=True,
            text=True,
            timeout=limit(30),
            env={"PYROS_DEVICE_TOKEN": "", "PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and "Invalid value" in done.stderr, done.stderr
        assert done.stdout == ""
