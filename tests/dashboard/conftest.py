"""Print where the browser tests' screenshots are, at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.dashboard.dashboard_support import SCREENSHOTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
