"""Where node processes keep their sockets: a private runtime directory per user.

Layout::

    <root>/                  mode 0700, owned by the user
        <node name>/         one directory per running node
            request.sock     ROUTER endpoint (ipc)
            stream.sock      XPUB endpoint (ipc)
            node.json        pid and endpoints, written once the node is ready

``<root>`` is ``$PYROS_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/pyros``, else
``/tmp/pyros-<uid>``. A root that another user owns or others can enter is refused: a node's
sockets accept requests from whoever can reach them.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from pyros.exceptions import PyrosError

__all__ = [
    "runtime_root",
    "node_directory",
    "read_node_file",
    "remove_node_directory",
    "NODE_FILE",
    "IPC_PATH_MAX",
]

NODE_FILE = "node.json"
IPC_PATH_MAX = 107
"""Longest path a Unix socket address can hold on Linux (``sun_path`` is 108 bytes)."""


def runtime_root() -> Path:
    """Return the private runtime directory, creating it with mode 0700 if needed.

    Raises:
        PyrosError: the directory exists but belongs to someone else or is open to others.
    """
    explicit = os.environ.get("PYROS_RUNTIME_DIR")
    if explicit:
        root = Path(explicit)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        root = Path(os.environ["XDG_RUNTIME_DIR"]) / "pyros"
    else:
        root = Path("/tmp") / f"pyros-{os.getuid()}"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise PyrosError(
            f"runtime directory {root} must belong to uid {os.getuid()} with mode 0700 "
            f"(it has uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}); "
            "remove it or set PYROS_RUNTIME_DIR"
        )
    return root


def node_directory(name: str) -> Path:
    """Return the directory of the node called ``name`` (not created).

    Raises:
        PyrosError: the socket paths in it would be too long for ``ipc://``.
    """
    path = runtime_root() / name
    if len(str(path / "request.sock")) > IPC_PATH_MAX:
        raise PyrosError(f"node directory {path} is too long for a Unix socket path")
    return path


def read_node_file(directory: Path) -> dict[str, Any] | None:
    """Return the contents of a node directory's ``node.json``, or None if absent/partial."""
    try:
        with open(directory / NODE_FILE, encoding="utf-8") as file:
            data = json.load(file)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def remove_node_directory(directory: Path) -> None:
    """Remove a node directory and the socket and state files in it, if present."""
    if not directory.exists():
        return
    for leftover in directory.iterdir():
        leftover.unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass
