"""The fleet dashboard's pages (NiceGUI) and its web server (``pyros dashboard``).

The dashboard is an operator of the relay, nothing more: each browser signs in with an
operator token, which the dashboard checks with the relay (``GET /api/devices``) and keeps in
memory, keyed by the browser's signed session cookie (NiceGUI's ``app.storage.browser`` id);
the token never appears in a URL. Everything a page shows or does goes through one
:class:`~pyros.dashboard.link.RelayLink` per token: rosbridge v2 at the relay's ``/`` and
``GET /api/devices``, so the relay's rules (which devices the token may read and command)
apply unchanged. A relay without a tokens file accepts only loopback clients; the dashboard
then serves only loopback browsers too (:class:`_LoopbackGuard`).

Pages: ``/login`` (sign in), ``/`` (the fleet: every device with its state and connection
quality, filtered by name) and ``/device/{id}`` (topics with live value trees, a time plot,
the 2D pose, images, and command, service and action forms where the token may command).
Elements carry ``data-testid`` attributes for the browser tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI
from nicegui import app as nicegui_app
from nicegui import background_tasks, ui
from nicegui.client import Client
from nicegui.events import JoystickEventArguments, KeyEventArguments, ValueChangeEventArguments
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pyros.cloud.auth import is_loopback
from pyros.dashboard.fleet import (
    IMAGE_TYPES,
    POSE_TYPES,
    Device,
    ImageError,
    TopicStream,
    extract_pose,
    fleet_rows,
    format_age,
    image_source,
    tree_node_ids,
    tree_nodes,
)
from pyros.dashboard.forms import (
    JSON_FIELD,
    KEY_TWISTS,
    FormField,
    build_message,
    joystick_twist,
    message_form,
    parse_field,
    service_form,
    twist,
)
from pyros.dashboard.link import (
    RelayLink,
    RelayUnreachableError,
    SignInError,
    fetch_devices,
    relay_is_open,
    relay_urls,
    tls_context,
)
from pyros.dashboard.rosbridge_client import GOAL_STATUS_NAMES, ActionResult, Status
from pyros.message_types import REGISTRY

__all__ = ["Dashboard", "serve", "TWIST_TYPES"]

log = logging.getLogger(__name__)

TWIST_TYPES = frozenset({"geometry_msgs/Twist", "geometry_msgs/msg/Twist"})
"""Command types that get a joystick and arrow keys."""

_FLUSH_PERIOD = 0.05  # seconds between two page refreshes of live values
_PLOT_PERIOD = 0.1  # seconds between two plot redraws
_IMAGE_THROTTLE_MS = 100  # images arrive at most 10 times a second
_TELEOP_PERIOD = 0.1  # seconds between two Twist commands while the joystick is held
_POSE_TRAIL = 600  # poses kept for the pose view's trail
_LINK_GRACE = 30.0  # seconds a link stays open after its last page closed

_KNOWN_COMMAND_TYPES = {"cmd_vel": "geometry_msgs/Twist"}


def _kind(type_name: str) -> str:
    return type_name.replace("/msg/", "/")


class Dashboard:
    """The dashboard's state: signed-in browsers and one relay link per token.

    Args:
        relay: ``ws://HOST:PORT`` or ``wss://HOST:PORT``.
        cafile: CA certificates (PEM) for a ``wss://`` relay.
        poll_interval: seconds between two ``GET /api/devices`` of each link.
    """

    def __init__(self, relay: str, *, cafile: str | None = None, poll_interval: float = 0.5):
        self.relay = relay
        self.urls = relay_urls(relay)
        self.cafile = cafile
        self.poll_interval = poll_interval
        self.relay_open: bool | None = None
        """Whether the relay has no tokens file (serves everyone on loopback); None unknown."""
        self.sessions: dict[str, str] = {}
        self._links: dict[str, RelayLink] = {}
        self._users: dict[str, int] = {}
        self._closers: dict[str, asyncio.TimerHandle] = {}
        self._watch: asyncio.Task[None] | None = None

    def _http(self) -> Any:
        import httpx

        verify: Any = tls_context(self.cafile) if self.urls.devices.startswith("https") else True
        return httpx.AsyncClient(verify=verify, timeout=5.0)

    async def start(self) -> None:
        """Start watching whether the relay needs tokens (every few seconds)."""
        self._watch = asyncio.create_task(self._watch_relay())

    async def stop(self) -> None:
        """Close every relay link."""
        if self._watch is not None:
            self._watch.cancel()
        for link in list(self._links.values()):
            await link.close()
        self._links.clear()

    async def _watch_relay(self) -> None:
        async with self._http() as http:
            while True:
                found = await relay_is_open(http, self.urls)
                if found is not None:
                    self.relay_open = found
                await asyncio.sleep(5.0)

    def allows(self, host: str | None) -> bool:
        """Return whether a browser at ``host`` may use the dashboard: any host once the relay
        is known to require tokens, else loopback hosts only."""
        return self.relay_open is False or is_loopback(host)

    async def sign_in(self, browser: str, token: str, host: str | None) -> None:
        """Check ``token`` with the relay and remember it for browser ``browser``.

        Raises:
            SignInError: the relay refused the token, or this relay has no tokens file and the
                browser is not on this machine.
            RelayUnreachableError: the relay did not answer.
        """
        async with self._http() as http:
            opened = await relay_is_open(http, self.urls)
            if opened is not None:
                self.relay_open = opened
            if not self.allows(host):
                raise SignInError(
                    "this relay has no tokens file: the dashboard serves browsers on the relay's "
                    "machine only"
                )
            await fetch_devices(http, self.urls, token.strip())
        self.sessions[browser] = token.strip()

    def sign_out(self, browser: str) -> None:
        """Forget browser ``browser``'s token."""
        self.sessions.pop(browser, None)

    def attach(self, token: str) -> RelayLink:
        """Return the running link of ``token`` (started on first use) for one more page."""
        closer = self._closers.pop(token, None)
        if closer is not None:
            closer.cancel()
        link = self._links.get(token)
        if link is None:
            link = self._links[token] = RelayLink(
                self.relay, token, cafile=self.cafile, poll_interval=self.poll_interval
            )
            link.start()
        self._users[token] = self._users.get(token, 0) + 1
        return link

    def detach(self, token: str) -> None:
        """Release one page's use of ``token``'s link; close it a while after the last."""
        self._users[token] = self._users.get(token, 1) - 1
        if self._users[token] <= 0 and token in self._links:
            loop = asyncio.get_running_loop()
            self._closers[token] = loop.call_later(_LINK_GRACE, self._close_link, token)

    def _close_link(self, token: str) -> None:
        self._closers.pop(token, None)
        if self._users.get(token, 0) <= 0:
            link = self._links.pop(token, None)
            if link is not None:
                background_tasks.create(link.close(), name="pyros-dashboard-close-link")


class _LoopbackGuard:
    """ASGI middleware: refuse the browsers the dashboard may not serve
    (:meth:`Dashboard.allows`), for pages and websockets alike."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            host = client[0] if client else None
            if not self.dashboard.allows(host):
                if scope["type"] == "http":
                    response = PlainTextResponse(
                        "this relay has no tokens file: the dashboard serves browsers on the "
                        "relay's machine only\n",
                        status_code=403,
                    )
                    await response(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


# --- pieces shared by the pages -----------------------------------------------------------------


def _browser_id() -> str:
    return str(nicegui_app.storage.browser["id"])


def _testid(element: ui.element, name: str) -> None:
    element.props(f'data-testid="{name}"')


def _header(dashboard: Dashboard, link: RelayLink, title: str) -> ui.label:
    with ui.header().classes("items-center gap-4 bg-slate-800"):
        ui.link("pyros fleet", "/").classes("text-white text-lg font-bold no-underline")
        ui.label(title).classes("text-white text-lg")
        ui.space()
        state = ui.label().classes("text-sm")
        _testid(state, "link-state")

        def sign_out() -> None:
            dashboard.sign_out(_browser_id())
            ui.navigate.to("/login")

        ui.button("Sign out", on_click=sign_out).props('flat color=white data-testid="sign-out"')
    return state


def _show_link_state(label: ui.label, link: RelayLink) -> None:
    state = link.state
    if state.connected and state.devices_error is None:
        label.set_text(f"relay {link.urls.display}: connected")
        label.classes(replace="text-sm text-green-300")
    else:
        why = state.error if not state.connected else state.devices_error
        label.set_text(f"relay {link.urls.display}: reconnecting ({why or 'connecting'})")
        label.classes(replace="text-sm text-amber-300")


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class _Form:
    """A generated form: one input per :class:`FormField`, read and marked together."""

    def __init__(self, type_name: str, fields: list[FormField], testid: str) -> None:
        self.type_name = type_name
        self.fields = fields
        self.inputs: dict[str, Any] = {}
        with ui.column().classes("w-full gap-1"):
            if not fields:
                ui.label(f"{type_name} has no fields").classes("text-sm text-grey-7")
            for field in fields:
                label = field.path or f"{type_name} as JSON"
                if field.kind == "json":
                    element: Any = ui.textarea(
                        label, value=field.default, validation=self._validator(field)
                    ).classes("w-full font-mono")
                else:
                    element = ui.input(
                        label, value=field.default, validation=self._validator(field)
                    ).classes("w-full")
                element.props(f'dense data-testid="{testid}-{field.path or "json"}"')
                self.inputs[field.path] = element

    @staticmethod
    def _validator(field: FormField) -> Callable[[Any], str | None]:
        def check(value: Any) -> str | None:
            try:
                parse_field(field, value if isinstance(value, str) else str(value))
            except ValueError as exc:
                return str(exc)
            return None

        return check

    def read(self, *, service: bool = False) -> dict[str, Any] | None:
        """Return the message, or None after marking every malformed field."""
        texts = {path: str(element.value) for path, element in self.inputs.items()}
        message, errors = build_message(self.type_name, self.fields, texts, service=service)
        for path, element in self.inputs.items():
            element.error = errors.get(path)
        if errors and JSON_FIELD in errors and JSON_FIELD not in self.inputs:
            ui.notify(f"not sent: {errors[JSON_FIELD]}", type="negative")
        return message


def _message_form(type_name: str, testid: str, service: bool = False) -> _Form:
    fields = service_form(type_name) if service else message_form(type_name)
    return _Form(type_name, fields, testid)


# --- the device page ----------------------------------------------------------------------------


@dataclass
class _Teleop:
    """What drives a Twist command topic now: the joystick position or held arrow keys."""

    joystick: tuple[float, float] = (0.0, 0.0)
    keys: set[str] = field(default_factory=set)
    active: bool = False


class _DeviceView:
    """Everything on one ``/device/{id}`` page, updated from the link's events."""

    def __init__(self, link: RelayLink, device_id: str, client: Client) -> None:
        self.link = link
        self.device_id = device_id
        self.client = client
        self.prefix = f"/{device_id}"
        self.topics: dict[str, str] = {}
        self.subscribed: set[str] = set()
        self.dirty: set[str] = set()
        self.plot_dirty = False
        self.trees: dict[str, ui.tree] = {}
        self.captions: dict[str, ui.expansion] = {}
        self.images: dict[str, tuple[ui.interactive_image, ui.label]] = {}
        self.pose_topic: str | None = None
        self.poses: deque[tuple[float, float]] = deque(maxlen=_POSE_TRAIL)
        self.pose_chart: ui.echart | None = None
        self.pose_text: ui.label | None = None
        self.commands_key: Any = None
        self.teleop: dict[str, Any] = {}
        self.stop_listening: Callable[[], None] | None = None
        self.closed = False

    # -- layout --

    def build(self) -> None:
        with ui.row().classes("w-full items-center gap-4"):
            self.state = ui.badge("loading").classes("text-base")
            _testid(self.state, "device-state")
            self.stale = ui.label("offline: last values shown are stale").classes(
                "text-amber-800 font-bold"
            )
            _testid(self.stale, "stale")
            self.stale.set_visibility(False)
            self.summary = ui.label().classes("text-sm text-grey-8")
            _testid(self.summary, "device-stats")
        self.values = ui.column().classes("w-full gap-4")
        with self.values:
            with ui.row().classes("w-full gap-4 items-start no-wrap"):
                with ui.card().classes("w-1/2 min-w-[420px]"):
                    ui.label("Topics").classes("text-lg font-bold")
                    self.topic_box = ui.column().classes("w-full gap-1")
                    _testid(self.topic_box, "topics")
                with ui.column().classes("w-1/2 gap-4"):
                    self.pose_box = ui.card().classes("w-full")
                    self.pose_box.set_visibility(False)
                    self.image_box = ui.card().classes("w-full")
                    self.image_box.set_visibility(False)
            with ui.card().classes("w-full"):
                self._build_plot()
        self.commands_box = ui.column().classes("w-full gap-4")
        with ui.card().classes("w-full"):
            ui.label("Relay messages").classes("text-lg font-bold")
            self.relay_log = ui.log(max_lines=200).classes("w-full h-24")
            _testid(self.relay_log, "relay-log")
        ui.timer(_FLUSH_PERIOD, self.flush)
        ui.timer(_PLOT_PERIOD, self.redraw_plot)
        ui.timer(1.0, self.refresh_rates)
        self.stop_listening = self.link.listen(self.on_event)
        self.client.on_delete(self.close)
        self.on_fleet()

    def _build_plot(self) -> None:
        ui.label("Plot").classes("text-lg font-bold")
        with ui.row().classes("w-full items-center gap-4"):
            self.plot_fields = ui.select(
                [], multiple=True, label="Fields (or click a number in a topic tree)"
            ).classes("min-w-[360px]")
            self.plot_fields.props('use-chips data-testid="plot-fields"')
            self.plot_window = ui.select(
                {
                    10: "last 10 s",
                    30: "last 30 s",
                    60: "last 60 s",
                    120: "last 2 min",
                    300: "last 5 min",
                },
                value=30,
                label="Window",
            ).props('data-testid="plot-window"')
            self.plot_pause = ui.switch("Pause").props('data-testid="plot-pause"')
        self.plot = ui.echart(
            {
                "animation": False,
                "legend": {"top": 0},
                "tooltip": {"trigger": "axis"},
                "grid": {"left": 60, "right": 20, "top": 30, "bottom": 30},
                "xAxis": {"type": "time"},
                "yAxis": {"type": "value", "scale": True},
                "series": [],
            }
        ).classes("w-full h-64")
        _testid(self.plot, "plot")
        self.plot_fields.on_value_change(lambda _: self._mark_plot())
        self.plot_window.on_value_change(lambda _: self._mark_plot())

    def _mark_plot(self) -> None:
        self.plot_dirty = True

    # -- events from the link --

    def on_event(self, kind: str, detail: Any) -> None:
        if self.closed:
            return
        if kind == "topic" and detail in self.subscribed:
            self.dirty.add(detail)
            self.plot_dirty = True
        elif kind == "fleet":
            self.on_fleet()
        elif kind == "link":
            self.on_fleet()
        elif kind == "status":
            self.on_status(detail)

    def on_status(self, status: Status) -> None:
        text = f"{status.level}: {status.msg}"
        self.relay_log.push(text)
        with self.values:
            ui.notify(f"relay {text}", type="negative" if status.level == "error" else "warning")

    def device(self) -> Device | None:
        return self.link.devices.get(self.device_id)

    def on_fleet(self) -> None:
        device = self.device()
        if device is None:
            known = self.link.state.devices_at is not None
            self.state.set_text("not visible" if known else "loading")
            self.state.props("color=grey-7")
            return
        online = device.online and self.link.state.connected
        self.state.set_text("online" if device.online else "offline")
        self.state.props(f"color={'positive' if device.online else 'grey-7'}")
        self.stale.set_visibility(not online)
        self.stale.set_text(
            "offline: last values shown are stale"
            if not device.online
            else "relay connection lost: last values shown are stale"
        )
        self.values.classes(
            add="opacity-50" if not online else "", remove="" if not online else "opacity-50"
        )
        stats = device.stats
        parts = [f"last seen {format_age(time.time() - device.last_seen)} ago"]
        for label, value, unit in (
            ("messages", stats.messages_per_s, "/s"),
            ("latency", stats.latency_ms, " ms"),
            ("bytes", stats.bytes_per_s, "/s"),
        ):
            if value is not None:
                parts.append(f"{label} {value:.1f}{unit}")
        parts.append(f"connector buffer {stats.buffered if stats.buffered is not None else '-'}")
        parts.append(f"dropped {stats.dropped if stats.dropped is not None else '-'}")
        if device.dropped_by_topic:
            parts.append(
                "offline drops "
                + ", ".join(f"{t}: {n}" for t, n in sorted(device.dropped_by_topic.items()))
            )
        self.summary.set_text(" | ".join(parts))
        if device.topics != self.topics:
            self.topics = dict(device.topics)
            background_tasks.create(self._resubscribe(), name="pyros-dashboard-subscribe")
        key = (
            device.may_command,
            tuple(sorted(device.commands.items())),
            tuple(device.command_globs),
            tuple(sorted(device.services.items())),
            tuple(sorted(device.actions.items())),
        )
        if key != self.commands_key:
            self.commands_key = key
            self._build_commands(device)

    # -- topics --

    async def _resubscribe(self) -> None:
        wanted = {self.prefix + topic: kind for topic, kind in self.topics.items()}
        for topic in sorted(self.subscribed - set(wanted)):
            self.subscribed.discard(topic)
            await self.link.unsubscribe(topic)
        for topic, kind in sorted(wanted.items()):
            if topic not in self.subscribed:
                throttle = _IMAGE_THROTTLE_MS if _kind(kind) in IMAGE_TYPES else 0
                await self.link.subscribe(topic, kind or None, throttle)
                self.subscribed.add(topic)
        if self.closed:
            return
        self._build_topics(wanted)
        self.dirty.update(topic for topic in wanted if topic in self.link.streams)

    def _build_topics(self, wanted: dict[str, str]) -> None:
        self.topic_box.clear()
        self.trees.clear()
        self.captions.clear()
        with self.topic_box:
            if not wanted:
                ui.label("no forwarded topics").classes("text-grey-7")
            for topic, kind in sorted(wanted.items()):
                local = topic[len(self.prefix) :]
                with (
                    ui.expansion(local, caption=kind or "type unknown", value=True)
                    .classes("w-full")
                    .props(f'dense data-testid="topic-{local}"') as expansion
                ):
                    tree = ui.tree([], label_key="label", node_key="id").props("dense")
                    _testid(tree, f"tree-{local}")
                    tree.on_select(lambda e, t=topic: self._plot_leaf(t, e))
                self.trees[topic] = tree
                self.captions[topic] = expansion
        pose = [t for t, kind in sorted(wanted.items()) if _kind(kind) in POSE_TYPES]
        self._build_pose(pose[0] if pose else None)
        self._build_images([t for t, kind in sorted(wanted.items()) if _kind(kind) in IMAGE_TYPES])

    def _plot_leaf(self, topic: str, event: ValueChangeEventArguments[Any]) -> None:
        path = event.value
        stream = self.link.streams.get(topic)
        if not path or stream is None or path not in stream.fields():
            return
        option = f"{topic[len(self.prefix) :]} {path}"
        self._refresh_plot_options()
        value = list(self.plot_fields.value or [])
        if option not in value:
            value.append(option)
            self.plot_fields.set_value(value)
        self.plot_dirty = True

    def flush(self) -> None:
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for topic in dirty:
            stream = self.link.streams.get(topic)
            if stream is None or stream.latest is None:
                continue
            tree = self.trees.get(topic)
            if tree is not None:
                first = not tree.props.get("nodes")
                tree.props["nodes"] = tree_nodes(stream.latest)
                if first:
                    tree.props["expanded"] = list(tree_node_ids(tree.props["nodes"]))
            if topic == self.pose_topic:
                self._update_pose(stream)
            if topic in self.images:
                self._update_image(topic, stream)

    def refresh_rates(self) -> None:
        now = time.time()
        for topic, expansion in self.captions.items():
            stream = self.link.streams.get(topic)
            kind = self.topics.get(topic[len(self.prefix) :]) or "type unknown"
            if stream is None or stream.stamp is None:
                expansion.props(f'caption="{kind} | no message yet"')
                continue
            limited = " (shown at most 10 Hz)" if _kind(stream.type) in IMAGE_TYPES else ""
            expansion.props(
                f'caption="{kind} | {stream.rate(now):.1f} Hz{limited} | '
                f'{format_age(now - stream.stamp)} ago"'
            )
        self._refresh_plot_options()

    # -- plot --

    def _refresh_plot_options(self) -> None:
        options: list[str] = []
        for topic in sorted(self.subscribed):
            stream = self.link.streams.get(topic)
            if stream is None or _kind(stream.type) in IMAGE_TYPES:
                continue
            local = topic[len(self.prefix) :]
            options.extend(f"{local} {path}" for path in stream.fields())
        for chosen in self.plot_fields.value or []:
            if chosen not in options:
                options.append(chosen)
        if options != self.plot_fields.options:
            self.plot_fields.set_options(options, value=self.plot_fields.value)

    def redraw_plot(self) -> None:
        if self.plot_pause.value or not self.plot_dirty:
            return
        self.plot_dirty = False
        now = time.time()
        window = float(self.plot_window.value or 30)
        series = []
        for chosen in self.plot_fields.value or []:
            local, _, path = str(chosen).partition(" ")
            stream = self.link.streams.get(self.prefix + local)
            if stream is None:
                continue
            data = [
                [round(stamp * 1000), value] for stamp, value in stream.series(path, now - window)
            ]
            series.append({"type": "line", "name": chosen, "showSymbol": False, "data": data})
        self.plot.options["series"] = series
        self.plot.options["xAxis"] = {
            "type": "time",
            "min": round((now - window) * 1000),
            "max": round(now * 1000),
        }
        self.plot.update()

    # -- pose --

    def _build_pose(self, topic: str | None) -> None:
        self.pose_box.clear()
        self.pose_topic = topic
        self.pose_box.set_visibility(topic is not None)
        if topic is None:
            return
        kind = _kind(self.topics.get(topic[len(self.prefix) :], ""))
        arena: dict[str, Any] = {"type": "value", "scale": True}
        if kind == "turtlesim/Pose":
            arena = {"type": "value", "min": 0, "max": 11.1}
        with self.pose_box:
            ui.label(f"Pose: {topic[len(self.prefix) :]}").classes("text-lg font-bold")
            self.pose_text = ui.label("no pose yet").classes("font-mono text-sm")
            _testid(self.pose_text, "pose-text")
            self.pose_chart = ui.echart(
                {
                    "animation": False,
                    "grid": {"left": 40, "right": 10, "top": 10, "bottom": 30},
                    "xAxis": dict(arena, name="x (m)"),
                    "yAxis": dict(arena, name="y (m)"),
                    "series": [
                        {
                            "type": "line",
                            "data": [],
                            "showSymbol": False,
                            "lineStyle": {"width": 1},
                        },
                        {"type": "scatter", "data": [], "symbol": "arrow", "symbolSize": 18},
                    ],
                }
            ).classes("w-[360px] h-[340px]")
            _testid(self.pose_chart, "pose-view")
        self.poses.clear()

    def _update_pose(self, stream: TopicStream) -> None:
        assert stream.latest is not None
        pose = extract_pose(stream.type, stream.latest)
        if pose is None or self.pose_chart is None or self.pose_text is None:
            return
        x, y, heading = pose
        self.poses.append((x, y))
        self.pose_text.set_text(
            f"x={x:.3f} m  y={y:.3f} m  heading={math.degrees(heading):.1f} deg"
        )
        series = self.pose_chart.options["series"]
        series[0]["data"] = [list(point) for point in self.poses]
        series[1]["data"] = [[x, y]]
        series[1]["symbolRotate"] = math.degrees(heading) - 90.0
        self.pose_chart.update()

    # -- images --

    def _build_images(self, topics: list[str]) -> None:
        self.image_box.clear()
        self.images.clear()
        self.image_box.set_visibility(bool(topics))
        with self.image_box:
            for topic in topics:
                local = topic[len(self.prefix) :]
                ui.label(f"Image: {local}").classes("text-lg font-bold")
                image = ui.interactive_image().classes("w-full max-w-[480px]")
                _testid(image, f"image-{local}")
                error = ui.label().classes("text-negative text-sm")
                self.images[topic] = (image, error)

    def _update_image(self, topic: str, stream: TopicStream) -> None:
        assert stream.latest is not None
        image, error = self.images[topic]
        try:
            image.set_source(image_source(stream.type, stream.latest))
            error.set_text("")
        except ImageError as exc:
            error.set_text(str(exc))

    # -- commands --

    def _build_commands(self, device: Device) -> None:
        self.commands_box.clear()
        self._stop_teleop()
        with self.commands_box:
            if not device.may_command:
                note = ui.label(
                    f"This token may read {device.id} but not command it: no command controls."
                ).classes("text-grey-8")
                _testid(note, "no-commands")
                return
            with ui.card().classes("w-full"):
                ui.label("Commands").classes("text-lg font-bold")
                _testid(self.commands_box, "commands")
                topics = dict(device.commands)
                for glob in device.command_globs:
                    if not any(char in glob for char in "*?[") and glob not in topics:
                        topics[glob] = device.command_topic_type(glob) or ""
                if not topics and not device.command_globs:
                    ui.label("no command topics").classes("text-grey-7")
                for topic, kind in sorted(topics.items()):
                    self._command_topic(topic, kind)
                patterns = [g for g in device.command_globs if any(c in g for c in "*?[")]
                if patterns:
                    self._command_topic("", "", patterns)
            if device.services:
                with ui.card().classes("w-full"):
                    ui.label("Services").classes("text-lg font-bold")
                    for service, kind in sorted(device.services.items()):
                        self._service(service, kind)
            if device.actions:
                with ui.card().classes("w-full"):
                    ui.label("Actions").classes("text-lg font-bold")
                    for action, kind in sorted(device.actions.items()):
                        self._action(action, kind)

    def _command_topic(self, topic: str, kind: str, patterns: list[str] | None = None) -> None:
        guess = kind or _KNOWN_COMMAND_TYPES.get(topic.rsplit("/", 1)[-1], "")
        testid = f"command-{topic or 'other'}"
        with (
            ui.expansion(topic or f"other topics matching {', '.join(patterns or [])}", value=True)
            .classes("w-full")
            .props(f'data-testid="{testid}"')
        ):
            with ui.row().classes("w-full items-center gap-4"):
                name = ui.input("Topic", value=topic).classes("min-w-[260px]")
                name.props(f'dense data-testid="{testid}-topic"')
                if topic:
                    name.props("readonly")
                type_select = ui.select(
                    REGISTRY.message_types(),
                    value=guess or None,
                    label="Type",
                    with_input=True,
                    new_value_mode="add-unique",
                ).classes("min-w-[260px]")
                type_select.props(f'dense data-testid="{testid}-type"')
            error = ui.label().classes("text-negative text-sm")
            _testid(error, f"{testid}-error")
            form_box = ui.column().classes("w-full")

            def build_form() -> None:
                form_box.clear()
                chosen = str(type_select.value or "")
                with form_box:
                    if not chosen:
                        ui.label("choose the message type").classes("text-grey-7")
                        return
                    if _kind(chosen) in TWIST_TYPES:
                        self._teleop(name, chosen, error, testid)
                    form = _message_form(chosen, testid)

                    async def send() -> None:
                        await self._publish(name.value, chosen, form, error)

                    ui.button("Publish", on_click=send).props(f'data-testid="{testid}-publish"')

            type_select.on_value_change(lambda _: build_form())
            build_form()

    async def _publish(self, topic: str, kind: str, form: _Form, error: ui.label) -> None:
        message = form.read()
        if message is None:
            error.set_text("not sent: fix the marked fields")
            return
        await self._send(topic, kind, message, error)

    async def _send(self, topic: str, kind: str, message: dict[str, Any], error: ui.label) -> None:
        if not topic.startswith("/"):
            error.set_text("not sent: the topic must be a name starting with /")
            return

        def refused(text: str) -> None:
            error.set_text(f"refused: {text}")

        try:
            await self.link.publish(self.prefix + topic, kind, message, on_error=refused)
            error.set_text("")
        except RelayUnreachableError as exc:
            error.set_text(f"not sent: {exc}")

    def _teleop(self, name: ui.input, kind: str, error: ui.label, testid: str) -> None:
        state = _Teleop()
        with ui.row().classes("items-center gap-6"):
            joystick = ui.joystick(color="#1976d2", size=110, mode="static").classes(
                "w-40 h-40 bg-slate-100"
            )
            _testid(joystick, f"{testid}-joystick")
            with ui.column():
                max_linear = ui.number("top speed m/s", value=2.0, min=0).props("dense")
                max_angular = ui.number("top turn rad/s", value=2.0, min=0).props("dense")
                ui.label("drag the joystick, or hold the arrow keys").classes("text-sm text-grey-7")
                sent = ui.label("").classes("font-mono text-sm")
                _testid(sent, f"{testid}-teleop")

        def current() -> dict[str, Any]:
            top_linear = float(max_linear.value or 0.0)
            top_angular = float(max_angular.value or 0.0)
            if state.keys:
                linear = sum(KEY_TWISTS[key][0] for key in state.keys) * top_linear
                angular = sum(KEY_TWISTS[key][1] for key in state.keys) * top_angular
                return twist(linear, angular)
            x, y = state.joystick
            return joystick_twist(x, y, top_linear, top_angular)

        async def tick() -> None:
            if not state.active:
                return
            message = current()
            sent.set_text(
                f"linear.x={message['linear']['x']:.2f} angular.z={message['angular']['z']:.2f}"
            )
            await self._send(name.value, kind, message, error)

        async def stop() -> None:
            state.active = False
            state.joystick = (0.0, 0.0)
            sent.set_text("stopped")
            await self._send(name.value, kind, twist(), error)

        def moved(event: JoystickEventArguments) -> None:
            state.joystick = (event.x or 0.0, event.y or 0.0)
            state.active = True

        async def released(_: JoystickEventArguments) -> None:
            await stop()

        async def key(event: KeyEventArguments) -> None:
            if event.key.name not in KEY_TWISTS:
                return
            if event.action.keydown:
                state.keys.add(event.key.name)
                state.active = True
                await tick()
            elif event.action.keyup:
                state.keys.discard(event.key.name)
                if not state.keys:
                    await stop()

        joystick.on_move(moved)
        joystick.on_end(released)
        if not self.teleop:  # the arrow keys drive the first Twist topic of the page
            ui.keyboard(on_key=key)
        timer = ui.timer(_TELEOP_PERIOD, tick)
        self.teleop[name.value] = timer

    def _stop_teleop(self) -> None:
        for timer in self.teleop.values():
            timer.cancel()
        self.teleop.clear()

    def _service(self, service: str, kind: str) -> None:
        testid = f"service-{service}"
        with (
            ui.expansion(service, caption=kind or "type unknown", value=True)
            .classes("w-full")
            .props(f'data-testid="{testid}"')
        ):
            form = _message_form(kind, testid, service=True)
            error = ui.label().classes("text-negative text-sm")
            _testid(error, f"{testid}-error")
            result = ui.label().classes("w-full font-mono whitespace-pre text-sm")
            _testid(result, f"{testid}-result")
            result.set_visibility(False)

            async def call() -> None:
                request = form.read(service=True)
                if request is None:
                    error.set_text("not sent: fix the marked fields")
                    return
                error.set_text("calling...")
                result.set_visibility(False)
                try:
                    ok, values = await self.link.call_service(self.prefix + service, request)
                except RelayUnreachableError as exc:
                    error.set_text(f"not sent: {exc}")
                    return
                if ok:
                    error.set_text("")
                    result.set_text(f"response: {_json_text(values)}")
                    result.set_visibility(True)
                else:
                    error.set_text(f"failed: {values}")

            ui.button("Call", on_click=call).props(f'data-testid="{testid}-call"')

    def _action(self, action: str, kind: str) -> None:
        testid = f"action-{action}"
        with (
            ui.expansion(action, caption=kind or "type unknown", value=True)
            .classes("w-full")
            .props(f'data-testid="{testid}"')
        ):
            goal_kind = kind.replace("/action/", "/") + "Goal" if kind else ""
            form = _message_form(goal_kind, testid)
            status = ui.label().classes("text-sm")
            _testid(status, f"{testid}-status")
            feedback = ui.log(max_lines=100).classes("w-full h-24")
            _testid(feedback, f"{testid}-feedback")
            handle: dict[str, Any] = {}

            def on_feedback(values: Any) -> None:
                feedback.push(json.dumps(values, default=str))

            def on_result(result: ActionResult) -> None:
                name = GOAL_STATUS_NAMES.get(result.status or 0, str(result.status))
                if result.ok:
                    status.set_text(f"{name}: {json.dumps(result.values, default=str)}")
                else:
                    status.set_text(f"failed ({name}): {result.values}")
                handle.clear()

            async def send() -> None:
                goal = form.read()
                if goal is None:
                    status.set_text("not sent: fix the marked fields")
                    return
                feedback.clear()
                try:
                    handle["goal"] = await self.link.send_goal(
                        self.prefix + action, kind, goal, on_feedback, on_result
                    )
                    status.set_text("goal sent")
                except RelayUnreachableError as exc:
                    status.set_text(f"not sent: {exc}")

            async def cancel() -> None:
                goal = handle.get("goal")
                if goal is None:
                    status.set_text("no goal in progress")
                    return
                try:
                    await self.link.cancel_goal(goal)
                    status.set_text("cancel requested")
                except RelayUnreachableError as exc:
                    status.set_text(f"cancel not sent: {exc}")

            with ui.row():
                ui.button("Send goal", on_click=send).props(f'data-testid="{testid}-send"')
                ui.button("Cancel goal", on_click=cancel).props(
                    f'outline data-testid="{testid}-cancel"'
                )

    # -- teardown --

    async def close(self) -> None:
        self.closed = True
        self._stop_teleop()
        if self.stop_listening is not None:
            self.stop_listening()
        for topic in list(self.subscribed):
            await self.link.unsubscribe(topic)
        self.subscribed.clear()


# --- pages --------------------------------------------------------------------------------------


def _pages(dashboard: Dashboard) -> None:
    @ui.page("/login", title="pyros fleet: sign in")
    def login() -> None:
        with ui.card().classes("absolute-center w-[440px]"):
            ui.label("pyros fleet dashboard").classes("text-xl font-bold")
            ui.label(f"relay {dashboard.relay}").classes("text-sm text-grey-7")
            if dashboard.relay_open:
                ui.label(
                    "This relay has no tokens file: it serves this machine only, and any token "
                    "(or none) signs in."
                ).classes("text-sm text-grey-8")
            token = ui.input("Operator token", password=True, password_toggle_button=True)
            token.classes("w-full").props('data-testid="token"')
            error = ui.label().classes("text-negative")
            _testid(error, "signin-error")
            client = ui.context.client

            async def submit() -> None:
                error.set_text("")
                try:
                    await dashboard.sign_in(_browser_id(), str(token.value or ""), client.ip)
                except (SignInError, RelayUnreachableError) as exc:
                    error.set_text(str(exc))
                    return
                ui.navigate.to("/")

            token.on("keydown.enter", submit)
            ui.button("Sign in", on_click=submit).props('data-testid="sign-in"')

    @ui.page("/", title="pyros fleet")
    def fleet() -> RedirectResponse | None:
        token = dashboard.sessions.get(_browser_id())
        if token is None:
            return RedirectResponse("/login")
        link = dashboard.attach(token)
        client = ui.context.client
        state = _header(dashboard, link, "Fleet")
        with ui.column().classes("w-full p-4 gap-2"):
            search = ui.input("Filter devices by name (text or glob)").classes("w-96")
            search.props('clearable data-testid="filter"')
            columns: list[dict[str, Any]] = [
                {"name": "id", "label": "Device", "field": "id", "sortable": True, "align": "left"},
                {"name": "online", "label": "State", "field": "online", "sortable": True},
                {"name": "last_seen", "label": "Last seen", "field": "last_seen"},
                {"name": "messages_per_s", "label": "Messages/s", "field": "messages_per_s"},
                {"name": "latency_ms", "label": "Latency ms", "field": "latency_ms"},
                {"name": "dropped", "label": "Dropped", "field": "dropped"},
                {"name": "buffered", "label": "Buffered", "field": "buffered"},
                {"name": "topics", "label": "Topics", "field": "topics"},
            ]
            table = ui.table(
                columns=columns, rows=[], row_key="id", pagination={"rowsPerPage": 0}
            ).classes("w-full")
            _testid(table, "fleet-table")
            table.add_slot(
                "body-cell-id",
                r"""<q-td :props="props"><a :href="'/device/' + encodeURIComponent(props.value)"
                class="text-primary font-bold" :data-testid="'device-link-' + props.value"
                >{{ props.value }}</a></q-td>""",
            )
            table.add_slot(
                "body-cell-online",
                r"""<q-td :props="props"><q-badge
                :color="props.value === 'online' ? 'positive' : 'grey-7'"
                :data-testid="'state-' + props.row.id">{{ props.value }}</q-badge></q-td>""",
            )
            note = ui.label().classes("text-grey-7")

        def refresh() -> None:
            _show_link_state(state, link)
            rows = fleet_rows(link.devices, str(search.value or ""), time.time())
            if rows != table.rows:
                table.rows = rows
            if link.state.devices_at is None:
                note.set_text("waiting for the relay's device list...")
            elif not link.devices:
                note.set_text("this token may read no device (or none has connected yet)")
            else:
                note.set_text("")

        def on_event(kind: str, _: Any) -> None:
            if kind in ("fleet", "link"):
                refresh()

        stop = link.listen(on_event)
        ui.timer(1.0, refresh)
        search.on_value_change(lambda _: refresh())
        refresh()

        def gone() -> None:
            stop()
            dashboard.detach(token)

        client.on_delete(gone)
        return None

    @ui.page("/device/{device_id}", title="pyros fleet: device")
    def device_page(device_id: str) -> RedirectResponse | None:
        token = dashboard.sessions.get(_browser_id())
        if token is None:
            return RedirectResponse("/login")
        link = dashboard.attach(token)
        client = ui.context.client
        state = _header(dashboard, link, f"Device {device_id}")
        with ui.column().classes("w-full p-4 gap-4"):
            view = _DeviceView(link, device_id, client)
            view.build()

        def on_event(kind: str, _: Any) -> None:
            if kind in ("fleet", "link"):
                _show_link_state(state, link)

        stop = link.listen(on_event)
        _show_link_state(state, link)

        def gone() -> None:
            stop()
            dashboard.detach(token)

        client.on_delete(gone)
        return None


def serve(
    relay: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    cafile: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    poll_interval: float = 0.5,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard until SIGINT or SIGTERM (what ``pyros dashboard`` does).

    Args:
        relay: the relay, ``ws://HOST:PORT`` or ``wss://HOST:PORT``.
        host: the address to serve browsers on (``127.0.0.1``: this machine only).
        port: the TCP port; 0 picks a free one.
        cafile: CA certificates (PEM) for a ``wss://`` relay with a self-signed certificate.
        certfile: serve HTTPS with this certificate (PEM), with ``keyfile``.
        keyfile: the private key of ``certfile``.
        poll_interval: seconds between two ``GET /api/devices``.
        announce: called once serving with ``"serving http://HOST:PORT/ for relay URL"``.

    Raises:
        ValueError: a malformed relay URL.
        OSError: the address cannot be bound.
    """
    relay_urls(relay)  # a malformed URL fails here, before anything starts
    dashboard = Dashboard(relay, cafile=cafile, poll_interval=poll_interval)
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.add_middleware(_LoopbackGuard, dashboard=dashboard)
    _pages(dashboard)
    nicegui_app.on_startup(dashboard.start)
    nicegui_app.on_shutdown(dashboard.stop)
    ui.run_with(
        web,
        title="pyros fleet",
        storage_secret=secrets.token_urlsafe(32),
        show_welcome_message=False,
        reconnect_timeout=10.0,
    )
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level="warning",
        ws="wsproto",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    server = uvicorn.Server(config)
    scheme = "https" if certfile else "http"

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if serving.done():
            serving.result()
            raise OSError(f"the dashboard could not listen on {host}:{port}")
        bound = server.servers[0].sockets[0].getsockname()[1]
        if announce is not None:
            announce(f"serving {scheme}://{host}:{bound}/ for relay {relay}")
        await serving

    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # handler that was installed before it: a no-op here, so a stop is a clean exit (0).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_signal)
    asyncio.run(main())


def _ignore_signal(signum: int, frame: object) -> None:
    """The handler uvicorn's re-raised stop signal lands on (see :func:`serve`)."""
