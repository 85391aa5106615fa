"""The ``pyros`` command, run as a user would run it, against mock-backend nodes.

Each command is run once spawning its own node (the default) and, where state must carry
over between commands, against one shared node (``--name``). The ROS 1 twins of these tests
are in ``tests/ros1/test_cli_ros1.py``.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from pyros._process import pid_alive
from tests.process.cli_support import pyros_command, run, run_on_terminal, start
from tests.support import RUNTIME_DIR, free_port, limit, wait_until

pytestmark = pytest.mark.process


@pytest.fixture
def shared() -> Iterator[str]:
    """A shared mock node for one test, stopped after it."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    started = run("node", "start", name, "--backend", "mock")
    assert started.returncode == 0, started.stderr
    try:
        yield name
    finally:
        run("node", "stop", name)


def _json_lines(text: str) -> list[object]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- lists and output formats ---------------------------------------------------------------


def test_topics_and_services_print_json_when_piped() -> None:
    result = run("topics")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["/turtle1/pose"] == "turtlesim/Pose"
    result = run("services", "--services", "/re*", "/set_*")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "/reset": "std_srvs/Empty",
        "/set_flag": "std_srvs/SetBool",
    }


def test_lists_print_a_table_on_a_terminal_and_json_with_the_flag() -> None:
    code, shown = run_on_terminal("topics")
    assert code == 0
    lines = shown.splitlines()
    assert lines[0].split() == ["TOPIC", "TYPE"]
    assert ["/turtle1/pose", "turtlesim/Pose"] in [line.split() for line in lines]
    code, shown = run_on_terminal("services", "--json")
    assert code == 0 and json.loads(shown)["/reset"] == "std_srvs/Empty"


def test_the_default_backend_is_said_on_stderr() -> None:
    result = run("topics")
    assert "using backend mock (no ROS environment found" in result.stderr
    result = run("topics", env={"PYROS_BACKEND": "mock"})
    assert result.returncode == 0 and "PYROS_BACKEND is set" in result.stderr
    result = run("topics", "--backend", "mock")
    assert result.returncode == 0 and "using backend" not in result.stderr


def test_a_ros_master_uri_makes_ros1_the_default() -> None:
    # Nothing listens there: the ros1 node fails fast, which shows ros1 was chosen.
    result = run("topics", "--ready-timeout", "5", env={"ROS_MASTER_URI": "http://127.0.0.1:9/"})
    assert "using backend ros1 (ROS_MASTER_URI is set" in result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: SpawnError: ")


def test_nodes_lists_the_graph(shared: str) -> None:
    result = run("nodes", "--name", shared)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


# --- echo ------------------------------------------------------------------------------------


def test_echo_prints_json_lines() -> None:
    result = run("echo", "/turtle1/pose", "-n", "2")
    assert result.returncode == 0, result.stderr
    poses = _json_lines(result.stdout)
    assert len(poses) == 2 and all({"x", "y", "theta"} <= set(pose) for pose in poses)  # type: ignore[arg-type]


def test_echo_selects_a_field_in_either_form() -> None:
    result = run("echo", "/turtle1/pose/x", "--once")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), float)
    result = run("echo", "/turtle1/pose", "--field", "theta", "-n", "2")
    assert result.returncode == 0, result.stderr
    assert [type(value) for value in _json_lines(result.stdout)] == [float, float]
    result = run("echo", "/turtle1/pose", "--field", "nope", "--once")
    assert result.returncode == 1
    assert "has no field 'nope'" in result.stderr and len(result.stderr.splitlines()) <= 2


def test_echo_filter_keeps_matching_messages(shared: str) -> None:
    publisher = start(
        "pub", "/cli/count", "data: 7", "--type", "std_msgs/Int32", "--rate", "50", "--name", shared
    )
    other = start(
        "pub", "/cli/count", "data: 1", "--type", "std_msgs/Int32", "--rate", "50", "--name", shared
    )
    try:
        result = run("echo", "/cli/count", "--filter", "m.data > 5", "-n", "5", "--name", shared)
    finally:
        for proc in (publisher, other):
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=limit(10))
    assert result.returncode == 0, result.stderr
    assert _json_lines(result.stdout) == [{"data": 7}] * 5


def test_echo_filter_and_field_errors_are_usage_errors() -> None:
    result = run("echo", "/turtle1/pose", "--filter", "__import__('os').system('id')")
    assert result.returncode == 2
    assert result.stderr.startswith("error: usage: ") and len(result.stderr.splitlines()) == 1
    result = run("echo", "/turtle1/pose", "--filter", "nope > 1", "--once")
    assert result.returncode == 2 and "no field 'nope'" in result.stderr


def test_echo_yaml_and_timeout() -> None:
    result = run("echo", "/turtle1/pose", "--yaml", "-n", "2")
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    assert len(documents) == 2 and "theta" in documents[0]
    result = run("echo", "/turtle1/pose", "--filter", "x > 1000", "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "error: TimeoutError: no message on /turtle1/pose within 0.5 s"
    )


def test_echo_warns_about_a_topic_that_does_not_exist() -> None:
    result = run("echo", "/turtle1/poze", "--timeout", "0.3")
    assert "pyros: topic /turtle1/poze does not exist yet" in result.stderr
    assert "did you mean /turtle1/pose" in result.stderr
    assert result.returncode == 1


# --- hz, bw, delay ---------------------------------------------------------------------------


def test_hz_reports_live_and_a_summary() -> None:
    result = run("hz", "/turtle1/pose", "--duration", "2.5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("average rate: ") for line in lines), lines
    assert lines[-1].startswith("summary: ")
    result = run("hz", "/turtle1/pose", "-n", "20", "--json")
    summary = _json_lines(result.stdout)[-1]
    assert isinstance(summary, dict) and summary["summary"]["messages"] == 20
    # The mock turtle publishes its pose at 30 Hz (pyros.backends.mock).
    assert 15 < summary["summary"]["rate_hz"] < 45


def test_bw_reports_bytes_per_second() -> None:
    result = run("bw", "/turtle1/pose", "--duration", "2.2", "--json")
    assert result.returncode == 0, result.stderr
    reports = _json_lines(result.stdout)
    live = [report for report in reports if isinstance(report, dict) and "bytes_per_s" in report]
    assert live and live[0]["bytes_per_s"] > 100
    final = reports[-1]
    assert isinstance(final, dict) and final["summary"]["bytes"] > 0


def test_delay_from_header_stamps(shared: str) -> None:
    stamp = int(time.time()) - 2  # two seconds old
    message = json.dumps({"header": {"stamp": {"secs": stamp, "nsecs": 0}}})
    publisher = start(
        "pub", "/cli/stamped", message, "--type", "geometry_msgs/PoseStamped", "--rate", "20",
        "--name", shared,
    )  # fmt: skip
    try:
        result = run("delay", "/cli/stamped", "-n", "5", "--json", "--name", shared)
        pose = run("delay", "/turtle1/pose", "-n", "1", "--name", shared)
    finally:
        publisher.send_signal(signal.SIGINT)
        publisher.communicate(timeout=limit(10))
    assert result.returncode == 0, result.stderr
    summary = _json_lines(result.stdout)[-1]
    assert isinstance(summary, dict) and summary["summary"]["messages"] == 5
    assert 1.5 < summary["summary"]["mean_s"] < 4.0 * limit(1)
    assert pose.returncode == 1 and "have no header.stamp" in pose.stderr


# --- pub and call ----------------------------------------------------------------------------


def test_pub_reads_yaml_and_json_and_reaches_a_subscriber(shared: str) -> None:
    echo = start("echo", "/cli/chat", "-n", "2", "--name", shared)
    assert wait_until(
        lambda: '"subscriptions": 1' in run("node", "status", shared).stdout, limit(10)
    )
    first = run("pub", "/cli/chat", "data: hello", "--type", "std_msgs/String", "--name", shared)
    second = run("pub", "/cli/chat", '{"data": "again"}', "--name", shared)
    out, err = echo.communicate(timeout=limit(10))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert _json_lines(out) == [{"data": "hello"}, {"data": "again"}]


def test_pub_rate_and_count(shared: str) -> None:
    echo = start("echo", "/cli/ticks", "-n", "5", "--name", shared)
    assert wait_until(
        lambda: '"subscriptions": 1' in run("node", "status", shared).stdout, limit(10)
    )
    started = time.monotonic()
    result = run(
        "pub", "/cli/ticks", "data: 3", "--type", "std_msgs/Int8", "-r", "20", "-n", "5",
        "--name", shared,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    out, _ = echo.communicate(timeout=limit(10))
    assert result.returncode == 0, result.stderr
    assert _json_lines(out) == [{"data": 3}] * 5
    assert elapsed >= 0.2  # four periods of 50 ms


def test_pub_latch_reaches_a_late_subscriber(shared: str) -> None:
    result = run(
        "pub", "/cli/latched", "data: kept", "--type", "std_msgs/String", "--latch",
        "--name", shared,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    late = run("echo", "/cli/latched", "--once", "--timeout", "5", "--name", shared)
    assert late.returncode == 0, late.stderr
    assert json.loads(late.stdout) == {"data": "kept"}


def test_call_prints_the_response_for_yaml_and_json() -> None:
    result = run("call", "/set_flag", '{"data": true}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["success"] is True
    result = run("call", "/set_flag", "data: false")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["success"] is True


# --- info, type, show --------------------------------------------------------------------------


def test_type_info_and_show() -> None:
    result = run("type", "/turtle1/pose")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "turtlesim/Pose"
    assert run("type", "/reset").stdout.strip() == "std_srvs/Empty"
    result = run("info", "/turtle1/pose")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["topic"] == "/turtle1/pose" and described["type"] == "turtlesim/Pose"
    result = run("info", "/reset")
    assert json.loads(result.stdout)["service"] == "/reset"
    result = run("show", "geometry_msgs/Twist")
    assert result.returncode == 0, result.stderr
    assert "Vector3 linear" in result.stdout and "Vector3 angular" in result.stdout
    result = run("show", "std_srvs/SetBool")
    assert "---" in result.stdout and "bool success" in result.stdout
    result = run("info", "/turtle1/poze")
    assert result.returncode == 1 and "did you mean /turtle1/pose" in result.stderr


# --- parameters ------------------------------------------------------------------------------


def test_param_set_get_list_delete(shared: str) -> None:
    assert run("param", "set", "/cli/gains", "{p: 1.5, i: 0.1}", "--name", shared).returncode == 0
    assert run("param", "set", "/cli/label", "hello", "--name", shared).returncode == 0
    got = run("param", "get", "/cli/gains", "--name", shared)
    assert json.loads(got.stdout) == {"p": 1.5, "i": 0.1}
    listed = run("param", "list", "/cli", "--name", shared)
    assert json.loads(listed.stdout) == ["/cli/gains/i", "/cli/gains/p", "/cli/label"]
    deleted = run("param", "delete", "/cli/gains", "--name", shared)
    assert deleted.returncode == 0, deleted.stderr
    missing = run("param", "get", "/cli/gains/p", "--name", shared)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ParamNotSetError: ")


def test_param_dump_and_load_round_trip(shared: str, tmp_path: Path) -> None:
    tree = {"robot": {"gains": {"p": 1.5, "d": [1, 2]}, "name": "r2"}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    loaded = run("param", "load", str(path), "/cli", "--name", shared)
    assert loaded.returncode == 0, loaded.stderr
    dumped = run("param", "dump", "-", "/cli", "--name", shared)
    assert dumped.returncode == 0, dumped.stderr
    assert yaml.safe_load(dumped.stdout) == tree
    out = tmp_path / "out.yaml"
    assert run("param", "dump", str(out), "/cli/robot", "--name", shared).returncode == 0
    assert yaml.safe_load(out.read_text()) == tree["robot"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    result = run("param", "load", str(bad), "--name", shared)
    assert result.returncode == 2 and result.stderr.startswith("error: usage: ")


# --- actions ---------------------------------------------------------------------------------


def test_action_list_info_send() -> None:
    listed = run("action", "list")
    assert listed.returncode == 0, listed.stderr
    actions = json.loads(listed.stdout)
    assert actions, "the mock offers an action"
    name = sorted(actions)[0]
    described = run("action", "info", name)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["type"] == actions[name]


# --- nodes -----------------------------------------------------------------------------------


def test_shared_node_start_use_list_stop() -> None:
    started = run(
        "node", "start", "cli_shared", "--backend", "mock", "--topics", "*", "--params", "*"
    )
    assert started.returncode == 0, started.stderr
    node_pid = int(started.stdout.split("pid ")[1].split(",")[0])
    try:
        assert psutil.pid_exists(node_pid)
        listed = json.loads(run("node", "list").stdout)
        assert {"name": "cli_shared", "pid": node_pid, "backend": "mock", "shared": True} in listed
        code, shown = run_on_terminal("node", "list")
        assert code == 0 and shown.splitlines()[0].split() == ["NAME", "PID", "BACKEND", "KIND"]
        status = json.loads(run("node", "status", "cli_shared").stdout)
        assert status["pid"] == node_pid and status["shared"] is True
        image = {"height": 1, "width": 2, "encoding": "mono8", "step": 2, "data": [7, 9]}
        with subprocess.Popen(
            [*pyros_command(), "echo", "/cli/image", "-n", "1", "--name", "cli_shared"],
            stdout=subprocess.PIPE,
            text=True,
        ) as echo:
            wait_until(
                lambda: run("node", "status", "cli_shared").stdout.count('"subscriptions": 1'),
                limit(5),
            )
            published = run(
                "pub", "/cli/image", json.dumps(image), "--type", "sensor_msgs/Image",
                "--name", "cli_shared",
            )  # fmt: skip
            assert published.returncode == 0, published.stderr
            out, _ = echo.communicate(timeout=limit(10))
        assert base64.b64decode(json.loads(out)["data"]) == bytes([7, 9])
    finally:
        stopped = run("node", "stop", "cli_shared")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: not pid_alive(node_pid), limit(2))
    assert not (RUNTIME_DIR / "cli_shared").exists()
    again = run("node", "stop", "cli_shared")
    assert again.returncode == 1 and again.stderr.startswith("error: NodeDiedError: ")


def test_node_info(shared: str) -> None:
    result = run("nodes", "--name", shared)
    names = json.loads(result.stdout)
    assert names, result.stderr
    described = run("node", "info", names[0], "--name", shared)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["node"] == names[0]


# --- errors and exits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("pub", "/x", "{}", "--rate", "1e-300"),
        ("pub", "/x", "{}", "--rate", "0"),
        ("pub", "/x", "{}", "--rate", "-1"),
        ("pub", "/x", "{}", "--rate", "nan"),
        ("pub", "/x", "{}", "--rate", "inf"),
        ("pub", "/x", '{"data": ' + "9" * 5000 + "}", "--type", "std_msgs/Int64"),
        ("pub", "/x", "{not json"),
        ("pub", "/x", "[1, 2]"),
        ("echo", "/x", "-n", "-1"),
        ("echo", "/x", "-n", "0"),
        ("echo", "/x", "-n", "9" * 5000),
        ("echo", "/x", "--timeout", "nan"),
        ("call", "/x", "--timeout", "1e9"),
        ("node", "stop", ""),
        ("node", "stop", "../victim"),
        ("node", "start", "../../etc"),
        ("topics", "--domain-id", "-1"),
        ("topics", "--name", "a b"),
        ("hz", "/x", "--window", "1"),
        ("topics", "--name", "some_node", "--backend", "mock"),
        ("nosuchcommand",),
        ("echo",),
    ],
)
def test_bad_values_are_one_line_usage_errors(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: usage: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_errors_exit_one_with_one_line() -> None:
    result = run("call", "/set_flag", '{"data": "yes"}')
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("error: MessageError: ")
    assert "data" in result.stderr
    result = run("topics", "--backend", "nope")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if line.startswith("error: SpawnError: ")
    ]
    assert "unknown backend" in result.stderr
    result = run("topics", "--name", "nobody_runs_this")
    assert result.returncode == 1 and result.stderr.startswith("error: NodeDiedError: ")


@pytest.mark.parametrize(
    "args",
    [
        ("echo", "/turtle1/pose"),
        ("hz", "/turtle1/pose"),
        ("bw", "/turtle1/pose"),
        ("pub", "/turtle1/cmd_vel", "linear: {x: 1.0}", "--rate", "5"),
        ("echo", "/never/published"),
    ],
)
def test_ctrl_c_exits_130_silently(args: tuple[str, ...]) -> None:
    proc = start(*args, "--backend", "mock")
    # Wait until the node is up (the command prints or subscribes), then interrupt it.
    node_up = wait_until(
        lambda: any(
            child.name().startswith("python") for child in psutil.Process(proc.pid).children()
        ),
        limit(10),
    )
    assert node_up
    time.sleep(limit(1.5))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=limit(10))
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    assert [line for line in err.splitlines() if not line.startswith("pyros: ")] == []


def test_a_closed_pipe_exits_zero() -> None:
    pipeline = subprocess.run(
        f"{' '.join(pyros_command())} echo /turtle1/pose --backend mock | head -1; "
        'echo "status=${PIPESTATUS[0]}"',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=limit(30),
    )
    lines = pipeline.stdout.splitlines()
    assert "theta" in lines[0]
    assert lines[-1] == "status=0", pipeline.stderr
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr


# --- completion ------------------------------------------------------------------------------


def _complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    parts = words.split(" ")
    result = run(
        env={
            "_PYROS_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(parts) - 1),
            **(env or {}),
        }
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line]


def test_completion_of_commands_and_options() -> None:
    assert "echo" in _complete("pyros ec")
    assert set(_complete("pyros echo /a --fi")) == {"--field", "--filter"}
    assert set(_complete("pyros param ")) >= {"list", "get", "set", "delete", "dump", "load"}
    assert _complete("pyros topics --backend ro") == ["ros1", "ros2", "rosbridge"]


def test_completion_of_names_from_a_running_node(shared: str) -> None:
    assert "/turtle1/pose" in _complete("pyros echo /turtle1/p", {"PYROS_NODE": shared})
    assert _complete(f"pyros call --name {shared} /res") == ["/reset"]
    assert shared in _complete("pyros node stop cli_")


def test_completion_script_is_documented_and_sourceable(tmp_path: Path) -> None:
    result = run(env={"_PYROS_COMPLETE": "bash_source"})
    assert result.returncode == 0 and "complete " in result.stdout
    script = tmp_path / "pyros.bash"
    script.write_text(result.stdout)
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_help_and_version() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("echo", "hz", "bw", "delay", "info", "type", "show", "param", "action",
                    "nodes", "node", "pub", "call", "relay", "connector", "demo"):  # fmt: skip
        assert command in result.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("pyros ")


def test_demo_drives_the_turtle_and_exits_zero() -> None:
    result = run("demo", "--duration", "2")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("t=")]
    assert len(lines) >= 5
    xs = [float(line.split("x=")[1].split()[0]) for line in lines]
    ys = [float(line.split("y=")[1].split()[0]) for line in lines]
    assert max(xs) - min(xs) > 0.5 and max(ys) - min(ys) > 0.5, "the turtle did not move"


def test_relay_and_connector_explain_an_old_websockets(tmp_path: Path) -> None:
    """Debian 12's python3-websockets is 10.4: a clear error and the pip step, no traceback."""
    fake = tmp_path / "websockets"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "10.4"\n')
    for args in (("relay", "--port", "0"), ("connector", "--relay", "ws://127.0.0.1:9",
                                             "--device", "r1", "--token", "t")):  # fmt: skip
        result = run(*args, env={"PYTHONPATH": str(tmp_path)})
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines() == [
            line for line in result.stderr.splitlines() if line.startswith("error: ")
        ]
        assert "error: DependencyError: pyros" in result.stderr
        assert "websockets >= 14, this Python has 10.4" in result.stderr
        assert "pip install" in result.stderr


def test_node_run_keeps_a_shared_node_in_the_foreground() -> None:
    """For roslaunch, systemd and Docker: the node lives as long as the command."""
    name = f"cli_run_{uuid.uuid4().hex[:6]}"
    proc = start("node", "run", name, "--backend", "mock")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"running {name} (pid "), line
        node_pid = int(line.split("pid ")[1].split(",")[0])
        used = run("param", "set", "/cli/run", "1", "--name", name)
        assert used.returncode == 0, used.stderr
        assert json.loads(run("param", "get", "/cli/run", "--name", name).stdout) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=limit(15))
    assert proc.returncode == 130
    assert wait_until(lambda: not pid_alive(node_pid), limit(5))
    assert not (RUNTIME_DIR / name).exists()


def test_relay_and_connector_exit_130_on_ctrl_c_and_0_on_sigterm() -> None:
    """Ctrl-C stops the relay and the connector cleanly, then exits 130 like every command;
    SIGTERM (systemd, docker stop) exits 0."""
    port = free_port()
    relay = start("relay", "--port", str(port))
    connector = None
    try:
        assert wait_until(lambda: port_open(port), limit(10)), "the relay never listened"
        connector = start(
            "connector", "--relay", f"ws://127.0.0.1:{port}", "--device", "robot1",
            "--token", "unused-without-a-tokens-file", "--backend", "mock",
            "--topics", "/turtle1/pose",
        )  # fmt: skip
        time.sleep(limit(2.0))
        connector.send_signal(signal.SIGINT)
        _, err = connector.communicate(timeout=limit(15))
        assert connector.returncode == 130, err
        assert "Traceback" not in err
    finally:
        if connector is not None and connector.poll() is None:
            connector.kill()
            connector.communicate()
        relay.send_signal(signal.SIGINT)
        _, err = relay.communicate(timeout=limit(15))
    assert relay.returncode == 130, err
    assert "Traceback" not in err
    relay = start("relay", "--port", str(port))
    assert wait_until(lambda: port_open(port), limit(10))
    relay.send_signal(signal.SIGTERM)
    _, err = relay.communicate(timeout=limit(15))
    assert relay.returncode == 0, err


def port_open(port: int) -> bool:
    """True once the relay answers ``GET /healthz`` (a bare TCP probe would be a bad request)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
