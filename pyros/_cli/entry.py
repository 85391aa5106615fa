"""The ``pyros`` console script's entry point: :func:`pyros.cli.main`, with Ctrl-C during the
command's own start-up (importing click and the commands) exiting 130 silently too."""

from __future__ import annotations

__all__ = ["main"]


def main() -> int:
    """Import and run the ``pyros`` command; return its exit code."""
    try:
        from pyros.cli import main as run
    except KeyboardInterrupt:
        return 130
    return run()
