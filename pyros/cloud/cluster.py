"""Several relay processes as one relay, through Redis (``pyros relay --redis URL``).

This module is the Redis shell around the relay (redis-py's asyncio client); it holds no
routing rule of its own. What lives in Redis (``<prefix>`` is ``pyros:``):

* ``<prefix>device:<id>``: a hash per device: ``record`` (JSON: topics, services, command
  globs and topics, actions, params, state topics, drop counts, connector stats), ``online``
  (``1``/``0``), ``relay`` (the id of the relay its connector is on), ``last_seen``;
  ``<prefix>devices`` is the set of device ids.
* ``<prefix>latest:<id>``: a hash per device, topic -> the latest message as JSON.
* ``<prefix>seq:<id>``: a hash per device, connector session -> the last accepted ``seq``.
  A relay writes it *before* it forwards the messages (:meth:`Cluster.persist`), so a relay
  that restarts, or another relay the connector fails over to, answers the right
  ``resume_after`` and no operator ever gets a message twice.
* ``<prefix>relays``: a hash, relay id -> the wall-clock second until which it is alive
  (renewed every :data:`HEARTBEAT` seconds; a device whose relay expired is offline).

Pub/sub channels: ``<prefix>data`` carries every batch of accepted messages as ``relay US
device US topic US frame RS device US ...`` (ASCII unit and record separators; the frame is the
rosbridge ``publish`` frame, so no relay re-encodes or decodes it); ``<prefix>events`` carries
registry changes (``{"type": "record"|"offline", "relay", "device", ...}``);
``<prefix>relay:<id>`` carries what one relay asks of another: a frame for a device connected
there (``to_device``) and a device's answer for the relay whose operator asked (``reply``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Cluster", "HEARTBEAT", "RELAY_TTL", "ClusterError"]

from pyros.exceptions import PyrosError

log = logging.getLogger(__name__)

HEARTBEAT = 1.0
"""Seconds between two renewals of a relay's liveness."""

MAX_CONNECTIONS = 32
"""Redis connections one relay opens at most (one more for its subscription)."""

RELAY_TTL = 5.0
"""Seconds after its last renewal a relay (and every device on it) counts as gone."""


_FIELD = "\x1f"
_RECORD = "\x1e"
"""Separators in a data message: JSON text never holds a raw control character (RFC 8259)."""


class ClusterError(PyrosError):
    """Redis cannot be reached or used (bad URL, refused connection, wrong data)."""


Handler = Callable[[dict[str, Any]], None]


class Cluster:
    """One relay's link to the others through Redis (see the module docstring).

    Args:
        url: ``redis://HOST:PORT/DB`` (``rediss://`` for TLS).
        on_data: called with ``(device, topic, frame)`` for every message another relay
            accepted.
        on_event: called with each registry event of another relay.
        on_message: called with each message addressed to this relay.
        prefix: key and channel prefix.

    Attributes:
        relay_id: this relay's id (random, new at each start).
    """

    def __init__(
        self,
        url: str,
        *,
        on_data: Callable[[str, str, str], None],
        on_event: Handler,
        on_message: Handler,
        prefix: str = "pyros:",
    ) -> None:
        self.url = url
        self.relay_id = uuid.uuid4().hex[:12]
        self.prefix = prefix
        self._on_data = on_data
        self._on_event = on_event
        self._on_message = on_message
        self._redis: Any = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.relays: dict[str, float] = {}
        """Relay id -> alive until (wall-clock seconds), as last read."""
        self.errors = 0
        """Redis failures and unreadable cluster messages since the start (``/healthz``)."""

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, subscribe to the channels, start the heartbeat.

        Raises:
            ClusterError: Redis cannot be reached.
        """
        import redis.asyncio as redis
        from redis.exceptions import RedisError

        try:
            # A bounded pool that waits for a free connection: hundreds of devices saying hello
            # at once must queue, not fail with "Too many connections".
            pool = redis.BlockingConnectionPool.from_url(
                self.url, decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=30
            )
            self._redis = redis.Redis(connection_pool=pool)
            await self._redis.ping()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(
                self.key("data"), self.key("events"), self.key("relay", self.relay_id)
            )
            await self._beat()
        except (RedisError, OSError, ValueError) as exc:
            await self.close()
            raise ClusterError(f"cannot use Redis at {self.url}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._listen(), name="pyros-cluster-listen"),
            asyncio.create_task(self._heartbeat(), name="pyros-cluster-heartbeat"),
        ]

    async def close(self) -> None:
        """Stop listening and disconnect (this relay's liveness is withdrawn)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            if self._redis is not None:
                await self._redis.hdel(self.key("relays"), self.relay_id)
        except Exception as exc:  # noqa: BLE001 (closing: Redis may be gone already)
            log.warning("leaving the cluster: %s", exc)
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def key(self, *parts: str) -> str:
        """Return a key or channel name: ``pyros:`` + ``parts`` joined with ``:``."""
        return self.prefix + ":".join(parts)

    # --- liveness -----------------------------------------------------------------------

    def alive(self, relay_id: str, now: float | None = None) -> bool:
        """Return whether ``relay_id`` renewed its liveness recently (as last read)."""
        if relay_id == self.relay_id:
            return True
        return self.relays.get(relay_id, 0.0) > (time.time() if now is None else now)

    async def _beat(self) -> None:
        now = time.time()
        await self._redis.hset(self.key("relays"), self.relay_id, repr(now + RELAY_TTL))
        self.relays = {
            k: float(v) for k, v in (await self._redis.hgetall(self.key("relays"))).items()
        }

    async def _heartbeat(self) -> None:
        from redis.exceptions import RedisError

        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._beat()
            except (RedisError, OSError) as exc:
                log.error("Redis heartbeat failed: %s", exc, extra={"event": "redis_error"})

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                await self._receive()
            except (RedisError, OSError) as exc:
                # Redis restarted, or dropped this subscriber (client-output-buffer-limit for
                # pubsub): what the other relays published meanwhile is lost to this one's
                # operators. Counted, logged, and the subscription is made again.
                self.errors += 1
                log.error(
                    "Redis subscription lost: %s; subscribing again",
                    exc,
                    extra={"event": "redis_error"},
                )
                await asyncio.sleep(1.0)
                try:
                    await self._pubsub.aclose()
                    self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    await self._pubsub.subscribe(
                        self.key("data"), self.key("events"), self.key("relay", self.relay_id)
                    )
                except (RedisError, OSError) as again:
                    log.error("Redis: %s", again, extra={"event": "redis_error"})

    async def _receive(self) -> None:
        data, events = self.key("data"), self.key("events")
        async for item in self._pubsub.listen():
            channel, payload = item.get("channel"), item.get("data")
            if not isinstance(payload, str):
                continue
            try:
                if channel == data:
                    relay, _, records = payload.partition(_FIELD)
                    if relay != self.relay_id:
                        for record in records.split(_RECORD):
                            device, topic, frame = record.split(_FIELD, 2)
                            self._on_data(device, topic, frame)
                    continue
                message = json.loads(payload)
                if channel == events:
                    if message.get("relay") != self.relay_id:
                        self._on_event(message)
                else:
                    self._on_message(message)
            except Exception:  # a bad or unexpected message must not stop the cluster link
                self.errors += 1
                log.exception("cluster message on %s not handled", channel)

    # --- the registry -------------------------------------------------------------------

    async def load(self) -> list[dict[str, Any]]:
        """Return every device's stored state: ``{"id", "record", "online", "relay",
        "last_seen", "latest": {topic: msg}, "seqs": {session: seq}}``."""
        out = []
        for device in sorted(await self._redis.smembers(self.key("devices"))):
            stored = await self._redis.hgetall(self.key("device", device))
            latest = await self._redis.hgetall(self.key("latest", device))
            seqs = await self._redis.hgetall(self.key("seq", device))
            out.append(
                {
                    "id": device,
                    "record": json.loads(stored.get("record", "{}")),
                    "online": stored.get("online") == "1",
                    "relay": stored.get("relay", ""),
                    "last_seen": float(stored.get("last_seen", 0.0)),
                    "latest": {topic: json.loads(value) for topic, value in latest.items()},
                    "seqs": {session: int(seq) for session, seq in seqs.items()},
                }
            )
        return out

    async def last_seq(self, device: str, session: str) -> int:
        """Return the last accepted seq of a device's connector session (0 if none)."""
        value = await self._redis.hget(self.key("seq", device), session)
        return int(value) if value is not None else 0

    async def save_device(
        self, device: str, record: dict[str, Any], online: bool, last_seen: float
    ) -> None:
        """Store a device's record and tell the other relays."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(self.key("devices"), device)
        self._save_record(pipe, device, record, online, last_seen)
        await pipe.execute()

    def _save_record(
        self, pipe: Any, device: str, record: dict[str, Any], online: bool, last_seen: float
    ) -> None:
        """Queue on ``pipe`` the storing of a device's record and the event that tells the
        other relays."""
        fields = {
            "record": json.dumps(record),
            "online": "1" if online else "0",
            "relay": self.relay_id,
            "last_seen": repr(last_seen),
        }
        pipe.hset(self.key("device", device), mapping=fields)
        event = {"type": "record", "relay": self.relay_id, "device": device, **fields}
        pipe.publish(self.key("events"), json.dumps(event))

    async def persist(
        self,
        seqs: dict[tuple[str, str], int],
        latest: dict[str, dict[str, str]],
        frames: list[tuple[str, str, str]],
        last_seen: float,
    ) -> None:
        """Record a batch of accepted messages, then publish them, in one transaction.

        Nothing of the batch is forwarded by the caller before this returns, so the stored
        sequence numbers always cover what any operator got.

        Args:
            seqs: (device, session) -> the last seq of the batch.
            latest: device -> {topic: the newest message of the batch as JSON}.
            frames: (device, topic, operator frame) of every message, in order.
            last_seen: wall-clock seconds.
        """
        pipe = self._redis.pipeline(transaction=True)
        for (device, session), seq in seqs.items():
            pipe.hset(self.key("seq", device), session, seq)
            pipe.hset(self.key("device", device), "last_seen", repr(last_seen))
        for device, values in latest.items():
            pipe.hset(self.key("latest", device), mapping=values)
        if frames:
            records = _RECORD.join(_FIELD.join(item) for item in frames)
            pipe.publish(self.key("data"), f"{self.relay_id}{_FIELD}{records}")
        await pipe.execute()

    async def save_devices(self, records: dict[str, tuple[dict[str, Any], bool, float]]) -> None:
        """Store several devices' records (``id -> (record, online, last_seen)``) at once."""
        pipe = self._redis.pipeline(transaction=False)
        for device, (record, online, last_seen) in records.items():
            self._save_record(pipe, device, record, online, last_seen)
        await pipe.execute()

    async def event(self, message: dict[str, Any]) -> None:
        """Tell the other relays about a registry change (``type`` and ``device`` set)."""
        await self._redis.publish(
            self.key("events"), json.dumps(dict(message, relay=self.relay_id))
        )

    async def mark_offline(self, device: str, last_seen: float) -> None:
        """Store that a device's connector left this relay, and tell the other relays."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self.key("device", device), mapping={"online": "0", "last_seen": repr(last_seen)})
        event = {
            "type": "offline",
            "relay": self.relay_id,
            "device": device,
            "last_seen": last_seen,
        }
        pipe.publish(self.key("events"), json.dumps(event))
        await pipe.execute()

    async def send(self, relay_id: str, message: dict[str, Any]) -> None:
        """Send ``message`` to one relay (its ``on_message``)."""
        await self._redis.publish(self.key("relay", relay_id), json.dumps(message))


def spawn(coroutine: Awaitable[None], tasks: set[asyncio.Task[None]]) -> None:
    """Run ``coroutine`` in the background, kept referenced in ``tasks``; log its failure."""

    async def guarded() -> None:
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (a Redis write failed: say so, keep serving)
            log.error("Redis: %s", exc, extra={"event": "redis_error"})

    task = asyncio.ensure_future(guarded())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
