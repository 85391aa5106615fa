"""The connector's buffer on disk (``pyros connector --buffer-dir DIR``): SQLite in WAL mode.

:class:`DiskSendBuffer` is a :class:`~pyros.cloud.connector_buffer.SendBuffer` that writes every
change through to ``DIR/<device>.sqlite3`` before it returns, so a connector that is killed
(SIGKILL, power to the robot's computer kept) and started again with the same ``--buffer-dir``
resumes the same session: same session id, same sequence numbers, the same unacknowledged
messages resent, and the same exact drop counts. The relay remembers the session's last accepted
``seq`` and drops what it already accepted, so nothing within the buffer's bounds is lost or
duplicated across the restart.

SQLite settings: ``journal_mode=WAL`` and ``synchronous=NORMAL`` (a committed change survives a
crash of the process; the last changes may be lost to a power cut, which the WAL keeps
consistent), autocommit: one short transaction per added message, one per ``ack``. Only the
connector's event loop thread uses the connection.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyros.cloud.connector_buffer import BufferedMessage, SendBuffer
from pyros.exceptions import PyrosError

__all__ = ["DiskSendBuffer", "BufferDirError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,
                                     frame TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uncertain (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class BufferDirError(PyrosError):
    """The buffer directory or its database cannot be used (unwritable, corrupt, other device)."""


class DiskSendBuffer(SendBuffer):
    """A :class:`SendBuffer` kept in ``directory/<device>.sqlite3`` (see the module docstring).

    Args:
        directory: the ``--buffer-dir``; created if missing.
        device: the device id (one database per device id).
        capacity, max_bytes, max_message: as :class:`SendBuffer`.

    Attributes:
        session: the connector session id: the stored one when the database exists, else a
            new uuid4 (stored).
        path: the database file.

    Raises:
        BufferDirError: the directory or the database cannot be opened or read.
    """

    def __init__(
        self,
        directory: str | Path,
        device: str,
        capacity: int,
        *,
        max_bytes: int | None = None,
        max_message: int | None = None,
    ) -> None:
        super().__init__(capacity, max_bytes=max_bytes, max_message=max_message)
        self.path = Path(directory) / f"{device}.sqlite3"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load(device)
        except (OSError, sqlite3.Error, ValueError, KeyError, TypeError) as exc:
            raise BufferDirError(f"cannot use the buffer database {self.path}: {exc}") from exc

    def _meta(self) -> dict[str, str]:
        return {key: value for key, value in self._db.execute("SELECT key, value FROM meta")}

    def _load(self, device: str) -> None:
        meta = self._meta()
        if meta.get("device", device) != device:
            raise ValueError(f"it belongs to device {meta['device']!r}, not {device!r}")
        self.session = meta.get("session") or str(uuid.uuid4())
        self.last_seq = int(meta.get("last_seq", 0))
        self.acked = int(meta.get("acked", 0))
        self.dropped_total = int(meta.get("dropped_total", 0))
        self._highest_sent = int(meta.get("highest_sent", 0))
        self._dropped = collections.Counter(json.loads(meta.get("dropped", "{}")))
        for seq, topic, frame in self._db.execute(
            "SELECT seq, topic, frame FROM messages ORDER BY seq"
        ):
            self._entries.append(BufferedMessage(seq, topic, frame))
            self.bytes += len(frame)
        self._uncertain.extend(
            (seq, topic) for seq, topic in self._db.execute("SELECT seq, topic FROM uncertain")
        )
        self._db.execute("BEGIN")
        self._put_meta(device=device, session=self.session)
        self._save_state()
        self._db.execute("COMMIT")

    def _put_meta(self, **values: Any) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(key, str(value)) for key, value in values.items()],
        )

    def _save_state(self) -> None:
        pending = self._dropped + self._reported
        self._put_meta(
            last_seq=self.last_seq,
            acked=self.acked,
            dropped_total=self.dropped_total,
            highest_sent=self._highest_sent,
            dropped=json.dumps(dict(pending)),
        )

    def _write(self, change: Any) -> None:
        """Run ``change()`` (SQL statements) and the state update in one transaction."""
        self._db.execute("BEGIN")
        try:
            change()
            self._save_state()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- SendBuffer, written through -----------------------------------------------------

    def add(self, topic: str, message: Mapping[str, Any]) -> int:
        """As :meth:`SendBuffer.add`; the message is on disk when this returns."""
        before = self.oldest_seq
        seq = super().add(topic, message)
        entry = self._entries[-1]
        after = self.oldest_seq

        def change() -> None:
            self._db.execute(
                "INSERT OR REPLACE INTO messages (seq, topic, frame) VALUES (?, ?, ?)",
                (entry.seq, entry.topic, entry.frame),
            )
            if before is not None and after is not None and after > before:
                self._db.execute("DELETE FROM messages WHERE seq < ?", (after,))
                self._sync_uncertain()

        self._write(change)
        return seq

    def count_lost(self, topic: str, count: int) -> None:
        """As :meth:`SendBuffer.count_lost`, written through."""
        super().count_lost(topic, count)
        if count > 0:
            self._write(lambda: None)

    def next_to_send(self) -> BufferedMessage | None:
        """As :meth:`SendBuffer.next_to_send` (the highest seq sent is kept on disk too)."""
        entry = super().next_to_send()
        if entry is not None:
            self._put_meta(highest_sent=self._highest_sent)
        return entry

    def take_dropped(self) -> dict[str, int]:
        """As :meth:`SendBuffer.take_dropped`."""
        return super().take_dropped()

    def welcome(self, resume_after: int) -> None:
        """As :meth:`SendBuffer.welcome`, written through."""
        super().welcome(resume_after)
        self._write(self._sync_trim)

    def ack(self, seq: int) -> None:
        """As :meth:`SendBuffer.ack`, written through."""
        super().ack(seq)
        self._write(self._sync_trim)

    def close(self) -> None:
        """Close the database (what is on disk stays for the next start)."""
        self._db.close()

    def _sync_trim(self) -> None:
        oldest = self.oldest_seq
        if oldest is None:
            self._db.execute("DELETE FROM messages")
        else:
            self._db.execute("DELETE FROM messages WHERE seq < ?", (oldest,))
        self._sync_uncertain()

    def _sync_uncertain(self) -> None:
        self._db.execute("DELETE FROM uncertain")
        self._db.executemany(
            "INSERT INTO uncertain (seq, topic) VALUES (?, ?)", list(self._uncertain)
        )
