"""Bounded loopback load test: 200 devices streaming 10 Hz for 20 s to one roslibpy operator.

The relay runs as ``python -m pyros relay`` with a tokens file (every device authenticates);
the devices run in two helper processes (100 asyncio connections each); the operator is real
roslibpy in a third, subscribed to all 200 topics and counting every message's ``seq``. Nothing
may be lost, duplicated or reordered, and no peer may get a status error. The throughput is
printed (``-s`` shows it), never asserted. ``PYROS_RELAY_LOAD`` (``DEVICES,HZ,SECONDS``) changes
the load for a manual measurement.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.relay_support import HERE, _env, relay_process, roslibpy_operator
from tests.support import limit, stop_process

pytestmark = [pytest.mark.cloud, pytest.mark.slow]

DEVICES, RATE, SECONDS = (
    float(x) for x in os.environ.get("PYROS_RELAY_LOAD", "200,10,20").split(",")
)


def read_line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        raise AssertionError(f"no line from the device swarm {process.pid} in {timeout} s")
    result: dict[str, Any] = json.loads(line)
    return result


@pytest.mark.timeout(300)
def test_200_devices_at_10_hz_reach_one_roslibpy_operator(tmp_path: Path) -> None:
    devices = int(DEVICES)
    tokens = {
        "devices": {f"dev{i:03d}": f"t-dev{i:03d}" for i in range(devices)},
        "operators": {"op-all": {"read": ["*"], "command": []}},
    }
    expected = int(round(RATE * SECONDS))
    with relay_process(tmp_path, tokens=tokens) as relay:
        with roslibpy_operator(relay.port) as operator:
            for i in range(devices):
                operator.request(
                    "subscribe", topic=f"/dev{i:03d}/data", type="pyros/Sample", count=True
                )
            operator.request("rosapi", what="nodes")  # every subscribe was handled before it
            halves = [(0, devices // 2), (devices // 2, devices - devices // 2)]
            swarms = [
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "device_swarm.py"),
                        str(relay.port),
                        str(first),
                        str(count),
                        str(RATE),
                        str(SECONDS),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=_env(),
                )
                for first, count in halves
                if count
            ]
            try:
                for swarm in swarms:
                    assert read_line(swarm, limit(60.0))["ready"] > 0
                began = time.monotonic()
                for swarm in swarms:
                    assert swarm.stdin is not None
                    swarm.stdin.write("go\n")
                    swarm.stdin.flush()
                summaries = [read_line(swarm, SECONDS + limit(60.0)) for swarm in swarms]
                for swarm in swarms:
                    assert swarm.wait(limit(20.0)) == 0
            finally:
                for swarm in swarms:
                    stop_process(swarm, limit(5.0))
                    for pipe in (swarm.stdin, swarm.stdout):
                        if pipe is not None:
                            pipe.close()
            sent = sum(s["sent"] for s in summaries)
            deadline = time.monotonic() + limit(30.0)
            while True:
                stats = operator.request("stats")
                if stats["total"] >= sent or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            wall = time.monotonic() - began
    assert sent == devices * expected
    for summary in summaries:
        assert summary["statuses"] == [], summary["statuses"][:5]
        assert summary["unacked_devices"] == []
        assert summary["acked"] == summary["sent"]
    assert stats["gaps"] == 0 and stats["disorder"] == 0, stats
    assert stats["topics"] == devices
    assert set(stats["last"].values()) == {expected}
    assert stats["total"] == sent
    span = stats["span"] or 1e-9
    print(
        f"\nrelay load: {devices} devices x {RATE:g} Hz x {SECONDS:g} s = {sent} messages in, "
        f"{stats['total']} delivered to one roslibpy operator, none lost; operator saw them over "
        f"{span:.2f} s = {stats['total'] / span:.0f} msgs/s in and the same out "
        f"({2 * stats['total'] / span:.0f} frames/s through the relay, acks not counted); "
        f"wall {wall:.1f} s"
    )
