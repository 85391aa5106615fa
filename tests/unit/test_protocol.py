"""The wire protocol, in memory: a ClientProtocol and a NodeProtocol wired to each other."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyros import exceptions as exc
from pyros._protocol import (
    HEARTBEAT_TIMEOUT,
    PROTOCOL_VERSION,
    ClientProtocol,
    Failure,
    Heartbeat,
    Message,
    NodeProtocol,
    Reply,
    Request,
    StreamProtocol,
    Subscribed,
    Unsubscribed,
    decode,
    encode,
)


class Pair:
    """A client and a node protocol; frames are handed across by hand (h11's ConnectionPair)."""

    def __init__(self) -> None:
        self.client = ClientProtocol()
        self.node = NodeProtocol()

    def request(self, op: str, args: dict, *, now: float = 0.0, timeout: float | None = 5.0):
        request_id, frame = self.client.send_request(op, args, now=now, timeout=timeout)
        request = self.node.receive_request(frame)
        assert isinstance(request, Request)
        assert request.id == request_id
        return request


def test_request_reply_round_trip() -> None:
    pair = Pair()
    request = pair.request("publish", {"topic": "/chatter", "message": {"data": "hi"}})
    assert request.op == "publish"
    assert request.args["message"] == {"data": "hi"}
    assert pair.client.pending
    event = pair.client.receive_reply(pair.node.reply(request.id, None))
    assert event == Reply(request.id, None)
    assert not pair.client.pending


def test_ids_are_unique_and_replies_match_out_of_order() -> None:
    pair = Pair()
    first = pair.request("topics", {})
    second = pair.request("services", {})
    assert first.id != second.id
    assert pair.client.receive_reply(pair.node.reply(second.id, {"/b": "x/Y"})) == Reply(
        second.id, {"/b": "x/Y"}
    )
    assert pair.client.receive_reply(pair.node.reply(first.id, {})) == Reply(first.id, {})


def test_errors_cross_the_wire_with_their_class_and_field() -> None:
    pair = Pair()
    request = pair.request("publish", {"topic": "/cmd", "message": {"linear": {"x": "fast"}}})
    frame = pair.node.fail(request.id, exc.MessageError("bad x", field="linear.x"))
    event = pair.client.receive_reply(frame)
    assert isinstance(event, Failure)
    assert isinstance(event.error, exc.MessageError)
    assert event.error.field == "linear.x"
    assert str(event.error) == "bad x"


@pytest.mark.parametrize(
    "cls",
    [
        exc.NotExposedError,
        exc.ServiceError,
        exc.ParamNotSetError,
        exc.TimeoutError,
        exc.ProtocolError,
        exc.SpawnError,
    ],
)
def test_every_error_class_survives_the_wire(cls: type[exc.PyrosError]) -> None:
    rebuilt = exc.from_wire(cls("what went wrong").to_wire())
    assert type(rebuilt) is cls
    assert str(rebuilt) == "what went wrong"


def test_param_not_set_is_a_key_error_and_timeout_a_builtin_timeout() -> None:
    assert isinstance(exc.ParamNotSetError("x"), KeyError)
    assert isinstance(exc.TimeoutError("x"), TimeoutError)


def test_late_reply_after_timeout_is_ignored() -> None:
    pair = Pair()
    request = pair.request("call", {"service": "/slow"}, now=10.0, timeout=1.0)
    assert pair.client.next_deadline() == 11.0
    assert pair.client.expire(10.5) == []
    (failure,) = pair.client.expire(11.0)
    assert isinstance(failure.error, exc.TimeoutError)
    assert pair.client.receive_reply(pair.node.reply(request.id, {})) is None


def test_cancelled_request_reply_is_ignored() -> None:
    pair = Pair()
    request = pair.request("topics", {})
    pair.client.cancel(request.id)
    assert pair.client.receive_reply(pair.node.reply(request.id, {})) is None


def test_fail_all_fails_every_pending_request() -> None:
    pair = Pair()
    ids = {pair.request("topics", {}).id for _ in range(3)}
    failures = pair.client.fail_all(exc.NodeDiedError("gone"))
    assert {f.id for f in failures} == ids
    assert all(isinstance(f.error, exc.NodeDiedError) for f in failures)
    assert not pair.client.pending


def test_no_timeout_means_no_deadline() -> None:
    pair = Pair()
    pair.request("topics", {}, timeout=None)
    assert pair.client.next_deadline() is None
    assert pair.client.expire(1e9) == []


def test_client_refuses_unknown_op_and_non_plain_data() -> None:
    client = ClientProtocol()
    with pytest.raises(exc.ProtocolError):
        client.send_request("format_disk", {}, now=0, timeout=1)
    with pytest.raises(exc.MessageError):
        client.send_request("publish", {"message": {1, 2}}, now=0, timeout=1)
    assert not client.pending


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        b"garbage that is not msgpack \xff\xfe",
        encode("a string"),
        encode([PROTOCOL_VERSION, "one", "topics", {}]),
        encode([PROTOCOL_VERSION, -3, "topics", {}]),
        encode([PROTOCOL_VERSION, 1, 2]),
    ],
)
def test_node_answers_garbage_with_a_protocol_error(frame: bytes) -> None:
    result = NodeProtocol().receive_request(frame)
    assert isinstance(result, tuple)
    _, reply = result
    version, _, ok, error = decode(reply)
    assert version == PROTOCOL_VERSION and ok is False
    assert error["type"] == "ProtocolError"


def test_node_names_the_unknown_op_and_other_version() -> None:
    node = NodeProtocol()
    request_id, reply = node.receive_request(encode([PROTOCOL_VERSION, 7, "explode", {}]))
    assert request_id == 7
    assert "explode" in decode(reply)[3]["message"]
    request_id, reply = node.receive_request(encode([99, 8, "topics", {}]))
    assert request_id == 8
    assert "version 99" in decode(reply)[3]["message"]
    request_id, reply = node.receive_request(encode([PROTOCOL_VERSION, 9, "topics", [1]]))
    assert request_id == 9 and decode(reply)[2] is False


def test_client_ignores_malformed_reply_frames() -> None:
    pair = Pair()
    pair.request("topics", {})
    for frame in (b"\xc1", encode([1, 2]), encode(None)):
        assert pair.client.receive_reply(frame) is None
    assert len(pair.client.pending) == 1


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=False)
        | st.text()
        | st.binary(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_plain_data_round_trips(value: object) -> None:
    assert decode(encode(value)) == value


@given(st.binary(max_size=64))
def test_node_never_raises_on_random_bytes(frame: bytes) -> None:
    result = NodeProtocol().receive_request(frame)
    assert isinstance(result, (Request, tuple))


# --- stream ---------------------------------------------------------------------------------


def test_heartbeats_keep_the_node_alive_and_silence_kills_it() -> None:
    node = NodeProtocol()
    stream = StreamProtocol(now=0.0)
    assert stream.node_dead(0.5) is None
    event = stream.receive(node.heartbeat({"name": "n", "pid": 1}), now=1.0)
    assert isinstance(event, Heartbeat) and event.seq == 1 and event.info["pid"] == 1
    assert stream.node_dead(1.0 + HEARTBEAT_TIMEOUT - 0.01) is None
    assert stream.next_check(1.0) == 1.0 + HEARTBEAT_TIMEOUT
    died = stream.node_dead(1.0 + HEARTBEAT_TIMEOUT + 0.01)
    assert isinstance(died, exc.NodeDiedError)


def test_no_first_heartbeat_within_grace_is_death() -> None:
    stream = StreamProtocol(now=0.0, grace=2.0)
    assert stream.node_dead(1.9) is None
    assert isinstance(stream.node_dead(2.1), exc.NodeDiedError)


def test_messages_are_routed_by_token() -> None:
    node = NodeProtocol()
    stream = StreamProtocol(now=0.0)
    body = encode({"data": b"\x00\x01"})
    event = stream.receive(node.message_frames(b"abc/1", body), now=0.1)
    assert event == Message(b"abc/1", {"data": b"\x00\x01"})


def test_stream_ignores_foreign_frames() -> None:
    stream = StreamProtocol(now=0.0)
    assert stream.receive([b"h"], now=0) is None
    assert stream.receive([b"x", b""], now=0) is None
    assert stream.receive([b"h", b"\xc1"], now=0) is None
    assert stream.receive([b"h", msgpack.packb([PROTOCOL_VERSION + 1, 1, {}])], now=0) is None
    assert stream.receive([b"s1", b"\xc1"], now=0) is None
    assert stream.last_heartbeat is None


def test_control_frames() -> None:
    assert NodeProtocol.receive_control(b"\x01sabc") == Subscribed(b"sabc")
    assert NodeProtocol.receive_control(b"\x00sabc") == Unsubscribed(b"sabc")
    assert NodeProtocol.receive_control(b"\x05") is None
    assert NodeProtocol.receive_control(b"") is None


def test_message_error_keeps_its_field_through_pickle() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(exc.MessageError("bad x", field="linear.x")))
    assert isinstance(error, exc.MessageError)
    assert error.field == "linear.x" and str(error) == "bad x"
