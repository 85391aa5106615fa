"""Turning samples into figures: statistics, the target checks, the Markdown table, the plots.

Percentiles are nearest-rank on the sorted samples (p90 is the smallest sample with at least
90 % of samples at or below it); medians are :func:`statistics.median`. Everything here is
reporting: a missed target is written down, never raised.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

__all__ = [
    "latency_summary",
    "targets",
    "markdown",
    "plots",
    "LATENCY_SCENARIOS",
    "STREAM_SCENARIOS",
]

LATENCY_SCENARIOS = {
    "spawn_to_ready": "spawn to ready",
    "round_trip_small": "topic round trip, std_msgs/String 16 B",
    "round_trip_large": "topic round trip, std_msgs/UInt8MultiArray 1 MB",
    "service_call": "service call, std_srvs/SetBool",
    "discovery": "discovery (new topic in the graph to first message)",
    "action_round_trip": "action round trip, test_msgs/Fibonacci goal to result",
}
STREAM_SCENARIOS = {
    "stream_full_speed": "stream, talker at full speed",
    "stream_1khz": "stream, talker at 1 kHz",
}
MB = 1024 * 1024
ROSPY_PER_CALL = "rospy (new ServiceProxy per call)"
"""The service-call row the target compares with: the plain rospy way, a proxy per request."""
ROSPY_PERSISTENT = "rospy (persistent proxy)"
"""The other rospy service row: one ``persistent=True`` proxy, the fastest rospy can call."""


def _rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_summary(samples: list[float]) -> dict[str, Any]:
    """Median, p90, p99 and max of ``samples`` (seconds), in milliseconds, plus the samples."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": _rank(ordered, 0.90) * 1000,
        "p99_ms": _rank(ordered, 0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "samples_ms": [round(value * 1000, 4) for value in samples],
    }


def _get(results: dict[str, Any], scenario: str, contender: str, key: str) -> float | None:
    entry = results["scenarios"].get(scenario, {}).get(contender)
    if not isinstance(entry, dict) or entry.get(key) is None:
        return None
    return float(entry[key])


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each ``{"target", "measured", "met"}`` (``met`` None when a figure
    it needs is missing)."""
    rows = []

    def add(target: str, value: float | None, fmt: str, ok: bool | None) -> None:
        rows.append(
            {"target": target, "measured": None if value is None else fmt.format(value), "met": ok}
        )

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    rt = ratio(
        _get(results, "round_trip_small", "pyros", "median_ms"),
        _get(results, "round_trip_small", "rospy", "median_ms"),
    )
    add(
        "round trip (small) <= 2.5x rospy direct, median",
        rt,
        "{:.2f}x",
        None if rt is None else rt <= 2.5,
    )
    rt_large = ratio(
        _get(results, "round_trip_large", "pyros", "median_ms"),
        _get(results, "round_trip_large", "rospy", "median_ms"),
    )
    add(
        "round trip (large) <= 2.5x rospy direct, median",
        rt_large,
        "{:.2f}x",
        None if rt_large is None else rt_large <= 2.5,
    )
    for size in ("small", "large"):
        old = ratio(
            _get(results, f"round_trip_{size}", "pyros 0.4.3", "median_ms"),
            _get(results, f"round_trip_{size}", "pyros", "median_ms"),
        )
        add(
            f"round trip ({size}) >= 4x faster than Pyros 0.4.3, median",
            old,
            "{:.1f}x faster",
            None if old is None else old >= 4,
        )
    call = ratio(
        _get(results, "service_call", "pyros", "median_ms"),
        _get(results, "service_call", ROSPY_PER_CALL, "median_ms"),
    )
    add(
        "service call <= rospy ServiceProxy made per call, median",
        call,
        "{:.2f}x",
        None if call is None else call <= 1.0,
    )
    persistent = ratio(
        _get(results, "service_call", "pyros", "median_ms"),
        _get(results, "service_call", ROSPY_PERSISTENT, "median_ms"),
    )
    add(
        "service call against a persistent rospy proxy (reported, no target), median",
        persistent,
        "{:.2f}x",
        None,
    )
    stream = ratio(
        _get(results, "stream_full_speed", "pyros", "msgs_per_s"),
        _get(results, "stream_full_speed", "rospy", "msgs_per_s"),
    )
    add(
        "stream >= 50% of a rospy subscriber, full speed",
        None if stream is None else stream * 100,
        "{:.0f}%",
        None if stream is None else stream >= 0.5,
    )
    lost = _get(results, "stream_1khz", "pyros", "lost")
    add("stream: zero loss at 1 kHz", lost, "{:.0f} lost", None if lost is None else lost == 0)
    for scenario, label in (("spawn_to_ready", "spawn to ready"), ("discovery", "discovery")):
        value = _get(results, scenario, "pyros", "median_ms")
        add(f"{label} < 500 ms, median", value, "{:.0f} ms", None if value is None else value < 500)
    cli = results.get("cli") or {}
    value = cli.get("ratio_median")
    add(
        "pyros topics (own node) <= rostopic list, median, same master",
        value,
        "{:.2f}x",
        None if value is None else value <= 1.0,
    )
    foot = results["footprint"].get("pyros", {})
    value = foot.get("import_ms")
    add("import pyros < 100 ms, median", value, "{:.0f} ms", None if value is None else value < 100)
    value = foot.get("import_rss_mb")
    add(
        "import pyros < 15 MB added RSS, median",
        value,
        "{:.1f} MB",
        None if value is None else value < 15,
    )
    _ros2_targets(results, add, ratio)
    return rows


def _ros2_targets(results: dict[str, Any], add: Any, ratio: Any) -> None:
    """The ROS 2 targets: pyros on ros2 against rclpy direct, same run (issue 9)."""
    ours, floor = "pyros on ros2", "rclpy"
    for scenario, label in (
        ("round_trip_small", "ros2: round trip (small) <= 1.5x rclpy direct, median"),
        ("round_trip_large", "ros2: round trip (large) <= 1.5x rclpy direct, median"),
        ("service_call", "ros2: service call <= 1.5x rclpy direct, median"),
        ("action_round_trip", "ros2: action round trip <= 1.5x rclpy's ActionClient, median"),
    ):
        value = ratio(
            _get(results, scenario, ours, "median_ms"), _get(results, scenario, floor, "median_ms")
        )
        add(label, value, "{:.2f}x", None if value is None else value <= 1.5)
    lost = _get(results, "stream_1khz", ours, "lost")
    add(
        "ros2: stream: zero loss at 1 kHz", lost, "{:.0f} lost", None if lost is None else lost == 0
    )
    stream = ratio(
        _get(results, "stream_full_speed", ours, "msgs_per_s"),
        _get(results, "stream_full_speed", floor, "msgs_per_s"),
    )
    add(
        "ros2: stream >= rclpy's received rate, full speed",
        None if stream is None else stream * 100,
        "{:.0f}% of rclpy",
        None if stream is None else stream >= 1.0,
    )


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown: latencies, streams, footprint, targets, notes."""
    lines = [
        f"# pyros benchmark ({results['mode']} run)",
        "",
        f"{results['machine']}. ROS 1 world: {results['worlds'].get('ros1', '-')}. "
        f"ROS 2 world: {results['worlds'].get('ros2', '-')}.",
        "",
        "## Latency (ms)",
        "",
        "| scenario | contender | world | median | p90 | p99 | max | n |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    worlds = {name: info.get("world", "") for name, info in results["contenders"].items()}
    for scenario, label in LATENCY_SCENARIOS.items():
        for contender, entry in results["scenarios"].get(scenario, {}).items():
            world = worlds.get(contender.split(" (")[0], "")
            if "error" in entry:
                lines.append(
                    f"| {label} | {contender} | {world} | error: {entry['error'][:80]} | | | | |"
                )
                continue
            lines.append(
                f"| {label} | {contender} | {world} | {_ms(entry['median_ms'])} | "
                f"{_ms(entry['p90_ms'])} | {_ms(entry['p99_ms'])} | {_ms(entry['max_ms'])} | "
                f"{entry['n']} |"
            )
    lines += [
        "",
        "## Stream throughput",
        "",
        "| scenario | contender | world | received msgs/s | talker sent msgs/s | lost | loss |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for scenario, label in STREAM_SCENARIOS.items():
        for contender, entry in results["scenarios"].get(scenario, {}).items():
            world = worlds.get(contender, "")
            if "error" in entry:
                lines.append(
                    f"| {label} | {contender} | {world} | error: {entry['error'][:80]} | | | |"
                )
                continue
            loss = entry.get("loss_ratio")
            lines.append(
                f"| {label} | {contender} | {world} | {entry['msgs_per_s']:.0f} | "
                f"{entry.get('sent_per_s', 0):.0f} | {entry.get('lost', '-')} | "
                f"{'-' if loss is None else f'{loss * 100:.1f}%'} |"
            )
    lines += [
        "",
        "## Client footprint (medians over fresh processes)",
        "",
        "| contender | import (ms) | RSS added by import (MB) | client RSS when ready (MB) | "
        "ROS-side processes RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for contender, entry in results["footprint"].items():
        if "error" in entry:
            lines.append(f"| {contender} | error: {entry['error'][:80]} | | | |")
            continue
        node = entry.get("node_rss_mb")
        lines.append(
            f"| {contender} ({entry['what']}) | {entry['import_ms']:.0f} | "
            f"{entry['import_rss_mb']:.1f} | {entry['ready_rss_mb']:.1f} | "
            f"{'-' if node is None else f'{node:.1f}'} |"
        )
    cli = results.get("cli")
    if cli:
        lines += ["", "## Command line: a one-shot query on the same rosmaster", ""]
        if "pyros topics" in cli:
            lines += [
                "| command (fresh process, start to exit) | median | p90 | max | n |",
                "|---|---:|---:|---:|---:|",
            ]
            for name, label in (
                ("pyros topics", "pyros topics --backend ros1 (spawns its own node)"),
                ("rostopic list", "rostopic list"),
            ):
                entry = cli[name]
                lines.append(
                    f"| {label} | {_ms(entry['median_ms'])} | {_ms(entry['p90_ms'])} | "
                    f"{_ms(entry['max_ms'])} | {entry['n']} |"
                )
            answer = cli.get("answer_ms") or {}
            lines += [
                "",
                f"Ratio of medians: {cli['ratio_median']:.2f}x (start to exit). Start to the "
                f"first line of output (the answer): pyros {_ms(answer.get('pyros topics'))} ms, "
                f"rostopic {_ms(answer.get('rostopic list'))} ms; pyros then stops its node. "
                "Installed: " + str(cli.get("installed", "-")) + ".",
                "",
                "Where pyros's time goes "
                "(medians, ms): "
                + ", ".join(f"{k} {_ms(v)}" for k, v in cli["stages_ms"].items())
                + ".",
            ]
        else:
            lines.append(f"Not measured: {cli.get('skipped') or cli.get('error')}")
    lines += ["", "## Targets (pyros against rospy direct and rclpy direct, same run)", ""]
    lines += ["| target | measured | met |", "|---|---|---|"]
    for row in results["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(f"| {row['target']} | {row['measured'] or '-'} | {met} |")
    lines += ["", "## Contenders", ""]
    for name, info in results["contenders"].items():
        status = (
            info["status"]
            if info["status"] == "ok"
            else f"**{info['status']}**: {info.get('reason')}"
        )
        lines.append(
            f"* **{name}** ({info.get('world', '-')}): {info.get('note', '')} Status: {status}."
        )
    lines.append("")
    return "\n".join(lines)


def plots(results: dict[str, Any], folder: Path) -> list[str]:
    """Write ``latency.png`` (distributions per scenario and contender) and
    ``throughput.png``; return the file names (none if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    scenarios = [s for s in LATENCY_SCENARIOS if results["scenarios"].get(s)]
    if scenarios:
        fig, axes = plt.subplots(len(scenarios), 1, figsize=(9, 2.3 * len(scenarios) + 0.6))
        axes = axes if len(scenarios) > 1 else [axes]
        for axis, scenario in zip(axes, scenarios, strict=True):
            entries = {
                name: entry["samples_ms"]
                for name, entry in results["scenarios"][scenario].items()
                if "samples_ms" in entry and entry["samples_ms"]
            }
            if not entries:
                axis.set_visible(False)
                continue
            names = list(entries)
            axis.boxplot(
                [entries[name] for name in names],
                vert=False,
                whis=(1, 99),
                showfliers=True,
                flierprops={"markersize": 2, "alpha": 0.4},
            )
            axis.set_yticks(range(1, len(names) + 1), names, fontsize=8)
            axis.set_xscale("log")
            axis.set_title(LATENCY_SCENARIOS[scenario], fontsize=9)
            axis.grid(True, axis="x", which="both", alpha=0.3)
            axis.tick_params(axis="x", labelsize=8)
        axes[-1].set_xlabel("milliseconds (log scale); box: quartiles, whiskers: p1-p99")
        fig.suptitle(f"pyros benchmark, latency ({results['mode']} run)", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / "latency.png", dpi=110)
        plt.close(fig)
        written.append("latency.png")
    streams = {
        scenario: {
            n: e for n, e in results["scenarios"].get(scenario, {}).items() if "msgs_per_s" in e
        }
        for scenario in STREAM_SCENARIOS
    }
    names = sorted(
        {name for entries in streams.values() for name in entries},
        key=list(results["contenders"]).index,
    )
    if names:
        # One panel per scenario, each on its own linear axis: the 1 kHz panel is not
        # flattened by the full-speed one, and bar heights compare honestly within a panel.
        panels = [scenario for scenario, entries in streams.items() if entries]
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
        for axis, scenario in zip(axes[0], panels, strict=True):
            entries = streams[scenario]
            received = [entries.get(name, {}).get("msgs_per_s", 0) for name in names]
            sent = [entries.get(name, {}).get("sent_per_s", 0) for name in names]
            positions = list(range(len(names)))
            axis.bar(positions, sent, 0.7, color="none", edgecolor="0.5", hatch="//", label="sent")
            bars = axis.bar(positions, received, 0.5, label="received")
            for bar, name in zip(bars, names, strict=True):
                entry = entries.get(name, {})
                loss = entry.get("loss_ratio")
                label = "" if loss is None else f"{loss * 100:.1f}% lost"
                if entry.get("lost"):
                    label += f"\n({entry['lost']})"
                axis.annotate(
                    label,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
            axis.set_xticks(positions, names, fontsize=8, rotation=20)
            axis.set_ylabel("messages per second (linear)")
            axis.set_ylim(0, max([*sent, *received, 1]) * 1.35)
            axis.set_title(STREAM_SCENARIOS[scenario], fontsize=9)
            axis.grid(True, axis="y", alpha=0.3)
            axis.legend(fontsize=7, loc="upper left", ncol=2)
        fig.suptitle(f"pyros benchmark, stream throughput ({results['mode']} run)", fontsize=10)
        fig.tight_layout()
        fig.savefig(folder / "throughput.png", dpi=110)
        plt.close(fig)
        written.append("throughput.png")
    return written
