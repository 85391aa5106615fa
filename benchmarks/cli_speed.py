"""One-shot command speed: ``pyros topics --backend ros1`` against ``rostopic list``.

Both list the topics of the same rosmaster, each started as a fresh process by this
orchestrator and timed from ``subprocess.run`` to its return (process start to exit, what a
user waits for), alternately so that background load hits both alike. The stages show where
pyros's time goes: a bare interpreter, the import of :mod:`pyros.cli`, ``pyros --help`` (the
command with no node), and a node's spawn, one query and close measured inside one process.

pyros runs as users install it: from a wheel of this checkout, unpacked into a scratch venv
whose dependencies come from this environment. A development checkout's editable install
(``pip install -e``) adds an import hook that costs about 10 ms in every process, twice per
command (the command and its node); users' installs have no such hook.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
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


REPO = Path(__file__).resolve().parents[1]


def _wheel_venv(folder: Path) -> Path:
    """Make a venv in ``folder`` with pyros from a wheel of this checkout; return its python.

    The venv has no pip: the wheel (pure Python) is unpacked into its site-packages and the
    console script written as pip writes it. Dependencies are found in this interpreter's
    site-packages, added as a plain path (so its ``.pth`` files, this checkout's editable
    hook among them, are not run).
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120
    )
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    wheels = folder / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    with zipfile.ZipFile(next(wheels.glob("*.whl"))) as wheel:
        wheel.extractall(site)
    (site / "pyros_bench_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = folder / "bin" / "pyros"
    script.write_text(
        f"#!{python}\nimport sys\nfrom pyros._cli.entry import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return python


def _timed(command: list[str], env: dict[str, str]) -> float:
    return _timed_both(command, env)[1]


def _timed_both(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from start to the first line of output (the answer) and to the exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    answered = time.perf_counter() - started
    _, err = proc.communicate(timeout=60)
    exited = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {err.decode()}")
    return answered, exited


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
    with tempfile.TemporaryDirectory(prefix="pyros-bench-wheel-") as scratch:
        python = _wheel_venv(Path(scratch) / "venv")
        return _measure(env, samples, rostopic, str(python))


def _measure(env: dict[str, str], samples: int, rostopic: str, python: str) -> dict[str, Any]:
    pyros = str(Path(python).parent / "pyros")
    pyros_topics = [pyros, "topics", "--backend", "ros1", "--json"]
    ours: list[float] = []
    theirs: list[float] = []
    _timed(pyros_topics, env)  # warm the page cache for both
    _timed([rostopic, "list"], env)
    ours_answer: list[float] = []
    theirs_answer: list[float] = []
    for _ in range(samples):
        answered, exited = _timed_both(pyros_topics, env)
        ours_answer.append(answered)
        ours.append(exited)
        answered, exited = _timed_both([rostopic, "list"], env)
        theirs_answer.append(answered)
        theirs.append(exited)
    bare = [_timed([python, "-c", "pass"], env) for _ in range(samples)]
    imports = [_timed([python, "-c", "import pyros.cli"], env) for _ in range(samples)]
    helps = [_timed([pyros, "--help"], env) for _ in range(samples)]
    spawn, query, close = [], [], []
    for _ in range(samples):
        out = subprocess.run(
            [python, "-c", _SPAWN_STAGES],
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
        "installed": "from a wheel of this checkout",
        "samples": samples,
        "pyros topics": ours_summary,
        "rostopic list": theirs_summary,
        "ratio_median": ours_summary["median_ms"] / theirs_summary["median_ms"],
        "answer_ms": {
            "pyros topics": _median_ms(ours_answer),
            "rostopic list": _median_ms(theirs_answer),
        },
        "stages_ms": {
            "python -c pass": _median_ms(bare),
            "python -c 'import pyros.cli'": _median_ms(imports),
            "pyros --help": _median_ms(helps),
            "spawn a lazy ros1 node (in process)": _median_ms(spawn),
            "topics() request": _median_ms(query),
            "close (node exits)": _median_ms(close),
        },
    }
