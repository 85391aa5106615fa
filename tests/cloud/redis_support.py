"""A real redis-server (Debian's) on a free loopback port for the relay cluster tests.

Started with no persistence, bound to 127.0.0.1, stopped by PID. Tests that need it skip with
a clear reason when ``redis-server`` is not installed (``scripts/test`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import free_port, limit, stop_process

__all__ = ["RedisServer", "redis_server"]


class RedisServer:
    """``redis-server`` on 127.0.0.1 (no RDB, no AOF), in ``home``.

    Attributes:
        url: ``redis://127.0.0.1:PORT/0``.
    """

    def __init__(self, home: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = home / f"redis-{self.port}.log"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(home),
                "--logfile",
                str(self.log),
                # A relay's subscription carries every device's data: room for bursts.
                "--client-output-buffer-limit",
                "pubsub 512mb 256mb 60",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + limit(10)
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and reap it."""
        stop_process(self.process, limit(5))


@contextmanager
def redis_server(home: Path) -> Iterator[RedisServer]:
    """Run a redis-server for the duration of the block."""
    server = RedisServer(home)
    try:
        yield server
    finally:
        server.stop()
