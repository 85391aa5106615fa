"""One-shot command speed: ``pyros topics --backend ros1`` against ``rostopic list``.

Both list the topics of the same rosmaster, each started as a fresh process by this
orchestrator and timed from ``subprocess.run`` to its return (process start to exit, what a
user waits for), alternately so that background load hits both alike. The stages show where
pyros's time goes: a bare interpreter, the import of :mod:`pyros.cli`, ``pyros --help`` (the
command with no node), and a node's spawn, one query and close measured inside one process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report

__all__ = ["measure"]

_SPAWN_STAGES = """
import time, pyros
t0 = time.perf_counter()
client = pyros.spawn("ros1", topics=["*"], lazy=True)
t1 = time.perf_counter()
client.topics()
t2 = time.perf_counter()
client.close()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _pyros_command() -> list[str]:
    script = Path(sys.executable).parent / "pyros"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pyros"]


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr}")
    return elapsed


def _median_ms(samples: list[float]) -> float:
    return float(report.latency_summary(samples)["median_ms"])


def measure(env: dict[str, str], samples: int) -> dict[str, Any]:
    """Run both commands ``samples`` times each against the master in ``env``.

    Returns:
        ``{"pyros topics": summary, "rostopic list": summary, "ratio_median": float,
        "stages_ms": {...}, "samples": n}`` with summaries from
        :func:`benchmarks.report.latency_summary` (milliseconds); ``{"skipped": reason}``
        when rostopic is not installed.
    """
    rostopic = shutil.which("rostopic")
    if rostopic is None:
        return {"skipped": "rostopic is not installed (apt-get install python3-rostopic)"}
    pyros_topics = [*_pyros_command(), "topics", "--backend", "ros1", "--json"]
    ours: list[float] = []
    theirs: list[float] = []
    _timed(pyros_topics, env)  # warm the page cache for both
    _timed([rostopic, "list"], env)
    for _ in range(samples):
        ours.append(_timed(pyros_topics, env))
        theirs.append(_timed([rostopic, "list"], env))
    bare = [_timed([sys.executable, "-c", "pass"], env) for _ in range(samples)]
    imports = [_timed([sys.executable, "-c", "import pyros.cli"], env) for _ in range(samples)]
    helps = [_timed([*_pyros_command(), "--help"], env) for _ in range(samples)]
    spawn, query, close = [], [], []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", _SPAWN_STAGES],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        spawn.append(float(out[0]))
        query.append(float(out[1]))
        close.append(float(out[2]))
    ours_summary = report.latency_summary(ours)
    theirs_summary = report.latency_summary(theirs)
    return {
        "samples": samples,
        "pyros topics": ours_summary,
        "rostopic list": theirs_summary,
        "ratio_median": ours_summary["median_ms"] / theirs_summary["median_ms"],
        "stages_ms": {
            "python -c pass": _median_ms(bare),
            "python -c 'import pyros.cli'": _median_ms(imports),
            "pyros --help": _median_ms(helps),
            "spawn a lazy ros1 node (in process)": _median_ms(spawn),
            "topics() request": _median_ms(query),
            "close (node exits)": _median_ms(close),
        },
    }
