"""Issue 12, class 8: small wrong verdicts. A failed set-up or a deadline is
``unknown``, never a feature fault; loopback in any spelling is not a remote
debugger; a bad ``--timeout`` is exit 64; a bad file among many summarized
reports is one warning, never exit 255."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from safety_support import BOUND, cli, in_namespaces, snippet


def test_a_full_tmpdir_makes_sendfile_unknown_not_degraded(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    setup = f"mount -t tmpfs -o size=16k tmpfs {full}\n"
    run = cli(
        "--feature",
        "sendfile",
        "--format",
        "json",
        prefix=[*in_namespaces(setup), "env", f"TMPDIR={full}"],
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)["features"]["sendfile"]
    assert result["status"] == "unknown"
    assert "No space left on device" in result["reason"]


def test_a_spent_deadline_makes_sendfile_unknown_not_degraded() -> None:
    code = """
import time
from glance_features.detector import ProbeContext
from glance_features.detectors.sendfile import SendfileDetector
from glance_features.settings import Settings
for _ in range(5):
    r = SendfileDetector().probe(ProbeContext(Settings(), False, time.monotonic()))
    print(r.status.value)
"""
    run = snippet(code, timeout=BOUND)
    assert run.returncode == 0, run.stderr
    assert "degraded" not in run.stdout.split(), run.stdout


def debugger_at(host: str, setup: str = "") -> dict[str, object]:
    """The pydev verdict for a debug server listening on every address of a
    private network namespace (nothing off this machine is ever contacted)."""
    code = f"""
import json, socket, subprocess, sys, threading
family = socket.AF_INET
server = socket.socket(family)
server.bind(("0.0.0.0", 0))
server.listen()
port = server.getsockname()[1]
def greet():  # a pydev debug server speaks first: CMD_VERSION, CMD_RUN
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"501\\t1\\t1.1\\tLINUX\\tID\\n101\\t3\\t\\n")
threading.Thread(target=greet, daemon=True).start()
conf = "/tmp/glance-features-pydev-%d.conf" % port
open(conf, "w").write("[DEFAULT]\\npydev_worker_debug_host = {host}\\n"
                      "pydev_worker_debug_port = %d\\n" % port)
out = subprocess.run([sys.executable, "-I", "-c",
                      "from glance_features.cli.main import run; run()",
                      "--config-file", conf, "--feature", "pydev", "--format", "json"],
                     capture_output=True, text=True, timeout=60)
import os; os.unlink(conf)
print(json.dumps(json.loads(out.stdout)["features"]["pydev"]))
"""
    run = snippet(code, prefix=in_namespaces("ip link set lo up\n" + setup, net=True))
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::ffff:127.0.0.1", "localhost"])
def test_loopback_in_any_spelling_gets_no_remote_debugger_warning(host: str) -> None:
    result = debugger_at(host)
    if "no pydev debugger module" in str(result["reason"]):
        pytest.skip("needs pydevd (test requirements)")
    assert result["status"] == "available", result


def test_a_debugger_on_another_address_gets_the_warning() -> None:
    # TEST-NET-1 on the namespace's own lo: reachable, and not loopback.
    result = debugger_at("192.0.2.1", "ip addr add 192.0.2.1/32 dev lo\n")
    if "no pydev debugger module" in str(result["reason"]):
        pytest.skip("needs pydevd (test requirements)")
    assert result["status"] == "degraded", result
    assert "not on this host" in str(result["reason"])


@pytest.mark.parametrize("value", ["1e10", "nan", "inf", "-1", "0", "abc", "", "3601"])
def test_a_bad_timeout_is_exit_64_with_one_line(value: str) -> None:
    run = cli("--timeout", value)
    assert run.returncode == 64, run
    assert run.message.startswith("glance-features: error: argument --timeout: ")


def test_summarize_warns_once_per_bad_file_and_reads_the_rest(tmp_path: Path) -> None:
    good = cli("--feature", "sendfile", "--format", "json")
    assert good.returncode == 0, good.stderr
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "good.json").write_text(good.stdout)
    (reports / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    (reports / "deep.json").write_text('{"a":' * 900 + "1" + "}" * 900)
    (reports / "loop").symlink_to(reports / "loop")
    (reports / "a").symlink_to(reports / "b")
    (reports / "b").symlink_to(reports / "a")
    (reports / "dangling").symlink_to(tmp_path / "nowhere")
    (reports / "subdir").mkdir()
    (reports / "binary.json").write_bytes(b"\xff\xfe\x00")
    run = cli("summarize", str(reports), "--format", "json")
    assert run.returncode == 0, run.stderr
    warnings = run.stderr.splitlines()
    assert len(warnings) == 7, warnings
    assert all(w.startswith("glance-features: warning: ") for w in warnings)
    for name in ("nested.json", "deep.json", "loop", "a", "b", "dangling", "binary.json"):
        assert sum(f"/{name}: " in w for w in warnings) == 1, (name, warnings)
    assert len(json.loads(run.stdout)["hosts"]) == 1


def test_summarize_a_link_loop_given_by_name_is_one_warning(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    run = cli("summarize", str(loop))
    assert run.returncode == 0
    assert run.message == f"glance-features: warning: {loop}: Too many levels of symbolic links"


def test_loopback_classification() -> None:
    from glance_features.detectors.pydev import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::"]))
    assert not any(map(is_loopback, ["192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "x"]))
    assert socket.AF_INET and sys.platform  # imports used by the namespace cases
