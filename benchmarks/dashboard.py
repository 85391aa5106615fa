"""The fleet dashboard's cost: ``python -m benchmarks.dashboard OUTPUT_DIR [--quick]``.

One relay (``pyros relay``, no tokens file, loopback), a swarm of devices (one asyncio process,
:func:`swarm`) each publishing ``/stamp`` (``std_msgs/Int64``: the wall-clock send time in
milliseconds) at a fixed rate, and a measuring operator (:func:`operator`, a plain rosbridge v2
websocket client in its own process) subscribed to every device's ``/stamp``: the relay's
device-to-operator latency is its receive time minus the stamp. Two runs, side by side:

* ``without``: relay, swarm, measuring operator;
* ``with``: the same plus ``pyros dashboard`` and Debian's headless Chromium showing the fleet
  view in one tab and the first device's view in another. In that tab a MutationObserver on
  the ``/stamp`` tree reads each value the page shows: the page's update lag is
  ``Date.now()`` minus the value (the browser and the devices share this machine's clock).

Figures are reported (``dashboard.json``, ``dashboard.md`` in OUTPUT_DIR), never asserted. The
targets of issue 14: the relay's p99 with the dashboard within 1.2x of the p99 without it, and
the page's lag under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
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


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


# --- the processes (each runs as ``python -m benchmarks.dashboard --role ...``) ----------------


async def swarm(port: int, devices: int, rate: float, seconds: float) -> None:
    """Connect ``devices`` devices, print ``ready``, wait for ``go``, publish for ``seconds``."""
    from websockets.asyncio.client import connect

    from pyros.cloud import device_protocol as dp

    links = []
    for index in range(devices):
        name = f"dev{index:03d}"
        ws = await connect(
            f"ws://127.0.0.1:{port}{dp.DEVICE_PATH}",
            additional_headers=dp.handshake_headers(name, "t"),
            max_queue=None,
        )
        await ws.send(
            dp.encode(dp.hello(name, f"bench-{name}", topics={"/stamp": "std_msgs/Int64"}))
        )
        await ws.recv()
        links.append(ws)

    async def drain(ws: Any) -> None:
        async for _ in ws:  # acks
            pass

    readers = [asyncio.create_task(drain(ws)) for ws in links]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1

    async def publish(index: int, ws: Any) -> None:
        offset = index / (devices * rate)  # spread the devices over one period
        for seq in range(1, int(rate * seconds) + 1):
            delay = start + offset + (seq - 1) / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = {"data": int(time.time() * 1000)}
            await ws.send(dp.encode(dp.publish("/stamp", msg, seq)))

    await asyncio.gather(*(publish(i, ws) for i, ws in enumerate(links)))
    await asyncio.sleep(0.5)
    for reader in readers:
        reader.cancel()
    for ws in links:
        await ws.close()
    print("done", flush=True)


async def operator(port: int, devices: int, seconds: float) -> None:
    """Subscribe every device's ``/stamp``; print the latencies (ms) as one JSON line."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    async with connect(f"ws://127.0.0.1:{port}/", max_queue=None) as ws:
        for index in range(devices):
            topic = f"/dev{index:03d}/stamp"
            await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            now = time.time() * 1000
            message = json.loads(frame)
            if message.get("op") == "publish":
                latencies.append(now - message["msg"]["data"])
    print(json.dumps(latencies), flush=True)


# --- the orchestrator ------------------------------------------------------------------------


class Child:
    """A ``python -m ...`` child whose stdout is read line by line."""

    def __init__(self, args: list[str], stdin: bool = False) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def line(self, marker: str, timeout: float = 60.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                text = self.process.stdout.readline()
                if not text:
                    break
                if marker in text:
                    return text.strip()
        raise RuntimeError(f"{self.process.args} did not print {marker!r}")

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


_OBSERVE = """
const tree = document.querySelector('[data-testid="tree-/stamp"]');
window.pyrosLags = [];
new MutationObserver(() => {
  const match = /data: (\\d+)/.exec(tree.textContent);
  if (match) window.pyrosLags.push(Date.now() - Number(match[1]));
}).observe(tree, {subtree: true, childList: true, characterData: true});
return !!tree;
"""


def open_dashboard(url: str, profile: str) -> Any:
    """Chromium with the fleet view in one tab and dev000's view in another."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options
    )
    driver.get(url + "/login")
    deadline = time.monotonic() + 30
    while not driver.find_elements(By.CSS_SELECTOR, '[data-testid="token"]'):
        if time.monotonic() > deadline:
            raise RuntimeError("no sign-in page")
        time.sleep(0.1)
    driver.find_element(By.CSS_SELECTOR, '[data-testid="sign-in"]').click()
    while not driver.find_elements(By.CSS_SELECTOR, '[data-testid="fleet-table"]'):
        if time.monotonic() > deadline:
            raise RuntimeError("no fleet view")
        time.sleep(0.1)
    driver.switch_to.new_window("tab")
    driver.get(url + "/device/dev000")
    while not driver.find_elements(By.CSS_SELECTOR, '[data-testid="tree-/stamp"]'):
        if time.monotonic() > deadline:
            raise RuntimeError("no device view")
        time.sleep(0.1)
    return driver


def run_once(devices: int, rate: float, seconds: float, dashboard: bool) -> dict[str, Any]:
    """One run; return its figures."""
    relay = Child(["pyros", "relay", "--port", "0", "--log-level", "error"])
    children = [relay]
    driver = None
    profile = tempfile.mkdtemp(prefix="pyros-bench-chromium-")
    try:
        url = relay.line("listening on").split("listening on", 1)[1].strip()
        port = int(url.rsplit(":", 1)[1])
        args = ["benchmarks.dashboard", "--role"]
        fleet = Child([*args, "swarm", str(port), str(devices), str(rate), str(seconds)], True)
        children.append(fleet)
        fleet.line("ready")
        if dashboard:
            board = Child(["pyros", "dashboard", "--relay", url, "--port", "0"])
            children.append(board)
            board_url = board.line("serving").split("serving", 1)[1].split()[0].rstrip("/")
            driver = open_dashboard(board_url, profile)
            driver.execute_script(_OBSERVE)
        watcher = Child([*args, "operator", str(port), str(devices), str(seconds + 3)])
        children.append(watcher)
        watcher.line("ready")
        fleet.send("go")
        fleet.line("done", timeout=seconds + 60)
        latencies = json.loads(watcher.line("[", timeout=30))
        lags: list[float] = []
        if driver is not None:
            lags = [float(value) for value in driver.execute_script("return window.pyrosLags")]
        expected = devices * int(rate * seconds)
        result = {
            "dashboard": dashboard,
            "received": len(latencies),
            "expected": expected,
            "relay_p50_ms": percentile(latencies, 0.5),
            "relay_p99_ms": percentile(latencies, 0.99),
            "relay_max_ms": max(latencies) if latencies else math.nan,
        }
        if dashboard:
            result.update(
                {
                    "page_updates": len(lags),
                    "page_lag_p50_ms": percentile(lags, 0.5),
                    "page_lag_p99_ms": percentile(lags, 0.99),
                    "page_lag_mean_ms": statistics.fmean(lags) if lags else math.nan,
                }
            )
        return result
    finally:
        if driver is not None:
            driver.quit()
        for child in reversed(children):
            child.stop()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; write ``dashboard.json`` and ``dashboard.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("output", nargs="?", type=Path)
    parser.add_argument("--quick", action="store_true", help="10 s runs instead of 30 s")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s per device")
    parser.add_argument("--rounds", type=int, default=2, help="alternating pairs of runs")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.role:
        role, *args = options.role
        if role == "swarm":
            asyncio.run(swarm(int(args[0]), int(args[1]), float(args[2]), float(args[3])))
        else:
            asyncio.run(operator(int(args[0]), int(args[1]), float(args[2])))
        return 0
    if options.output is None:
        parser.error("OUTPUT directory required")
    seconds = 10.0 if options.quick else 30.0
    runs = []
    for _ in range(options.rounds):  # alternate, so drift on a shared machine hits both
        for dashboard in (False, True):
            runs.append(run_once(options.devices, options.rate, seconds, dashboard))
            print(json.dumps(runs[-1]), flush=True)
    without = [r for r in runs if not r["dashboard"]]
    with_ = [r for r in runs if r["dashboard"]]
    p99_without = statistics.median(r["relay_p99_ms"] for r in without)
    p99_with = statistics.median(r["relay_p99_ms"] for r in with_)
    summary = {
        "devices": options.devices,
        "rate_hz": options.rate,
        "seconds": seconds,
        "relay_p99_without_ms": p99_without,
        "relay_p99_with_ms": p99_with,
        "p99_ratio": p99_with / p99_without,
        "page_lag_p50_ms": statistics.median(r["page_lag_p50_ms"] for r in with_),
        "page_lag_p99_ms": statistics.median(r["page_lag_p99_ms"] for r in with_),
        "runs": runs,
    }
    options.output.mkdir(parents=True, exist_ok=True)
    (options.output / "dashboard.json").write_text(json.dumps(summary, indent=2))
    table = [
        f"Fleet dashboard: {options.devices} devices at {options.rate:g} Hz, {seconds:g} s runs, "
        f"{options.rounds} alternating pairs (medians of the runs)",
        "",
        "| | relay device-to-operator p50 | p99 | page update lag p50 | p99 |",
        "|---|---|---|---|---|",
        f"| without dashboard | {statistics.median(r['relay_p50_ms'] for r in without):.1f} ms "
        f"| {p99_without:.1f} ms | | |",
        f"| dashboard open (fleet + device tab) | "
        f"{statistics.median(r['relay_p50_ms'] for r in with_):.1f} ms | {p99_with:.1f} ms | "
        f"{summary['page_lag_p50_ms']:.1f} ms | {summary['page_lag_p99_ms']:.1f} ms |",
        "",
        f"p99 ratio with/without: {summary['p99_ratio']:.2f} (target <= 1.2); page lag p99 "
        f"target < 100 ms.",
    ]
    (options.output / "dashboard.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
