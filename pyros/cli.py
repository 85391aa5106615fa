"""The ``pyros`` command: the habits of rostopic, rosservice, rosparam, rosnode and ros2.

Each command either spawns a node for its own use (``--backend`` and its options,
``--topics/--services/--params/--actions`` globs, everything exposed by default) or uses a
running shared node (``--name``). Without ``--backend``, the backend comes from
``PYROS_BACKEND``, else from the ROS environment, else ``mock`` (see
:mod:`pyros._cli.environment`), and the command says on stderr which it chose.

Output: messages, responses and values print as JSON (one line each), ``bytes`` as base64
(the form rosbridge uses for ``uint8[]``); messages and requests are read as JSON or YAML
(``'data: true'``, as rostopic reads them). Lists print as a table on a terminal and as JSON
when piped or with ``--json``.

Exit codes: 0 success (also when the reader of a pipe goes away, ``| head -1``); 1 an error,
printed as one line ``error: <Type>: <message>`` on stderr; 2 bad usage (one line too); 130
interrupted (Ctrl-C), silently.

Shell completion (commands, options, and topic, service, action and node names from a running
shared node: ``--name``, else ``PYROS_NODE``, else the only shared node running), for bash::

    eval "$(_PYROS_COMPLETE=bash_source pyros)"     # zsh: zsh_source; fish: fish_source
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

from pyros._cli.environment import default_backend
from pyros._cli.output import parse_data, table, to_json, to_yaml
from pyros.exceptions import MessageError, NotExposedError, PyrosError
from pyros.exceptions import TimeoutError as pyros_timeout

if TYPE_CHECKING:
    import pyros
    from pyros._cli.expressions import Filter

__all__ = ["main", "cli"]

F = TypeVar("F", bound=Callable[..., Any])

BACKENDS = ("mock", "ros1", "ros2", "rosbridge")
"""The backends pyros ships (others may be registered as ``pyros.backends`` entry points)."""

DEFAULT_LINGER = 1.0
"""Seconds a one-shot ``pyros pub`` keeps its own node up so subscribers can connect."""


# --- values -------------------------------------------------------------------------------------


class _Number(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A finite float within bounds; NaN, infinities and out-of-range values are usage errors.

    (Unparametrized: click 8.1, which Debian ships for the catkin install, is not generic.)
    """

    name = "number"

    def __init__(
        self, minimum: float, maximum: float, *, above: bool = False, unit: str = ""
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.above = above
        self.unit = f" {unit}" if unit else ""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                self.fail(f"{value!r} is not a number", param, ctx)
        low_ok = number > self.minimum if self.above else number >= self.minimum
        if not math.isfinite(number) or not low_ok or number > self.maximum:
            low = "above" if self.above else "from"
            self.fail(
                f"{value!r} is not a number {low} {self.minimum:g} to {self.maximum:g}{self.unit}",
                param,
                ctx,
            )
        return number


SECONDS = _Number(0.0, 1e6, above=True, unit="seconds")
RATE = _Number(0.001, 1e6, unit="Hz")
COUNT = click.IntRange(min=1, max=10**12)
WINDOW = click.IntRange(min=2, max=10**7)


class _NodeName(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """A pyros node name: 1 to 64 letters, digits and ``_`` (it names a runtime directory)."""

    name = "name"
    _pattern = re.compile(r"[A-Za-z0-9_]{1,64}")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str) or not self._pattern.fullmatch(value):
            self.fail(f"{value!r} is not a node name (1 to 64 letters, digits and _)", param, ctx)
        return value

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return [
            CompletionItem(name, help=backend)
            for name, backend in _running_nodes()
            if name.startswith(incomplete)
        ]


NODE_NAME = _NodeName()


def _parse(text: str, what: str) -> Any:
    """Parse JSON or YAML from the command line; a usage error names ``what`` if it fails."""
    try:
        return parse_data(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from exc


def _parse_dict(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None:
        return None
    data = _parse(text, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"must be a mapping such as '{{data: true}}', not {type(data).__name__}",
            param_hint=what,
        )
    return data


# --- completion ---------------------------------------------------------------------------------


def _running_nodes() -> list[tuple[str, str]]:
    """``(name, backend)`` of the nodes running now; empty on any trouble (completion)."""
    try:
        from pyros._shared import list_nodes

        return [(str(entry["name"]), str(entry.get("backend", ""))) for entry in list_nodes()]
    except Exception:
        return []


def _completion_node(ctx: click.Context) -> str | None:
    name = ctx.params.get("name") or os.environ.get("PYROS_NODE")
    if name:
        return str(name)
    running = _running_nodes()
    return running[0][0] if len(running) == 1 else None


def _complete_from_node(kind: str) -> Callable[..., list[CompletionItem]]:
    """Complete topic/service/action/node names from a running shared node; never spawn one."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        name = _completion_node(ctx)
        if name is None:
            return []
        try:
            import pyros

            with pyros.connect(name, timeout=1.0) as client:
                if kind == "nodes":
                    found: dict[str, str] = dict.fromkeys(client.nodes(), "node")
                else:
                    found = getattr(client, kind)()
        except Exception:
            return []
        return [
            CompletionItem(item, help=help_text)
            for item, help_text in sorted(found.items())
            if item.startswith(incomplete)
        ]

    return complete


def _complete_backend(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [name for name in BACKENDS if name.startswith(incomplete)]


# --- choosing a node ------------------------------------------------------------------------------


@dataclass
class _NodeOptions:
    """What the common options say about the node a command uses."""

    name: str | None = None
    backend: str | None = None
    master_uri: str | None = None
    domain_id: int | None = None
    url: str | None = None
    token: str | None = None
    topics: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    ready_timeout: float = 10.0

    @classmethod
    def pop(cls, options: dict[str, Any]) -> _NodeOptions:
        """Take the common options out of a command's keyword arguments."""
        fields = cls.__dataclass_fields__
        return cls(**{key: options.pop(key) for key in list(options) if key in fields})

    def backend_options(self) -> dict[str, Any]:
        """The backend options given on the command line, as ``spawn(**options)`` takes them."""
        options = _backend_options(self.master_uri, self.domain_id, self.url)
        if self.token is not None:
            options["token"] = self.token
        return options

    def patterns(
        self,
        topics: tuple[str, ...] = ("*",),
        services: tuple[str, ...] = ("*",),
        params: tuple[str, ...] = ("*",),
        actions: tuple[str, ...] = ("*",),
    ) -> dict[str, tuple[str, ...]]:
        """The globs a spawned node exposes: those given on the command line, else these."""
        return {
            "topics": self.topics or topics,
            "services": self.services or services,
            "params": self.params or params,
            "actions": self.actions or actions,
        }


_NODE_OPTION_NAMES = ("--topics", "--services", "--params", "--actions")


def _stack(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """One decorator doing what ``decorators`` do written one above the other (first on top):
    a group of options that several commands take."""

    def decorate(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return decorate


def _node_options(func: F) -> F:
    """Add the options that choose a node: a backend to spawn (with options), or ``--name``."""
    return _stack(
        click.option(
            "--name",
            type=NODE_NAME,
            help="Use the running shared node of this name (pyros node start) instead.",
        ),
        click.option(
            "--backend",
            metavar="NAME",
            shell_complete=_complete_backend,
            help="mock, ros1, ros2 or rosbridge. Default: PYROS_BACKEND, else the ROS "
            "environment (ROS_MASTER_URI: ros1; a sourced ROS 2: ros2), else mock.",
        ),
        click.option("--master-uri", metavar="URI", help="ros1: the ROS master (ROS_MASTER_URI)."),
        click.option(
            "--domain-id", type=click.IntRange(0, 232), help="ros2: the ROS_DOMAIN_ID to join."
        ),
        click.option("--url", help="rosbridge: the server's websocket URL (ws://HOST:9090)."),
        click.option("--token", help="rosbridge: the token the server (or relay) expects."),
        click.option("--topics", multiple=True, metavar="GLOB...", help="Topics to expose."),
        click.option("--services", multiple=True, metavar="GLOB...", help="Services to expose."),
        click.option("--params", multiple=True, metavar="GLOB...", help="Parameters to expose."),
        click.option("--actions", multiple=True, metavar="GLOB...", help="Actions to expose."),
        click.option(
            "--ready-timeout",
            type=SECONDS,
            default=10.0,
            show_default=True,
            help="Seconds to wait for a spawned node.",
        ),
    )(func)


def _json_option(func: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print JSON (the default when the output is not a terminal).",
    )(func)


def _backend_options(
    master_uri: str | None, domain_id: int | None, url: str | None
) -> dict[str, Any]:
    """Return the backend options that were given on the command line."""
    given = {"master_uri": master_uri, "domain_id": domain_id, "url": url}
    return {key: value for key, value in given.items() if value is not None}


def _spawn(
    backend: str,
    ready_timeout: float,
    patterns: dict[str, tuple[str, ...]],
    backend_options: dict[str, Any],
) -> pyros.Client:
    """``pyros.spawn(backend, ...)``, with the node's start-up overlapping this process's import
    of the client side (zmq, the client core): the node boots on the other core meanwhile,
    which takes about 40 ms off every one-shot command."""
    from pyros._process import NodeConfig, NodeProcess, new_name
    from pyros._runtime import node_directory

    config = NodeConfig(
        name=new_name(),
        backend=backend,
        options=dict(backend_options),
        topics=list(patterns["topics"]),
        services=list(patterns["services"]),
        params=list(patterns["params"]),
        actions=list(patterns["actions"]),
        owner_pid=os.getpid(),
    )
    node_directory(config.name)
    outcome: dict[str, Any] = {}

    def start() -> None:
        try:
            outcome["process"] = NodeProcess.start(config.to_dict(), ready_timeout=ready_timeout)
        except BaseException as exc:  # handed to the main thread below
            outcome["error"] = exc

    starter = threading.Thread(target=start, name="pyros-spawn", daemon=True)
    starter.start()
    try:
        import pyros.client

        starter.join()
    except BaseException:
        starter.join()  # Ctrl-C here: let the start finish, then stop what it started
        if "process" in outcome:
            outcome["process"].stop()
        raise
    if "error" in outcome:
        raise outcome["error"]
    process = outcome["process"]
    try:
        return pyros.client.Client(process.report, process=process)
    except BaseException:
        process.stop()
        raise


def _log_to_stderr() -> None:
    """Show the client's warnings (the ``pyros`` logger) as ``pyros: <message>`` lines."""
    import logging

    logger = logging.getLogger("pyros")
    if not any(getattr(handler, "_pyros_cli", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("pyros: %(message)s"))
        handler._pyros_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def _choose_backend(options: _NodeOptions) -> str:
    if options.backend:
        return options.backend
    backend, why = default_backend(
        os.environ,
        master_uri=options.master_uri is not None,
        domain_id=options.domain_id is not None,
        url=options.url is not None,
    )
    click.echo(f"pyros: using backend {backend} ({why}; choose with --backend)", err=True)
    return backend


@contextmanager
def _open_client(
    options: _NodeOptions,
    *,
    topics: tuple[str, ...] = ("*",),
    services: tuple[str, ...] = ("*",),
    params: tuple[str, ...] = ("*",),
    actions: tuple[str, ...] = ("*",),
    queries_only: bool = False,
) -> Iterator[pyros.Client]:
    """Spawn a node from the command's options, or connect to ``--name``; close it after.

    Args:
        options: the command's node options.
        topics: patterns a spawned node exposes when the command line gives none; the
            same for ``services``, ``params`` and ``actions``.
        queries_only: the command only asks about the graph and parameters: a spawned ros1
            node then joins the graph only if it must (``lazy``: no rospy at all for
            ``pyros topics``), which makes one-shot queries as quick as rostopic's.
    """
    import pyros

    _log_to_stderr()
    if options.name:
        given = [flag for flag in ("backend", "master_uri", "domain_id", "url", "token")]
        stray = [flag for flag in given if getattr(options, flag) is not None]
        if stray:
            raise click.UsageError(
                f"--name uses a running node; --{stray[0].replace('_', '-')} applies only to a "
                "node the command spawns"
            )
        client = pyros.connect(options.name)
    else:
        spawn_patterns = options.patterns(topics, services, params, actions)
        backend = _choose_backend(options)
        backend_options = options.backend_options()
        if queries_only and backend == "ros1":
            backend_options["lazy"] = True
        client = _spawn(backend, options.ready_timeout, spawn_patterns, backend_options)
    with client:
        yield client


# --- output -------------------------------------------------------------------------------------


def _want_json(as_json: bool) -> bool:
    return as_json or not sys.stdout.isatty()


def _print_names(
    found: Mapping[str, str] | list[str], headers: tuple[str, ...], as_json: bool
) -> None:
    """Print a name -> type mapping (or a list of names): a table, or JSON."""
    if _want_json(as_json):
        click.echo(to_json(dict(sorted(found.items())) if isinstance(found, Mapping) else found))
        return
    if isinstance(found, Mapping):
        rows: list[tuple[str, ...]] = sorted(found.items())
    else:
        rows = [(name,) for name in found]
    click.echo(table(headers, rows))


def _print_document(document: Any, as_json: bool) -> None:
    """Print a description: YAML on a terminal, JSON otherwise."""
    click.echo(to_json(document) if _want_json(as_json) else to_yaml(document))


def _warn(text: str) -> None:
    click.echo(f"pyros: {text}", err=True)


# --- commands -----------------------------------------------------------------------------------


class _Group(click.Group):
    """Turns errors into one line on stderr: pyros errors exit 1, Ctrl-C exits 130 silently,
    a closed pipe exits 0."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PyrosError as exc:
            _print_error(exc)
            ctx.exit(1)
        except KeyboardInterrupt:
            ctx.exit(130)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(0)


def _print_error(exc: BaseException) -> None:
    message = " ".join(str(exc).split()) or type(exc).__name__
    try:
        click.echo(f"error: {type(exc).__name__}: {message}", err=True)
    except BrokenPipeError:
        pass


def _silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at /dev/null so that Python's own
    flush at exit does not complain (the recipe of the Python docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


class _Command(click.Command):
    """A command whose list options also take several values after one flag.

    ``--topics /a /b --services /c`` is read as ``--topics /a --topics /b --services /c`` (the
    ``GLOB...`` form of the design); the repeated form works too. Positional arguments go
    before such a list: ``pyros echo /a/b --topics '/a/*'``.
    """

    many: tuple[str, ...] = _NODE_OPTION_NAMES

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        expanded: list[str] = []
        current: str | None = None
        for arg in args:
            if self._is_option(arg):
                current = self._list_option(arg)
                expanded.append(arg)
            elif current is not None and expanded and expanded[-1] != current:
                expanded.extend((current, arg))
            else:
                expanded.append(arg)
        return super().parse_args(ctx, expanded)

    def _is_option(self, arg: str) -> bool:
        """Does ``arg`` end the values of a list option? An option or ``--`` does; a negative
        number does not."""
        return arg.startswith("-") and not _is_negative_number(arg)

    def _list_option(self, arg: str) -> str | None:
        """The list option whose values follow option ``arg``, else None (``--topics=/a``
        holds its value, so what follows it is positional)."""
        return arg if arg in self.many else None


def _is_negative_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Subgroup(click.Group):
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, param, value: _print_version(ctx, value),
    help="Print the version and exit.",
)
def cli() -> None:
    """Use a ROS robot from the command line, through a pyros node.

    Every command runs on every backend (mock, ros1, ros2, rosbridge). Shell completion:
    eval "$(_PYROS_COMPLETE=bash_source pyros)".
    """


DISTRIBUTION = "pyros-robot"
"""The name pyros is installed under (``pip install pyros-robot``); the import name is pyros."""


def _print_version(ctx: click.Context, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    from pyros import __version__

    try:
        installed = f" ({DISTRIBUTION} {version(DISTRIBUTION)})"
    except PackageNotFoundError:
        installed = ""
    click.echo(f"pyros {__version__}{installed}")
    ctx.exit(0)


# ---- lists ---------------------------------------------------------------------------------------


@cli.command(cls=_Command)
@_node_options
@_json_option
def topics(as_json: bool, **options: Any) -> None:
    """List topics and their types (rostopic list -v, ros2 topic list -t)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_names(client.topics(), ("TOPIC", "TYPE"), as_json)


@cli.command(cls=_Command)
@_node_options
@_json_option
def services(as_json: bool, **options: Any) -> None:
    """List services and their types (rosservice list, ros2 service list -t)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_names(client.services(), ("SERVICE", "TYPE"), as_json)


@cli.command(cls=_Command)
@_node_options
@_json_option
def nodes(as_json: bool, **options: Any) -> None:
    """List the nodes in the ROS graph, not only pyros's (rosnode list, ros2 node list)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_names(sorted(client.nodes()), ("NODE",), as_json)


# ---- topics --------------------------------------------------------------------------------------


def _subscribe_field(
    client: pyros.Client, name: str, field: str | None
) -> tuple[pyros.Subscription, tuple[str | int, ...]]:
    """Subscribe to ``TOPIC[/field]``; warn when the topic does not exist (yet)."""
    from pyros._cli.expressions import FieldError, parse_path, split_topic

    try:
        path = parse_path(field) if field else ()
    except FieldError as exc:
        raise click.BadParameter(str(exc), param_hint="--field") from exc
    existing = client.topics()
    topic, inner = split_topic(name, list(existing)) if name not in existing else (name, ())
    if inner and path:
        raise click.UsageError(f"give the field either in TOPIC ({name}) or with --field")
    # A topic that does not exist yet gets a warning from the client (on the pyros logger).
    subscription = client.subscribe(topic, queue_size=10_000)
    return subscription, inner or path


@contextmanager
def _filter_errors() -> Iterator[None]:
    """Turn an error of the ``--filter`` expression into a usage error naming ``--filter``."""
    from pyros._cli.expressions import FilterError

    try:
        yield
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from exc


def _compile_filter(text: str | None) -> Filter | None:
    if text is None:
        return None
    from pyros._cli.expressions import Filter

    with _filter_errors():
        return Filter(text)


def _passes(message_filter: Filter | None, message: dict[str, Any]) -> bool:
    if message_filter is None:
        return True
    with _filter_errors():
        return message_filter(message)


@cli.command(cls=_Command)
@click.argument("topic", shell_complete=_complete_from_node("topics"))
@click.option("--field", "field", metavar="PATH", help="Print only this field: pose.x, a/b, a[0].")
@click.option(
    "--filter",
    "filter_text",
    metavar="EXPR",
    help="Print only messages where EXPR holds, e.g. 'm.x > 5 and len(data) < 3'.",
)
@click.option("-n", "--count", type=COUNT, help="Exit after COUNT messages.")
@click.option("--once", is_flag=True, help="Exit after one message (-n 1).")
@click.option("--timeout", type=SECONDS, help="Exit 1 if no message arrives for this long.")
@click.option("--yaml", "as_yaml", is_flag=True, help="YAML documents (---) instead of JSON lines.")
@_node_options
def echo(
    topic: str,
    field: str | None,
    filter_text: str | None,
    count: int | None,
    once: bool,
    timeout: float | None,
    as_yaml: bool,
    **options: Any,
) -> None:
    """Print the messages of TOPIC (or TOPIC/field/sub), one JSON object per line."""
    from pyros._cli.expressions import FieldError, get_field

    message_filter = _compile_filter(filter_text)
    if once:
        count = 1
    with _open_client(_NodeOptions.pop(options)) as client:
        subscription, path = _subscribe_field(client, topic, field)
        with subscription:
            printed = 0
            deadline = None if timeout is None else time.monotonic() + timeout
            while count is None or printed < count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise pyros_timeout(f"no message on {subscription.topic} within {timeout:g} s")
                try:
                    message = subscription.get(timeout=remaining)
                except pyros_timeout as exc:
                    raise pyros_timeout(
                        f"no message on {subscription.topic} within {timeout:g} s"
                    ) from exc
                if not _passes(message_filter, message):
                    continue
                try:
                    value = get_field(message, path) if path else message
                except FieldError as exc:
                    raise MessageError(f"{subscription.topic}: {exc}") from exc
                if as_yaml:
                    click.echo(to_yaml(value) + "\n---")
                else:
                    click.echo(to_json(value))
                printed += 1
                if timeout is not None:
                    deadline = time.monotonic() + timeout


def _measure(
    client: pyros.Client,
    topic: str,
    message_filter: Filter | None,
    count: int | None,
    duration: float | None,
    on_message: Callable[[dict[str, Any], float], None],
    report: Callable[[], None],
    summary: Callable[[], None],
) -> None:
    """Feed ``on_message(message, monotonic arrival)`` until ``count`` messages, ``duration``
    seconds or Ctrl-C; ``report()`` every second; ``summary()`` at the end, always."""
    subscription, _ = _subscribe_field(client, topic, None)
    seen = 0
    start = time.monotonic()
    next_report = start + 1.0
    completed = False
    try:
        with subscription:
            while count is None or seen < count:
                now = time.monotonic()
                if duration is not None and now - start >= duration:
                    break
                if now >= next_report:
                    report()
                    next_report += max(1.0, math.floor(now - next_report) + 1.0)
                wait = next_report - now
                if duration is not None:
                    wait = min(wait, start + duration - now)
                try:
                    message = subscription.get(timeout=max(0.0, wait))
                except TimeoutError:
                    continue
                arrival = time.monotonic()
                if _passes(message_filter, message):
                    on_message(message, arrival)
                    seen += 1
        completed = True
    except KeyboardInterrupt:
        summary()  # the figures so far, as rostopic prints them on Ctrl-C
        raise
    if completed:
        summary()


def _measure_options(func: F) -> F:
    return _stack(
        click.argument("topic", shell_complete=_complete_from_node("topics")),
        click.option("-n", "--count", type=COUNT, help="Stop after COUNT messages."),
        click.option("--duration", type=SECONDS, help="Stop after this many seconds."),
        click.option("-w", "--window", type=WINDOW, help="Messages the live figures cover."),
        click.option("--filter", "filter_text", metavar="EXPR", help="Count only these."),
        _json_option,
    )(func)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


@dataclass
class _Readout:
    """What ``hz``, ``bw`` and ``delay`` measure and how they print it."""

    add: Callable[[dict[str, Any], float], None]
    """``add(message, monotonic arrival)``: feed a message to the meter."""
    live: Callable[[], dict[str, Any] | None]
    """The figures printed every second (JSON after ``"topic"``); None if none yet."""
    live_line: Callable[[dict[str, Any]], str | None]
    """Those figures as a line; None prints ``no new messages``."""
    summary: Callable[[], dict[str, Any]]
    """The figures at the end (JSON as ``"summary"``)."""
    summary_line: Callable[[dict[str, Any]], str]
    """Those figures as a line."""


def _meter_command(setup: Callable[[str, int | None], _Readout]) -> click.Command:
    """Make a command of the rostopic hz kind: ``setup(topic, window)`` says what it measures
    and prints (its docstring is the command's help); the command measures TOPIC (see
    :func:`_measure`) and prints the figures every second and at the end."""

    @_measure_options
    @_node_options
    def command(
        topic: str,
        count: int | None,
        duration: float | None,
        window: int | None,
        filter_text: str | None,
        as_json: bool,
        **options: Any,
    ) -> None:
        message_filter = _compile_filter(filter_text)
        readout = setup(topic, window)

        def report() -> None:
            figures = readout.live()
            if as_json:
                click.echo(to_json({"topic": topic, **(figures or {})}))
                return
            line = None if figures is None else readout.live_line(figures)
            click.echo("no new messages" if line is None else line)

        def summary() -> None:
            figures = readout.summary()
            if as_json:
                click.echo(to_json({"topic": topic, "summary": figures}))
            else:
                click.echo(readout.summary_line(figures))

        with _open_client(_NodeOptions.pop(options)) as client:
            _measure(client, topic, message_filter, count, duration, readout.add, report, summary)

    command.__doc__ = setup.__doc__
    return cli.command(setup.__name__, cls=_Command)(command)


@_meter_command
def hz(topic: str, window: int | None) -> _Readout:
    """Print the publishing rate of TOPIC every second, and a summary at the end (rostopic hz).

    Rates come from arrival times at this command: one over the mean gap.
    """
    from pyros._cli.stats import RateMeter

    meter = RateMeter(window) if window else RateMeter()
    last_count = [0]

    def live() -> dict[str, Any]:
        figures = meter.live()
        new = meter.count - last_count[0]
        last_count[0] = meter.count
        return {**(figures or {}), "new": new}

    def live_line(figures: dict[str, Any]) -> str | None:
        if "rate_hz" not in figures or figures["new"] == 0:  # no rate yet, or no new message
            return None
        return (
            f"average rate: {figures['rate_hz']:.3f} Hz  min: {_fmt(figures['min_s'])} s  "
            f"max: {_fmt(figures['max_s'])} s  std dev: {_fmt(figures['std_dev_s'])} s  "
            f"window: {figures['window']}"
        )

    def summary_line(figures: dict[str, Any]) -> str:
        return (
            f"summary: {figures['messages']} messages in {figures['seconds']:.3f} s, "
            f"rate {_fmt(figures['rate_hz'])} Hz, min {_fmt(figures['min_s'])} s, "
            f"max {_fmt(figures['max_s'])} s, std dev {_fmt(figures['std_dev_s'])} s"
        )

    return _Readout(
        lambda message, arrival: meter.add(arrival), live, live_line, meter.summary, summary_line
    )


def _size(message: dict[str, Any]) -> int:
    """A message's size in bytes as pyros carries it (MessagePack)."""
    import msgpack

    return len(msgpack.packb(message, use_bin_type=True))


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} B"


@_meter_command
def bw(topic: str, window: int | None) -> _Readout:
    """Print the bandwidth TOPIC uses every second, and a summary at the end (rostopic bw).

    Sizes are those of the messages as pyros carries them (MessagePack, within a few percent
    of the ROS wire size for most types); bytes per second over the window's time span.
    """
    from pyros._cli.stats import BandwidthMeter

    meter = BandwidthMeter(window) if window else BandwidthMeter()

    def live_line(figures: dict[str, Any]) -> str:
        return (
            f"average: {_bytes(figures['bytes_per_s'])}/s  mean: "
            f"{_bytes(figures['mean_bytes'])}  min: {_bytes(figures['min_bytes'])}  "
            f"max: {_bytes(figures['max_bytes'])}  window: {figures['window']}"
        )

    def summary_line(figures: dict[str, Any]) -> str:
        return (
            f"summary: {figures['messages']} messages, {_bytes(figures['bytes'])} in "
            f"{figures['seconds']:.3f} s, {_bytes(figures['bytes_per_s'])}/s, mean "
            f"{_bytes(figures['mean_bytes'])}"
        )

    return _Readout(
        lambda message, arrival: meter.add(arrival, _size(message)),
        meter.live,
        live_line,
        meter.summary,
        summary_line,
    )


@_meter_command
def delay(topic: str, window: int | None) -> _Readout:
    """Print the delay of TOPIC's messages from their header.stamp to arrival here, every
    second, and a summary at the end (rostopic delay).

    Delay is this machine's wall clock at arrival minus the stamp, in seconds: meaningful when
    the publisher stamps with a clock in sync with this one.
    """
    from pyros._cli.stats import DelayMeter, stamp_seconds

    meter = DelayMeter(window) if window else DelayMeter()

    def add(message: dict[str, Any], arrival: float) -> None:
        stamp = stamp_seconds(message)
        if stamp is None:
            raise MessageError(f"messages on {topic} have no header.stamp, so no delay")
        meter.add(time.time() - stamp)

    def live_line(figures: dict[str, Any]) -> str:
        return (
            f"average delay: {_fmt(figures['mean_s'])} s  min: {_fmt(figures['min_s'])} s  "
            f"max: {_fmt(figures['max_s'])} s  std dev: {_fmt(figures['std_dev_s'])} s  "
            f"window: {figures['window']}"
        )

    def summary_line(figures: dict[str, Any]) -> str:
        return (
            f"summary: {figures['messages']} messages, delay mean {_fmt(figures['mean_s'])} "
            f"s, min {_fmt(figures['min_s'])} s, max {_fmt(figures['max_s'])} s, "
            f"std dev {_fmt(figures['std_dev_s'])} s"
        )

    return _Readout(add, meter.live, live_line, meter.summary, summary_line)


@cli.command(cls=_Command)
@click.argument("topic", shell_complete=_complete_from_node("topics"))
@click.argument("message")
@click.option("--type", "type_name", metavar="TYPE", help="pkg/Type: needed for a new topic.")
@click.option("--once", is_flag=True, help="Publish once and exit (the default).")
@click.option("-r", "--rate", type=RATE, help="Publish at this rate (Hz) until Ctrl-C or -n.")
@click.option("-n", "--count", type=COUNT, help="With --rate: stop after COUNT messages.")
@click.option(
    "--latch",
    is_flag=True,
    help="Keep the last message for late subscribers (ROS 1 latched; ROS 2 transient_local).",
)
@click.option(
    "--linger",
    type=_Number(0.0, 1e6, unit="seconds"),
    help=f"One-shot on a spawned node: keep it this long so subscribers can connect; the "
    f"message is latched meanwhile. Default {DEFAULT_LINGER:g} s (0 on mock).",
)
@_node_options
def pub(
    topic: str,
    message: str,
    type_name: str | None,
    once: bool,
    rate: float | None,
    count: int | None,
    latch: bool,
    linger: float | None,
    **options: Any,
) -> None:
    """Publish MESSAGE (JSON or YAML such as 'data: hi') on TOPIC, once or at --rate Hz.

    A one-shot publish from a node the command spawns stays up --linger seconds so that
    subscribers (which connect to a new publisher only after it appears) receive it, as
    rostopic pub -1 does; with --latch it stays until Ctrl-C. On a shared node (--name) the
    publisher lives on in that node.
    """
    if once and rate is not None:
        raise click.UsageError("--once and --rate exclude each other")
    if count is not None and rate is None:
        raise click.UsageError("-n/--count needs --rate")
    data = _parse_dict(message, "MESSAGE")
    assert data is not None
    node = _NodeOptions.pop(options)
    with _open_client(node, topics=(topic,)) as client:
        owned = client.owns_node
        backend = str(client.info().get("backend", "")) if owned else ""
        wait = linger if linger is not None else (0.0 if backend == "mock" else DEFAULT_LINGER)
        latched = latch or (owned and rate is None and wait > 0)
        qos = {"durability": "transient_local"} if latched else None
        _publish(client, topic, data, type_name, qos)
        if rate is not None:
            period = 1.0 / rate
            next_time = time.monotonic() + period
            sent = 1
            while count is None or sent < count:
                time.sleep(max(0.0, next_time - time.monotonic()))
                _publish(client, topic, data, type_name, qos)
                sent += 1
                next_time += period
        elif owned and latch and linger is None:
            _warn(f"latched on {topic}: Ctrl-C to stop")
            threading.Event().wait()
        elif owned and wait > 0:
            time.sleep(wait)


def _publish(
    client: pyros.Client,
    topic: str,
    data: dict[str, Any],
    type_name: str | None,
    qos: dict[str, Any] | None,
) -> None:
    client.publish(topic, data, type=type_name, qos=qos)


# ---- services --------------------------------------------------------------------------------


@cli.command(cls=_Command)
@click.argument("service", shell_complete=_complete_from_node("services"))
@click.argument("request", required=False)
@click.option("--timeout", type=SECONDS, default=5.0, show_default=True, help="Seconds.")
@_node_options
def call(service: str, request: str | None, timeout: float, **options: Any) -> None:
    """Call SERVICE with REQUEST (JSON or YAML, default empty) and print the response."""
    data = _parse_dict(request, "REQUEST")
    with _open_client(_NodeOptions.pop(options), services=(service,)) as client:
        click.echo(to_json(client.call(service, data, timeout=timeout)))


# ---- the graph ---------------------------------------------------------------------------------


def _kind_of(client: pyros.Client, name: str) -> tuple[str, str | None]:
    """Is ``name`` a topic, service, action or node? ``(kind, type)``; raises if none."""
    import difflib

    topics = client.topics()
    if name in topics:
        return "topic", topics[name]
    services = client.services()
    if name in services:
        return "service", services[name]
    actions = client.actions()
    if name in actions:
        return "action", actions[name]
    try:
        graph_nodes = client.nodes()
    except PyrosError:
        graph_nodes = []
    if name in graph_nodes:
        return "node", None
    known = [*topics, *services, *actions, *graph_nodes]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise NotExposedError(f"no topic, service, action or node is named {name}{hint}")


@cli.command(cls=_Command)
@click.argument("target", metavar="NAME", shell_complete=_complete_from_node("topics"))
@_node_options
@_json_option
def info(target: str, as_json: bool, **options: Any) -> None:
    """Describe NAME, a topic, service, action or node: its type, publishers, subscribers,
    servers... (rostopic info, rosservice info, rosnode info)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        kind, _ = _kind_of(client, target)
        _print_info(client, kind, target, as_json)


def _print_info(client: pyros.Client, kind: str, name: str, as_json: bool) -> None:
    """Print what ``client.<kind>_info(name)`` says, after ``kind: name``."""
    describe = {
        "topic": client.topic_info,
        "service": client.service_info,
        "action": client.action_info,
        "node": client.node_info,
    }[kind]
    _print_document({kind: name, **describe(name)}, as_json)


@cli.command("type", cls=_Command)
@click.argument("target", metavar="NAME", shell_complete=_complete_from_node("topics"))
@_node_options
def type_command(target: str, **options: Any) -> None:
    """Print the type of topic, service or action NAME (rostopic type)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        kind, type_name = _kind_of(client, target)
        if type_name is None:
            raise NotExposedError(f"{target} is a {kind}, which has no type")
        click.echo(type_name)


@cli.command(cls=_Command)
@click.argument("type_name", metavar="TYPE")
@_node_options
def show(type_name: str, **options: Any) -> None:
    """Print the definition of message, service or action TYPE (ros2 interface show, rosmsg
    show), e.g. geometry_msgs/Twist or std_srvs/srv/SetBool."""
    with _open_client(_NodeOptions.pop(options), topics=(), services=(), params=()) as client:
        click.echo(client.definition(type_name).rstrip("\n"))


# ---- parameters --------------------------------------------------------------------------------


@cli.group(cls=_Subgroup)
def param() -> None:
    """List, get, set, delete, dump and load parameters (rosparam, ros2 param)."""


@param.command("list")
@click.argument("namespace", required=False, default="/")
@_node_options
@_json_option
def param_list(namespace: str, as_json: bool, **options: Any) -> None:
    """List the parameters that are set (under NAMESPACE)."""
    from pyros._cli.params import under

    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        names = [name for name in client.params() if under(name, namespace)]
        _print_names(sorted(names), ("PARAMETER",), as_json)


@param.command("get")
@click.argument("param_name", metavar="NAME")
@_node_options
def param_get(param_name: str, **options: Any) -> None:
    """Print parameter NAME as JSON (a namespace as an object)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        click.echo(to_json(client.get_param(param_name)))


@param.command("set")
@click.argument("param_name", metavar="NAME")
@click.argument("value")
@_node_options
def param_set(param_name: str, value: str, **options: Any) -> None:
    """Set parameter NAME to VALUE (JSON or YAML: 1.5, true, '{p: 1.5}', hello)."""
    data = _parse(value, "VALUE")
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        client.set_param(param_name, data)


@param.command("delete")
@click.argument("param_name", metavar="NAME")
@_node_options
def param_delete(param_name: str, **options: Any) -> None:
    """Delete parameter NAME (or a whole namespace)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        client.delete_param(param_name)


@param.command("dump")
@click.argument("file", type=click.File("w", lazy=True), default="-")
@click.argument("namespace", required=False, default="/")
@_node_options
def param_dump(file: Any, namespace: str, **options: Any) -> None:
    """Write the parameters under NAMESPACE to FILE (default: stdout) as YAML, in the format of
    rosparam dump (ROS 1) or ros2 param dump (ROS 2)."""
    from pyros._cli.params import nest, under

    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        values = {
            name: client.get_param(name) for name in client.params() if under(name, namespace)
        }
    file.write(to_yaml(nest(values, namespace) or {}) + "\n")


@param.command("load")
@click.argument("file", type=click.File("r"))
@click.argument("namespace", required=False, default="/")
@_node_options
def param_load(file: Any, namespace: str, **options: Any) -> None:
    """Set the parameters in YAML FILE ('-': stdin) under NAMESPACE, from a rosparam dump or
    ros2 param dump file."""
    import yaml

    from pyros._cli.params import flatten

    try:
        tree = yaml.safe_load(file.read())
        values = flatten(tree if tree is not None else {}, namespace)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise click.BadParameter(
            " ".join(str(exc).split()), param_hint=f"FILE {file.name}"
        ) from exc
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        for name, value in values.items():
            client.set_param(name, value)


# ---- actions -----------------------------------------------------------------------------------


@cli.group(cls=_Subgroup)
def action() -> None:
    """List actions, describe them and send goals (ros2 action, actionlib)."""


@action.command("list")
@_node_options
@_json_option
def action_list(as_json: bool, **options: Any) -> None:
    """List actions and their types."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_names(client.actions(), ("ACTION", "TYPE"), as_json)


@action.command("info")
@click.argument("action_name", metavar="ACTION", shell_complete=_complete_from_node("actions"))
@_node_options
@_json_option
def action_info(action_name: str, as_json: bool, **options: Any) -> None:
    """Describe ACTION: its type, servers and clients."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_info(client, "action", action_name, as_json)


@action.command("send")
@click.argument("action_name", metavar="ACTION", shell_complete=_complete_from_node("actions"))
@click.argument("goal")
@click.option("--feedback", is_flag=True, help="Print each feedback message as it comes.")
@click.option("--timeout", type=SECONDS, help="Give up (and cancel the goal) after this long.")
@_node_options
def action_send(
    action_name: str, goal: str, feedback: bool, timeout: float | None, **options: Any
) -> None:
    """Send GOAL (JSON or YAML) to ACTION and print the result when it ends.

    With --feedback, prints {"feedback": ...} lines, then {"status": ..., "result": ...}.
    Ctrl-C cancels the goal before exiting.
    """
    data = _parse_dict(goal, "GOAL")
    assert data is not None

    def print_feedback(message: dict[str, Any]) -> None:
        click.echo(to_json({"feedback": message}))

    with _open_client(_NodeOptions.pop(options), actions=(action_name,)) as client:
        handle = client.start_goal(action_name, data, feedback=print_feedback if feedback else None)
        try:
            result = handle.result(timeout=timeout)
        except BaseException:
            handle.cancel()
            raise
        if feedback:
            click.echo(to_json({"status": handle.status, "result": result}))
        else:
            click.echo(to_json(result))


# ---- nodes -------------------------------------------------------------------------------------


@cli.group(cls=_Subgroup)
def node() -> None:
    """Describe graph nodes; start, stop and list pyros's shared nodes."""


@node.command("info")
@click.argument("node_name", metavar="NODE", shell_complete=_complete_from_node("nodes"))
@_node_options
@_json_option
def node_info(node_name: str, as_json: bool, **options: Any) -> None:
    """Describe graph node NODE: what it publishes, subscribes to and serves (rosnode info)."""
    with _open_client(_NodeOptions.pop(options), queries_only=True) as client:
        _print_info(client, "node", node_name, as_json)


def _shared_node_options(*extra: Callable[[Any], Any]) -> Callable[[F], F]:
    """Add NAME and the options of a shared node to spawn (``node start``, ``node run``): those
    of :func:`_node_options` but ``--name``, then ``extra``, then ``--ready-timeout``."""
    return _stack(
        click.argument("name", type=NODE_NAME),
        click.option("--backend", metavar="NAME", shell_complete=_complete_backend),
        click.option("--master-uri", metavar="URI"),
        click.option("--domain-id", type=click.IntRange(0, 232)),
        click.option("--url"),
        click.option("--token"),
        click.option(
            "--topics", multiple=True, metavar="GLOB...", help="Topics to expose (default: all)."
        ),
        click.option(
            "--services",
            multiple=True,
            metavar="GLOB...",
            help="Services to expose (default: all).",
        ),
        click.option(
            "--params", multiple=True, metavar="GLOB...", help="Parameters (default: all)."
        ),
        click.option("--actions", multiple=True, metavar="GLOB...", help="Actions (default: all)."),
        *extra,
        click.option("--ready-timeout", type=SECONDS, default=10.0, show_default=True),
    )


def _start_shared(name: str, options: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Start shared node ``name`` from a command's options (everything exposed unless they
    say otherwise); ``extra`` goes to :func:`pyros._shared.start_shared`. Returns its report."""
    from pyros._shared import start_shared

    node_options = _NodeOptions.pop(options)
    return start_shared(
        name,
        _choose_backend(node_options),
        ready_timeout=node_options.ready_timeout,
        **extra,
        **node_options.patterns(),
        **node_options.backend_options(),
    )


@node.command("start")
@_shared_node_options(
    click.option(
        "--idle-timeout",
        type=SECONDS,
        default=None,
        help="Exit after this many seconds with no client.",
    )
)
def node_start(
    name: str,
    idle_timeout: float | None,
    **options: Any,
) -> None:
    """Start shared node NAME in the background; return once it is ready.

    Like every command, it exposes everything unless --topics/--services/--params/--actions
    say otherwise.
    """
    report = _start_shared(name, options, idle_timeout=idle_timeout)
    click.echo(f"started {report['name']} (pid {report['pid']}, {report['graph_name']})")


@node.command("run")
@_shared_node_options()
def node_run(name: str, **options: Any) -> None:
    """Run shared node NAME in the foreground until Ctrl-C or SIGTERM, then stop it.

    For supervisors that keep a process in the foreground (roslaunch, systemd, Docker);
    other processes attach to it by name as to one made by node start.
    """
    import signal

    from pyros._process import pid_alive
    from pyros._shared import stop_shared

    def stop_on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    report = _start_shared(name, options)
    click.echo(f"running {report['name']} (pid {report['pid']}, {report['graph_name']})")
    try:
        while pid_alive(report["pid"]):
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop_shared(name)
        raise
    raise PyrosError(f"shared node {name} exited")


@node.command("stop")
@click.argument("name", type=NODE_NAME)
@click.option("--timeout", type=SECONDS, default=10.0, show_default=True)
def node_stop(name: str, timeout: float) -> None:
    """Stop shared node NAME and wait until it has exited."""
    from pyros._shared import stop_shared

    stop_shared(name, timeout=timeout)
    click.echo(f"stopped {name}")


@node.command("list")
@_json_option
def node_list(as_json: bool) -> None:
    """List the pyros nodes running on this machine: name, pid, backend."""
    from pyros._shared import list_nodes

    entries = list_nodes()
    if _want_json(as_json):
        click.echo(
            to_json(
                [
                    {
                        "name": entry["name"],
                        "pid": entry["pid"],
                        "backend": entry["backend"],
                        "shared": bool(entry.get("shared")),
                    }
                    for entry in entries
                ]
            )
        )
        return
    rows = [
        (
            entry["name"],
            entry["pid"],
            entry["backend"],
            "shared" if entry.get("shared") else "owned",
        )
        for entry in entries
    ]
    click.echo(table(("NAME", "PID", "BACKEND", "KIND"), rows))


@node.command("status")
@click.argument("name", type=NODE_NAME)
def node_status(name: str) -> None:
    """Print the status of pyros node NAME as JSON."""
    import json

    import pyros

    with pyros.connect(name) as client:
        click.echo(json.dumps(client.info(), indent=2, sort_keys=True))


class _DependencyError(click.ClickException):
    """A library the command needs is missing or too old (printed as ``DependencyError``)."""


def _require_websockets(command: str) -> None:
    """Stop with a clear message when websockets is missing or older than the relay and
    connector need (Debian 12's python3-websockets is 10.4): never a bare import error."""
    try:
        import websockets
    except ModuleNotFoundError as exc:
        raise _DependencyError(
            f"pyros {command} needs websockets >= 14, which is not installed: "
            "python3 -m pip install 'websockets>=14'"
        ) from exc
    version = getattr(websockets, "__version__", "0")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < 14:
        raise _DependencyError(
            f"pyros {command} needs websockets >= 14, this Python has {version} "
            f"({websockets.__file__}): python3 -m pip install --user 'websockets>=14' "
            "(Debian 12's python3-websockets is 10.4)"
        )


class _ManyValuesCommand(_Command):
    """A command with no positional arguments whose list options also take several values
    after one flag.

    ``--topics /a /b --commands /c`` is read as ``--topics /a --topics /b --commands /c`` (the
    ``GLOB...`` form of the design), and the repeated form works as in the other commands. With
    nothing positional, every ``-...`` is an option and ``--topics=/a /b`` continues the list.
    """

    many = (
        "--topics",
        "--commands",
        "--services",
        "--actions",
        "--params",
        "--latest",
        "--listen",
        "--rate",
        "--relay",
    )

    def _is_option(self, arg: str) -> bool:
        return arg.startswith("-")

    def _list_option(self, arg: str) -> str | None:
        flag = arg.split("=", 1)[0]
        return flag if flag in self.many else None


def _seconds(
    minimum: float = 0.0, *, allow_equal: bool = False
) -> Callable[[click.Context, click.Parameter, float], float]:
    """Return an option callback that refuses a number that is not finite and above ``minimum``
    (NaN, infinities and 1e400 become usage errors)."""

    def check(ctx: click.Context, param: click.Parameter, value: float) -> float:
        above = value >= minimum if allow_equal else value > minimum
        if not (math.isfinite(value) and above):
            relation = ">=" if allow_equal else ">"
            raise click.BadParameter(f"{value!r} is not a finite number {relation} {minimum:g}")
        return value

    return check


def _not_empty(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value:
        raise click.BadParameter("must not be empty", ctx, param)
    return value


def _number_option(
    flag: str,
    default: float,
    *,
    minimum: float = 0.0,
    allow_equal: bool = False,
    help: str | None = None,
) -> Callable[[F], F]:
    """An option taking a finite number above ``minimum`` (see :func:`_seconds`)."""
    return click.option(
        flag,
        type=float,
        callback=_seconds(minimum, allow_equal=allow_equal),
        default=default,
        show_default=True,
        help=help,
    )


def _count_option(flag: str, default: int, help: str, *, minimum: int = 1) -> Callable[[F], F]:
    """An option taking a whole number from ``minimum`` up (messages, frames, bytes)."""
    return click.option(
        flag, type=click.IntRange(min=minimum), default=default, show_default=True, help=help
    )


def _log_level_option(default: str) -> Callable[[F], F]:
    return click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default=default,
        show_default=True,
    )


_cafile_option = click.option(
    "--cafile",
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificates (PEM) for a wss:// relay with a self-signed certificate.",
)


@cli.command(cls=_ManyValuesCommand)
@click.option(
    "--relay",
    required=True,
    multiple=True,
    help="Relay URL: ws://HOST:PORT or wss://HOST:PORT; repeat for failover between relays.",
)
@click.option("--device", required=True, help="This robot's device id at the relay.")
@click.option(
    "--token",
    required=True,
    envvar="PYROS_DEVICE_TOKEN",
    callback=_not_empty,
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
@click.option("--actions", multiple=True, help="Glob of action servers operators may use.")
@click.option("--params", multiple=True, help="Glob of parameters operators may read and set.")
@click.option(
    "--latest",
    multiple=True,
    help="Glob of forwarded topics holding state: a late operator gets their latest value.",
)
@click.option(
    "--buffer-dir",
    type=click.Path(file_okay=False),
    help="Keep the buffer on disk here (SQLite): a restarted connector resumes, losing nothing.",
)
@click.option(
    "--listen",
    multiple=True,
    help=(
        "Glob of other devices' topics to publish on this robot, such as /robot2/chat; "
        "a star in place of the device takes every device's."
    ),
)
@click.option(
    "--rate", "rates", multiple=True, metavar="TOPIC=HZ", help="Forward TOPIC (a glob) at most HZ."
)
@_count_option(
    "--buffer",
    10_000,
    "Messages kept while the relay is unreachable (the oldest are dropped and counted).",
)
@_count_option("--buffer-bytes", 64 << 20, "The same bound in bytes of JSON (about).")
@_count_option(
    "--max-message-bytes",
    16 << 20,
    "Larger messages are not forwarded (counted as dropped); at most the relay's limit.",
)
@_cafile_option
@_number_option("--poll-interval", 1.0, help="Seconds.")
@_number_option("--call-timeout", 10.0, help="Seconds.")
@_number_option("--ready-timeout", 10.0)
@_log_level_option("info")
def connector(
    relay: tuple[str, ...],
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
    actions: tuple[str, ...],
    params: tuple[str, ...],
    latest: tuple[str, ...],
    buffer_dir: str | None,
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

    _require_websockets("connector")
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
                relay=list(relay),
                device=device,
                token=token,
                backend=backend,
                name=name,
                topics=topics,
                commands=commands,
                services=services,
                actions=actions,
                params=params,
                latest=latest,
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
                buffer_dir=buffer_dir,
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
@_cafile_option
@click.option("--certfile", type=click.Path(dir_okay=False), help="Serve HTTPS: certificate.")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="Serve HTTPS: private key.")
@click.option(
    "--poll-interval",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds between two GET /api/devices.",
)
@_log_level_option("warning")
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
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9090,
    show_default=True,
    help="TCP port; 0: any free.",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(dir_okay=False),
    help="JSON tokens file; without it only loopback clients are accepted.",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="redis://HOST:PORT/DB: be one relay with every relay started on that Redis.",
)
@click.option("--certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM): wss.")
@click.option("--keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@_count_option(
    "--max-message-bytes", 16 << 20, "A larger frame gets a status error and is dropped."
)
@_count_option(
    "--max-frame-bytes", 16 << 20, "Hard cap: a larger frame closes the connection (1009)."
)
@_count_option(
    "--preauth-frame-bytes", 4096, "Hard cap on frames before a peer has authenticated.", minimum=64
)
@_number_option(
    "--auth-failures",
    30.0,
    help="Failed sign-ins allowed per client address per minute (then HTTP 429).",
)
@_count_option(
    "--send-queue",
    4096,
    "Frames queued per connection; beyond it the oldest are dropped (and reported).",
)
@_count_option("--send-queue-bytes", 64 << 20, "Bytes queued per connection (same drop policy).")
@_number_option("--rate-limit", 1000.0, help="Incoming messages/s per connection.")
@_number_option(
    "--rate-burst", 10000.0, minimum=1.0, allow_equal=True, help="Token bucket size, messages."
)
@_number_option("--service-timeout", 10.0, help="Seconds.")
@_number_option("--auth-timeout", 5.0, help="Seconds.")
@_number_option("--ping-interval", 20.0, allow_equal=True, help="Seconds; 0: no pings.")
@click.option(
    "--dashboard",
    is_flag=True,
    help="Also run the fleet dashboard (its own process and port; GET /dashboard redirects).",
)
@click.option(
    "--dashboard-port", type=int, default=8080, show_default=True, help="The dashboard's port."
)
@_log_level_option("warning")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line (ts, level, logger, msg, event, device...).",
)
def relay_command(
    host: str,
    port: int,
    tokens_file: str | None,
    redis_url: str | None,
    certfile: str | None,
    keyfile: str | None,
    max_message_bytes: int,
    max_frame_bytes: int,
    preauth_frame_bytes: int,
    auth_failures: float,
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
    log_format: str,
) -> None:
    """Run the websocket relay: connectors at /device, rosbridge v2 operators at /.

    Prints "listening on ws://HOST:PORT" once ready; stops on Ctrl-C or SIGTERM; SIGHUP
    reloads the tokens file without dropping a connection. GET /healthz and /metrics
    (Prometheus) on the same port. With --dashboard it also starts the fleet dashboard (pyros
    dashboard) on --dashboard-port of the same host, dialing this relay as an operator, and
    stops it on exit.
    """
    import logging

    _require_websockets("relay")
    from pyros.cloud.auth import Tokens
    from pyros.cloud.cluster import ClusterError
    from pyros.cloud.limits import Limits
    from pyros.cloud.relay import run, tls_context

    try:
        limits = Limits(
            max_message_bytes=max_message_bytes,
            max_frame_bytes=max_frame_bytes,
            preauth_frame_bytes=preauth_frame_bytes,
            auth_failures=auth_failures,
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
    if log_format == "json":
        from pyros.cloud.metrics import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=log_level.upper(), handlers=[handler])
    else:
        logging.basicConfig(
            level=log_level.upper(), format="pyros relay: %(levelname)s: %(message)s"
        )
    from pyros.cloud.auth import TokensFileError

    try:
        tokens = Tokens.load(tokens_file) if tokens_file else None
    except TokensFileError as exc:
        raise click.ClickException(str(exc)) from exc
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
        from pyros.exceptions import SpawnError

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
        except SpawnError as exc:
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
            tokens_path=tokens_file,
            redis=redis_url,
            dashboard_port=child.port if child is not None else None,
            dashboard_scheme="https" if certfile else "http",
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
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
    """Run the ``pyros`` command; return its exit code (see the module docstring)."""
    try:
        code = cli.main(args=argv, prog_name="pyros", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "pyros"
        message = " ".join(exc.format_message().split())
        _print_error_line(f"error: usage: {message} (see '{command} --help')")
        return 2
    except click.ClickException as exc:
        name = "Error" if type(exc) is click.ClickException else type(exc).__name__.lstrip("_")
        _print_error_line(f"error: {name}: {' '.join(exc.format_message().split())}")
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except PyrosError as exc:
        _print_error(exc)
        return 1
    except Exception as exc:
        if os.environ.get("PYROS_DEBUG"):
            raise
        _print_error(exc)
        return 1
    return code if isinstance(code, int) else 0


def _print_error_line(line: str) -> None:
    try:
        click.echo(line, err=True)
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    sys.exit(main())
