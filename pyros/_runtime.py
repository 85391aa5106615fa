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
import re
import stat
from pathlib import Path
from typing import Any

from pyros.exceptions import PyrosError

__all__ = [
    "runtime_root",
    "check_node_name",
    "node_directory",
    "lock_path",
    "log_path",
    "read_node_file",
    "remove_node_directory",
    "NODE_FILE",
    "NODE_FILES",
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


_NODE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def check_node_name(name: object) -> str:
    """Return ``name`` if it is a valid node name: 1 to 64 ASCII letters, digits and ``_``.

    Every path under the runtime directory is built from a name checked here, so no name can
    reach outside it (``../victim``) or name the root itself (``""``).

    Raises:
        ValueError: anything else, with the name in the message.
    """
    if not isinstance(name, str) or not _NODE_NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise ValueError(f"node name {shown} is invalid: use 1 to 64 ASCII letters, digits and '_'")
    return name


def lock_path(name: str) -> Path:
    """Return the lock file of node name ``name`` (``<root>/<name>.lock``).

    Raises:
        ValueError: ``name`` is not a valid node name.
    """
    return runtime_root() / f"{check_node_name(name)}.lock"


def log_path(name: str) -> Path:
    """Return the log file of shared node ``name`` (``<root>/<name>.log``).

    Raises:
        ValueError: ``name`` is not a valid node name.
    """
    return runtime_root() / f"{check_node_name(name)}.log"


def node_directory(name: str) -> Path:
    """Return the directory of the node called ``name`` (not created).

    Raises:
        ValueError: ``name`` is not a valid node name (see :func:`check_node_name`).
        PyrosError: the socket paths in it would be too long for ``ipc://``.
    """
    path = runtime_root() / check_node_name(name)
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


NODE_FILES = (NODE_FILE, NODE_FILE + ".tmp", "request.sock", "stream.sock", "heartbeat.sock")
"""The only files a node keeps in its directory; nothing else is ever removed."""


def remove_node_directory(directory: Path) -> None:
    """Remove a node directory and the socket and state files in it, if present.

    Only the files a node makes (:data:`NODE_FILES`) are removed; a directory holding
    anything else is left in place.
    """
    if not directory.is_dir() or directory.is_symlink():
        return
    for name in NODE_FILES:
        (directory / name).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass
