"""What the cloud connector's end-to-end tests share (mock and ROS 1).

* :class:`ConnectorProcess`: ``python -m pyros connector ...`` with its log in a file, stopped
  by PID (SIGTERM, then SIGKILL) and reaped.
* :class:`Gate`: a TCP forwarder in front of the relay that can stop accepting connections, so
  a test decides when a connector may reconnect (after its operator has subscribed again).
* :class:`TimedOperator`: the relay tests' roslibpy operator helper
  (``tests/cloud/roslibpy_operator.py``, one roslibpy per process), with every topic message
  stamped ``received`` (``time.time()``) as soon as its line is read.
* :func:`api_devices`, :func:`device`: ``GET /api/devices`` of a relay.
* :func:`percentile`; :func:`self_signed_certificate` for ``wss://`` tests.

The relay process and the roslibpy helper are the relay tests' (``relay_support.py``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.cloud.relay_support import ROOT, RoslibpyOperator
from tests.support import free_port, limit, stop_process, wait_until

__all__ = [
    "ConnectorProcess",
    "Gate",
    "TimedOperator",
    "timed_operator",
    "api_devices",
    "device",
    "percentile",
    "free_port",
    "self_signed_certificate",
]


def api_devices(port: int, token: str | None = "op-all") -> list[dict[str, Any]]:
    """Return the relay's ``GET /api/devices`` list."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/devices", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=limit(5.0)) as response:
        result: list[dict[str, Any]] = json.loads(response.read())
        return result


def device(port: int, device_id: str, token: str | None = "op-all") -> dict[str, Any] | None:
    """Return the relay's entry for ``device_id``, or None."""
    for entry in api_devices(port, token):
        if entry["id"] == device_id:
            return entry
    return None


def wait_device_online(
    port: int, device_id: str, topic: str, connector: ConnectorProcess, timeout: float = 20.0
) -> None:
    """Wait until the relay on ``port`` lists ``device_id`` online, forwarding ``topic``.

    Args:
        connector: the device's connector, which must keep running meanwhile.
        timeout: seconds, before :func:`tests.support.limit`.

    Raises:
        AssertionError: the connector exited, or not online in time (with its output).
    """

    def online() -> bool:
        assert connector.process.poll() is None, connector.output()
        entry = device(port, device_id)
        return bool(entry and entry["online"] and topic in entry["topics"])

    assert wait_until(online, limit(timeout), 0.05), connector.output()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` (0..1) percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return (cert, key) paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyros test relay")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "relay-cert.pem"
    key_path = directory / "relay-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class ConnectorProcess:
    """``python -m pyros connector ARGS`` with stdout and stderr in ``log_path``."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop)
        environment = dict(os.environ if env is None else env)
        environment["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pyros", "connector", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            cwd=ROOT,
        )

    def output(self) -> str:
        """Return what the connector printed so far."""
        return self.log_path.read_text()

    def acked_at_disconnect(self) -> list[int]:
        """Return the "acked through seq N" figures of its disconnect lines, in order."""
        return [int(n) for n in re.findall(r"acked through seq (\d+)", self.output())]

    def wait(self, timeout: float) -> int:
        """Wait for the connector to exit by itself; return its exit code."""
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def stop(self) -> int:
        """SIGTERM (SIGKILL after 10 s scaled), reap, close the log; return the exit code."""
        code = stop_process(self.process, limit(10.0))
        self._log.close()
        return code


class Gate:
    """A TCP forwarder ``127.0.0.1:port`` -> ``127.0.0.1:target`` that can be closed.

    Closed, it does not listen (a connector sees "connection refused", as with no relay);
    connections already open stay open. A connection ends on both sides, abruptly, as soon as
    either side ends. Runs an event loop in a thread; :meth:`stop` ends it.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self.open()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(limit(10.0))

    def open(self) -> None:
        """Listen again (on the same port)."""
        self._run(self._open())

    def close(self) -> None:
        """Stop listening; open connections are kept."""
        self._run(self._close())

    def stop(self) -> None:
        """Stop listening, cut every connection, end the thread."""
        self._run(self._close(cut=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(limit(5.0))
        self._loop.close()

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self, cut: bool = False) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if cut:
            for transport in list(self._transports):
                transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target
            )
        except OSError:
            writer.transport.abort()
            return
        ends = (writer.transport, upstream_writer.transport)
        self._transports.update(ends)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass

        await asyncio.wait(
            [
                asyncio.ensure_future(pump(reader, upstream_writer)),
                asyncio.ensure_future(pump(upstream_reader, writer)),
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for transport in ends:
            transport.abort()
            self._transports.discard(transport)


class TimedOperator(RoslibpyOperator):
    """The roslibpy operator helper, with a receive time on each topic message."""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            received = time.time()
            message = json.loads(line)
            if "reply" in message:
                with self._cond:
                    self._replies[message["reply"]] = message
                    self._cond.notify_all()
            else:
                message["received"] = received
                self._events.put(message)

    def subscribe(self, topic: str, type_name: str) -> None:
        """Subscribe, then wait until the relay has processed it (a rosapi round trip)."""
        reply = self.request("subscribe", topic=topic, type=type_name)
        assert reply["ok"], reply
        reply = self.request("rosapi", what="topics")  # answered after the subscribe
        assert reply["ok"], reply

    def messages(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Return the messages received so far (after waiting ``wait`` seconds)."""
        time.sleep(wait)
        return self.pending_messages()


@contextmanager
def timed_operator(port: int, token: str | None = "op-all") -> Iterator[TimedOperator]:
    """A connected :class:`TimedOperator`; closed and reaped after."""
    operator = TimedOperator()
    try:
        reply = operator.request("connect", host="127.0.0.1", port=port, token=token)
        assert reply["ok"], reply
        yield operator
    finally:
        operator.close()
