"""``pyros demo`` runs the whole cloud chain and drives the turtle through the relay."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support import limit

pytestmark = pytest.mark.cloud


def test_demo_drives_the_turtle_through_relay_and_connector() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyros", "demo", "--duration", "3", "--rate", "5"],
        capture_output=True,
        text=True,
        timeout=limit(40),
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"relay on ws://127\.0\.0\.1:\d+; robot 'demo' connected", out), out
    assert "/demo/turtle1/cmd_vel" in out and "/demo/turtle1/pose" in out, out
    lines = [line for line in out.splitlines() if line.startswith("t=")]
    assert len(lines) >= 8, out
    xs = [float(line.split("x=")[1].split()[0]) for line in lines]
    ys = [float(line.split("y=")[1].split()[0]) for line in lines]
    speeds = [float(line.split("v=")[1]) for line in lines]
    assert max(xs) - min(xs) > 0.5 and max(ys) - min(ys) > 0.5, "the turtle did not move"
    assert speeds[-1] == 2.0, "the circle command did not come through the relay"
    # A 2 m/s, 1 rad/s circle has a 2 m radius: no pose is farther than 4 m from the start.
    assert all(abs(x - xs[0]) <= 4.1 and abs(y - ys[0]) <= 4.1 for x, y in zip(xs, ys, strict=True))
    assert out.rstrip().endswith("done")
    assert "Traceback" not in result.stderr, result.stderr
