"""The fleet dashboard in a real Chromium, against a real relay, connectors and mock robots.

* the demo fleet (``pyros demo --dashboard``): sign in, the robots online, a pose changing, a
  plot of ``x``, driving with the joystick and with the Twist form, a malformed form value,
  calling ``/reset``;
* a relay with a tokens file and ``pyros dashboard`` beside it: a wrong token, a read-only
  token, a device going offline, the relay restarting.

Each view is saved as a screenshot (the run prints the directory).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cloud.connector_support import ConnectorProcess
from tests.cloud.relay_support import RelayProcess
from tests.dashboard.dashboard_support import Announcing, Browser, browser, require_browser
from tests.support import free_port, limit

pytestmark = [pytest.mark.dashboard, pytest.mark.slow]

POSE = re.compile(r"x=(-?[\d.]+) m\s+y=(-?[\d.]+) m")

TOKENS = {
    "devices": {"robot1": "robot1-secret"},
    "operators": {
        "op-all": {"read": ["*"], "command": ["*"]},
        "op-read": {"read": ["*"], "command": []},
    },
}


def pose(chromium: Browser) -> tuple[float, float]:
    match = POSE.search(chromium.text("pose-text"))
    assert match, chromium.text("pose-text")
    return float(match.group(1)), float(match.group(2))


def plotted_points(chromium: Browser) -> list[int]:
    """Return the number of points of each series of the device page's plot."""
    return chromium.driver.execute_script(
        "const chart = getElement(arguments[0]).chart;"
        "return chart.getOption().series.map(s => s.data.length);",
        chromium.find("plot"),
    )


def drag_joystick(chromium: Browser, dx: int, dy: int, seconds: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    joystick = chromium.find("command-/turtle1/cmd_vel-joystick")
    chromium.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", joystick)
    actions = ActionChains(chromium.driver)
    actions.move_to_element(joystick).click_and_hold().move_by_offset(dx, dy)
    actions.pause(seconds).release().perform()


def test_demo_fleet_sign_in_watch_plot_drive_reset(tmp_path: Path) -> None:
    require_browser()
    demo = Announcing(
        ["demo", "--dashboard", "--devices", "2", "--duration", str(limit(240))],
        "dashboard: open",
        tmp_path / "demo.log",
    )
    try:
        base = demo.url()
        with browser() as chromium:
            # A loopback relay without tokens file: an empty token signs in.
            chromium.sign_in(base, "")
            chromium.wait_for(lambda: chromium.driver.current_url.rstrip("/") == base)
            for robot in ("demo", "demo2"):
                chromium.wait_for(
                    lambda robot=robot: chromium.text(f"state-{robot}") == "online",
                    what=f"{robot} online",
                )
            chromium.wait_for(lambda: "connected" in chromium.text("link-state"))
            chromium.screenshot("fleet")
            filter_box = chromium.find("filter")
            filter_box.send_keys("demo2")
            chromium.wait_for(lambda: not chromium.present("state-demo"), what="filtered")
            assert chromium.present("state-demo2")

            # demo2 drives itself in circles: its pose changes by itself.
            chromium.open(base + "/device/demo2")
            chromium.wait_for(lambda: POSE.search(chromium.text("pose-text")))
            first = pose(chromium)
            chromium.wait_for(lambda: pose(chromium) != first, what="demo2's pose changes")
            chromium.wait_for(lambda: chromium.find("image-/camera/image/compressed"))

            # The robot the user drives.
            chromium.open(base + "/device/demo")
            chromium.wait_for(lambda: chromium.text("device-state") == "online")
            chromium.wait_for(lambda: POSE.search(chromium.text("pose-text")))
            start_x, start_y = pose(chromium)

            # Plot x: click the number in the topic's tree.
            leaf = chromium.wait_for(
                lambda: [
                    node
                    for node in chromium.find("tree-/turtle1/pose").find_elements(
                        "css selector", ".q-tree__node-header"
                    )
                    if node.text.startswith("x:")
                ]
            )[0]
            leaf.click()
            chromium.wait_for(lambda: "/turtle1/pose x" in chromium.text("plot-fields"))
            chromium.wait_for(lambda: plotted_points(chromium) and plotted_points(chromium)[0] > 5)

            # Drive forward with the joystick (the turtle faces +x at the start).
            drag_joystick(chromium, 0, -50, 2.0)
            chromium.wait_for(
                lambda: pose(chromium)[0] > start_x + 1.0, what="the joystick drives the turtle"
            )
            chromium.top_screenshot("device")
            chromium.full_screenshot("device-full")

            # /reset puts it back.
            chromium.find("service-/reset-call").click()
            chromium.wait_for(lambda: "response" in chromium.text("service-/reset-result"))
            chromium.wait_for(
                lambda: (
                    abs(pose(chromium)[0] - start_x) < 0.01
                    and abs(pose(chromium)[1] - start_y) < 0.01
                ),
                what="/reset puts the turtle back",
            )

            # A malformed Twist field: marked, nothing sent.
            linear_x = chromium.find("command-/turtle1/cmd_vel-linear.x")
            chromium.replace_text(linear_x, "fast")
            chromium.find("command-/turtle1/cmd_vel-publish").click()
            chromium.wait_for(lambda: "not sent" in chromium.text("command-/turtle1/cmd_vel-error"))
            marked = chromium.driver.execute_script(
                "return !!arguments[0].closest('.q-field--error')", linear_x
            )
            assert marked, "the malformed field is not marked"
            time.sleep(1.0)
            assert abs(pose(chromium)[0] - start_x) < 0.01, "a malformed command moved the turtle"
            chromium.screenshot("malformed-field")

            # The same form, fixed: 1.5 m/s for the 1 s a command lasts.
            chromium.replace_text(linear_x, "1.5")
            chromium.find("command-/turtle1/cmd_vel-publish").click()
            chromium.wait_for(
                lambda: pose(chromium)[0] > start_x + 0.5, what="the Twist form drives the turtle"
            )
            assert chromium.text("command-/turtle1/cmd_vel-error") == ""
    finally:
        code = demo.stop()
    assert code == 0, (tmp_path / "demo.log").read_text()
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


def test_tokens_read_only_offline_and_relay_restart(tmp_path: Path) -> None:
    require_browser()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    relay = RelayProcess(["--tokens", str(tokens)])
    port = relay.port
    connector_args = [
        "--relay", f"ws://127.0.0.1:{port}", "--device", "robot1", "--token", "robot1-secret",
        "--topics", "/turtle1/pose", "--commands", "/turtle1/cmd_vel", "--services", "/reset",
    ]  # fmt: skip
    connector = ConnectorProcess(connector_args, tmp_path / "connector1.log")
    dashboard = Announcing(
        ["dashboard", "--relay", f"ws://127.0.0.1:{port}", "--port", "0"],
        "serving",
        tmp_path / "dashboard.log",
    )
    try:
        base = dashboard.url()
        with browser() as chromium:
            # A wrong token: a clear error, still on the sign-in page.
            chromium.sign_in(base, "not-a-token")
            chromium.wait_for(lambda: "unknown operator token" in chromium.text("signin-error"))
            assert chromium.driver.current_url.endswith("/login")
            chromium.screenshot("sign-in-wrong-token")

            # A read-only token: the device's values, no command controls.
            chromium.sign_in(base, "op-read")
            chromium.wait_for(lambda: chromium.driver.current_url.rstrip("/") == base)
            assert "token" not in chromium.driver.current_url
            chromium.open(base + "/device/robot1")
            chromium.wait_for(lambda: POSE.search(chromium.text("pose-text")))
            chromium.find("no-commands")
            assert not chromium.present("commands")
            assert not chromium.present("command-/turtle1/cmd_vel-joystick")
            assert not chromium.present("service-/reset-call")
            chromium.screenshot("device-read-only")
            chromium.find("sign-out").click()
            chromium.wait_for(lambda: chromium.driver.current_url.endswith("/login"))

            chromium.sign_in(base, "op-all")
            chromium.wait_for(lambda: chromium.driver.current_url.rstrip("/") == base)
            chromium.open(base + "/device/robot1")
            chromium.find("service-/reset-call")
            chromium.wait_for(lambda: POSE.search(chromium.text("pose-text")))
            chromium.driver.execute_script("window.pyrosTestMarker = 'same page'")

            # The device goes offline: marked within 2 s, its last values kept.
            last = chromium.text("pose-text")
            connector.stop()
            gone = time.monotonic()
            chromium.wait_for(
                lambda: chromium.text("device-state") == "offline" and chromium.text("stale"),
                timeout=2.0,
                what="offline and stale within 2 s",
            )
            offline_after = time.monotonic() - gone
            assert chromium.text("pose-text") == last
            chromium.screenshot("device-offline-stale")

            # The relay restarts (same port): the page reconnects by itself.
            relay.stop()
            chromium.wait_for(lambda: "reconnecting" in chromium.text("link-state"))
            # RelayProcess passes --port 0 first; click keeps the last --port.
            relay = RelayProcess(["--tokens", str(tokens), "--port", str(port)])
            assert relay.port == port
            connector = ConnectorProcess(connector_args, tmp_path / "connector2.log")
            chromium.wait_for(
                lambda: "connected" in chromium.text("link-state"), timeout=15.0, what="relinked"
            )
            chromium.wait_for(lambda: chromium.text("device-state") == "online", timeout=15.0)
            chromium.wait_for(lambda: not chromium.text("stale"))
            chromium.find("service-/reset-call").click()
            chromium.wait_for(lambda: "response" in chromium.text("service-/reset-result"))
            assert chromium.driver.execute_script("return window.pyrosTestMarker") == "same page"
            print(f"offline shown after {offline_after:.2f} s")
    finally:
        connector.stop()
        dashboard_code = dashboard.stop()
        relay.stop()
    assert dashboard_code == 0, (tmp_path / "dashboard.log").read_text()
    assert "Traceback" not in (tmp_path / "dashboard.log").read_text()


def test_relay_dashboard_flag_serves_and_redirects(tmp_path: Path) -> None:
    require_browser()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    port = free_port()
    relay = Announcing(
        ["relay", "--port", str(port), "--tokens", str(tokens), "--dashboard",
         "--dashboard-port", "0"],
        "listening on",
        tmp_path / "relay.log",
    )  # fmt: skip
    try:
        dashboard_line = next(line for line in relay.lines if "dashboard on" in line)
        dashboard_url = dashboard_line.split("dashboard on", 1)[1].split()[0].rstrip("/")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
        try:
            opener.open(f"http://127.0.0.1:{port}/dashboard", timeout=limit(5.0))
            raise AssertionError("GET /dashboard did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
            assert exc.headers["Location"].rstrip("/") == dashboard_url
        with browser() as chromium:
            chromium.open(f"http://127.0.0.1:{port}/dashboard")
            chromium.wait_for(lambda: chromium.driver.current_url.startswith(dashboard_url))
            chromium.sign_in(dashboard_url, "op-all")
            chromium.wait_for(lambda: chromium.driver.current_url.rstrip("/") == dashboard_url)
            chromium.find("fleet-table")
    finally:
        code = relay.stop()
    assert code == 0, (tmp_path / "relay.log").read_text()
