"""The web and task workers of the examples as the ROS 1 and ROS 2 tiers run them: gunicorn
serving ``examples/flask_app.py`` and a Celery prefork worker running ``examples/celery_app.py``,
each in its own process group of workers, plus HTTP to them.

Used by ``tests/ros1/test_gunicorn_flask.py``, ``tests/ros1/test_celery.py`` and
``tests/ros2/test_ros2_web_workers.py``; the backend and the ROS environment come from the
caller (:func:`example_env`). Processes are stopped by PID: SIGTERM, then SIGKILL for the
master and any worker that lingers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from pyros._process import pid_alive
from tests.support import limit, stop_process, wait_until

__all__ = [
    "REPO_ROOT",
    "WORKERS",
    "CLIENT_THREADS",
    "example_env",
    "http",
    "live_children",
    "stop_with_children",
    "Gunicorn",
    "CeleryWorker",
    "wait_serving",
    "statuses_until",
]

REPO_ROOT = Path(__file__).resolve().parents[1]

WORKERS = 4
"""gunicorn sync workers, and Celery prefork pool processes."""

CLIENT_THREADS = 20
"""Concurrent HTTP requests the tests send at a time."""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def example_env(base: dict[str, str], node: str, backend: str, **settings: str) -> dict[str, str]:
    """The environment of an example's workers: ``base`` (the ROS world's), the repository on
    ``PYTHONPATH``, shared node ``node`` on ``backend`` with a 30 s idle timeout, and
    ``settings`` (``PYROS_TOPICS="*"``, ``CELERY_BROKER_URL=...``)."""
    env = dict(base)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        PYROS_NODE=node,
        PYROS_BACKEND=backend,
        PYROS_IDLE_TIMEOUT="30",
        **settings,
    )
    return env


def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """Send one request and return ``(status, decoded JSON body)``, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=limit(30)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        finally:
            exc.close()


def live_children(pid: int) -> set[int]:
    """Pids of the live (not zombie) children of ``pid``."""
    found = set()
    for child in psutil.Process(pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def stop_with_children(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc`` (a graceful stop for gunicorn and Celery), SIGKILL it after ``grace``
    seconds; then SIGKILL the children it had that linger (orphans only if it was killed) and
    wait until they are gone. Reaps ``proc``; a no-op once it has exited."""
    children = live_children(proc.pid) if proc.poll() is None else set()
    stop_process(proc, grace)
    for pid in children:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not any(pid_alive(pid) for pid in children), limit(5))


class Gunicorn:
    """A gunicorn master serving ``examples.flask_app:app`` with :data:`WORKERS` sync workers
    on 127.0.0.1:``port``, with its output in ``log``."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--chdir",
                str(REPO_ROOT),
                "examples.flask_app:app",
            ],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def workers(self) -> set[int]:
        """Pids of the live worker processes."""
        return live_children(self.proc.pid)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the master and its workers (:func:`stop_with_children`)."""
        stop_with_children(self.proc, limit(15))
        self._log_file.close()


class CeleryWorker:
    """``celery -A examples.celery_app worker`` with a prefork pool of :data:`WORKERS`
    processes, named ``hostname``, with its output in ``log``."""

    def __init__(self, env: dict[str, str], log: Path, hostname: str) -> None:
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "examples.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(WORKERS),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                hostname,
            ],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def pool(self) -> set[int]:
        """Pids of the live pool processes."""
        return live_children(self.proc.pid)

    def wait_ready(self) -> None:
        ready = wait_until(
            lambda: " ready." in self.log_text() or self.proc.poll() is not None, limit(30)
        )
        assert ready and self.proc.poll() is None, f"celery did not start:\n{self.log_text()}"

    def stop(self) -> None:
        """Warm shutdown of the worker and its pool (:func:`stop_with_children`)."""
        stop_with_children(self.proc, limit(20))
        self._log_file.close()


def wait_serving(server: Gunicorn, timeout: float) -> dict[str, Any]:
    """Poll ``GET /`` until a worker answers 200 (the first one starts the node); return it.

    Args:
        timeout: seconds, already scaled.
    """
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(
                f"gunicorn exited ({server.proc.returncode}):\n{server.log_tail()}"
            )
        try:
            status, body = http(server.url + "/")
            if status == 200:
                return dict(body)
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gunicorn did not serve within {timeout:g} s:\n{server.log_tail()}"
            )
        time.sleep(0.1)


def statuses_until(server: Gunicorn, done: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """Send bursts of concurrent ``GET /`` (so every worker gets some) until ``done(seen)``."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit(30)
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        while not done(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met; statuses seen: {seen[-8:]}")
            for status, body in pool.map(lambda _: http(server.url + "/"), range(CLIENT_THREADS)):
                assert status == 200, body
                seen.append(body)
    return seen
