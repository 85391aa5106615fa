"""The wire protocol, in memory: a ClientProtocol and a NodeProtocol wired to each other."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyros import exceptions as exc
from pyros._protocol import (
    HEARTBEAT_TIMEOUT,
    KIND_MESSAGE,
    MAX_DEPTH,
    OPS,
    PROTOCOL_VERSION,
    ClientProtocol,
    Event,
    Failure,
    Heartbeat,
    Liveness,
    NodeProtocol,
    Reply,
    Request,
    StreamItem,
    Subscribed,
    Unsubscribed,
    check_args,
    decode,
    encode,
    parse_stream,
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
        exc.ActionError,
        exc.ConnectionLostError,
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
    assert request.args == {"service": "/slow", "request": {}, "type": None, "timeout": None}
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
        client.send_request("publish", {"topic": "/t", "message": {"a": {1, 2}}}, now=0, timeout=1)
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


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Any MessagePack value, well-formed for pyros or not: maps with int, bool, float, None or bytes
# keys, integers at the edges, every op name and not-op names.
ANY_MSGPACK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.sampled_from(sorted(OPS)),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=6)
            | st.integers(-5, 5)
            | st.booleans()
            | st.binary(max_size=3)
            | st.sampled_from(["topic", "token", "message", "timeout", "qos", "name", "value"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(PLAIN)
def test_plain_data_round_trips(value: object) -> None:
    assert decode(encode(value)) == value


@given(ANY_MSGPACK)
def test_encoder_and_decoder_agree_on_any_value(value: object) -> None:
    """What encode accepts decodes to the same value; what it refuses is a MessageError."""
    try:
        frame = encode(value)
    except exc.MessageError:
        return
    assert encode(decode(frame)) == frame  # compared as bytes: NaN is not equal to itself


@given(ANY_MSGPACK, ANY_MSGPACK, st.integers(0, 2**64 - 1))
def test_node_answers_any_request_shaped_frame_without_raising(
    op: object, args: object, request_id: int
) -> None:
    """A frame the node can read an id from always gets a reply; nothing raises."""
    frame = msgpack.packb([PROTOCOL_VERSION, request_id, op, args], use_bin_type=True)
    result = NodeProtocol().receive_request(frame)
    if isinstance(result, Request):
        assert result.op in OPS
        # What the node accepted, a client could have sent: the two sides agree.
        ClientProtocol().send_request(result.op, result.args, now=0, timeout=1)
    else:
        replied_id, reply = result
        version, _, ok, error = decode(reply)
        assert ok is False and isinstance(error, dict) and error["type"]
        assert len(error["message"]) < 1000


@given(st.binary(max_size=64))
def test_node_never_raises_on_random_bytes(frame: bytes) -> None:
    result = NodeProtocol().receive_request(frame)
    assert isinstance(result, (Request, tuple))


def test_non_string_keys_are_refused_at_once_with_the_field() -> None:
    client = ClientProtocol()
    with pytest.raises(exc.MessageError) as caught:
        client.send_request(
            "publish", {"topic": "/t", "message": {"a": {1: "y"}}}, now=0, timeout=1
        )
    assert caught.value.field == "a"
    assert not client.pending
    # A frame from elsewhere with such keys gets an error reply naming the field.
    frame = msgpack.packb([PROTOCOL_VERSION, 5, "publish", {"topic": "/t", "message": {1: "y"}}])
    request_id, reply = NodeProtocol().receive_request(frame)
    assert request_id == 5
    assert decode(reply)[3]["type"] == "MessageError"


def test_an_op_that_is_a_list_or_a_map_is_a_protocol_error() -> None:
    for op in (["info"], {"info": 1}, 7, None):
        frame = encode([PROTOCOL_VERSION, 7, op, {}])
        request_id, reply = NodeProtocol().receive_request(frame)
        assert request_id == 7
        assert decode(reply)[3]["type"] == "ProtocolError"


def test_deep_nesting_and_huge_names_are_refused_briefly() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(exc.MessageError, match="deeper"):
        check_args("publish", {"topic": "/t", "message": {"a": deep}})
    huge = "x" * 10_000_000
    frame = encode([PROTOCOL_VERSION, 3, huge, {}])
    _, reply = NodeProtocol().receive_request(frame)
    assert len(reply) < 500
    with pytest.raises(exc.NotExposedError) as caught:
        check_args("get_param", {"name": huge})
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("op", "args", "error"),
    [
        ("publish", {"topic": "/t"}, exc.ProtocolError),  # missing message
        ("publish", {"topic": "/t", "message": [1]}, exc.MessageError),
        ("publish", {"topic": 5, "message": {}}, exc.NotExposedError),
        ("publish", {"topic": "/t", "message": {}, "color": 1}, exc.ProtocolError),
        ("publish", {"topic": "/t", "message": {}, "qos": {"depth": 0}}, exc.MessageError),
        ("publish", {"topic": "/t", "message": {}, "qos": {"speed": 1}}, exc.MessageError),
        ("call", {"service": "/s", "timeout": float("nan")}, exc.MessageError),
        ("call", {"service": "/s", "timeout": 1e400}, exc.MessageError),
        ("call", {"service": "/s", "timeout": -1}, exc.MessageError),
        ("subscribe", {"topic": "/t", "token": "not bytes"}, exc.ProtocolError),
        ("set_param", {"name": "/p", "value": None}, exc.MessageError),
        ("set_param", {"name": "/p"}, exc.MessageError),
        ("send_goal", {"action": "/a", "token": b""}, exc.ProtocolError),
    ],
)
def test_argument_checks(op: str, args: dict, error: type[exc.PyrosError]) -> None:
    with pytest.raises(error):
        check_args(op, args)


def test_qos_is_checked_and_kept() -> None:
    qos = {"reliability": "best_effort", "durability": "transient_local", "depth": 5}
    args = check_args("subscribe", {"topic": "/t", "token": b"x", "qos": qos})
    assert args["qos"] == qos


# --- stream ---------------------------------------------------------------------------------


def test_heartbeats_and_silence_make_a_node_stalled_not_dead() -> None:
    node = NodeProtocol()
    liveness = Liveness(now=0.0)
    assert liveness.stalled(0.5) is None
    beat = parse_stream(node.heartbeat({"name": "n", "pid": 1}))
    assert isinstance(beat, Heartbeat) and beat.seq == 1 and beat.info["pid"] == 1
    liveness.heard(beat, 1.0)
    assert liveness.stalled(1.0 + HEARTBEAT_TIMEOUT - 0.01) is None
    silence = liveness.stalled(1.0 + HEARTBEAT_TIMEOUT + 0.5)
    assert silence is not None and silence > HEARTBEAT_TIMEOUT
    liveness.heard(beat, 10.0)  # it recovers as soon as heartbeats resume
    assert liveness.stalled(10.1) is None


def test_no_first_heartbeat_within_grace_is_a_stall() -> None:
    liveness = Liveness(now=0.0, grace=2.0)
    assert liveness.stalled(1.9) is None
    assert liveness.stalled(2.1) is not None


def test_stream_items_carry_token_kind_and_node_drops() -> None:
    body = encode({"data": b"\x00\x01"})
    item = parse_stream(NodeProtocol.stream_frames(b"abc/1", KIND_MESSAGE, body))
    assert item == StreamItem(b"abc/1", KIND_MESSAGE, body, 0)
    item = parse_stream(NodeProtocol.stream_frames(b"abc/1", KIND_MESSAGE, body, dropped=42))
    assert isinstance(item, StreamItem) and item.dropped == 42
    assert decode(item.body) == {"data": b"\x00\x01"}
    assert parse_stream(NodeProtocol.event({"event": "connection_lost"})) == Event(
        {"event": "connection_lost"}
    )


def test_stream_ignores_foreign_frames() -> None:
    assert parse_stream([b"h"]) is None
    assert parse_stream([b"x", b"", b""]) is None
    assert parse_stream([b"h", b"", b"\xc1"]) is None
    assert parse_stream([b"h", b"", msgpack.packb([PROTOCOL_VERSION + 1, 1, {}])]) is None
    assert parse_stream([b"s1", b"", b"x"]) is None
    assert parse_stream([b"s1", b"mxyz", b"x"]) is None


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


def test_action_error_keeps_status_and_result_through_the_wire_and_pickle() -> None:
    import pickle

    error = exc.ActionError("aborted", "aborted", {"delta": 1.0})
    for rebuilt in (exc.from_wire(error.to_wire()), pickle.loads(pickle.dumps(error))):
        assert isinstance(rebuilt, exc.ActionError)
        assert rebuilt.status == "aborted" and rebuilt.result == {"delta": 1.0}
