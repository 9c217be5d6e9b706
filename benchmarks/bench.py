"""glance-features speed, as ratios to the floor measured side by side.

    python benchmarks/bench.py [--runs N] [--quick]

Absolute times on a shared machine are noise; every figure here is a ratio of
two medians measured in the same run, interleaved. The floor is what the work
cannot avoid: starting the interpreter (`python -c pass`) and one
`qemu-img --help`. Nothing here is a test: it prints figures and targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = sys.executable
QEMU = shutil.which("qemu-img")
ROWS: list[tuple[str, str, str, str]] = []

# Modules a running Glance service has imported long before it probes.
GLANCE_STDLIB = (
    "re, enum, json, socket, subprocess, threading, dataclasses, typing, "
    "argparse, importlib.util, collections, functools, logging"
)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return time.perf_counter() - start


def medians(commands: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Interleave the commands so machine noise hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(command())
    return {name: statistics.median(values) for name, values in samples.items()}


def row(figure: str, value: float, target: str, ok: bool | None, unit: str = "") -> None:
    shown = f"{value:.2f}{unit}" if unit != "us" else f"{value:.2f} us"
    verdict = "-" if ok is None else ("met" if ok else "MISSED")
    ROWS.append((figure, shown, target, verdict))
    print(f"{figure:<72} {shown:>10}  target {target:<8} {verdict}", flush=True)


def at_most(figure: str, ratio: float, limit: float) -> None:
    row(figure, ratio, f"<= {limit:g}", ratio <= limit)


IN_PROCESS = textwrap.dedent("""
    import sys, time
    preload = sys.argv[1]
    if preload:
        exec("import " + preload)
    start = time.perf_counter()
    import glance_features
    settings = None
    if len(sys.argv) > 2:
        settings = glance_features.Settings(image_cache_dir=sys.argv[2])
    glance_features.probe(settings)
    print(time.perf_counter() - start)
""")


def in_process_pair(runs: int, a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Medians of two in-process variants, interleaved run by run."""
    first: list[float] = []
    second: list[float] = []
    for _ in range(runs):
        first.append(_in_process_once(**a))
        second.append(_in_process_once(**b))
    return statistics.median(first), statistics.median(second)


def in_process(runs: int, **variant: Any) -> float:
    return statistics.median(_in_process_once(**variant) for _ in range(runs))


def _in_process_once(
    preload: str = "",
    env: dict[str, str] | None = None,
    cache_dir: str | None = None,
    prefix: list[str] | None = None,
) -> float:
    argv = [*(prefix or []), PY, "-c", IN_PROCESS, preload, *([cache_dir] if cache_dir else [])]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    return float(out.strip().splitlines()[-1])


def qemu_exec_in_process(runs: int) -> float:
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([QEMU or "true", "--help"], capture_output=True, check=False)
        values.append(time.perf_counter() - start)
    return statistics.median(values)


def bench_start_up(runs: int) -> None:
    script = str(Path(PY).with_name("glance-features"))
    m = medians(
        {
            "pass": lambda: timed([PY, "-c", "pass"]),
            "import": lambda: timed([PY, "-c", "import glance_features"]),
            "qemu": lambda: timed([QEMU or "true", "--help"]),
            # The standard library any Python CLI that uses sockets and
            # subprocesses must import: the floor a Python probe can reach.
            "stdlib": lambda: timed(
                [
                    PY,
                    "-c",
                    "import argparse, json, socket, subprocess, threading, re, enum",
                ]
            ),
            "cli": lambda: timed([PY, "-m", "glance_features", "--format", "json"]),
            "script": lambda: timed([script, "--format", "json"]),
        },
        runs,
    )
    print(
        f"  floor: python -c pass {m['pass'] * 1e3:.1f} ms, qemu-img --help "
        f"{m['qemu'] * 1e3:.1f} ms"
    )
    at_most("python -c 'import glance_features' / python -c pass", m["import"] / m["pass"], 1.15)
    floor = m["pass"] + m["qemu"]
    at_most(
        "python -m glance_features --format json / (pass + qemu-img --help)", m["cli"] / floor, 2.0
    )
    at_most(
        "glance-features --format json (console script) / (pass + qemu-img --help)",
        m["script"] / floor,
        2.0,
    )
    row(
        "  reference: importing the stdlib it needs, nothing else / (pass + qemu-img --help)",
        (m["stdlib"] + m["qemu"]) / floor,
        "-",
        None,
    )


def bench_in_process(runs: int) -> None:
    qemu = qemu_exec_in_process(runs)
    cold = in_process(runs)
    warm = in_process(runs, preload=GLANCE_STDLIB)
    at_most("first probe() incl. lazy imports / one qemu-img --help exec", cold / qemu, 3.0)
    at_most("  same, in an interpreter that has Glance's usual stdlib loaded", warm / qemu, 3.0)
    print(
        f"  first probe {cold * 1e3:.1f} ms ({warm * 1e3:.1f} ms warm stdlib), "
        f"qemu-img --help exec {qemu * 1e3:.1f} ms"
    )


def bench_cached() -> None:
    import timeit

    import glance_features

    report = glance_features.probe()
    n = 200_000
    probe_us = min(timeit.repeat(glance_features.probe, number=n, repeat=5)) / n * 1e6
    available_us = (
        min(timeit.repeat(lambda: report.available("qemu-img"), number=n, repeat=5)) / n * 1e6
    )
    row("cached probe()", probe_us, "< 2 us", probe_us < 2, "us")
    row("report.available(name)", available_us, "< 2 us", available_us < 2, "us")


def bench_mounts(runs: int) -> None:
    if not shutil.which("unshare"):
        print("  (skipped: no unshare)")
        return
    base = tempfile.mkdtemp(prefix="gf-bench-mounts-")
    try:
        make = f"for i in $(seq 1000); do mkdir -p {base}/m$i; mount -t tmpfs t {base}/m$i; done"
        many = ["unshare", "-m", "sh", "-c", make + '\nexec "$@"', "sh"]
        none = ["unshare", "-m", "sh", "-c", 'exec "$@"', "sh"]
        with_mounts, without = in_process_pair(runs, {"prefix": many}, {"prefix": none})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    at_most("cold probe with 1,000 extra mounts / with none", with_mounts / without, 1.2)


def bench_distributions(runs: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="gf-bench-dists-") as many,
        tempfile.TemporaryDirectory(prefix="gf-bench-empty-") as empty,
    ):
        for i in range(300):
            info = Path(many) / f"extra_dist_{i}-1.0.{i}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: extra-dist-{i}\nVersion: 1.0.{i}\n\n"
            )
            (info / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n")
        with_dists, without = in_process_pair(
            runs,
            {"env": {**os.environ, "PYTHONPATH": many}},
            {"env": {**os.environ, "PYTHONPATH": empty}},
        )
    at_most(
        "cold probe with 300 extra distributions on sys.path / with none", with_dists / without, 1.2
    )


def bench_cache_dir(runs: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="gf-bench-full-") as full,
        tempfile.TemporaryDirectory(prefix="gf-bench-empty-") as empty,
    ):
        for i in range(100_000):
            os.close(os.open(os.path.join(full, f"{i:032x}"), os.O_CREAT | os.O_WRONLY, 0o600))
        os.sync()  # let writeback of 100,000 new inodes finish before timing
        with_files, without = in_process_pair(runs, {"cache_dir": full}, {"cache_dir": empty})
    at_most(
        "cold probe with 100,000 files in the image cache dir / empty dir",
        with_files / without,
        1.05,
    )


def bench_alternatives(runs: int) -> None:
    bindep = shutil.which("bindep") or str(Path(PY).with_name("bindep"))
    if os.path.exists(bindep):
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "bindep.txt"
            spec.write_text(
                "qemu-utils [platform:dpkg]\nqemu-img [platform:rpm]\n"
                "python3-xattr [platform:dpkg]\nattr [platform:dpkg]\n"
            )
            m = medians(
                {
                    "bindep": lambda: timed([bindep, "-b", "-f", str(spec)]),
                    "ours": lambda: timed([PY, "-m", "glance_features", "--format", "json"]),
                },
                runs,
            )
        row(
            "glance-features (all five, functional) / bindep -b (package list only)",
            m["ours"] / m["bindep"],
            "-",
            None,
        )
    else:
        print("  (bindep not installed: pip install bindep to compare)")
    status = os.environ.get("GLANCE_STATUS") or shutil.which("glance-status")
    if status and os.path.exists(status):
        # Without a configured database it exits with an error after loading
        # Glance: this is its start-up cost, not a like-for-like check.
        m = medians(
            {
                "status": lambda: timed([status, "upgrade", "check"]),
                "ours": lambda: timed([PY, "-m", "glance_features", "--format", "json"]),
            },
            max(3, runs // 3),
        )
        row(
            "glance-features / glance-status upgrade check (start-up)",
            m["ours"] / m["status"],
            "-",
            None,
        )
    else:
        print("  (glance-status not found: set GLANCE_STATUS to compare)")


def bench_summarize() -> None:
    import glance_features
    from glance_features import testing

    with tempfile.TemporaryDirectory(prefix="gf-bench-fleet-") as tmp:
        template = testing.make_report(qemu_img="unavailable", required=["qemu-img"]).to_dict()
        for i in range(10_000):
            template["host"]["hostname"] = f"api-{i:05d}"
            Path(tmp, f"{i}.json").write_text(json.dumps(template))
        start = time.perf_counter()
        proc = subprocess.run(
            [PY, "-m", "glance_features", "summarize", tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        took = time.perf_counter() - start
    assert "10000 hosts" in proc.stdout, proc.stderr
    print(
        f"  summarize 10,000 reports: {took:.2f} s (glance-features {glance_features.__version__})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 1,000 mounts")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    print(
        f"glance-features benchmark: {runs} runs per figure, medians, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    if QEMU is None:
        print("  warning: qemu-img is not installed; its floor is `true --help`")
    bench_start_up(runs)
    bench_in_process(runs)
    bench_cached()
    if not args.quick and os.geteuid() == 0:
        bench_mounts(max(5, runs // 2))
    bench_distributions(runs)
    bench_cache_dir(runs)
    bench_alternatives(runs)
    bench_summarize()
    judged = [r for r in ROWS if r[3] != "-"]
    met = sum(r[3] == "met" for r in judged)
    print(f"{met} of {len(judged)} figures with a target met it")


if __name__ == "__main__":
    main()
