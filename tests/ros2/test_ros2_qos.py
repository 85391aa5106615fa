"""QoS on the ros2 backend: subscriptions adapt to the publishers unless told otherwise.

Against real rclpy publishers and subscriptions with the policies each test names: a
transient-local publisher's last message reaches a late subscriber, best-effort publishers
deliver, explicit ``qos`` dicts are kept, and a subscription re-adapts when a publisher with
other policies appears.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from ros2_support import RclpyPeer, limit, wait_for

import pyros

LATCHED = {"durability": "transient_local", "depth": 1}
BEST_EFFORT = {"reliability": "best_effort"}


@pytest.fixture(scope="module")
def peer(module_peers: Callable[..., RclpyPeer]) -> RclpyPeer:
    return module_peers("qos_peer")


@pytest.fixture(scope="module")
def client(peer: RclpyPeer) -> Iterator[pyros.Client]:
    with pyros.spawn("ros2", topics=["*"], ready_timeout=limit(20)) as client:
        yield client


def publish_latched(peer: RclpyPeer, client: pyros.Client, topic: str, text: str) -> None:
    peer.request("publisher", topic=topic, type="std_msgs/msg/String", qos=LATCHED)
    peer.request("publish", topic=topic, message={"data": text})
    wait_for(lambda: topic in client.topics(), limit(10), topic)


def test_a_late_subscriber_gets_a_transient_local_topics_last_message(
    client: pyros.Client, peer: RclpyPeer
) -> None:
    publish_latched(peer, client, "/map", "the map")
    time.sleep(0.3)  # published well before anyone subscribes
    with client.subscribe("/map") as sub:
        assert sub.get(timeout=limit(5)) == {"data": "the map"}
    info = client.topic_info("/map")
    assert [q["durability"] for q in info["publisher_qos"]] == ["transient_local"]


def test_a_best_effort_publisher_still_delivers(client: pyros.Client, peer: RclpyPeer) -> None:
    peer.request("talk", topic="/scan", rate=50.0, qos=BEST_EFFORT)
    wait_for(lambda: "/scan" in client.topics(), limit(10), "/scan")
    with client.subscribe("/scan") as sub:
        assert sub.get(timeout=limit(5))["data"].startswith("hello ")
        me = client.info()["graph_name"]
        mine = [q for q in client.topic_info("/scan")["subscriber_qos"] if q["node"] == me]
        assert mine and mine[0]["reliability"] == "best_effort"


def test_a_subscription_waiting_for_a_topic_adapts_when_it_appears(
    client: pyros.Client, peer: RclpyPeer
) -> None:
    with client.subscribe("/robot_description") as sub:
        assert sub.type is None
        publish_latched(peer, client, "/robot_description", "<robot/>")
        assert sub.get(timeout=limit(5)) == {"data": "<robot/>"}


def test_a_subscription_re_adapts_to_a_new_best_effort_publisher(
    client: pyros.Client, peer: RclpyPeer, ros2_peer: Callable[..., RclpyPeer]
) -> None:
    peer.request("publisher", topic="/mixed", type="std_msgs/msg/String")
    wait_for(lambda: "/mixed" in client.topics(), limit(10), "/mixed")
    with client.subscribe("/mixed") as sub:
        me = client.info()["graph_name"]
        wait_for(lambda: me in client.topic_info("/mixed")["subscribers"], limit(5), "sub")
        sensor = ros2_peer("qos_sensor")
        sensor.request("talk", topic="/mixed", rate=50.0, qos=BEST_EFFORT)
        assert sub.get(timeout=limit(10))["data"].startswith("hello ")  # only the sensor talks
        mine = [q for q in client.topic_info("/mixed")["subscriber_qos"] if q["node"] == me]
        assert [q["reliability"] for q in mine] == ["best_effort"]


def test_an_explicit_qos_is_kept(client: pyros.Client, peer: RclpyPeer) -> None:
    publish_latched(peer, client, "/kept_volatile", "old")
    time.sleep(0.3)
    # Asking for volatile: the latched message is not replayed, later ones arrive.
    with client.subscribe("/kept_volatile", qos={"durability": "volatile"}) as sub:
        me = client.info()["graph_name"]
        wait_for(lambda: me in client.topic_info("/kept_volatile")["subscribers"], limit(5), "sub")
        time.sleep(0.3)
        peer.request("publish", topic="/kept_volatile", message={"data": "new"})
        assert sub.get(timeout=limit(5)) == {"data": "new"}
        mine = [q for q in client.topic_info("/kept_volatile")["subscriber_qos"] if q["node"] == me]
        assert mine[0]["durability"] == "volatile"


def test_a_transient_local_publisher_reaches_a_late_peer(
    client: pyros.Client, peer: RclpyPeer
) -> None:
    client.publish("/pyros_map", {"data": "from pyros"}, "std_msgs/msg/String", qos=LATCHED)
    time.sleep(0.3)
    peer.request("subscribe", topic="/pyros_map", type="std_msgs/msg/String", qos=LATCHED)
    assert peer.event(event="message", topic="/pyros_map")["message"] == {"data": "from pyros"}


def test_bad_qos_is_refused(client: pyros.Client) -> None:
    for qos in ({"reliability": "sometimes"}, {"depth": 0}, {"history": "all"}, {"colour": 1}):
        with pytest.raises((pyros.MessageError, ValueError)):
            client.publish("/bad_qos", {"data": "x"}, "std_msgs/msg/String", qos=qos)
