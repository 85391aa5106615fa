"""A live node under attack: fuzzed frames into its ROUTER, spawners killed mid-start.

The bounded version of the attack-and-fault run of the hardening issue: hypothesis sends raw
bytes, arbitrary MessagePack values and request-shaped frames with random ops and arguments
into a real node's request socket; after each one the node must still answer a well-formed
client, and every frame from which it could read a request id must get a reply.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import msgpack
import psutil
import pytest
import zmq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pyros
from pyros._protocol import OPS, PROTOCOL_VERSION
from tests.support import RUNTIME_DIR, limit, wait_until

pytestmark = pytest.mark.process

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8)
            | st.sampled_from(
                ["topic", "message", "token", "type", "qos", "name", "value", "goal"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)

FRAMES = st.one_of(
    st.binary(max_size=200),
    VALUES.map(lambda value: msgpack.packb(value, use_bin_type=True)),
    st.tuples(
        st.sampled_from([PROTOCOL_VERSION, PROTOCOL_VERSION, 1, 99]),
        st.integers(1, 2**40),
        st.sampled_from(sorted(OPS)) | VALUES,
        VALUES,
    ).map(lambda request: msgpack.packb(list(request), use_bin_type=True)),
)


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[pyros.Client, zmq.Socket[bytes]]]:
    """A mock node exposing everything, and a raw DEALER socket into its ROUTER."""
    with pyros.spawn(
        "mock", topics=["*"], services=["/trigger"], params=["*"], actions=["*"]
    ) as client:
        context = zmq.Context()
        raw = context.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(client.description["endpoints"]["request"])
        try:
            yield client, raw
        finally:
            raw.close()
            context.term()


def _request_id(frame: bytes) -> int | None:
    """The id the node can read from ``frame`` (it must answer), or None."""
    try:
        decoded = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:
        return None
    if not (isinstance(decoded, list) and len(decoded) == 4):
        return None
    request_id = decoded[1]
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        return None
    return request_id if 0 < request_id <= 2**63 else None


@settings(
    max_examples=int(os.environ.get("PYROS_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=FRAMES)
def test_fuzzed_frames_get_an_answer_and_never_hurt_the_node(
    target: tuple[pyros.Client, zmq.Socket[bytes]], frame: bytes
) -> None:
    client, raw = target
    assume(_decoded_op(frame) != "shutdown")  # any client may stop a node; that is no attack
    raw.send(frame)
    request_id = _request_id(frame)
    if request_id is not None and raw.poll(int(limit(5) * 1000)):
        version, replied, ok, payload = msgpack.unpackb(raw.recv(), raw=False)
        assert replied == request_id
        if not ok:
            assert isinstance(payload, dict) and len(payload.get("message", "")) < 2000
    else:
        while raw.poll(20):  # a shutdown or an unexpected reply: drain, then check below
            raw.recv()
    assert client.call("/trigger", timeout=limit(5))["success"] is True


def _decoded_op(frame: bytes) -> object:
    try:
        decoded = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception:
        return None
    return decoded[2] if isinstance(decoded, list) and len(decoded) == 4 else None


def test_the_frames_that_once_killed_a_node_are_answered() -> None:
    with pyros.spawn("mock", services=["/trigger"]) as client:
        context = zmq.Context()
        raw = context.socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(client.description["endpoints"]["request"])
        try:
            for number, op in enumerate((["info"], {"info": 1}, 3.5, None), start=7):
                raw.send(msgpack.packb([PROTOCOL_VERSION, number, op, {}]))
                assert raw.poll(int(limit(5) * 1000))
                _, replied, ok, error = msgpack.unpackb(raw.recv(), raw=False)
                assert (replied, ok, error["type"]) == (number, False, "ProtocolError")
            raw.send_multipart([b"several", b"frames", b"at once"])  # not our protocol: ignored
            deep: object = 0
            for _ in range(400):  # deeper than MAX_DEPTH, within what msgpack can pack
                deep = [deep]
            raw.send(
                msgpack.packb(
                    [PROTOCOL_VERSION, 99, "publish", {"topic": "/t", "message": {"a": deep}}]
                )
            )
            assert raw.poll(int(limit(5) * 1000))
            _, replied, ok, error = msgpack.unpackb(raw.recv(), raw=False)
            assert replied == 99 and not ok and "deeper" in error["message"]
            assert client.call("/trigger", timeout=limit(5))["success"] is True
        finally:
            raw.close()
            context.term()


SPAWNER = """
import sys, pyros
client = pyros.spawn("mock", name=sys.argv[1])
print("ready", flush=True)
import time; time.sleep(60)
"""


def test_a_spawner_killed_during_start_up_leaves_nothing_behind() -> None:
    """SIGKILL the spawning process at random moments of the node's start-up."""
    rng = random.Random(7)
    for round_ in range(8):
        name = f"killed_spawner_{round_}"
        spawner = subprocess.Popen(
            [sys.executable, "-c", SPAWNER, name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        time.sleep(rng.uniform(0.05, 0.6))
        children = psutil.Process(spawner.pid).children(recursive=True)
        spawner.send_signal(signal.SIGKILL)
        spawner.wait()
        assert spawner.stderr is not None
        stderr = spawner.stderr.read().decode()
        spawner.stderr.close()
        directory = RUNTIME_DIR / name
        assert wait_until(
            lambda: not any(c.is_running() for c in children),  # noqa: B023
            limit(5),
        ), name
        assert wait_until(lambda: not directory.exists(), limit(5)), (  # noqa: B023
            f"{name} left {sorted(p.name for p in directory.iterdir())}"
        )
        assert "Traceback" not in stderr
