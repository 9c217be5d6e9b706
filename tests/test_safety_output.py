"""Issue 12, class 9 (and the severe ``--output /dev/null``): output files.
Only a regular file of ours is ever replaced; devices, FIFOs, directories,
symbolic links and other users' planted files are refused with one line and
exit 64; the temporary file is unpredictable, created exclusively, nameless
while it is written where the kernel allows, and gone after any failure,
signal or SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from safety_support import (
    BOUND,
    as_user,
    clean_env,
    cli,
    fsync_held,
    in_namespaces,
    need_root,
    other_user,
    private_dev,
    python,
    tree,
    world_traversable_dir,
)

ARGS = ("--feature", "sendfile", "--format", "json")
STALL = 5  # seconds the fsync is held: time to deliver a signal inside it
OLD = '{"old": "report"}\n'


def old_output(directory: Path) -> Path:
    target = directory / "out.json"
    target.write_text(OLD)
    return target


def only_the_output_left(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_output_to_a_device_as_root_refuses_and_leaves_the_device(
    tmp_path: Path, device: str
) -> None:
    need_root()
    seen = tmp_path / "after"
    run = cli(
        *ARGS,
        "--output",
        device,
        prefix=in_namespaces(private_dev(), after=f"stat -c %F {device} > {seen}"),
    )
    assert run.returncode == 64, run
    assert (
        run.message
        == f"glance-features: error: refusing to replace {device}: it is not a regular file"
    )
    assert seen.read_text().strip() == "character special file"


def test_output_to_a_fifo_refuses_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A reader blocked in open() would be released by any writer's open.
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.DEVNULL)
    try:
        run = cli(*ARGS, "--output", str(fifo))
        time.sleep(0.5)
        assert reader.poll() is None  # still waiting: the FIFO was never opened
    finally:
        reader.kill()
        reader.wait()
    assert run.returncode == 64 and "not a regular file" in run.message
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert only_the_output_left(tmp_path) == ["fifo"]


def test_output_to_a_directory_refuses(tmp_path: Path) -> None:
    (tmp_path / "out.json").mkdir()
    run = cli(*ARGS, "--output", str(tmp_path / "out.json"))
    assert run.returncode == 64 and "not a regular file" in run.message
    assert only_the_output_left(tmp_path) == ["out.json"]


@pytest.fixture
def public() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is root's alone)."""
    with world_traversable_dir() as path:
        yield path


def sticky_shared_dir(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


def precious_file(directory: Path) -> Path:
    """A file of root's that a planted link would have the output overwrite."""
    victim = directory / "victim"
    victim.write_text("precious")
    return victim


def test_a_symlink_planted_by_another_user_is_not_followed_or_replaced(public: Path) -> None:
    user = other_user()
    shared = sticky_shared_dir(public)
    victim = precious_file(public)
    before = tree(public)
    subprocess.run([*as_user(user), "ln", "-s", str(victim), str(shared / "out.json")], check=True)
    planted = tree(public)
    run = cli(*ARGS, "--output", str(shared / "out.json"))
    assert run.returncode == 64
    assert run.message.endswith("it is a symbolic link")
    assert victim.read_text() == "precious"
    assert tree(public) == planted and before["victim"] == planted["victim"]


def test_a_file_planted_by_another_user_in_a_shared_directory_is_not_replaced(
    public: Path,
) -> None:
    user = other_user()
    shared = sticky_shared_dir(public)
    subprocess.run([*as_user(user), "sh", "-c", f"echo theirs > {shared / 'out.json'}"], check=True)
    planted = tree(public)
    run = cli(*ARGS, "--output", str(shared / "out.json"))
    assert run.returncode == 64
    assert "belongs to another user" in run.message
    assert tree(public) == planted


def test_predictable_temporary_names_planted_by_another_user_change_nothing(
    public: Path,
) -> None:
    user = other_user()
    shared = sticky_shared_dir(public)
    victim = precious_file(public)
    target = old_output(shared)
    # The names the old writer used (.NAME.PID.tmp) for the pids to come.
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    plant = "; ".join(
        f"ln -s {victim} {shared}/.out.json.{pid}.tmp" for pid in range(last, last + 300)
    )
    subprocess.run([*as_user(user), "sh", "-c", plant], check=True)
    run = cli(*ARGS, "--output", str(target))
    assert run.returncode == 0, run.stderr
    assert target.read_text().startswith("{") and target.read_text() != OLD
    assert victim.read_text() == "precious"
    assert len(list(shared.iterdir())) == 301  # the planted links and the output


def test_replacing_our_own_file_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = old_output(tmp_path)
    run = cli(*ARGS, "--output", str(target))
    assert run.returncode == 0, run.stderr
    assert only_the_output_left(tmp_path) == ["out.json"]
    assert target.read_text() != OLD


def test_a_full_file_system_keeps_the_old_output(tmp_path: Path) -> None:
    need_root()
    full, seen = tmp_path / "full", tmp_path / "after"
    full.mkdir()
    setup = (
        f"mount -t tmpfs -o size=64k tmpfs {full}\n"
        f"printf '%s\\n' '{OLD.strip()}' > {full}/out.json\n"
        f"dd if=/dev/zero of={full}/filler bs=4k count=64 2>/dev/null || true\n"
    )
    after = f"ls -A {full} > {seen}; cat {full}/out.json >> {seen}"
    run = cli(*ARGS, "--output", str(full / "out.json"), prefix=in_namespaces(setup, after=after))
    assert run.returncode == 64, run
    assert "No space left on device" in run.message
    assert seen.read_text().splitlines() == ["filler", "out.json", OLD.strip()]


def test_a_read_only_directory_keeps_the_old_output(tmp_path: Path) -> None:
    need_root()
    ro, seen = tmp_path / "ro", tmp_path / "after"
    ro.mkdir()
    old_output(ro)
    run = cli(
        *ARGS,
        "--output",
        str(ro / "out.json"),
        prefix=in_namespaces(f"mount --bind -o ro {ro} {ro}", after=f"ls -A {ro} > {seen}"),
    )
    assert run.returncode == 64 and "Read-only file system" in run.message, run
    assert seen.read_text().split() == ["out.json"]
    assert (ro / "out.json").read_text() == OLD


def fsync_stalled(target: Path) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    """The command line writing ``target``, held inside its fsync for STALL s."""
    tracer = subprocess.Popen(
        [
            *fsync_held(STALL),
            *python(),
            "-c",
            "from glance_features.cli.main import run; run()",
            *ARGS,
            "--output",
            str(target),
        ],
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + BOUND
    while True:
        assert time.monotonic() < deadline, "the command line never opened the output directory"
        children = psutil.Process(tracer.pid).children()
        if children:
            try:
                links = [
                    os.readlink(f"/proc/{children[0].pid}/fd/{fd}")
                    for fd in os.listdir(f"/proc/{children[0].pid}/fd")
                ]
            except OSError:
                links = []
            if str(target.parent) in links:
                time.sleep(1.0)  # now inside the stalled fsync
                return tracer, children[0]
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_while_writing_leaves_the_old_output_and_no_temporary_file(
    tmp_path: Path, signum: int
) -> None:
    need_root()  # strace of a child
    out = tmp_path / "out"
    out.mkdir()
    target = old_output(out)
    tracer, cli_process = fsync_stalled(target)
    try:
        cli_process.send_signal(signum)
        tracer.communicate(timeout=BOUND + STALL)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    assert only_the_output_left(out) == ["out.json"]
    assert target.read_text() == OLD
    shutil.rmtree(out)


def test_a_closed_stdout_is_one_line_and_exit_64(tmp_path: Path) -> None:
    run = cli(*ARGS, prefix=["sh", "-c", 'exec "$@" >&-', "sh"])
    assert run.returncode == 64
    assert run.message == "glance-features: error: standard output is closed: use --output FILE"


def test_closed_standard_streams_never_receive_a_file(tmp_path: Path) -> None:
    # With 1 and 2 closed, the output file (or its directory) would get fd 1
    # or 2, and a stray write to "stderr" would land in the report.
    target = tmp_path / "out.json"
    run = cli(*ARGS, "--output", str(target), prefix=["sh", "-c", 'exec "$@" >&- 2>&-', "sh"])
    assert run.returncode == 0
    assert json.loads(target.read_text())["features"]["sendfile"]["status"] == "available"
    assert only_the_output_left(tmp_path) == ["out.json"]


@pytest.mark.parametrize("name", ["", "sub/", ".", ".."])
def test_an_output_name_that_is_a_directory_is_one_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    run = cli(*ARGS, "--output", name, cwd=tmp_path)
    assert run.returncode == 64
    assert run.message == (
        f"glance-features: error: refusing to write {name!r}: it names a directory, not a file"
    )
    assert only_the_output_left(tmp_path) == ["sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_an_output_directory_linked_by_another_user_is_not_written(public: Path) -> None:
    # /tmp/reports -> /etc/cron.d, planted before root's cron job first runs.
    user = other_user()
    shared = sticky_shared_dir(public)
    victim = public / "victim-dir"
    victim.mkdir()
    subprocess.run([*as_user(user), "ln", "-s", str(victim), str(shared / "reports")], check=True)
    run = cli(*ARGS, "--output", str(shared / "reports" / "out.json"))
    assert run.returncode == 64, run
    assert run.message == (
        f"glance-features: error: output directory {shared}/reports: refusing to follow "
        "a symbolic link another user made in a shared directory"
    )
    assert list(victim.iterdir()) == []


def test_an_output_directory_linked_by_root_is_written(public: Path) -> None:
    shared = sticky_shared_dir(public)
    real = public / "real"
    real.mkdir()
    (shared / "reports").symlink_to(real)
    run = cli(*ARGS, "--output", str(shared / "reports" / "out.json"))
    assert run.returncode == 0, run.stderr
    assert only_the_output_left(real) == ["out.json"]
