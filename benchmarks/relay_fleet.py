"""Fleet load, failover and soak of the relay scaled out on Redis (issue 13's figures).

``python -m benchmarks.relay_fleet OUT_DIR [--devices N] [--rate HZ] [--seconds S]
[--scenario load|failover|soak|all]`` starts a redis-server and two ``pyros relay --redis``
processes on loopback, simulated devices in four worker processes (asyncio; each device keeps
its messages in the connector's own :class:`~pyros.cloud.connector_buffer.SendBuffer`, resends
after a reconnect and fails over to the other relay, exactly as ``pyros connector --relay A
--relay B`` does) and one operator per relay subscribed to every device's topic. Each message
carries its device's sequence number and the wall-clock time it was made, so an operator counts
loss, duplicates and reordering exactly and measures device-to-operator latency.

* ``load``: every device at ``--rate`` Hz for ``--seconds``; each relay's RSS is sampled every
  5 s (flat: the end within 10 % of minute 1).
* ``failover``: the same, and relay A is SIGKILLed halfway: its devices reconnect to B; what B's
  operator receives is checked (nothing lost within the buffers, no duplicate), and how long the
  devices took to be accepted by B is measured.
* ``soak``: churn (devices and operators connecting, subscribing, leaving) for ``--seconds``,
  with each relay's RSS and open file descriptors sampled.

Figures are written to ``OUT_DIR/relay_fleet.json`` and ``.md``; nothing is asserted. Every
process is started here and stopped here by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


# --- the simulated devices (one worker process holds many) --------------------------------


async def _device(
    device: str, urls: list[str], rate: float, stop_at: float, log: dict[str, Any]
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    from pyros.cloud import device_protocol as dp
    from pyros.cloud.connector_buffer import SendBuffer

    buffer = SendBuffer(10_000, max_bytes=16 << 20)
    session = f"bench-{device}"
    wake = asyncio.Event()
    index = int(device[3:]) % len(urls)
    loop = asyncio.get_running_loop()
    log.update(welcomes=[], sent=0)

    async def produce() -> None:
        start = loop.time() + random.random() / rate
        k = 0
        while time.time() < stop_at:
            k += 1
            delay = start + (k - 1) / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            buffer.add("/data", {"seq": k, "stamp": time.time()})
            log["sent"] = k
            wake.set()

    producer = asyncio.create_task(produce())
    headers = dp.handshake_headers(device, f"t-{device}")
    while not producer.done() or len(buffer):
        try:
            async with connect(
                urls[index],
                additional_headers=headers,
                open_timeout=20,
                max_queue=None,
                compression=None,  # loopback: deflate would only cost CPU on both sides
            ) as ws:
                hello = dp.hello(device, session, topics={"/data": "std_msgs/String"})
                await ws.send(dp.encode(hello))

                async def read(relay: int = index) -> None:
                    async for frame in ws:
                        message = dp.decode_from_relay(frame)
                        if message["op"] == "welcome":
                            buffer.welcome(message["resume_after"])
                            log["welcomes"].append((time.time(), relay, message["resume_after"]))
                            wake.set()
                        elif message["op"] == "ack":
                            buffer.ack(message["seq"])
                        elif message["op"] == "status":
                            log.setdefault("statuses", []).append(message["msg"][:120])

                reader = asyncio.create_task(read())
                try:
                    while not reader.done():
                        entry = buffer.next_to_send()
                        if entry is None:
                            if producer.done() and not len(buffer):
                                break
                            wake.clear()
                            waiter = asyncio.create_task(wake.wait())
                            await asyncio.wait(
                                {waiter, reader}, timeout=0.5, return_when="FIRST_COMPLETED"
                            )
                            waiter.cancel()
                            continue
                        await ws.send(entry.frame)
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                if producer.done() and not len(buffer):
                    break
        except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
            pass
        buffer.connection_lost()
        index = (index + 1) % len(urls)
        await asyncio.sleep(0.1 + random.random() * 0.4)
    log["dropped"] = buffer.dropped_total
    log["unacked"] = len(buffer)


async def _worker(first: int, count: int, urls: list[str], rate: float, seconds: float) -> None:
    stop_at = time.time() + seconds
    logs: dict[str, dict[str, Any]] = {f"dev{i:04d}": {} for i in range(first, first + count)}
    await asyncio.gather(*(_device(d, urls, rate, stop_at, log) for d, log in logs.items()))
    print(json.dumps(logs), flush=True)


# --- the operators -----------------------------------------------------------------------


async def _operator(url: str, devices: int, seconds: float, out: dict[str, Any]) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    last: dict[str, int] = {}
    latencies: list[float] = []
    counts = {"received": 0, "duplicates": 0, "reordered": 0, "gaps": 0, "statuses": 0}
    gap_samples: list[list[Any]] = []
    timeline: list[tuple[float, float]] = []
    deadline = time.time() + seconds
    try:
        async with connect(
            url, max_queue=None, max_size=None, open_timeout=30, compression=None
        ) as ws:
            for i in range(devices):
                topic = f"/dev{i:04d}/data"
                await ws.send(json.dumps({"op": "subscribe", "topic": topic, "id": topic}))
            while time.time() < deadline:
                try:
                    frame = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.time()))
                except TimeoutError:
                    break
                now = time.time()
                message = json.loads(frame)
                if message.get("op") != "publish":
                    counts["statuses"] += 1
                    continue
                msg = message["msg"]
                device, seq = message["topic"], msg["seq"]
                previous = last.get(device, 0)
                if seq == previous + 1:
                    pass
                elif seq <= previous:
                    counts["duplicates" if seq == previous else "reordered"] += 1
                    continue
                else:
                    counts["gaps"] += seq - previous - 1
                    if len(gap_samples) < 10:
                        gap_samples.append([device, previous, seq, round(now - msg["stamp"], 3)])
                last[device] = seq
                counts["received"] += 1
                if len(latencies) < 2_000_000:
                    latencies.append(now - msg["stamp"])
                    timeline.append((msg["stamp"], now - msg["stamp"]))
    except (OSError, ConnectionClosed) as exc:
        out["error"] = repr(exc)
    latencies.sort()
    out.update(counts)
    out["gap_samples"] = gap_samples
    if timeline:
        timeline.sort()
        start, end = timeline[0][0], timeline[-1][0]
        out["latency_p50_ms_by_tenth"] = []
        for n in range(10):
            part = sorted(
                lat
                for stamp, lat in timeline
                if start + n * (end - start) / 10 <= stamp < start + (n + 1) * (end - start) / 10
            )
            out["latency_p50_ms_by_tenth"].append(
                round(1000 * part[len(part) // 2]) if part else None
            )
    out["last"] = last
    if latencies:
        out["latency_ms"] = {
            "p50": 1000 * latencies[len(latencies) // 2],
            "p99": 1000 * latencies[int(len(latencies) * 0.99)],
            "max": 1000 * latencies[-1],
        }


def _operators_main(urls: list[str], devices: int, seconds: float) -> None:
    async def main() -> list[dict[str, Any]]:
        outs: list[dict[str, Any]] = [{} for _ in urls]
        await asyncio.gather(
            *(_operator(u, devices, seconds, o) for u, o in zip(urls, outs, strict=True))
        )
        return outs

    print(json.dumps(asyncio.run(main())), flush=True)


# --- orchestration -----------------------------------------------------------------------


class Fleet:
    """redis-server, two relays, the tokens file; stopped by :meth:`stop`."""

    def __init__(self, home: Path, devices: int) -> None:
        from tests.cloud.redis_support import RedisServer

        self.home = home
        self.redis = RedisServer(home)
        tokens = {
            "devices": {f"dev{i:04d}": f"t-dev{i:04d}" for i in range(devices)},
            "operators": {"op": {"read": ["*"], "command": ["*"]}},
        }
        self.tokens = home / "tokens.json"
        self.tokens.write_text(json.dumps(tokens))
        self.relays = [self._relay(n) for n in range(2)]

    def _relay(self, n: int) -> tuple[subprocess.Popen[str], int]:
        log = open(self.home / f"relay{n}.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pyros",
                "relay",
                "--port",
                "0",
                "--tokens",
                str(self.tokens),
                "--redis",
                self.redis.url,
                "--send-queue",
                "100000",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_env(),
            cwd=ROOT,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"relay {n} did not start: {line!r}")
        return process, int(line.rsplit(":", 1)[1])

    def urls(self, path: str = "") -> list[str]:
        return [f"ws://127.0.0.1:{port}{path}" for _, port in self.relays]

    def rss(self) -> list[float | None]:
        out: list[float | None] = []
        for process, _ in self.relays:
            try:
                out.append(psutil.Process(process.pid).memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                out.append(None)
        return out

    def fds(self) -> list[int | None]:
        out: list[int | None] = []
        for process, _ in self.relays:
            try:
                out.append(psutil.Process(process.pid).num_fds())
            except psutil.NoSuchProcess:
                out.append(None)
        return out

    def stop(self) -> None:
        for process, _ in self.relays:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        self.redis.stop()


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.relay_fleet", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _collect(process: subprocess.Popen[str], timeout: float) -> Any:
    out, _ = process.communicate(timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def run_stream(
    home: Path, devices: int, rate: float, seconds: float, kill_at: float | None
) -> dict[str, Any]:
    """The load scenario, and with ``kill_at`` (seconds) the failover one."""
    fleet = Fleet(home, devices)
    try:
        operator_urls = [u + "/?token=op" for u in fleet.urls()]
        operators = [  # one process per operator: each reads every device's messages
            _spawn(
                [
                    "--role",
                    "operators",
                    "--urls",
                    url,
                    "--devices",
                    str(devices),
                    "--seconds",
                    str(seconds + 25),
                ]
            )
            for url in operator_urls
        ]
        time.sleep(3)  # the operators subscribe first
        per = devices // WORKERS
        workers = [
            _spawn(
                [
                    "--role",
                    "devices",
                    "--first",
                    str(w * per),
                    "--count",
                    str(per),
                    "--urls",
                    *fleet.urls("/device"),
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(seconds),
                ]
            )
            for w in range(WORKERS)
        ]
        started = time.time()
        samples: list[dict[str, Any]] = []
        killed_at = None
        while time.time() - started < seconds + 2:
            time.sleep(5)
            samples.append(
                {"t": round(time.time() - started), "rss_mb": fleet.rss(), "fds": fleet.fds()}
            )
            if kill_at is not None and killed_at is None and time.time() - started >= kill_at:
                fleet.relays[0][0].kill()
                killed_at = time.time()
        logs: dict[str, Any] = {}
        for worker in workers:
            logs.update(_collect(worker, seconds + 120))
        op_results = [_collect(operator, seconds + 120)[0] for operator in operators]
    finally:
        fleet.stop()
    sent = sum(log["sent"] for log in logs.values())
    dropped = sum(log.get("dropped", 0) for log in logs.values())
    welcomed = sorted(log["welcomes"][0][0] - started for log in logs.values() if log["welcomes"])
    result: dict[str, Any] = {
        "device_statuses": [m for log in logs.values() for m in log.get("statuses", [])][:5],
        "first_welcome_s": {"p50": welcomed[len(welcomed) // 2], "max": welcomed[-1]}
        if welcomed
        else None,
        "devices": devices,
        "rate_hz": rate,
        "seconds": seconds,
        "sent": sent,
        "dropped_by_connectors": dropped,
        "unacked_at_end": sum(log.get("unacked", 0) for log in logs.values()),
        "samples": samples,
    }
    for op in op_results:
        for sample in op.get("gap_samples", []):
            sample.append(logs.get(sample[0][1:8], {}).get("welcomes"))
    for n, op in enumerate(op_results):
        missing_at_end = (
            sum(logs[t[1:8]]["sent"] - s for t, s in op.get("last", {}).items())
            if op.get("last")
            else None
        )
        op.pop("last", None)
        op["missing_at_end"] = missing_at_end
        result[f"operator_on_relay_{n}"] = op
    if killed_at is not None:
        moved = []
        for log in logs.values():
            after = [t for t, relay, _ in log["welcomes"] if t >= killed_at and relay == 1]
            before = [t for t, relay, _ in log["welcomes"] if t < killed_at and relay == 0]
            if before and after:
                moved.append(after[0] - killed_at)
        moved.sort()
        result["failover"] = {
            "devices_moved": len(moved),
            "resume_s": {
                "p50": moved[len(moved) // 2],
                "p99": moved[int(len(moved) * 0.99)],
                "max": moved[-1],
            }
            if moved
            else None,
        }
    return result


async def _churn(urls: list[str], devices: int, seconds: float) -> dict[str, int]:
    from websockets.asyncio.client import connect

    from pyros.cloud import device_protocol as dp

    stop = time.time() + seconds
    counts = {"device_sessions": 0, "operator_sessions": 0, "errors": 0}

    async def device_loop(n: int) -> None:
        device = f"dev{n:04d}"
        while time.time() < stop:
            try:
                async with connect(
                    random.choice(urls) + "/device",
                    additional_headers=dp.handshake_headers(device, f"t-{device}"),
                ) as ws:
                    await ws.send(
                        dp.encode(
                            dp.hello(
                                device,
                                f"soak-{device}-{random.random()}",
                                topics={"/data": "std_msgs/String"},
                            )
                        )
                    )
                    await ws.recv()
                    for k in range(1, random.randint(5, 30)):
                        await ws.send(
                            dp.encode(dp.publish("/data", {"seq": k, "stamp": time.time()}, k))
                        )
                        await asyncio.sleep(0.1)
                counts["device_sessions"] += 1
            except Exception:  # noqa: BLE001 (counted: churn may race the relay's limits)
                counts["errors"] += 1
            await asyncio.sleep(random.random())

    async def operator_loop() -> None:
        while time.time() < stop:
            try:
                async with connect(random.choice(urls) + "/?token=op", max_size=None) as ws:
                    for _ in range(random.randint(1, 20)):
                        topic = f"/dev{random.randrange(devices):04d}/data"
                        await ws.send(json.dumps({"op": "subscribe", "topic": topic}))
                    await ws.send(
                        json.dumps({"op": "call_service", "id": 1, "service": "/rosapi/topics"})
                    )
                    until = time.time() + random.uniform(0.5, 3)
                    while time.time() < until:
                        try:
                            await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            pass
                counts["operator_sessions"] += 1
            except Exception:  # noqa: BLE001 (counted)
                counts["errors"] += 1

    await asyncio.gather(
        *(device_loop(n) for n in range(devices)), *(operator_loop() for _ in range(10))
    )
    return counts


def run_soak(home: Path, devices: int, seconds: float) -> dict[str, Any]:
    fleet = Fleet(home, devices)
    try:
        churn = _spawn(
            [
                "--role",
                "churn",
                "--urls",
                *fleet.urls(),
                "--devices",
                str(devices),
                "--seconds",
                str(seconds),
            ]
        )
        started = time.time()
        samples = []
        while churn.poll() is None and time.time() - started < seconds + 60:
            time.sleep(10)
            samples.append(
                {"t": round(time.time() - started), "rss_mb": fleet.rss(), "fds": fleet.fds()}
            )
        counts = _collect(churn, 60)
    finally:
        fleet.stop()
    return {"devices": devices, "seconds": seconds, "churn": counts, "samples": samples}


def _report(results: dict[str, Any]) -> str:
    lines = ["# Relay fleet: load, failover, soak (2 relays + Redis, loopback)", ""]
    for name, result in results.items():
        lines.append(f"## {name}")
        lines.append("")
        lines.append("```json")
        lines.append(json.dumps(result, indent=1)[:6000])
        lines.append("```")
        samples = result.get("samples", [])
        if len(samples) >= 3:
            first = next((s for s in samples if s["t"] >= 60), samples[1])
            last = samples[-1]
            lines.append(f"RSS MB at t={first['t']} s: {first['rss_mb']}")
            lines.append(f"RSS MB at t={last['t']} s: {last['rss_mb']}")
            lines.append(
                f"fds at t={first['t']} s: {first['fds']}; at t={last['t']} s: {last['fds']}"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--role", default="main", choices=["main", "devices", "operators", "churn"])
    parser.add_argument("--scenario", default="all", choices=["load", "failover", "soak", "all"])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--urls", nargs="*", default=[])
    args = parser.parse_args()
    if args.role == "devices":
        asyncio.run(_worker(args.first, args.count, args.urls, args.rate, args.seconds))
        return
    if args.role == "operators":
        _operators_main(args.urls, args.devices, args.seconds)
        return
    if args.role == "churn":
        print(json.dumps(asyncio.run(_churn(args.urls, args.devices, args.seconds))), flush=True)
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="pyros-fleet-"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.scenario in ("load", "all"):
        results["load"] = run_stream(
            Path(tempfile.mkdtemp()), args.devices, args.rate, args.seconds, None
        )
        print(json.dumps(results["load"])[:2000], flush=True)
    if args.scenario in ("failover", "all"):
        results["failover"] = run_stream(
            Path(tempfile.mkdtemp()), args.devices, args.rate, args.seconds, args.seconds / 2
        )
        print(json.dumps(results["failover"])[:2000], flush=True)
    if args.scenario in ("soak", "all"):
        results["soak"] = run_soak(
            Path(tempfile.mkdtemp()), min(args.devices, 200), args.soak_seconds
        )
        print(json.dumps(results["soak"])[:2000], flush=True)
    (out / "relay_fleet.json").write_text(json.dumps(results, indent=1))
    (out / "relay_fleet.md").write_text(_report(results))
    print(f"written: {out / 'relay_fleet.md'}")


if __name__ == "__main__":
    main()
