"""Quick figures for pyros on ROS 1: spawn-to-ready, publish latency, SetBool call latency.

Run: ``python benchmarks/ros1_core.py [--count N]``. Starts its own rosmaster on 127.0.0.1
and rospy peers (the test tier's peer scripts), prints one JSON document. Loopback only.

* spawn-to-ready: ``pyros.spawn("ros1")`` call to return (node process started, registered
  with the master, sockets ready), over ``--spawns`` runs.
* publish latency: ``client.publish`` of a std_msgs/String carrying ``time.monotonic()`` to a
  rospy listener's callback (CLOCK_MONOTONIC is system-wide on Linux), one message at a time.
* call latency: ``client.call("/set_flag", {"data": True})`` served by a rospy SetBool server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ros1"))

from ros1_support import PEERS_DIR, Peer, Ros1Master  # noqa: E402

import pyros  # noqa: E402


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p90, p99 and max of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "n": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--spawns", type=int, default=10)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pyros-bench-"))
    master = Ros1Master(home / "ros_home")
    os.environ.update(master.env)
    peers = []
    results: dict[str, object] = {}
    try:
        listener = Peer(
            PEERS_DIR / "listener.py",
            ["--topic", "/bench/in"],
            master.env,
            home / "listener.log",
            stdin=False,
        )
        peers.append(listener)
        listener.wait_ready(15)
        server = Peer(
            PEERS_DIR / "setbool_server.py", [], master.env, home / "srv.log", stdin=False
        )
        peers.append(server)
        server.wait_ready(15)

        spawn_times = []
        for _ in range(args.spawns):
            started = time.perf_counter()
            client = pyros.spawn("ros1", topics=["/bench/*"], master_uri=master.uri)
            spawn_times.append(time.perf_counter() - started)
            client.close()
        results["spawn_to_ready"] = summary(spawn_times)

        with pyros.spawn(
            "ros1", topics=["/bench/*"], services=["/set_flag"], master_uri=master.uri
        ) as client:
            client.publish("/bench/in", {"data": "warm-up"}, type="std_msgs/String")
            listener.read_json(5)
            latencies = []
            for _ in range(args.count):
                client.publish("/bench/in", {"data": repr(time.monotonic())})
                line = listener.read_json(5)
                latencies.append(line["monotonic"] - float(line["msg"]["data"]))
            results["publish_to_rospy_listener"] = summary(latencies)

            client.call("/set_flag", {"data": True})
            calls = []
            for _ in range(args.count):
                started = time.perf_counter()
                client.call("/set_flag", {"data": True})
                calls.append(time.perf_counter() - started)
            results["setbool_call"] = summary(calls)
    finally:
        for peer in peers:
            peer.stop()
        master.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
