"""Measure pyros against what its users would use instead, in one run on one machine.

Usage::

    python -m benchmarks OUTPUT_DIR [--quick] [--contenders NAME,...] [--no-install]
    python benchmarks/run.py OUTPUT_DIR ...

It starts everything it needs on 127.0.0.1 (a rosmaster and rospy peers; rclpy peers on a
private localhost-only ROS 2 domain and a rosbridge server), runs every scenario for every
contender, and writes into OUTPUT_DIR: ``results.json`` (every sample), ``results.md`` (the
tables), ``latency.png`` and ``throughput.png``, ``pyros-0.4.3-py3.patch`` (what was changed
in original Pyros to run it) and ``logs/``. ``--quick`` (fewer samples, shorter windows)
finishes in under 2 minutes once the contenders' venvs are cached; the full run in under 15.
Figures are reported, never asserted: a slow machine gets slow figures, not a failure.

Contenders (each one a script in ``benchmarks/contenders/``, run in a fresh interpreter):

* ``rospy``: the program is a rospy node (ROS 1 world; the floor);
* ``pyros``: this repository, ``pyros.spawn("ros1")`` (ROS 1 world);
* ``pyros 0.4.3``: original Pyros from PyPI in a scratch venv, patched for Python 3
  (:mod:`benchmarks.original_pyros`; ROS 1 world);
* ``rclpy``: the program is an rclpy node (ROS 2 world; the floor of pyros on ros2 and roslibpy);
* ``pyros on ros2``: this repository, ``pyros.spawn("ros2")`` (ROS 2 world, the same wheels);
* ``roslibpy``: roslibpy through rosbridge-server-rs (ROS 2 world: that server speaks ROS 2
  only, so compare it with ``rclpy``, not with ``rospy``).

The venvs of original Pyros and of the ROS 2 wheels are made under ``--cache`` (default
``~/.cache/pyros-bench``) on first use and reused; ``--no-install`` skips a contender whose
venv is not there yet, and ``results.json`` says so and why. Scenarios and their exact start
and stop points are in :data:`SCENARIOS` and in the contender scripts' docstrings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import cli_speed, original_pyros, report, rosbridge  # noqa: E402
from benchmarks.contenders.harness import MARK  # noqa: E402
from benchmarks.setup_log import run_logged  # noqa: E402
from benchmarks.worlds import Ros1World, Ros2World  # noqa: E402

HERE = Path(__file__).resolve().parent
CONTENDERS_DIR = HERE / "contenders"

SCENARIOS = {
    "footprint": "fresh process: RSS, then the library's import timed with perf_counter and "
    "RSS again, then RSS once ready (one echo received). /proc/self/status VmRSS.",
    "spawn_to_ready": "fresh process with the library already imported: from the call that "
    "starts it (pyros.spawn, rospy.init_node, PyrosROS(...), rclpy.init, roslibpy.Ros) to the "
    "first echo of a message published on /bench/in received from /bench/out.",
    "round_trip_small": "publish a 16-character std_msgs/String on /bench/in; a peer echo node "
    "republishes it on /bench/out; stop when the client receives it. One at a time, after 5 "
    "warm-up messages. perf_counter in the client.",
    "round_trip_large": "the same with a std_msgs/UInt8MultiArray of 1,000,000 data bytes "
    "on /bench/in_large -> /bench/out_large (layout.data_offset numbers the messages).",
    "stream_full_speed": "a talker peer publishes std_msgs/String 'hello N' as fast as its loop "
    "goes; the client counts what it receives in a fixed window; loss = indices missing "
    "between the first and last received.",
    "stream_1khz": "the same with the talker at 1 kHz.",
    "service_call": "std_srvs/SetBool call served by a peer node, return to return, one at a "
    "time after 5 warm-up calls.",
    "action_round_trip": "test_msgs/action/Fibonacci goal of order 10 to a peer's rclpy "
    "ActionServer (11 feedback messages, no waiting), from sending the goal to holding the "
    "result (accepted, then the result request answered), one at a time after 5 warm-up goals.",
    "discovery": "the client asks for a topic that does not exist yet; a new talker peer then "
    "creates it. From the moment the topic appears (ROS 1: the orchestrator polls the master's "
    "getPublishedTopics every 1 ms; ROS 2: the talker's create_publisher return) to the "
    "client's first message. CLOCK_MONOTONIC across processes.",
}

ACTION_CONTENDERS = ("rclpy", "pyros on ros2")
"""The contenders that run the action scenario (the ROS 2 world's)."""

ACTION_ORDER = 10
"""The Fibonacci order of the action scenario's goals."""

SETTINGS = {
    "quick": {
        "footprint": 1,
        "spawn": 2,
        "small": 200,
        "large": 10,
        "window": 1.5,
        "service": 200,
        "discovery": 2,
        "action": 50,
        "cli": 3,
        "op_timeout": 120.0,
    },
    "full": {
        "footprint": 7,
        "spawn": 10,
        "small": 2000,
        "large": 200,
        "window": 5.0,
        "service": 2000,
        "discovery": 10,
        "action": 500,
        "cli": 15,
        "op_timeout": 600.0,
    },
}


@dataclass
class Contender:
    """One way to use ROS from a Python program."""

    name: str
    world: str
    script: str
    note: str
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    reason: str | None = None


CONTENDERS = [
    Contender(
        "rospy",
        "ros1",
        "rospy_direct.py",
        "the program is a rospy node (one per process); the floor of the ROS 1 world.",
    ),
    Contender(
        "pyros",
        "ros1",
        "pyros_client.py",
        "this repository: pyros.spawn('ros1'), one node process, ZeroMQ over ipc://.",
        env={"PYROS_BENCH_BACKEND": "ros1"},
    ),
    Contender(
        "pyros 0.4.3",
        "ros1",
        "pyros_043.py",
        "original Pyros from PyPI, patched for Python 3 (see pyros-0.4.3-py3.patch); reads "
        "topics by polling the latest value.",
    ),
    Contender(
        "rclpy",
        "ros2",
        "rclpy_direct.py",
        "the program is an rclpy node (ROS 2 Jazzy wheels, Fast DDS); the floor of the ROS 2 "
        "world.",
    ),
    Contender(
        "pyros on ros2",
        "ros2",
        "pyros_client.py",
        "this repository: pyros.spawn('ros2'), one node process running rclpy from the same "
        "ROS 2 Jazzy wheels, ZeroMQ over ipc://.",
        env={"PYROS_BENCH_BACKEND": "ros2"},
    ),
    Contender(
        "roslibpy",
        "ros2",
        "roslibpy_rosbridge.py",
        "roslibpy through rosbridge-server-rs (a ROS 2 server): compare with rclpy.",
    ),
    Contender(
        "pyros-rosbridge",
        "ros2",
        "pyros_client.py",
        "this repository: pyros.spawn('rosbridge') through the same rosbridge-server-rs as "
        "roslibpy (compare with roslibpy); no discovery row (the server has no rosapi).",
        env={"PYROS_BENCH_BACKEND": "rosbridge"},
    ),
]


class ContenderProcess:
    """A contender script in a fresh interpreter, driven over its stdin/stdout."""

    def __init__(self, contender: Contender, world: Any, env: dict[str, str], log: Path) -> None:
        self.contender = contender
        self.world = world
        self._log = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self.proc = subprocess.Popen(
            [contender.python, str(CONTENDERS_DIR / contender.script)],
            env=env,
            cwd=str(CONTENDERS_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: see close()
        )
        self._lines: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self._lines.put(json.loads(line[len(MARK) :]))
            else:
                self._log.write(line)
        self._lines.put(None)

    def _write(self, document: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(document) + "\n")
        self.proc.stdin.flush()

    def run(self, op: str, timeout: float, **args: Any) -> Any:
        """Run one op and return its result; serve the contender's requests meanwhile.

        Raises:
            RuntimeError: the op failed, the process died, or ``timeout`` seconds passed.
        """
        self._write({"op": op, "args": args})
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{op} took over {timeout:.0f} s") from None
            if message is None:
                raise RuntimeError(f"the contender process exited ({self.proc.wait()})")
            if "request" in message:
                try:
                    reply = {"reply": self.world.handle(message["request"], message["args"])}
                except Exception as exc:
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                self._write(reply)
            elif "error" in message:
                raise RuntimeError(message["error"])
            else:
                return message["result"]

    def close(self) -> None:
        """Ask the contender to exit, then end whatever it left in its process group
        (original Pyros forks a node and a multiprocessing manager)."""
        if self.proc.poll() is None:
            try:
                self._write({"op": "exit"})
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing left
        self._log.close()


class Runner:
    """Runs every scenario of one contender and files the results."""

    def __init__(self, results: dict[str, Any], settings: dict[str, Any], logs: Path) -> None:
        self.results = results
        self.settings = settings
        self.logs = logs

    def _process(self, contender: Contender, world: Any) -> ContenderProcess:
        base = (
            world.ros_env if contender.world == "ros2" and contender.name == "rclpy" else world.env
        )
        env = {**base, **contender.env, "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        if contender.name in (
            "rospy",
            "pyros",
            "roslibpy",
            "pyros-rosbridge",
        ):  # the .venv's contenders
            env["PYTHONPATH"] = str(HERE.parent)
        log = self.logs / f"{contender.name.replace(' ', '_')}.log"
        return ContenderProcess(contender, world, env, log)

    def _file(self, scenario: str, name: str, compute: Any) -> None:
        try:
            entry = compute()
        except Exception as exc:
            entry = {"error": str(exc)}
            print(f"    {scenario}: ERROR {exc}", flush=True)
        else:
            print(f"    {scenario}: {_brief(entry)}", flush=True)
        self.results["scenarios"].setdefault(scenario, {})[name] = entry

    def run(self, contender: Contender, world: Any) -> None:
        s = self.settings
        timeout = s["op_timeout"]
        name = contender.name
        print(f"  {name}", flush=True)

        failures: list[str] = []

        def fresh(op: str) -> Any:
            process = self._process(contender, world)
            try:
                return process.run(op, timeout)
            finally:
                process.close()

        def fresh_samples(op: str, count: int) -> list[Any]:
            """``count`` fresh-process samples; a failed one is noted, not fatal (unless all
            fail)."""
            samples, errors = [], []
            for _ in range(count):
                try:
                    samples.append(fresh(op))
                except Exception as exc:
                    errors.append(str(exc))
            if not samples:
                raise RuntimeError("; ".join(errors))
            failures[:] = errors
            return samples

        def with_failures(entry: dict[str, Any]) -> dict[str, Any]:
            if failures:
                entry["failed"] = list(failures)
            return entry

        def footprint() -> dict[str, Any]:
            samples = fresh_samples("footprint", s["footprint"])
            entry: dict[str, Any] = {
                "what": _IMPORTED[name],
                "n": len(samples),
                "import_ms": statistics.median(x["import_s"] for x in samples) * 1000,
                "import_rss_mb": statistics.median(
                    (x["rss_after_import"] - x["rss_before"]) / report.MB for x in samples
                ),
                "ready_rss_mb": statistics.median(
                    x["rss_after_ready"] / report.MB for x in samples
                ),
                "samples": samples,
            }
            if all("node_rss" in x for x in samples):
                entry["node_rss_mb"] = statistics.median(x["node_rss"] / report.MB for x in samples)
            return with_failures(entry)

        try:
            entry = footprint()
            added = entry["import_rss_mb"]
            print(f"    footprint: import {entry['import_ms']:.0f} ms, +{added:.1f} MB", flush=True)
        except Exception as exc:
            entry = {"error": str(exc)}
            print(f"    footprint: ERROR {exc}", flush=True)
        self.results["footprint"][name] = entry
        self._file(
            "spawn_to_ready",
            name,
            lambda: with_failures(
                report.latency_summary(fresh_samples("spawn_to_ready", s["spawn"]))
            ),
        )
        process = self._process(contender, world)
        try:
            for size in ("small", "large"):
                self._file(
                    f"round_trip_{size}",
                    name,
                    lambda size=size: report.latency_summary(
                        process.run("round_trip", timeout, size=size, count=s[size])
                    ),
                )
            for scenario, rate in (("stream_full_speed", 0.0), ("stream_1khz", 1000.0)):
                self._file(
                    scenario,
                    name,
                    lambda rate=rate: process.run("stream", timeout, rate=rate, window=s["window"]),
                )
            if name == "rospy":
                self._file(
                    "service_call",
                    report.ROSPY_PER_CALL,
                    lambda: report.latency_summary(
                        process.run("service", timeout, count=s["service"])
                    ),
                )
                self._file(
                    "service_call",
                    "rospy (persistent proxy)",
                    lambda: report.latency_summary(
                        process.run("service", timeout, count=s["service"], persistent=True)
                    ),
                )
            else:
                self._file(
                    "service_call",
                    name,
                    lambda: report.latency_summary(
                        process.run("service", timeout, count=s["service"])
                    ),
                )
            self._file(
                "discovery",
                name,
                lambda: report.latency_summary(
                    process.run("discovery", timeout, count=s["discovery"])
                ),
            )
            if name in ACTION_CONTENDERS:
                self._file(
                    "action_round_trip",
                    name,
                    lambda: report.latency_summary(
                        process.run("action", timeout, count=s["action"], order=ACTION_ORDER)
                    ),
                )
        finally:
            process.close()


_IMPORTED = {
    "rospy": "setup_ros1(); import rospy",
    "pyros": "import pyros",
    "pyros 0.4.3": "import pyros.client, pyros_interfaces_ros",
    "rclpy": "import rclpy",
    "pyros on ros2": "import pyros",
    "roslibpy": "import roslibpy",
    "pyros-rosbridge": "import pyros",
}


def _brief(entry: dict[str, Any]) -> str:
    if "median_ms" in entry:
        return f"median {entry['median_ms']:.3g} ms, p99 {entry['p99_ms']:.3g} ms (n={entry['n']})"
    if "msgs_per_s" in entry:
        return f"{entry['msgs_per_s']:.0f} msgs/s, lost {entry.get('lost')}"
    return str(entry)[:100]


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return f"{distro}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("output", type=Path, help="folder for results.json, results.md, plots")
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument(
        "--contenders",
        default=",".join(c.name for c in CONTENDERS),
        help="comma-separated subset of: " + ", ".join(c.name for c in CONTENDERS),
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyros-bench",
        help="where the venvs of original Pyros and of ROS 2 are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="skip contenders whose venv is not in the cache instead of installing it",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    mode = "quick" if args.quick else "full"
    wanted = [name.strip() for name in args.contenders.split(",") if name.strip()]
    contenders = [c for c in CONTENDERS if c.name in wanted]
    unknown = set(wanted) - {c.name for c in CONTENDERS}
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    output = args.output
    logs = output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "mode": mode,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": _machine(),
        "settings": SETTINGS[mode],
        "scenarios_measure": SCENARIOS,
        "worlds": {},
        "contenders": {},
        "footprint": {},
        "scenarios": {},
    }
    print(f"pyros benchmark, {mode} run -> {output}", flush=True)

    old = ros2 = None
    if any(c.name == "pyros 0.4.3" for c in contenders):
        try:
            print("  preparing original Pyros 0.4.3 ...", flush=True)
            old = original_pyros.ensure(
                args.cache, install=not args.no_install, log=logs / "setup.log"
            )
            (output / "pyros-0.4.3-py3.patch").write_text(old.patch, encoding="utf-8")
            results["pyros_0_4_3"] = old.description
        except Exception as exc:
            _skip(contenders, lambda c: c.name == "pyros 0.4.3", str(exc))
    if any(c.world == "ros2" for c in contenders):
        try:
            print("  preparing the ROS 2 Jazzy wheels and rosbridge-server-rs ...", flush=True)
            ros2 = rosbridge.ensure(args.cache, install=not args.no_install, log=logs / "setup.log")
            results["ros2_venv"] = {
                "requirements": rosbridge.REQUIREMENTS,
                "versions": ros2.versions,
            }
        except Exception as exc:
            _skip(contenders, lambda c: c.world == "ros2", str(exc))
    if ros2 is not None and any(c.name == "pyros on ros2" for c in contenders):
        try:
            print("  installing this repository into the ROS 2 wheels venv ...", flush=True)
            _install_pyros(ros2.python, logs / "setup.log")
        except Exception as exc:
            _skip(contenders, lambda c: c.name == "pyros on ros2", str(exc))
    for contender in contenders:
        if contender.name == "pyros 0.4.3" and old is not None:
            contender.python = old.python
        if contender.name in ("rclpy", "pyros on ros2") and ros2 is not None:
            contender.python = ros2.python

    home = Path(tempfile.mkdtemp(prefix="pyros-bench-"))
    runner = Runner(results, SETTINGS[mode], logs)
    try:
        ros1_side = [c for c in contenders if c.world == "ros1" and c.status == "ok"]
        if ros1_side:
            try:
                world: Any = Ros1World(home / "ros1")
            except Exception as exc:
                _skip(contenders, lambda c: c.world == "ros1", f"no ROS 1 world: {exc}")
            else:
                results["worlds"]["ros1"] = (
                    f"rosmaster --core on {world.master.uri}, rospy peers (ROS 1 Noetic, Debian)"
                )
                try:
                    for contender in ros1_side:
                        runner.run(contender, world)
                    if any(c.name == "pyros" for c in ros1_side):
                        print("  command line: pyros topics vs rostopic list ...", flush=True)
                        try:
                            results["cli"] = cli_speed.measure(world.env, SETTINGS[mode]["cli"])
                        except Exception as exc:
                            results["cli"] = {"error": str(exc)}
                finally:
                    world.stop()
        ros2_side = [c for c in contenders if c.world == "ros2" and c.status == "ok"]
        if ros2_side:
            try:
                world = Ros2World(home / "ros2", ros2)
            except Exception as exc:
                _skip(contenders, lambda c: c.world == "ros2", f"no ROS 2 world: {exc}")
            else:
                results["worlds"]["ros2"] = (
                    f"ROS 2 Jazzy wheels, Fast DDS, ROS_DOMAIN_ID={world.env['ROS_DOMAIN_ID']} "
                    "localhost-only, rclpy peers, rosbridge-server-rs at "
                    f"{world.env['ROSBRIDGE_URL']}"
                )
                try:
                    for contender in ros2_side:
                        runner.run(contender, world)
                finally:
                    world.stop()
    finally:
        for contender in contenders:
            results["contenders"][contender.name] = {
                "world": contender.world,
                "note": contender.note,
                "status": contender.status,
                "reason": contender.reason,
                "python": contender.python,
            }
        for contender in CONTENDERS:
            if contender.name not in results["contenders"]:
                results["contenders"][contender.name] = {
                    "world": contender.world,
                    "note": contender.note,
                    "status": "skipped",
                    "reason": "not selected (--contenders)",
                }
        results["targets"] = report.targets(results)
        results["elapsed_s"] = time.monotonic() - started
        (output / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        (output / "results.md").write_text(report.markdown(results), encoding="utf-8")
        written = report.plots(results, output)
        shutil.rmtree(home, ignore_errors=True)
    plotted = ", ".join(written) or "no plots (no matplotlib)"
    print(f"wrote {output / 'results.json'}, results.md, {plotted}")
    print(f"done in {results['elapsed_s']:.0f} s")
    return 0


def _install_pyros(python: str, log: Path) -> None:
    """``pip install -e`` this repository into the venv of ``python`` unless it is there.

    Raises:
        RuntimeError: pip failed (see ``log``).
    """
    repo = str(HERE.parent)
    check = [
        python,
        "-c",
        "import os, pyros; print(os.path.dirname(os.path.dirname(pyros.__file__)))",
    ]
    found = subprocess.run(check, capture_output=True, text=True, cwd="/", check=False)
    if found.returncode == 0 and found.stdout.strip() == repo:
        return
    run_logged([python, "-m", "pip", "install", "-q", "-e", repo], log)


def _skip(contenders: list[Contender], which: Any, reason: str) -> None:
    for contender in contenders:
        if which(contender) and contender.status == "ok":
            contender.status = "skipped"
            contender.reason = reason
            print(f"  skipping {contender.name}: {reason}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
