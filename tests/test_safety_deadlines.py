"""Issue 12, class 4: deadlines everywhere. Every read is of a regular file
with a size bound; every wait has the caller's deadline: sharing a probe in
flight, a DNS lookup, a plugin import, an eventlet-patched process."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import need
from safety_support import (
    BOUND,
    HUNG,
    clean_env,
    cli,
    in_namespaces,
    script,
    snippet,
)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO with a writer blocked in open(): any reader's open releases it."""
    path = tmp_path / "fifo.conf"
    os.mkfifo(path)
    writer = subprocess.Popen(["sh", "-c", f"exec 3>{path}; sleep {HUNG}"])
    yield path
    time.sleep(0.3)
    released = writer.poll() is None and _writer_opened(writer.pid, path)
    writer.kill()
    writer.wait()
    assert not released, "the FIFO was opened for reading"


def _writer_opened(pid: int, path: Path) -> bool:
    # Once released, sh has exec'ed sleep with fd 3 open on the FIFO.
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


def test_a_config_file_that_is_a_fifo_is_refused_unopened(fifo: Path) -> None:
    run = cli("--config-file", str(fifo))
    assert run.elapsed < BOUND
    assert run.returncode == 64
    assert run.message == f"glance-features: error: config file {fifo}: not a regular file"


def test_a_config_dir_holding_a_fifo_is_refused_unopened(fifo: Path) -> None:
    run = cli("--config-dir", str(fifo.parent))
    assert run.returncode == 64 and "not a regular file" in run.message


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/dev/zero", "not a regular file"),
        ("/proc/kmsg", "Resource temporarily unavailable"),
        ("/proc/self/mem", "Input/output error"),
        ("/", "is a directory"),
    ],
)
def test_a_config_path_that_never_ends_is_refused_at_once(path: str, why: str) -> None:
    run = cli("--config-file", path)
    assert run.elapsed < BOUND
    assert run.returncode == 64, run
    assert run.message.startswith(f"glance-features: error: config file {path}: ")
    assert why in run.message or "larger than" in run.message or "not UTF-8" in run.message


def test_summarize_warns_about_a_fifo_and_a_device_and_goes_on(fifo: Path, tmp_path: Path) -> None:
    run = cli("summarize", str(fifo), "/dev/zero", "--format", "json")
    assert run.elapsed < BOUND
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        f"glance-features: warning: {fifo}: not a regular file",
        "glance-features: warning: /dev/zero: not a regular file",
    ]


def test_summarize_reads_no_more_than_its_bound(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(1 << 40)  # sparse: a terabyte that costs nothing on disk
    run = cli("summarize", str(huge))
    assert run.elapsed < BOUND and run.returncode == 0
    assert "larger than" in run.message


@pytest.mark.parametrize("path", ["fifo", "/dev/zero", "/proc/self/mem"])
def test_requirements_constraints_are_bounded_regular_files(
    path: str, request: pytest.FixtureRequest
) -> None:
    name = str(request.getfixturevalue("fifo")) if path == "fifo" else path
    run = cli("requirements", "--constraints", name)
    assert run.elapsed < BOUND
    assert run.returncode == 64
    assert run.message.startswith(f"glance-features: error: constraints file {name}: ")


def test_a_caller_waits_for_a_probe_in_flight_only_until_its_own_deadline() -> None:
    code = f"""
import threading, time
import glance_features
from glance_features import registry
from glance_features.model import FeatureResult, Status

class Slow:
    name, summary = "slow", "takes {HUNG} s"
    def probe(self, context):
        time.sleep({HUNG})
        return FeatureResult("slow", Status.AVAILABLE, "done")

registry.register(Slow())
first = threading.Thread(target=glance_features.probe, kwargs=dict(features=["slow"],
                         timeout={HUNG * 2}), daemon=True)
first.start()
time.sleep(0.5)
start = time.monotonic()
report = glance_features.probe(features=["slow"], timeout=1)
print(round(time.monotonic() - start), report["slow"].status.value, report["slow"].reason)
"""
    run = snippet(code)
    assert run.returncode == 0, run.stderr
    waited, status, reason = run.stdout.split(" ", 2)
    assert int(waited) < BOUND and status == "unknown"
    assert "waiting for a probe in flight" in reason


DNS_DROP = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    s.recvfrom(4096)  # every query goes unanswered
"""


def test_a_dns_lookup_for_the_debug_host_does_not_outlive_the_deadline(tmp_path: Path) -> None:
    # A network namespace whose only name server swallows every query.
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n")
    drop = tmp_path / "drop.py"
    drop.write_text(DNS_DROP)
    setup = (
        "ip link set lo up\n"
        f"mount --bind {resolv} /etc/resolv.conf\n"
        f"{sys.executable} -I {drop} &\n"
        "sleep 0.5\n"
    )
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\npydev_worker_debug_host = debugger.example.org\n")
    run = cli(
        "--config-file",
        str(conf),
        "--feature",
        "pydev",
        "--timeout",
        "4",
        "--format",
        "json",
        prefix=in_namespaces(setup, after="kill $!", net=True),
    )
    assert run.elapsed < BOUND, run
    assert run.returncode == 2, run.stderr
    result = json.loads(run.stdout)["features"]["pydev"]
    need("debugger module" not in result["reason"], "needs pydevd installed (test requirements)")
    assert result["status"] == "unavailable"
    assert "did not finish within" in result["reason"]


def test_deadlines_hold_in_an_eventlet_patched_process(tmp_path: Path) -> None:
    # Found, not imported: eventlet in this process warns on every fork after.
    need(importlib.util.find_spec("eventlet") is not None, "needs eventlet")
    bin_dir = tmp_path / "bin"
    script(
        bin_dir / "qemu-img",
        f'case "$1" in --version) echo "qemu-img version 8.2.2";; *) sleep {HUNG};; esac\n',
    )
    code = f"""
import eventlet
eventlet.monkey_patch()
import os, time
import glance_features
os.environ["PATH"] = {str(bin_dir)!r}
start = time.monotonic()
report = glance_features.probe(features=["qemu-img", "sendfile"], deep=True, timeout=3)
print(round(time.monotonic() - start), report["qemu-img"].status.value,
      report["sendfile"].status.value, report["qemu-img"].reason)
"""
    run = snippet(code, env=clean_env())
    assert run.returncode == 0, run.stderr
    waited, qemu, sendfile, reason = run.stdout.split(" ", 3)
    assert int(waited) < BOUND
    assert qemu == "unknown" and "did not finish" in reason
    assert sendfile in ("available", "degraded", "unavailable", "unknown")  # and on time
    assert subprocess.run(["pgrep", "-f", str(bin_dir)], capture_output=True).stdout == b""


def test_a_child_that_never_reads_its_input_is_ended_on_time_when_patched() -> None:
    """eventlet's os.write waits for the pipe with no deadline and retries
    EAGAIN forever: a child that never reads a request larger than the pipe
    must still be ended at the deadline, from a real thread of a patched
    process (as the probe's detectors run inside an eventlet Glance)."""
    # Found, not imported: eventlet in this process warns on every fork after.
    need(importlib.util.find_spec("eventlet") is not None, "needs eventlet")
    code = """
import eventlet
eventlet.monkey_patch()
import time
from glance_features._platform import green, proc
found = []
def run():
    start = time.monotonic()
    outcome = proc.run(["/bin/sleep", "60"], 1.0, stdin=b"x" * 300_000)
    found.append((round(time.monotonic() - start), outcome.timed_out))
worker = green.original("threading").Thread(target=run, daemon=True)
worker.start()
worker.join(20)
print(found)
"""
    run = snippet(code, env=clean_env())
    assert run.returncode == 0, run.stderr
    waited, timed_out = ast.literal_eval(run.stdout.strip())[0]
    assert waited < BOUND
    assert timed_out is True


def test_a_subprocess_check_works_in_an_eventlet_patched_process() -> None:
    # Found, not imported: eventlet in this process warns on every fork after.
    need(importlib.util.find_spec("eventlet") is not None, "needs eventlet")
    need(os.path.exists("/usr/bin/qemu-img"), "needs qemu-img (bindep)")
    code = """
import eventlet
eventlet.monkey_patch()
import glance_features
report = glance_features.probe(features=["qemu-img"], deep=True, timeout=20)
print(report["qemu-img"].status.value, report["qemu-img"].reason)
"""
    run = snippet(code, env=clean_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] in ("available", "degraded"), run.stdout


def test_a_constraints_include_chain_is_bounded(tmp_path: Path) -> None:
    for i in range(1, 3001):
        (tmp_path / f"c{i}.txt").write_text(f"-c c{i + 1}.txt\n")
    (tmp_path / "c3001.txt").write_text("xattr==1\n")
    run = cli("requirements", "--constraints", str(tmp_path / "c1.txt"))
    assert run.returncode == 64, run
    assert run.message.endswith("includes nested deeper than 32")
