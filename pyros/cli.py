"""The ``pyros`` command.

Each command either spawns a node for its own use (``--backend`` plus backend options and
``--topics/--services/--params`` patterns, everything exposed by default) or uses a running
shared node (``--name``). Messages are read and printed as JSON; ``bytes`` fields print as
base64 strings (the form rosbridge uses for ``uint8[]``, see the rosbridge v2 protocol).

Exit codes: 0 success, 1 a pyros error (printed on stderr), 2 bad usage.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

import pyros
from pyros.exceptions import PyrosError

__all__ = ["main", "cli"]

F = TypeVar("F", bound=Callable[..., Any])


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> str:
    """Format plain data as one line of JSON, bytes as base64."""
    return json.dumps(value, default=_json_default, sort_keys=False)


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=what) from exc


def _node_options(func: F) -> F:
    """Add the options that choose a node: a backend to spawn, or ``--name``."""
    options = [
        click.option("--name", help="Use the running shared node of this name."),
        click.option("--backend", default="mock", show_default=True, help="Backend to spawn."),
        click.option("--master-uri", help="ros1: ROS master URI (else ROS_MASTER_URI)."),
        click.option("--domain-id", type=int, help="ros2: ROS_DOMAIN_ID."),
        click.option("--url", help="rosbridge: websocket URL of the rosbridge server."),
        click.option("--topics", multiple=True, help="Topic glob to expose (repeat). Default *."),
        click.option("--services", multiple=True, help="Service glob to expose. Default *."),
        click.option("--params", multiple=True, help="Parameter glob to expose. Default *."),
        click.option("--ready-timeout", type=float, default=10.0, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _backend_options(
    master_uri: str | None, domain_id: int | None, url: str | None
) -> dict[str, Any]:
    """Return the backend options that were given on the command line."""
    given = {"master_uri": master_uri, "domain_id": domain_id, "url": url}
    return {key: value for key, value in given.items() if value is not None}


@contextmanager
def _open_client(options: dict[str, Any]) -> Iterator[pyros.Client]:
    """Spawn a node from the command's options, or connect to ``--name``; close it after."""
    if options["name"]:
        client = pyros.connect(options["name"])
    else:
        client = pyros.spawn(
            options["backend"],
            topics=options["topics"] or ("*",),
            services=options["services"] or ("*",),
            params=options["params"] or ("*",),
            ready_timeout=options["ready_timeout"],
            **_backend_options(options["master_uri"], options["domain_id"], options["url"]),
        )
    with client:
        yield client


class _Group(click.Group):
    """Turns pyros errors into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PyrosError as exc:
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(pyros.__version__, prog_name="pyros")
def cli() -> None:
    """Use a ROS robot from the command line, through a pyros node."""


@cli.command()
@_node_options
def topics(**options: Any) -> None:
    """List exposed topics and their types."""
    with _open_client(options) as client:
        for name, type_name in sorted(client.topics().items()):
            click.echo(f"{name}\t{type_name}")


@cli.command()
@_node_options
def services(**options: Any) -> None:
    """List exposed services and their types."""
    with _open_client(options) as client:
        for name, type_name in sorted(client.services().items()):
            click.echo(f"{name}\t{type_name}")


@cli.command()
@click.argument("topic")
@click.option("-n", "--count", type=int, default=0, help="Exit after COUNT messages (0: never).")
@click.option("--timeout", type=float, default=None, help="Exit 1 if no message for this long.")
@_node_options
def echo(topic: str, count: int, timeout: float | None, **options: Any) -> None:
    """Print the messages of TOPIC, one JSON object per line."""
    options["topics"] = options["topics"] or (topic,)
    with _open_client(options) as client, client.subscribe(topic) as subscription:
        received = 0
        while not count or received < count:
            message = subscription.get(timeout=timeout)
            click.echo(_dumps(message))
            received += 1


@cli.command()
@click.argument("topic")
@click.argument("message")
@click.option("--type", "type_name", help="Message type pkg/Type (needed for a new topic).")
@click.option("--rate", type=float, default=0.0, help="Publish at this rate in Hz until Ctrl-C.")
@_node_options
def pub(topic: str, message: str, type_name: str | None, rate: float, **options: Any) -> None:
    """Publish MESSAGE (JSON) on TOPIC, once or at --rate Hz."""
    data = _parse_json(message, "MESSAGE")
    options["topics"] = options["topics"] or (topic,)
    with _open_client(options) as client:
        client.publish(topic, data, type=type_name)
        if rate > 0:
            period = 1.0 / rate
            next_time = time.monotonic() + period
            try:
                while True:
                    time.sleep(max(0.0, next_time - time.monotonic()))
                    client.publish(topic, data, type=type_name)
                    next_time += period
            except KeyboardInterrupt:
                pass


@cli.command()
@click.argument("service")
@click.argument("request", required=False)
@click.option("--timeout", type=float, default=5.0, show_default=True)
@_node_options
def call(service: str, request: str | None, timeout: float, **options: Any) -> None:
    """Call SERVICE with REQUEST (JSON, default {}) and print the response."""
    data = _parse_json(request, "REQUEST") if request else None
    options["services"] = options["services"] or (service,)
    with _open_client(options) as client:
        click.echo(_dumps(client.call(service, data, timeout=timeout)))


@cli.group()
def param() -> None:
    """Get or set parameters."""


@param.command("get")
@click.argument("param_name", metavar="NAME")
@_node_options
def param_get(param_name: str, **options: Any) -> None:
    """Print parameter NAME as JSON."""
    with _open_client(options) as client:
        try:
            value = client.get_param(param_name)
        except KeyError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(_dumps(value))


@param.command("set")
@click.argument("param_name", metavar="NAME")
@click.argument("value")
@_node_options
def param_set(param_name: str, value: str, **options: Any) -> None:
    """Set parameter NAME to VALUE (JSON)."""
    data = _parse_json(value, "VALUE")
    with _open_client(options) as client:
        client.set_param(param_name, data)


@cli.group()
def node() -> None:
    """Start, stop and list shared nodes."""


@node.command("start")
@click.argument("name")
@click.option("--backend", default="mock", show_default=True)
@click.option("--master-uri")
@click.option("--domain-id", type=int)
@click.option("--url")
@click.option("--topics", multiple=True, help="Topic glob to expose (repeat).")
@click.option("--services", multiple=True, help="Service glob to expose (repeat).")
@click.option("--params", multiple=True, help="Parameter glob to expose (repeat).")
@click.option(
    "--idle-timeout", type=float, default=None, help="Exit after this many seconds with no client."
)
@click.option("--ready-timeout", type=float, default=10.0, show_default=True)
def node_start(
    name: str,
    backend: str,
    master_uri: str | None,
    domain_id: int | None,
    url: str | None,
    topics: tuple[str, ...],
    services: tuple[str, ...],
    params: tuple[str, ...],
    idle_timeout: float | None,
    ready_timeout: float,
) -> None:
    """Start shared node NAME in the background; return once it is ready."""
    from pyros._shared import start_shared

    report = start_shared(
        name,
        backend,
        topics=topics,
        services=services,
        params=params,
        idle_timeout=idle_timeout,
        ready_timeout=ready_timeout,
        **_backend_options(master_uri, domain_id, url),
    )
    click.echo(f"started {report['name']} (pid {report['pid']}, {report['graph_name']})")


@node.command("stop")
@click.argument("name")
@click.option("--timeout", type=float, default=10.0, show_default=True)
def node_stop(name: str, timeout: float) -> None:
    """Stop shared node NAME and wait until it has exited."""
    from pyros._shared import stop_shared

    stop_shared(name, timeout=timeout)
    click.echo(f"stopped {name}")


@node.command("list")
def node_list() -> None:
    """List running nodes: name, pid, backend."""
    from pyros._shared import list_nodes

    for entry in list_nodes():
        shared = "shared" if entry.get("shared") else "owned"
        click.echo(f"{entry['name']}\t{entry['pid']}\t{entry['backend']}\t{shared}")


@node.command("status")
@click.argument("name")
def node_status(name: str) -> None:
    """Print the status of node NAME as JSON."""
    with pyros.connect(name) as client:
        click.echo(json.dumps(client.info(), indent=2, sort_keys=True))


class _ManyValuesCommand(click.Command):
    """A command whose list options also take several values after one flag.

    ``--topics /a /b --commands /c`` is read as ``--topics /a --topics /b --commands /c`` (the
    ``GLOB...`` form of the design), and the repeated form works as in the other commands.
    """

    many = ("--topics", "--commands", "--services", "--listen", "--rate")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        current: str | None = None
        for arg in args:
            flag = arg.split("=", 1)[0]
            if arg.startswith("-"):
                current = flag if flag in self.many else None
                expanded.append(arg)
            elif current is not None and expanded and expanded[-1] != current:
                expanded.extend((current, arg))
            else:
                expanded.append(arg)
        return super().parse_args(ctx, expanded)


@cli.command(cls=_ManyValuesCommand)
@click.option("--relay", required=True, help="Relay URL: ws://HOST:PORT or wss://HOST:PORT.")
@click.option("--device", required=True, help="This robot's device id at the relay.")
@click.option(
    "--token",
    required=True,
    envvar="PYROS_DEVICE_TOKEN",
    help="The device's token (or set PYROS_DEVICE_TOKEN, which ps does not show).",
)
@click.option("--name", help="Use the running shared node of this name instead of spawning.")
@click.option("--backend", default="mock", show_default=True, help="Backend to spawn.")
@click.option("--master-uri", help="ros1: ROS master URI (else ROS_MASTER_URI).")
@click.option("--domain-id", type=int, help="ros2: ROS_DOMAIN_ID.")
@click.option("--url", help="rosbridge: websocket URL of the rosbridge server.")
@click.option("--topics", multiple=True, help="Glob of topics to forward (repeat).")
@click.option("--commands", multiple=True, help="Glob of topics operators may publish to.")
@click.option("--services", multiple=True, help="Glob of services operators may call.")
@click.option(
    "--listen",
    multiple=True,
    help="Glob of other devices' topics (/robot2/chat, /*/chat) to publish on this robot.",
)
@click.option(
    "--rate", "rates", multiple=True, metavar="TOPIC=HZ", help="Forward TOPIC (a glob) at most HZ."
)
@click.option(
    "--buffer",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Messages kept while the relay is unreachable (the oldest are dropped and counted).",
)
@click.option(
    "--buffer-bytes",
    type=click.IntRange(min=1),
    default=64 << 20,
    show_default=True,
    help="The same bound in bytes of JSON (about).",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="Larger messages are not forwarded (counted as dropped); at most the relay's limit.",
)
@click.option(
    "--cafile",
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificates (PEM) for a wss:// relay with a self-signed certificate.",
)
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--call-timeout", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--ready-timeout", type=float, default=10.0, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def connector(
    relay: str,
    device: str,
    token: str,
    name: str | None,
    backend: str,
    master_uri: str | None,
    domain_id: int | None,
    url: str | None,
    topics: tuple[str, ...],
    commands: tuple[str, ...],
    services: tuple[str, ...],
    listen: tuple[str, ...],
    rates: tuple[str, ...],
    buffer: int,
    buffer_bytes: int,
    max_message_bytes: int,
    cafile: str | None,
    poll_interval: float,
    call_timeout: float,
    ready_timeout: float,
    log_level: str,
) -> None:
    """Forward a robot's topics to a relay and take commands from it, until Ctrl-C.

    Reconnects by itself; exits 1 if the relay refuses the token or another connector takes
    over the device id.
    """
    import asyncio
    import logging

    from pyros.cloud.connector import parse_rate, run_connector, run_until_signal

    try:
        rate_limits = dict(parse_rate(text) for text in rates)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate") from exc
    logging.basicConfig(
        level=log_level.upper(), format="pyros connector: %(levelname)s: %(message)s"
    )
    asyncio.run(
        run_until_signal(
            run_connector(
                relay=relay,
                device=device,
                token=token,
                backend=backend,
                name=name,
                topics=topics,
                commands=commands,
                services=services,
                listen=listen,
                rates=rate_limits,
                buffer=buffer,
                buffer_bytes=buffer_bytes,
                max_message_bytes=max_message_bytes,
                cafile=cafile,
                ready_timeout=ready_timeout,
                backend_options=_backend_options(master_uri, domain_id, url),
                poll_interval=poll_interval,
                call_timeout=call_timeout,
            )
        )
    )


@cli.command()
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Seconds to drive [default: 5; with --dashboard 0, until Ctrl-C].",
)
@click.option("--rate", type=float, default=5.0, show_default=True, help="Poses printed per s.")
@click.option(
    "--dashboard",
    is_flag=True,
    help="Run a demo fleet with the fleet dashboard until Ctrl-C (prints the URL to open).",
)
@click.option(
    "--devices",
    type=click.IntRange(min=1, max=20),
    default=3,
    show_default=True,
    help="--dashboard: mock robots in the fleet.",
)
@click.option(
    "--dashboard-port", type=int, default=0, show_default=True, help="--dashboard: 0 any free."
)
def demo(
    duration: float | None, rate: float, dashboard: bool, devices: int, dashboard_port: int
) -> None:
    """Drive the mock turtle in a circle through the whole cloud chain and print its pose.

    One machine, loopback only: a mock robot node, a relay on a free port, a cloud connector,
    and an operator speaking rosbridge v2 that sends the circle command and prints the poses
    coming back through the relay. With --dashboard: a fleet of mock robots (the first one
    waits for you to drive it, the others drive in circles) and the fleet dashboard, until
    Ctrl-C; --duration 0 keeps it running, a positive one stops it after that many seconds.
    """
    import asyncio

    if dashboard:
        from pyros.cloud.connector_demo import run_fleet_demo

        try:
            asyncio.run(run_fleet_demo(devices, dashboard_port, duration or 0.0, click.echo))
        except PyrosError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    from pyros.cloud.connector_demo import run_demo

    asyncio.run(run_demo(5.0 if duration is None else duration, rate, click.echo))


@cli.command("dashboard")
@click.option("--relay", required=True, help="The relay: ws://HOST:PORT or wss://HOST:PORT.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=8080, show_default=True, help="TCP port; 0: any free.")
@click.option(
    "--cafile",
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificates (PEM) for a wss:// relay with a self-signed certificate.",
)
@click.option("--certfile", type=click.Path(dir_okay=False), help="Serve HTTPS: certificate.")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="Serve HTTPS: private key.")
@click.option(
    "--poll-interval",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds between two GET /api/devices.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
def dashboard_command(
    relay: str,
    host: str,
    port: int,
    cafile: str | None,
    certfile: str | None,
    keyfile: str | None,
    poll_interval: float,
    log_level: str,
) -> None:
    """Serve the fleet dashboard: a browser app signed in to RELAY as an operator.

    Browsers sign in with an operator token of the relay's tokens file and see, and command,
    only what that token allows. Prints "serving http://HOST:PORT/" once ready; stops on
    Ctrl-C or SIGTERM. Needs the dashboard extra: pip install 'pyros[dashboard]'.
    """
    import logging

    if keyfile and not certfile:
        raise click.UsageError("--keyfile needs --certfile")
    try:
        from pyros.dashboard.app import serve
        from pyros.dashboard.link import relay_urls
    except ImportError as exc:
        raise click.ClickException(
            f"the dashboard needs the dashboard extra (pip install 'pyros[dashboard]'): {exc}"
        ) from exc
    try:
        relay_urls(relay)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--relay") from exc
    logging.basicConfig(
        level=log_level.upper(), format="pyros dashboard: %(levelname)s: %(message)s"
    )
    try:
        serve(
            relay,
            host,
            port,
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            poll_interval=poll_interval,
            announce=lambda line: click.echo(f"pyros dashboard: {line}"),
        )
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from exc


@cli.command("relay")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=9090, show_default=True, help="TCP port; 0: any free.")
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False),
    help="JSON tokens file; without it only loopback clients are accepted.",
)
@click.option("--certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM): wss.")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option(
    "--max-message-bytes",
    type=click.IntRange(min=1),
    default=1 << 20,
    show_default=True,
    help="A larger frame gets a status error and is dropped.",
)
@click.option(
    "--max-frame-bytes",
    type=click.IntRange(min=1),
    default=16 << 20,
    show_default=True,
    help="Hard cap: a larger frame closes the connection (1009).",
)
@click.option(
    "--send-queue",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Frames queued per connection; beyond it the oldest are dropped (and reported).",
)
@click.option(
    "--send-queue-bytes",
    type=click.IntRange(min=1),
    default=64 << 20,
    show_default=True,
    help="Bytes queued per connection (same drop policy).",
)
@click.option(
    "--rate-limit",
    type=float,
    default=1000.0,
    show_default=True,
    help="Incoming messages/s per connection.",
)
@click.option(
    "--rate-burst",
    type=float,
    default=10000.0,
    show_default=True,
    help="Token bucket size, messages.",
)
@click.option("--service-timeout", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option("--auth-timeout", type=float, default=10.0, show_default=True, help="Seconds.")
@click.option(
    "--ping-interval", type=float, default=20.0, show_default=True, help="Seconds; 0: no pings."
)
@click.option(
    "--dashboard",
    is_flag=True,
    help="Also run the fleet dashboard (its own process and port; GET /dashboard redirects).",
)
@click.option(
    "--dashboard-port", type=int, default=8080, show_default=True, help="The dashboard's port."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
def relay_command(
    host: str,
    port: int,
    tokens_file: str | None,
    certfile: str | None,
    keyfile: str | None,
    max_message_bytes: int,
    max_frame_bytes: int,
    send_queue: int,
    send_queue_bytes: int,
    rate_limit: float,
    rate_burst: float,
    service_timeout: float,
    auth_timeout: float,
    ping_interval: float,
    dashboard: bool,
    dashboard_port: int,
    log_level: str,
) -> None:
    """Run the websocket relay: connectors at /device, rosbridge v2 operators at /.

    Prints "listening on ws://HOST:PORT" once ready; stops on Ctrl-C or SIGTERM. With
    --dashboard it also starts the fleet dashboard (pyros dashboard) on --dashboard-port of the
    same host, dialing this relay as an operator, and stops it on exit.
    """
    import logging

    from pyros.cloud.auth import Tokens
    from pyros.cloud.limits import Limits
    from pyros.cloud.relay import run, tls_context

    try:
        limits = Limits(
            max_message_bytes=max_message_bytes,
            max_frame_bytes=max_frame_bytes,
            send_queue=send_queue,
            send_queue_bytes=send_queue_bytes,
            rate=rate_limit,
            burst=rate_burst,
            service_timeout=service_timeout,
            auth_timeout=auth_timeout,
            ping_interval=ping_interval if ping_interval > 0 else None,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if keyfile and not certfile:
        raise click.UsageError("--keyfile needs --certfile")
    logging.basicConfig(level=log_level.upper(), format="pyros relay: %(levelname)s: %(message)s")
    tokens = Tokens.load(tokens_file) if tokens_file else None
    if tokens is None:
        click.echo(
            "pyros relay: no --tokens file: accepting only loopback clients, each allowed to "
            "read and command every device",
            err=True,
        )
    try:
        context = tls_context(certfile, keyfile) if certfile else None
    except OSError as exc:
        raise click.ClickException(f"cannot load the TLS certificate or key: {exc}") from exc
    child = None
    if dashboard:
        from pyros.dashboard.process import DashboardProcess

        if port == 0:
            port = _free_port(host)
        dial = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        scheme = "wss" if context is not None else "ws"
        try:
            child = DashboardProcess.start(
                f"{scheme}://{dial}:{port}",
                host=host,
                port=dashboard_port,
                cafile=certfile if context is not None else None,
                certfile=certfile,
                keyfile=keyfile,
            )
        except pyros.SpawnError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"pyros relay: dashboard on {child.url} (GET /dashboard redirects there)")
    try:
        run(
            host,
            port,
            tokens=tokens,
            limits=limits,
            ssl_context=context,
            announce=lambda line: click.echo(f"pyros relay: {line}"),
            dashboard_port=child.port if child is not None else None,
            dashboard_scheme="https" if certfile else "http",
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    finally:
        if child is not None:
            child.stop()


def _free_port(host: str) -> int:
    """Return a TCP port free on ``host`` now (the relay binds it a moment later)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Run the ``pyros`` command; return its exit code."""
    try:
        code = cli.main(args=argv, prog_name="pyros", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
