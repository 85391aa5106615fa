"""What the dashboard's browser tests share: a real Chromium (:mod:`tests.dashboard.chromium`,
with a fresh profile directory per browser, so no cookie survives between tests), a ``pyros
dashboard`` process, and helpers to wait for what the page shows.

Screenshots go to ``$PYROS_DASHBOARD_SCREENSHOTS`` or a temporary directory
that the run prints at its end (see ``conftest.py``).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.relay_support import ROOT
from tests.dashboard.chromium import CHROMEDRIVER, CHROMIUM, start_chromium
from tests.support import limit, stop_process

SCREENSHOTS = Path(
    os.environ.get("PYROS_DASHBOARD_SCREENSHOTS")
    or tempfile.mkdtemp(prefix="pyros-dashboard-screenshots-")
)


def require_browser() -> None:
    """Skip when Chromium, chromedriver, selenium or the dashboard extra is missing."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test)")
    pytest.importorskip("selenium")
    pytest.importorskip("nicegui")


class Browser:
    """One headless Chromium with its own profile directory."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="pyros-chromium-")
        self.driver = start_chromium(self.profile)
        self.driver.set_page_load_timeout(limit(30.0))

    def open(self, url: str) -> None:
        """Load ``url`` and wait until NiceGUI's app is mounted."""
        self.driver.get(url)
        mounted = "return typeof mounted_app !== 'undefined' && !!mounted_app"
        self.wait_for(lambda: self.driver.execute_script(mounted))

    def find(self, testid: str) -> Any:
        """Return the element with ``data-testid`` ``testid`` (waiting for it)."""
        from selenium.webdriver.common.by import By

        selector = f'[data-testid="{testid}"]'
        return self.wait_for(lambda: self.driver.find_elements(By.CSS_SELECTOR, selector))[0]

    def present(self, testid: str) -> bool:
        """Return whether an element with ``data-testid`` ``testid`` is on the page now."""
        from selenium.webdriver.common.by import By

        return bool(self.driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))

    def text(self, testid: str) -> str:
        """Return the visible text of ``testid`` ("" when hidden)."""
        return str(self.find(testid).text)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Poll ``predicate`` until it returns something true; return it (else fail)."""
        deadline = time.monotonic() + limit(timeout)
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except Exception as exc:  # the page is still changing: try again
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.05)
        self.screenshot("failure")
        raise AssertionError(f"{what or predicate} not met in {limit(timeout)} s: last {last!r}")

    def replace_text(self, element: Any, text: str) -> None:
        """Select what an input holds and type ``text`` over it (as a user would: ``clear()``
        bypasses the page's own value)."""
        from selenium.webdriver.common.keys import Keys

        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.BACKSPACE)
        element.send_keys(text)

    def sign_in(self, base: str, token: str) -> None:
        """Open the sign-in page, type ``token``, press Sign in."""
        self.open(base + "/login")
        self.replace_text(self.find("token"), token)
        self.find("sign-in").click()

    def top_screenshot(self, name: str) -> Path:
        """Save a PNG of the top of the page (scrolled up first)."""
        self.driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        return self.screenshot(name)

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the page under :data:`SCREENSHOTS`; return its path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def full_screenshot(self, name: str) -> Path:
        """Save a PNG of the whole page height (the window grows to fit, then shrinks back)."""
        height = int(self.driver.execute_script("return document.body.scrollHeight"))
        self.driver.set_window_size(1400, min(max(height + 40, 1000), 4000))
        self.driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        try:
            return self.screenshot(name)
        finally:
            self.driver.set_window_size(1400, 1000)

    def close(self) -> None:
        """Quit Chromium and remove its profile."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


@contextmanager
def browser() -> Iterator[Browser]:
    """A Chromium for one test, quit after it."""
    require_browser()
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Announcing:
    """A ``python -m pyros ...`` process whose stdout is read until a line holds a marker."""

    def __init__(self, args: list[str], marker: str, log_path: Path, timeout: float = 60.0):
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyros", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        pending = b""  # read from the file descriptor itself: a buffered readline() can hold
        deadline = time.monotonic() + limit(timeout)  # lines back from select()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = raw.decode(errors="replace")
                    self.lines.append(line.rstrip())
                    if marker in line and not hasattr(self, "line"):
                        self.line = line
                if hasattr(self, "line"):
                    return
            elif self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{args[0]} did not announce {marker!r}: {self.lines}")

    def url(self) -> str:
        """Return the first ``http://...`` or ``ws://...`` URL of the announced line."""
        for word in self.line.split():
            if word.startswith(("http://", "ws://")):
                return word.rstrip("/")
        raise AssertionError(f"no URL in {self.line!r}")

    def stop(self) -> int:
        """SIGTERM, reap; keep the rest of the output in the log file; return the exit code."""
        code = stop_process(self.process, limit(15.0))
        assert self.process.stdout is not None
        rest = self.process.stdout.read()
        self.process.stdout.close()
        self.log_path.write_text("\n".join(self.lines) + "\n" + rest)
        return code
