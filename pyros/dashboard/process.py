"""Start and stop ``pyros dashboard`` as a child process (spawning apart from talking).

Used by ``pyros relay --dashboard`` and ``pyros demo --dashboard``. The child is a fresh
``python -m pyros dashboard`` (never a fork), so the relay process imports no UI library and
keeps its event loop to itself. It prints ``pyros dashboard: serving http://HOST:PORT/ ...``
once listening; :meth:`DashboardProcess.start` waits for that line and reads the bound port.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from typing import IO

from pyros.exceptions import SpawnError

__all__ = ["DashboardProcess"]

_READY = "serving "


class DashboardProcess:
    """A running ``pyros dashboard`` child.

    Attributes:
        process: the child.
        url: the URL browsers open (``http://127.0.0.1:8080/``).
        port: its bound TCP port.
    """

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])

    @classmethod
    def start(
        cls,
        relay: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        cafile: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        timeout: float = 30.0,
    ) -> DashboardProcess:
        """Start the dashboard for ``relay`` and wait until it listens.

        Args:
            relay: ``ws://HOST:PORT`` of the relay (the dashboard dials it as an operator).
            host: the address the dashboard serves browsers on.
            port: its TCP port; 0 picks a free one.
            cafile: CA certificates for a ``wss://`` relay.
            certfile: serve HTTPS with this certificate (with ``keyfile``).
            keyfile: the certificate's key.
            timeout: seconds to wait for it to listen.

        Raises:
            SpawnError: it exited or did not listen in time (its output in the message;
                ``pip install 'pyros[dashboard]'`` when NiceGUI is missing).
        """
        command = [sys.executable, "-m", "pyros", "dashboard", "--relay", relay]
        command += ["--host", host, "--port", str(port)]
        for flag, value in (("--cafile", cafile), ("--certfile", certfile), ("--keyfile", keyfile)):
            if value:
                command += [flag, value]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            if _READY in line:
                url = line.split(_READY, 1)[1].split()[0]
                threading.Thread(
                    target=_copy, args=(process.stdout,), name="pyros-dashboard-output", daemon=True
                ).start()
                return cls(process, url)
        output = "\n".join(seen[-20:])
        cls(process, "http://unknown:0/").stop()
        raise SpawnError(f"the dashboard did not start: {output or 'no output'}")

    def stop(self, timeout: float = 10.0) -> int:
        """Stop it (SIGTERM, then SIGKILL after ``timeout`` seconds); return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def _copy(stream: IO[str]) -> None:
    """Pass the child's later output (warnings, errors) on to this process's stderr, so its
    pipe never fills."""
    try:
        for line in stream:
            sys.stderr.write(line)
    except (OSError, ValueError):
        return  # closed by stop()
