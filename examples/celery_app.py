"""Celery tasks that publish and call services: every pool process uses one shared pyros node.

Celery's prefork pool runs tasks in several processes. With rospy in each, a pool of 4 makes
4 ROS nodes (and rospy does not survive the fork); here each pool process attaches to one named
pyros node, ``/pyros_<PYROS_NODE>``, on its first task. The node is started by whichever
process comes first (under a file lock), outlives pool processes being replaced
(``--max-tasks-per-child``, crashes), and exits ``PYROS_IDLE_TIMEOUT`` seconds after the last
one is gone, or on ``pyros node stop NAME``.

Run a worker (the mock backend needs no ROS) and use the tasks::

    celery -A examples.celery_app worker --concurrency 4
    PYROS_BACKEND=ros1 ROS_MASTER_URI=http://127.0.0.1:11311/ \\
        celery -A examples.celery_app worker --concurrency 4

    >>> from examples.celery_app import call_service, publish
    >>> publish.delay("/turtle1/cmd_vel", {"linear": {"x": 1.0}}).get(timeout=10)
    >>> call_service.delay("/set_flag", {"data": True}).get(timeout=10)
    {'success': True, 'message': '...'}

Task results are JSON: ``bytes`` fields come back as base64 strings. A pyros error in a task
(``NotExposedError``, ``MessageError``, ``ServiceError``...) fails the task with that
exception; after ``NodeDiedError`` the pool process attaches again on its next task
(:class:`pyros.SharedClient` does it).

Configuration, from the environment: ``CELERY_BROKER_URL`` (``redis://127.0.0.1:6379/0``),
``CELERY_RESULT_BACKEND`` (the broker URL); ``PYROS_NODE`` (``celery_app``), ``PYROS_BACKEND``
(``mock``), ``PYROS_TOPICS`` and ``PYROS_SERVICES`` (glob patterns separated by spaces or
commas, default ``*``), ``PYROS_IDLE_TIMEOUT`` (seconds, 60); backend options
``ROS_MASTER_URI`` (ros1 ``master_uri``), ``ROS_DOMAIN_ID`` (ros2 ``domain_id``),
``PYROS_ROSBRIDGE_URL`` (rosbridge ``url``).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

import pyros

__all__ = ["app", "robot", "publish", "call_service", "topics", "services", "jsonable"]

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

app = Celery("pyros_example")
app.conf.update(
    broker_url=BROKER_URL,
    result_backend=os.environ.get("CELERY_RESULT_BACKEND", BROKER_URL),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


def _globs(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", " ").split() if part)


def _backend_options(backend: str) -> dict[str, Any]:
    """The backend options given in the environment (see the module docstring)."""
    options: dict[str, Any] = {}
    if backend == "ros1" and os.environ.get("ROS_MASTER_URI"):
        options["master_uri"] = os.environ["ROS_MASTER_URI"]
    if backend == "ros2" and os.environ.get("ROS_DOMAIN_ID"):
        options["domain_id"] = int(os.environ["ROS_DOMAIN_ID"])
    if backend == "rosbridge" and os.environ.get("PYROS_ROSBRIDGE_URL"):
        options["url"] = os.environ["PYROS_ROSBRIDGE_URL"]
    return options


_backend = os.environ.get("PYROS_BACKEND", "mock")
robot = pyros.SharedClient(
    os.environ.get("PYROS_NODE", "celery_app"),
    _backend,
    topics=_globs(os.environ.get("PYROS_TOPICS", "*")),
    services=_globs(os.environ.get("PYROS_SERVICES", "*")),
    idle_timeout=float(os.environ.get("PYROS_IDLE_TIMEOUT", "60")),
    **_backend_options(_backend),
)
"""The shared node, for every pool process: each attaches on its first task (a pool process
forked from a parent that had a client makes its own), and again after the node went away."""


@worker_process_shutdown.connect
def _close_client(**_: Any) -> None:
    """Close this pool process's client as it exits (the shared node keeps running)."""
    robot.close()


def jsonable(value: Any) -> Any:
    """Return plain message data with every ``bytes`` value as a base64 string."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


@app.task(name="pyros_example.publish")
def publish(topic: str, message: dict[str, Any], type: str | None = None) -> dict[str, str]:
    """Publish one message.

    Args:
        topic: topic name (``"/turtle1/cmd_vel"``).
        message: the message as a dict shaped like the ROS message (``uint8[]`` as a list of
            integers).
        type: ``"pkg/Type"``; needed only when the topic does not exist yet.

    Returns:
        ``{"topic": topic}``.

    Raises:
        pyros.NotExposedError: the topic matches none of the node's patterns.
        pyros.MessageError: the dict does not fit the type (``field`` names the field).
    """
    robot.publish(topic, message, type=type)
    return {"topic": topic}


@app.task(name="pyros_example.call_service")
def call_service(
    service: str, request: dict[str, Any] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Call a ROS service and return its response (``bytes`` as base64).

    Args:
        service: service name (``"/set_flag"``).
        request: the request dict; None for an empty request.
        timeout: seconds to wait for the response.

    Raises:
        pyros.NotExposedError: no such service, or it is not exposed.
        pyros.MessageError: the request does not fit the service type.
        pyros.ServiceError: the service failed.
        pyros.TimeoutError: no response within ``timeout``.
    """
    response = robot.call(service, request, timeout=timeout)
    result: dict[str, Any] = jsonable(response)
    return result


@app.task(name="pyros_example.topics")
def topics() -> dict[str, str]:
    """Return the exposed topics and their types: ``{"/chatter": "std_msgs/String"}``."""
    result: dict[str, str] = robot.topics()
    return result


@app.task(name="pyros_example.services")
def services() -> dict[str, str]:
    """Return the exposed services and their types: ``{"/set_flag": "std_srvs/SetBool"}``."""
    result: dict[str, str] = robot.services()
    return result
