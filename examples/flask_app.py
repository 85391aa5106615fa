"""A small REST API over a robot: every web worker process uses one shared pyros node.

A web server runs many worker processes. With rospy in each one, 4 gunicorn workers make 4 ROS
nodes; here each worker attaches to one named pyros node (started by whichever worker comes
first, under a file lock) and the ROS graph sees one node, ``/pyros_<PYROS_NODE>``. The node
outlives workers being killed and replaced, and exits by itself ``PYROS_IDLE_TIMEOUT`` seconds
after the last worker is gone (or on ``pyros node stop NAME``).

Run it (the mock backend needs no ROS; its simulated turtle serves ``/turtle1/pose``)::

    flask --app examples/flask_app run
    curl http://127.0.0.1:5000/topics/turtle1/pose

    PYROS_BACKEND=ros1 ROS_MASTER_URI=http://127.0.0.1:11311/ \\
        gunicorn --workers 4 --bind 127.0.0.1:8000 examples.flask_app:app

Endpoints (JSON in and out; ``bytes`` fields such as ``uint8[]`` come out as base64 strings and
go in as lists of integers):

``GET /``
    ``{"node", "backend", "node_pid", "worker_pid", "clients"}``: which node this worker uses
    and the backend it really runs (from ``client.info()``).
``GET /topics``, ``GET /services``
    ``{"/chatter": "std_msgs/String", ...}``: what the node exposes now.
``GET /topics/<topic>``
    The latest message of the topic: ``{"topic", "message"}``. The first request for a topic
    subscribes and waits up to ``PYROS_FIRST_MESSAGE_TIMEOUT`` seconds for a message (504 if
    none comes); later ones answer from memory. A topic that does not exist answers 404 with
    the closest existing names, and nothing is cached for it.
``POST /topics/<topic>``
    Body ``{"message": {...}, "type": "pkg/Type"}`` (``type`` only needed for a new topic);
    publishes once and answers ``{"topic": "/cmd_vel"}``.
``POST /services/<service>``
    Body: the request dict (empty body: empty request); answers the response dict.
    ``?timeout=SECONDS`` (default 5).

Errors answer ``{"error": "<pyros exception class>", "message": "...", "field"?: "linear.x"}``
with 404 (NotExposedError), 400 (MessageError, or a body that is not a JSON object),
502 (ServiceError), 504 (TimeoutError), 503 (NodeDiedError, SpawnError) or 500.

Configuration, from the environment when the module is imported (or pass a :class:`Settings`
to :func:`create_app`):

``PYROS_NODE`` (``flask_app``), ``PYROS_BACKEND`` (``mock``), ``PYROS_TOPICS`` and
``PYROS_SERVICES`` (glob patterns separated by spaces or commas, default ``*``),
``PYROS_IDLE_TIMEOUT`` (seconds, 60), ``PYROS_FIRST_MESSAGE_TIMEOUT`` (seconds, 2);
backend options ``ROS_MASTER_URI`` (ros1 ``master_uri``), ``ROS_DOMAIN_ID`` (ros2
``domain_id``), ``PYROS_ROSBRIDGE_URL`` (rosbridge ``url``).
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify, request

import pyros

__all__ = ["Settings", "BadRequestBody", "create_app", "jsonable", "app"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Which shared node the workers use, and how it is started if it does not run yet.

    Attributes:
        node: the shared node's name; it registers in ROS as ``/pyros_<node>``.
        backend: ``"mock"``, ``"ros1"``, ``"ros2"`` or ``"rosbridge"``.
        topics, services: glob patterns of what the node exposes.
        idle_timeout: seconds the node keeps running with no worker attached.
        first_message_timeout: seconds the first read of a topic waits for a message.
        backend_options: passed to the backend (``master_uri``, ``domain_id``, ``url``).
    """

    node: str = "flask_app"
    backend: str = "mock"
    topics: tuple[str, ...] = ("*",)
    services: tuple[str, ...] = ("*",)
    idle_timeout: float = 60.0
    first_message_timeout: float = 2.0
    backend_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from environment variables (see the module docstring).

        Raises:
            ValueError: a number or the domain id does not parse.
        """
        env = os.environ if environ is None else environ
        backend = env.get("PYROS_BACKEND", "mock")
        options: dict[str, Any] = {}
        if backend == "ros1" and env.get("ROS_MASTER_URI"):
            options["master_uri"] = env["ROS_MASTER_URI"]
        if backend == "ros2" and env.get("ROS_DOMAIN_ID"):
            options["domain_id"] = int(env["ROS_DOMAIN_ID"])
        if backend == "rosbridge" and env.get("PYROS_ROSBRIDGE_URL"):
            options["url"] = env["PYROS_ROSBRIDGE_URL"]
        return cls(
            node=env.get("PYROS_NODE", "flask_app"),
            backend=backend,
            topics=_globs(env.get("PYROS_TOPICS", "*")),
            services=_globs(env.get("PYROS_SERVICES", "*")),
            idle_timeout=float(env.get("PYROS_IDLE_TIMEOUT", "60")),
            first_message_timeout=float(env.get("PYROS_FIRST_MESSAGE_TIMEOUT", "2")),
            backend_options=options,
        )


def _globs(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", " ").split() if part)


def jsonable(value: Any) -> Any:
    """Return plain message data with every ``bytes`` value as a base64 string (as rosbridge
    sends ``uint8[]``), ready for JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


_STATUS = (
    (pyros.NotExposedError, 404),
    (pyros.MessageError, 400),
    (pyros.ServiceError, 502),
    (pyros.TimeoutError, 504),
    (pyros.NodeDiedError, 503),
    (pyros.SpawnError, 503),
)


class BadRequestBody(ValueError):
    """The request body or query is not what the endpoint takes (answered with 400)."""


def _error(error: str, message: str, status: int, field: str | None = None) -> Any:
    body = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


def _body() -> dict[str, Any]:
    """Return the request's JSON object ({} for an empty body).

    Raises:
        BadRequestBody: the body is not a JSON object.
    """
    if not request.get_data():
        return {}
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise BadRequestBody("the request body must be a JSON object")
    return data


def create_app(settings: Settings | None = None) -> Flask:
    """Return the Flask application.

    Args:
        settings: the node to use; None reads :meth:`Settings.from_env`.

    The application's :class:`pyros.SharedClient` is ``app.extensions["pyros"]``: one handle
    for every worker process, each of which attaches on first use (again after a fork, or
    after the node went away). It is closed when the process exits.
    """
    settings = Settings.from_env() if settings is None else settings
    robot = pyros.SharedClient(
        settings.node,
        settings.backend,
        topics=settings.topics,
        services=settings.services,
        idle_timeout=settings.idle_timeout,
        **settings.backend_options,
    )
    app = Flask(__name__)
    app.extensions["pyros"] = robot
    atexit.register(robot.close)

    @app.errorhandler(pyros.PyrosError)
    def pyros_error(exc: pyros.PyrosError) -> Any:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
        field = exc.field if isinstance(exc, pyros.MessageError) else None
        return _error(type(exc).__name__, str(exc), status, field)

    @app.errorhandler(BadRequestBody)
    def bad_request(exc: BadRequestBody) -> Any:
        return _error("BadRequest", str(exc), 400)

    @app.get("/")
    def status() -> Any:
        info = robot.info()
        return jsonify(
            node=settings.node,
            backend=info["backend"],
            node_pid=info["pid"],
            worker_pid=os.getpid(),
            clients=info["clients"],
        )

    @app.get("/topics")
    def topics() -> Any:
        return jsonify(robot.topics())

    @app.get("/services")
    def services() -> Any:
        return jsonify(robot.services())

    @app.get("/topics/<path:topic>")
    def read_topic(topic: str) -> Any:
        name = "/" + topic
        message = robot.latest(name, timeout=settings.first_message_timeout)
        if message is None:
            raise pyros.TimeoutError(
                f"no message on {name} within {settings.first_message_timeout:g} s"
            )
        return jsonify(topic=name, message=jsonable(message))

    @app.post("/topics/<path:topic>")
    def publish(topic: str) -> Any:
        body = _body()
        message = body.get("message", {})
        type_name = body.get("type")
        if not isinstance(message, dict) or not isinstance(type_name, (str, type(None))):
            raise BadRequestBody('expected {"message": {...}, "type": "pkg/Type"}')
        robot.publish("/" + topic, message, type=type_name)
        return jsonify(topic="/" + topic)

    @app.post("/services/<path:service>")
    def call(service: str) -> Any:
        body = _body()
        try:
            timeout = float(request.args.get("timeout", "5"))
        except ValueError:
            raise BadRequestBody("timeout must be a number of seconds") from None
        response = robot.call("/" + service, body or None, timeout=timeout)
        return jsonify(jsonable(response))

    return app


app = create_app()
