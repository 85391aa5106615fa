"""ROS 2 messages <-> dicts (pyros_ros.ros2.conversion), run in a Python of their own.

The cases (``conversion_cases.py``) import rclpy's message classes. In this test process that
would collide with ROS 1's: with both in one venv, ``std_msgs`` is ROS 1's genpy package for
the ros1 tests and ROS 2's rosidl one for these, and a process can import only one. So the
cases run in a fresh ``python -m pytest``, whose report is shown when one fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ros2_support import limit

HERE = Path(__file__).resolve().parent


def test_conversion_cases_in_a_fresh_interpreter() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(HERE / "conversion_cases.py"),
        ],
        cwd=HERE.parents[1],
        capture_output=True,
        text=True,
        timeout=limit(120),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
