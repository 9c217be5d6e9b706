"""Issue 12, class 2: children. Whatever the probe starts ends with it: on its
deadline, on SIGTERM/SIGINT/SIGHUP of the command line, and when a grandchild
leaves the process group with setsid; temporary directories go with them; no
Python child imports from the working directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safety_support import (
    BOUND,
    DEEP_QEMU_IMG_AS_ROOT,
    HUNG,
    clean_env,
    cli,
    fd_count,
    processes_mentioning,
    python,
    script,
    snippet,
    wait_for,
    wait_gone,
)

VERSION = 'echo "qemu-img version 8.2.2"'


def hung_qemu_img(bin_dir: Path, started: Path, body: str = f"sleep {HUNG}") -> Path:
    """A qemu-img whose --version answers and whose real work hangs."""
    return script(
        bin_dir / "qemu-img",
        f'case "$1" in --version) {VERSION};; *) touch {started}; {body};; esac\n',
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_ends_the_command_line_its_children_and_their_temporary_directory(
    tmp_path: Path, signum: int
) -> None:
    bin_dir, scratch, started = tmp_path / "bin", tmp_path / "tmp", tmp_path / "started"
    scratch.mkdir()
    hung_qemu_img(bin_dir, started)
    argv = [*python(), "-c", "from glance_features.cli.main import run; run()"]
    start = time.monotonic()
    proc = subprocess.Popen(
        [*argv, *DEEP_QEMU_IMG_AS_ROOT, "--timeout", str(HUNG)],
        env=clean_env(PATH=f"{bin_dir}:/usr/bin:/bin", TMPDIR=str(scratch)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(started)
        assert list(scratch.iterdir()), "the deep check made no temporary directory"
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - start < BOUND  # not the HUNG seconds of the child
    assert proc.returncode == 128 + signum, err
    assert b"Traceback" not in err
    assert wait_gone(str(bin_dir)) == []
    assert list(scratch.iterdir()) == []  # the mkdtemp directory went too


def test_a_grandchild_that_calls_setsid_is_killed_at_the_deadline(tmp_path: Path) -> None:
    bin_dir, started = tmp_path / "bin", tmp_path / "started"
    # The grandchild leaves the process group and keeps the output pipe open.
    hung_qemu_img(bin_dir, started, f"setsid sleep {HUNG + 1} & sleep {HUNG}")
    run = cli(
        *DEEP_QEMU_IMG_AS_ROOT,
        "--timeout",
        "3",
        "--format",
        "json",
        env=clean_env(PATH=f"{bin_dir}:/usr/bin:/bin"),
    )
    assert run.elapsed < BOUND, run
    assert run.returncode in (0, 1, 2), run.stderr
    result = json.loads(run.stdout)["features"]["qemu-img"]
    assert result["status"] == "unknown" and "did not finish" in result["reason"]
    assert wait_gone(str(bin_dir)) == []
    assert wait_gone(f"sleep {HUNG + 1}") == []


def test_run_leaves_no_process_thread_or_descriptor(tmp_path: Path) -> None:
    hung = script(tmp_path / "hung", f"setsid sleep {HUNG + 2} & echo started; sleep {HUNG}\n")
    code = f"""
import os, sys, threading, time
from glance_features._platform import proc
before_fds, before_threads = len(os.listdir("/proc/self/fd")), threading.active_count()
start = time.monotonic()
outcome = proc.run([{str(hung)!r}], 2.0)
elapsed = time.monotonic() - start
time.sleep(0.5)  # the timer and reader threads end as run() returns
print(outcome.timed_out, outcome.text.strip(), elapsed < {BOUND},
      len(os.listdir("/proc/self/fd")) - before_fds, threading.active_count() - before_threads)
"""
    run = snippet(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "started", "True", "0", "0"]
    assert wait_gone(str(hung)) == []
    assert wait_gone(f"sleep {HUNG + 2}") == []


def test_run_refuses_a_relative_program() -> None:
    run = snippet(
        "from glance_features._platform import proc\n"
        "try:\n    proc.run(['qemu-img', '--version'], 5)\n"
        "except ValueError as exc:\n    print(exc)\n"
    )
    assert "not an absolute path" in run.stdout, run.stderr


def test_no_python_child_imports_from_the_working_directory(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    marker = tmp_path / "pwned"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for module in ("json", "socket", "xattr", "subprocess", "eventlet", "dns", "oslo_concurrency"):
        (work / module).mkdir(parents=True)
        (work / module / "__init__.py").write_text(payload)
        (work / module / "prlimit.py").write_text(payload)
    (work / "sitecustomize.py").write_text(payload)
    conf = tmp_path / "glance-api.conf"
    # Glance runs qemu-img info through `python -m oslo_concurrency.prlimit`.
    conf.write_text(
        f"[wsgi]\npython_interpreter = {sys.executable}\n"
        f"[DEFAULT]\nimage_cache_dir = {tmp_path / 'cache'}\n"
    )
    env = clean_env(PYTHONPATH=str(work), PYTHONSTARTUP=str(work / "json" / "__init__.py"))
    # The command line itself is started isolated, as its console script is;
    # every child it starts must be too, whatever the cwd and environment.
    run = cli("--deep", "--config-file", str(conf), "--format", "json", cwd=work, env=env)
    assert run.returncode in (0, 1, 2), run.stderr
    assert not marker.exists(), marker.read_text()


def test_signal_handler_leaves_no_descriptor(tmp_path: Path) -> None:
    # kill_all with nothing running is harmless and repeatable.
    run = snippet(
        "import os\nfrom glance_features._platform import proc\n"
        "n = len(os.listdir('/proc/self/fd'))\nproc.kill_all(); proc.kill_all()\n"
        "print(len(os.listdir('/proc/self/fd')) - n)\n"
    )
    assert run.stdout.strip() == "0", run.stderr
    assert fd_count() > 0
    assert processes_mentioning(str(tmp_path)) == []


def test_a_python_child_ignores_its_working_directory_and_environment(tmp_path: Path) -> None:
    # What the --deep checkers get: proc.python_argv, even with a hostile cwd.
    work = tmp_path / "cwd"
    work.mkdir()
    marker = tmp_path / "pwned"
    (work / "json.py").write_text(f"open({str(marker)!r}, 'a').write('json')\n")
    code = f"""
import sys
from glance_features._platform import proc
argv = proc.python_argv(sys.executable, "-c", "import json; print('ok')")
outcome = proc.run(argv, 20, cwd={str(work)!r}, env={{"PYTHONPATH": {str(work)!r}}})
print(outcome.text.strip())
"""
    run = snippet(code)
    assert run.stdout.strip() == "ok", run.stderr
    assert not marker.exists()


def test_a_probe_leaves_no_thread_or_descriptor() -> None:
    code = """
import os, threading, time
import glance_features
fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
for deep in (False, True):
    glance_features.probe(deep=deep, timeout=30, refresh=True)
time.sleep(1.0)  # reader threads end as their child's pipes close
print(len(os.listdir("/proc/self/fd")) - fds, threading.active_count() - threads)
"""
    run = snippet(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "0"]
