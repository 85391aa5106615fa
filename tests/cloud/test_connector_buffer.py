"""The connector's sans-I/O parts in memory: the send buffer, backoff, option parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyros.cloud.connector import (
    Backoff,
    ConnectorError,
    device_url,
    parse_rate,
    to_json_data,
)
from pyros.cloud.connector_buffer import SendBuffer
from pyros.cloud.device_protocol import decode_from_device

pytestmark = pytest.mark.cloud


def drain(buffer: SendBuffer) -> list[int]:
    """Send everything sendable now; return the seqs in the order sent."""
    sent = []
    while (entry := buffer.next_to_send()) is not None:
        sent.append(entry.seq)
    return sent


def fill(buffer: SendBuffer, count: int, topic: str = "/counter") -> list[int]:
    return [buffer.add(topic, {"data": n}) for n in range(count)]


def test_seqs_start_at_one_and_nothing_is_sent_before_the_welcome() -> None:
    buffer = SendBuffer(10)
    assert fill(buffer, 3) == [1, 2, 3]
    assert drain(buffer) == []
    buffer.welcome(0)
    assert drain(buffer) == [1, 2, 3]
    assert drain(buffer) == []
    assert buffer.add("/counter", {"data": 9}) == 4
    assert drain(buffer) == [4]


def test_frames_are_device_protocol_publishes() -> None:
    buffer = SendBuffer(10)
    buffer.add("/camera/raw", to_json_data({"data": b"\x00\xff", "nested": [{"b": b"a"}]}))
    buffer.welcome(0)
    entry = buffer.next_to_send()
    assert entry is not None
    message = decode_from_device(entry.frame)
    assert message == {
        "op": "publish",
        "topic": "/camera/raw",
        "msg": {"data": "AP8=", "nested": [{"b": "YQ=="}]},
        "seq": 1,
    }


def test_acks_trim_and_a_reconnect_resends_only_what_the_relay_did_not_accept() -> None:
    buffer = SendBuffer(100)
    fill(buffer, 10)
    buffer.welcome(0)
    assert drain(buffer) == list(range(1, 11))
    buffer.ack(4)
    assert buffer.seqs() == list(range(5, 11))
    buffer.connection_lost()
    fill(buffer, 2)  # produced while offline: 11, 12
    assert drain(buffer) == []
    buffer.welcome(7)  # the relay got up to 7 before the connection died
    assert drain(buffer) == [8, 9, 10, 11, 12]
    assert buffer.take_dropped() == {}


def test_a_relay_that_forgot_the_session_gets_everything_buffered_again() -> None:
    buffer = SendBuffer(100)
    fill(buffer, 5)
    buffer.welcome(0)
    drain(buffer)
    buffer.ack(2)
    buffer.connection_lost()
    buffer.welcome(0)
    assert drain(buffer) == [3, 4, 5]


def test_a_second_welcome_on_one_connection_does_not_resend() -> None:
    buffer = SendBuffer(100)
    fill(buffer, 3)
    buffer.welcome(0)
    assert drain(buffer) == [1, 2, 3]
    buffer.welcome(1)  # the answer to a re-sent hello
    assert drain(buffer) == []
    assert buffer.seqs() == [2, 3]


def test_overflow_drops_the_oldest_unsent_and_counts_exactly_per_topic() -> None:
    buffer = SendBuffer(5)
    for n in range(8):
        buffer.add("/a" if n % 2 else "/b", {"data": n})
    assert buffer.seqs() == [4, 5, 6, 7, 8]
    assert buffer.dropped_total == 3
    assert buffer.take_dropped() == {"/b": 2, "/a": 1}  # seqs 1 and 3 were /b, 2 was /a
    assert buffer.take_dropped() == {}
    buffer.welcome(0)
    assert drain(buffer) == [4, 5, 6, 7, 8]


def test_counts_in_a_hello_that_got_no_welcome_are_reported_again() -> None:
    buffer = SendBuffer(2)
    fill(buffer, 5)
    assert buffer.take_dropped() == {"/counter": 3}
    buffer.connection_lost()  # the hello may never have arrived
    assert buffer.take_dropped() == {"/counter": 3}
    buffer.welcome(0)
    buffer.connection_lost()
    assert buffer.take_dropped() == {}


def test_sent_but_unacked_drops_count_only_if_the_relay_did_not_accept_them() -> None:
    buffer = SendBuffer(4)
    fill(buffer, 4)
    buffer.welcome(0)
    assert drain(buffer) == [1, 2, 3, 4]  # in flight when the connection dies
    buffer.connection_lost()
    fill(buffer, 3)  # 5, 6, 7 push out 1, 2, 3: maybe accepted, maybe not
    assert buffer.seqs() == [4, 5, 6, 7]
    assert buffer.uncertain == 3
    assert buffer.take_dropped() == {}
    buffer.welcome(2)  # the relay had accepted 1 and 2; 3 never arrived
    assert buffer.uncertain == 0
    assert buffer.has_unreported_drops()
    assert buffer.take_dropped() == {"/counter": 1}
    assert drain(buffer) == [4, 5, 6, 7]


def test_uncertain_drops_on_a_live_connection_are_settled_by_acks() -> None:
    buffer = SendBuffer(2)
    buffer.welcome(0)
    fill(buffer, 2)
    assert drain(buffer) == [1, 2]
    fill(buffer, 2)  # 1 and 2 are dropped while in flight
    assert buffer.uncertain == 2
    buffer.ack(2)
    assert buffer.uncertain == 0
    assert buffer.take_dropped() == {}
    buffer.welcome(2)  # a re-sent hello's welcome on the same connection is not final
    assert drain(buffer) == [3, 4]
    fill(buffer, 2)  # 3 and 4 dropped while in flight
    buffer.welcome(2)
    assert buffer.uncertain == 2 and not buffer.has_unreported_drops()


def test_messages_lost_before_the_buffer_are_reported_too() -> None:
    buffer = SendBuffer(10)
    buffer.count_lost("/scan", 4)
    buffer.count_lost("/scan", 0)
    assert buffer.take_dropped() == {"/scan": 4}
    assert buffer.dropped_total == 4


def test_unencodable_message_raises_and_buffers_nothing() -> None:
    from pyros.cloud.device_protocol import DeviceProtocolError

    buffer = SendBuffer(10)
    with pytest.raises(DeviceProtocolError):
        buffer.add("/x", {"data": object()})
    assert len(buffer) == 0 and buffer.last_seq == 0
    assert buffer.add("/x", {"data": 1}) == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SendBuffer(0)


def test_backoff_doubles_to_the_cap_with_full_jitter_and_resets() -> None:
    top = Backoff(random=lambda: 0.999999)
    ceilings = [top.next_delay() for _ in range(10)]
    assert ceilings == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, 5, 5, 5], rel=1e-5)
    top.reset()
    assert top.next_delay() == pytest.approx(0.2, rel=1e-5)
    bottom = Backoff(random=lambda: 0.0)
    assert [bottom.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    jittered = Backoff()
    delays = [jittered.next_delay() for _ in range(200)]
    assert all(0 <= d <= 10 for d in delays) and len(set(delays)) > 100
    with pytest.raises(ValueError):
        Backoff(initial=0)


def test_parse_rate() -> None:
    assert parse_rate("/turtle1/pose=2") == ("/turtle1/pose", 2.0)
    assert parse_rate("camera/*=0.5") == ("/camera/*", 0.5)
    for bad in ("/x", "=3", "/x=fast", "/x=0", "/x=-1", "/x=inf"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_device_url() -> None:
    assert device_url("ws://127.0.0.1:9090") == "ws://127.0.0.1:9090/device"
    assert device_url("wss://relay.example.com/") == "wss://relay.example.com/device"
    assert device_url("wss://example.com/pyros/device") == "wss://example.com/pyros/device"
    for bad in ("http://127.0.0.1:9090", "127.0.0.1:9090", "ws://"):
        with pytest.raises(ConnectorError):
            device_url(bad)


def test_to_json_data_is_json() -> None:
    data = to_json_data({"a": (1, b"\x01"), "b": {"c": bytearray(b"xy")}, "d": None})
    assert json.loads(json.dumps(data)) == {"a": [1, "AQ=="], "b": {"c": "eHk="}, "d": None}


def test_a_size_bound_drops_the_oldest_but_keeps_the_newest() -> None:
    buffer = SendBuffer(100, max_bytes=200)
    small = [buffer.add("/small", {"data": n}) for n in range(3)]
    size = buffer.bytes
    assert size == sum(len(e) for e in _frames(buffer)) and len(small) == 3
    big = buffer.add("/big", {"data": "x" * 500})
    assert buffer.seqs() == [big]  # the newest stays, however large
    assert buffer.take_dropped() == {"/small": 3}
    buffer.add("/small", {"data": 1})
    assert buffer.seqs() == [big + 1]
    assert buffer.take_dropped() == {"/big": 1}
    buffer.welcome(0)
    drain(buffer)
    buffer.ack(buffer.last_seq)
    assert len(buffer) == 0 and buffer.bytes == 0
    with pytest.raises(ValueError):
        SendBuffer(10, max_bytes=0)


def _frames(buffer: SendBuffer) -> list[str]:
    return [entry.frame for entry in buffer._entries]


def test_list_options_take_several_values_after_one_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyros.cli
    import pyros.cloud.connector

    seen: dict[str, Any] = {}

    async def fake_run_connector(**options: Any) -> None:
        seen.update(options)

    monkeypatch.setattr(pyros.cloud.connector, "run_connector", fake_run_connector)
    code = pyros.cli.main(
        [
            "connector",
            "--relay",
            "ws://127.0.0.1:1",
            "--device",
            "r1",
            "--token",
            "t",
            "--topics",
            "/a",
            "/b/*",
            "--commands=/c",
            "/d",
            "--services",
            "/reset",
            "--topics",
            "/e",
            "--rate",
            "/a=2",
            "/b/*=0.5",
        ]
    )
    assert code == 0
    assert seen["topics"] == ("/a", "/b/*", "/e")
    assert seen["commands"] == ("/c", "/d")
    assert seen["services"] == ("/reset",)
    assert seen["rates"] == {"/a": 2.0, "/b/*": 0.5}
    assert (
        pyros.cli.main(
            ["connector", "--relay", "ws://x", "--device", "r", "--token", "t", "--rate", "nohz"]
        )
        == 2
    )


def test_a_message_above_the_size_limit_is_refused_without_using_a_seq() -> None:
    from pyros.cloud.device_protocol import DeviceProtocolError

    buffer = SendBuffer(10, max_message=100)
    assert buffer.add("/x", {"data": "ok"}) == 1
    with pytest.raises(DeviceProtocolError, match="above the limit of 100 bytes"):
        buffer.add("/x", {"data": "é" * 40})  # 40 characters, 80 bytes of UTF-8 plus the frame
    assert buffer.add("/x", {"data": "ok"}) == 2
