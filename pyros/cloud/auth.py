"""Who may connect to the relay and what they may do: the tokens file, grants, loopback checks.

No I/O except :meth:`Tokens.load` reading the file. The tokens file is JSON (the format agreed
in the project's design, section "Cloud connector and relay")::

    {"devices":   {"robot1": "device-secret",
                   "robot2": {"token": "other-secret", "read": ["robot1"]}},
     "operators": {"operator-secret": {"read": ["*"], "command": ["robot1"]}}}

* ``devices`` maps a device id to its token. The object form (an extension that keeps the
  plain-string form working) adds ``read``: globs of the device ids whose topics this device
  may subscribe to (device-to-device broadcast); the default is every device (``["*"]``).
* ``operators`` maps an operator token to globs of the device ids it may ``read`` (subscribe,
  list, ``GET /api/devices``) and ``command`` (publish to command topics, call services).
  Commanding a device implies nothing about reading it: list it in both.

Globs are :mod:`fnmatch` patterns, case-sensitive. Tokens are compared in constant time
(:func:`hmac.compare_digest`). A relay without a tokens file accepts only loopback peers, each
granted everything (:data:`LOOPBACK_GRANT`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pyros.exceptions import PyrosError

__all__ = [
    "DEVICE_ID_PATTERN",
    "AuthError",
    "TokensFileError",
    "Grant",
    "DeviceEntry",
    "Tokens",
    "LOOPBACK_GRANT",
    "valid_device_id",
    "is_loopback",
]

DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
"""What a device id may look like: it becomes the first component of ROS names (``/robot1/...``),
so no ``/``, no spaces, at most 128 characters."""


class AuthError(PyrosError):
    """A connection is refused: missing or wrong credentials, or not allowed.

    Attributes:
        status: the HTTP status of the refused handshake: 401 (no or unknown token) or 403
            (a valid token that is not allowed this, or a non-loopback peer without tokens).
    """

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class TokensFileError(PyrosError):
    """The tokens file cannot be read or does not have the documented shape."""


def _globs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokensFileError(f"{where} must be a list of device id globs")
    return tuple(value)


def _matches(device: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(device, pattern) for pattern in patterns)


@dataclass(frozen=True)
class Grant:
    """What one operator (or a device, for reading) may do.

    Attributes:
        read: globs of device ids whose topics may be read.
        command: globs of device ids that may be commanded (publish, call_service).
    """

    read: tuple[str, ...] = ()
    command: tuple[str, ...] = ()

    def may_read(self, device: str) -> bool:
        """Return whether ``device`` matches a ``read`` glob."""
        return _matches(device, self.read)

    def may_command(self, device: str) -> bool:
        """Return whether ``device`` matches a ``command`` glob."""
        return _matches(device, self.command)


LOOPBACK_GRANT = Grant(read=("*",), command=("*",))
"""The grant of every peer of a relay started without a tokens file (loopback peers only)."""


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the tokens file.

    Attributes:
        token: the device's secret.
        read: globs of the device ids whose topics it may subscribe to.
    """

    token: str
    read: tuple[str, ...] = ("*",)


def valid_device_id(device: str) -> bool:
    """Return whether ``device`` is a usable device id (:data:`DEVICE_ID_PATTERN`)."""
    return DEVICE_ID_PATTERN.fullmatch(device) is not None


class Tokens:
    """The parsed tokens file.

    Args:
        devices: device id -> :class:`DeviceEntry`.
        operators: operator token -> :class:`Grant`.
    """

    def __init__(self, devices: Mapping[str, DeviceEntry], operators: Mapping[str, Grant]) -> None:
        self.devices = dict(devices)
        self.operators = dict(operators)

    @classmethod
    def from_data(cls, data: Any) -> Tokens:
        """Build from the parsed JSON of a tokens file.

        Raises:
            TokensFileError: the data does not have the documented shape.
        """
        if not isinstance(data, dict):
            raise TokensFileError("the tokens file must hold a JSON object")
        unknown = set(data) - {"devices", "operators"}
        if unknown:
            raise TokensFileError(f"unknown keys in the tokens file: {sorted(unknown)}")
        devices: dict[str, DeviceEntry] = {}
        raw_devices = data.get("devices", {})
        if not isinstance(raw_devices, dict):
            raise TokensFileError("'devices' must map device ids to tokens")
        for device, entry in raw_devices.items():
            if not valid_device_id(device):
                raise TokensFileError(f"bad device id {device!r}: use letters, digits, _ . -")
            if isinstance(entry, str):
                entry = {"token": entry}
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                raise TokensFileError(f"devices.{device} must be a token or {{'token': ...}}")
            if not entry["token"]:
                raise TokensFileError(f"devices.{device}: the token must not be empty")
            read = _globs(entry.get("read", ["*"]), f"devices.{device}.read")
            devices[device] = DeviceEntry(entry["token"], read)
        operators: dict[str, Grant] = {}
        raw_operators = data.get("operators", {})
        if not isinstance(raw_operators, dict):
            raise TokensFileError(
                "'operators' must map tokens to {'read': [...], 'command': [...]}"
            )
        for index, (token, entry) in enumerate(raw_operators.items()):
            where = f"operator #{index + 1}"
            if not token:
                raise TokensFileError(f"{where}: the token must not be empty")
            if not isinstance(entry, dict) or set(entry) - {"read", "command"}:
                raise TokensFileError(f"{where} must be {{'read': [...], 'command': [...]}}")
            operators[token] = Grant(
                _globs(entry.get("read", []), f"{where}.read"),
                _globs(entry.get("command", []), f"{where}.command"),
            )
        return cls(devices, operators)

    @classmethod
    def load(cls, path: str | Path) -> Tokens:
        """Read and parse a tokens file.

        Args:
            path: the JSON file.

        Raises:
            TokensFileError: unreadable, not JSON, or not the documented shape.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TokensFileError(f"cannot read tokens file {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TokensFileError(f"tokens file {path} is not JSON: {exc}") from exc
        return cls.from_data(data)

    def device(self, device: str | None, token: str | None) -> DeviceEntry:
        """Check a connector's credentials.

        Args:
            device: the device id it claims.
            token: the token it presented.

        Returns:
            The device's entry.

        Raises:
            AuthError: 401 when the id or token is missing or the token is not that device's.
        """
        if not device or not token:
            raise AuthError("a device must present its id and token")
        entry = self.devices.get(device)
        # Compare even for unknown ids so timing does not tell which ids exist.
        expected = entry.token if entry is not None else "\x00" * max(len(token), 1)
        if not hmac.compare_digest(expected.encode(), token.encode()) or entry is None:
            raise AuthError(f"bad token for device {device!r}")
        return entry

    def operator(self, token: str | None) -> Grant:
        """Check an operator's token.

        Raises:
            AuthError: 401 when the token is missing or unknown.
        """
        if not token:
            raise AuthError("an operator token is required (Authorization: Bearer, ?token=)")
        found: Grant | None = None
        for known, grant in self.operators.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = grant
        if found is None:
            raise AuthError("unknown operator token")
        return found


def is_loopback(host: str | None) -> bool:
    """Return whether a peer address is a loopback address (127.0.0.0/8, ::1, mapped v4).

    Args:
        host: the peer's IP address as text (the first item of a socket's peer name). An
            address that cannot be read (None or empty) is not loopback: trust is never
            given by default.
    """
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
