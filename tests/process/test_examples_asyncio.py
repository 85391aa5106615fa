"""examples/asyncio_app.py runs as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import limit

pytestmark = pytest.mark.process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "asyncio_app.py"


def test_asyncio_example_drives_and_watches() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--duration", "1.5"],
        capture_output=True,
        text=True,
        timeout=limit(30),
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr
    poses = [line for line in result.stdout.splitlines() if line.startswith("pose ")]
    assert len(poses) >= 4
    xs = {line.split()[1] for line in poses}
    assert len(xs) > 1, "the turtle never moved"
