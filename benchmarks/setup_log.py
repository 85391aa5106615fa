"""The benchmark's set-up steps (making venvs, pip and apt installs), run with their output
appended to a log file."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["run_logged"]


def run_logged(argv: list[str], log: Path) -> None:
    """Run ``argv`` (no stdin), appending ``$ argv`` and its output to ``log``.

    Raises:
        RuntimeError: it exited with a non-zero code (the message names the log).
    """
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}... exited with {code} (see {log})")
