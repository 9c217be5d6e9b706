"""What the test_safety_* modules share: running the command line in its own
interpreter (optionally inside namespaces or as another user), and proving
that nothing was left behind.

Every case runs in a fresh interpreter, so one attack cannot leave state (a
patched module, a cached report, a stray thread) that makes the next pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from conftest import SOURCE_ROOT, need

# Bounds, not timings: each is far below what the attack would take if it worked.
HUNG = 60  # seconds a hung child, plugin or reader would take
BOUND = 30.0  # a case that held finishes well before HUNG


@dataclasses.dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def message(self) -> str:
        """The one line the command line printed on stderr."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one line on stderr, got: {self.stderr!r}"
        return lines[0]


def python() -> list[str]:
    """This interpreter, isolated from the cwd and the environment, seeing the
    package under test (installed editable in the test venv)."""
    return [sys.executable, "-I"]


def cli(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    timeout: float = HUNG * 2,
    stdin: int | None = subprocess.DEVNULL,
) -> Run:
    """Run the console script's entry point in a fresh interpreter."""
    argv = [*prefix, *python(), "-c", "from glance_features.cli.main import run; run()", *args]
    start = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        stdin=stdin,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "backslashreplace"),
        proc.stderr.decode("utf-8", "backslashreplace"),
        time.monotonic() - start,
    )


def snippet(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = HUNG * 2,
) -> Run:
    """Run Python ``code`` in a fresh isolated interpreter."""
    start = time.monotonic()
    proc = subprocess.run(
        [*prefix, *python(), "-c", code, *args],
        capture_output=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "backslashreplace"),
        proc.stderr.decode("utf-8", "backslashreplace"),
        time.monotonic() - start,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """A cron-like environment: a system PATH, no HOME, C.UTF-8."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent",
    }
    env.update(extra)
    return env


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of live processes whose argv mentions ``marker``."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "pid"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        if marker in cmdline and process.pid != os.getpid():
            found.append(f"{process.pid}: {cmdline}")
    return found


def wait_gone(marker: str, within: float = 5.0) -> list[str]:
    """Processes mentioning ``marker`` still alive after ``within`` seconds (a
    SIGKILLed process may take a moment to be reaped by its parent)."""
    deadline = time.monotonic() + within
    while True:
        left = processes_mentioning(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def wait_for(path: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def script(path: Path, body: str) -> Path:
    """An executable shell script at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def tree(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``directory``: (mode, size, mtime_ns), to prove nothing
    changed (the directory's own timestamps excepted)."""
    return {
        str(p.relative_to(directory)): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def need_root() -> None:
    need(os.geteuid() == 0, "needs root (namespaces, other users, devices)")


def need_tool(name: str) -> str:
    found = shutil.which(name)
    need(found is not None, f"needs {name}")
    assert found is not None
    return found


def other_user() -> str:
    """An unprivileged account to plant files as (the glance account)."""
    import pwd

    need_root()
    try:
        pwd.getpwnam("glance")
    except KeyError:
        need(False, "needs the glance system account (tests/run.sh adds it)")
    return "glance"


def as_user(user: str) -> list[str]:
    """A prefix running a command as ``user`` with no capabilities left."""
    import pwd

    entry = pwd.getpwnam(user)
    return [
        need_tool("setpriv"),
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]


def in_namespaces(
    setup: str, *, after: str = "", net: bool = False, uts: bool = False
) -> list[str]:
    """A prefix running ``setup`` (sh) in private mount (and network, UTS)
    namespaces, then the command, then ``after`` (whose output should go to a
    file); the exit status is the command's. Nothing outside is touched."""
    need_root()
    need_tool("unshare")
    flags = ["-m", "--propagation", "private"]
    if net:
        flags.append("-n")
    if uts:
        flags.append("-u")
    body = f'set -e\n{setup}\nset +e\n"$@"\nrc=$?\n{after}\nexit $rc\n'
    return ["unshare", *flags, "sh", "-c", body, "sh"]


def private_dev() -> str:
    """Shell lines giving the namespace a private /dev tmpfs with a null device,
    so a device case never touches the real /dev."""
    return (
        "mount -t tmpfs -o mode=0755,size=1m tmpfs /dev\n"
        "mknod -m 0666 /dev/null c 1 3\n"
        "mknod -m 0666 /dev/zero c 1 5\n"
        "ln -s /proc/self/fd /dev/fd\n"
    )


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def source_on_path() -> dict[str, str]:
    """PYTHONPATH for a non-isolated child that must import this checkout."""
    return {"PYTHONPATH": SOURCE_ROOT}


def lines_of(text: str) -> Iterator[str]:
    yield from text.splitlines()


@contextlib.contextmanager
def world_traversable_dir(base: str = "/tmp") -> Iterator[Path]:
    """A fresh directory other users can reach (pytest's tmp_path is private
    to root), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="gf-safety-", dir=base))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def plugin_site(site: Path, module: str, source: str, names: Sequence[str]) -> Path:
    """An installed distribution ``evil-plugins`` whose entry points name
    ``module:Class`` for each name (the class is the name, title-cased)."""
    info = site / "evil_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-plugins\nVersion: 1.0\n\n")
    lines = "".join(f"{name} = {module}:{entry_class(name)}\n" for name in names)
    (info / "entry_points.txt").write_text(f"[glance_features.detectors]\n{lines}")
    (site / f"{module}.py").write_text(source)
    return site


def entry_class(name: str) -> str:
    return "".join(part.title() for part in name.split("-"))


def cli_with_site(site: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """The command line in an isolated interpreter that also sees ``site``
    (as if the plugins were pip-installed beside glance-features)."""
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "from glance_features.cli.main import run; run()\n"
    )
    return snippet(code, *args, env=env)


# Command lines that more than one test_safety_* module runs, spelled once.
DEEP_QEMU_IMG_AS_ROOT = ("--feature", "qemu-img", "--deep", "--user", "root")


def xattr_json_as_root(conf: Path) -> list[str]:
    """Arguments for the xattr check alone, as root, configured by ``conf``,
    reported as JSON."""
    return ["--config-file", str(conf), "--feature", "xattr", "--user", "root", "--format", "json"]


def fsync_held(seconds: int) -> list[str]:
    """A prefix (strace) holding every fsync of the command and its children
    for ``seconds``: time for a deadline or a signal to land inside it."""
    strace = need_tool("strace")
    return [
        strace,
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=fsync",
        "-e",
        f"inject=fsync:delay_enter={seconds * 1_000_000}",
    ]
