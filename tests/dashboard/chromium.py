"""A headless Chromium driven by selenium: Debian's ``chromium`` and ``chromium-driver``.

Shared by the dashboard's browser tests (:mod:`tests.dashboard.dashboard_support`) and the
dashboard benchmark (``benchmarks/dashboard.py``). Chromium starts headless with no sandbox, no
GPU, no background networking, no component updates, no sync, no first-run page, and the
profile directory it is given (a fresh one keeps cookies from surviving between uses).
"""

from __future__ import annotations

import shutil
from typing import Any

__all__ = ["CHROMIUM", "CHROMEDRIVER", "CHROMIUM_FLAGS", "start_chromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]


def start_chromium(profile: str) -> Any:
    """Start Chromium with :data:`CHROMIUM_FLAGS` and ``profile`` as its user data directory.

    Returns:
        Its ``selenium.webdriver.Chrome``; ``quit()`` it when done.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
