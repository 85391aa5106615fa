"""The public surface: what ``import pyros`` exports, and what it must not import."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import typing
from typing import Any

import pytest

import pyros

CONTRACT = [
    "spawn",
    "connect",
    "Client",
    "Subscription",
    "PyrosError",
    "NotExposedError",
    "MessageError",
    "ServiceError",
    "NodeDiedError",
    "TimeoutError",
]

PUBLIC_MODULES = [
    "pyros.client",
    "pyros.exceptions",
    "pyros.message_types",
    "pyros.backends",
    "pyros.backends.base",
    "pyros.backends.mock",
    "pyros.cli",
    "pyros.asyncio",
    "pyros.cloud.device_protocol",
    "pyros.cloud.auth",
    "pyros.cloud.limits",
    "pyros.cloud.store",
    "pyros.cloud.rosbridge",
    "pyros.cloud.relay",
    "pyros.cloud.connector",
    "pyros.cloud.connector_buffer",
    "pyros.cloud.connector_demo",
    "pyros.dashboard",
    "pyros.dashboard.process",
    "pyros.dashboard.forms",
    "pyros.dashboard.fleet",
    "pyros.dashboard.rosbridge_client",
]

DASHBOARD_MODULES = ["pyros.dashboard.link", "pyros.dashboard.app"]
"""Modules that import the dashboard extra (NiceGUI, httpx): checked when it is installed."""

UI_LIBRARIES = ("nicegui", "fastapi", "starlette", "uvicorn", "httpx", "PIL", "selenium")


def test_import_pyros_imports_no_ros_and_no_websockets() -> None:
    code = (
        "import sys, json; import pyros; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('rospy', 'rclpy', 'roslibpy', 'websockets', 'genpy', "
        "'rosgraph', 'roslib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize(
    "module", ["pyros", "pyros.cloud.relay", "pyros.cloud.connector", "pyros.dashboard.process"]
)
def test_the_relay_and_pyros_import_no_ui_library(module: str) -> None:
    code = (
        f"import sys, json; import {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {UI_LIBRARIES!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_contract_names_exist() -> None:
    for name in CONTRACT:
        assert hasattr(pyros, name), name
    assert issubclass(pyros.TimeoutError, TimeoutError)
    for name in ("NotExposedError", "MessageError", "ServiceError", "NodeDiedError"):
        assert issubclass(getattr(pyros, name), pyros.PyrosError)


def test_package_all_is_complete() -> None:
    exported = set(pyros.__all__)
    for name in pyros.__all__:
        assert hasattr(pyros, name), name
    public = {
        name
        for name, value in vars(pyros).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == exported


def _import(module_name: str) -> object:
    if module_name in DASHBOARD_MODULES:
        pytest.importorskip("nicegui", reason="the dashboard extra is not installed")
    return importlib.import_module(module_name)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES + DASHBOARD_MODULES)
def test_module_all_lists_exactly_its_public_definitions(module_name: str) -> None:
    module: Any = _import(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module_name
    }
    missing = defined_here - set(module.__all__)
    assert not missing, f"{module_name} defines public {sorted(missing)} not in __all__"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES + DASHBOARD_MODULES)
def test_public_names_have_docstrings(module_name: str) -> None:
    module: Any = _import(module_name)
    assert module.__doc__, module_name
    for name in module.__all__:
        value = getattr(module, name)
        if typing.get_origin(value) is not None:
            continue  # a type alias (Callable[...], dict[...]): documented where it is defined
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"
