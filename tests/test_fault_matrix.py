"""Every detector under every fault it can meet, with the same assertions.

Each case runs in a fresh interpreter (so privileges, mounts and namespaces
can differ per case) that counts its file descriptors and threads, probes
one feature under a short deadline, waits for stray threads, and counts
again. The same environment is then given to the command line, which must
print no traceback. Watched directories must be unchanged afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    as_root_in_mount_namespace,
    can_unshare_mounts,
    listing,
    need,
    validate,
    without_dac_override,
)

DEADLINE = 1.5
MARGIN = 2.0  # scheduling slack on a loaded 2-CPU machine, not a benchmark

MATRIX = textwrap.dedent("""
    import json, os, sys, threading, time
    fds = lambda: len(os.listdir("/proc/self/fd"))
    settings_kwargs = json.loads(sys.argv[2])
    exec(sys.argv[3])  # fault injection that cannot be done from outside
    import glance_features
    glance_features.probe(features=["sendfile"])  # warm: imports and lazy state
    threads_before, fds_before = threading.active_count(), fds()
    start = time.monotonic()
    report = glance_features.probe(glance_features.Settings(**settings_kwargs),
                                   features=[sys.argv[1]], timeout=float(sys.argv[4]),
                                   refresh=True)
    elapsed = time.monotonic() - start
    for _ in range(60):  # detectors past their deadline finish killing children
        if threading.active_count() <= threads_before:
            break
        time.sleep(0.05)
    print(json.dumps({"report": report.to_dict(), "elapsed": elapsed,
                      "threads": [threads_before, threading.active_count()],
                      "fds": [fds_before, fds()]}))
    sys.stdout.flush()
    os._exit(0)
""")


@dataclass
class Fault:
    feature: str
    status: str
    reason: str  # a substring the reason must contain
    settings: dict[str, Any] = field(default_factory=dict)
    inject: str = ""
    env: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)
    watch: Path | None = None
    leaves_thread: bool = False


def fake_qemu(tmp: Path, body: str, mode: int = 0o755) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "qemu-img"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(mode)
    return {"PATH": str(bin_dir)}


def plugin(tmp: Path, module_body: str, *, name: str = "faulty") -> dict[str, str]:
    site = tmp / "site"
    info = site / "faulty_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-plugin\nVersion: 1.0\n\n")
    (info / "entry_points.txt").write_text(
        f"[glance_features.detectors]\n{name} = faulty:Detector\n"
    )
    (site / "faulty.py").write_text(textwrap.dedent(module_body))
    return {"PYTHONPATH": str(site)}


DETECTOR = """
    from glance_features.detector import result
    from glance_features.model import Status
    class Detector:
        name, summary = "faulty", "a plugin under test"
        def __init__(self):
            {init}
        def probe(self, context):
            {probe}
            return result(self.name, Status.AVAILABLE, "fine")
"""


def mount_prefix(script: str) -> list[str]:
    need(can_unshare_mounts(), "needs unshare (util-linux) and root or user namespaces")
    return as_root_in_mount_namespace(script)


def hanging_listener() -> str:
    """Injection: a listener whose accept queue is full, so connect() hangs."""
    return textwrap.dedent("""
        import socket
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(0)
        fillers = []
        for _ in range(8):
            s = socket.socket(); s.setblocking(False)
            try: s.connect(server.getsockname())
            except BlockingIOError: pass
            fillers.append(s)
        settings_kwargs["pydev_worker_debug_port"] = server.getsockname()[1]
    """)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CASES: dict[str, Callable[[Path], Fault]] = {
    "qemu-img missing": lambda t: Fault(
        "qemu-img", "unavailable", "not found on PATH", env={"PATH": str(t)}
    ),
    "qemu-img not executable": lambda t: Fault(
        # Not executable is not a qemu-img a PATH lookup finds.
        "qemu-img",
        "unavailable",
        "not found on PATH",
        env=fake_qemu(t, "echo hi", 0o644),
    ),
    "qemu-img hangs": lambda t: Fault(
        "qemu-img", "unknown", "did not finish within", env=fake_qemu(t, "exec sleep 1000")
    ),
    "qemu-img forks a hanging child": lambda t: Fault(
        "qemu-img", "unknown", "did not finish within", env=fake_qemu(t, "sleep 1000 & wait")
    ),
    "qemu-img crashes": lambda t: Fault(
        "qemu-img", "unavailable", "killed by SIGSEGV", env=fake_qemu(t, "kill -SEGV $$")
    ),
    "qemu-img exits non-zero": lambda t: Fault(
        "qemu-img",
        "unavailable",
        "exited with status 3",
        env=fake_qemu(t, "echo broken >&2; exit 3"),
    ),
    "qemu-img prints garbage": lambda t: Fault(
        "qemu-img",
        "unavailable",
        "did not print a qemu-img version",
        env=fake_qemu(t, "head -c 5000 /dev/urandom"),
    ),
    "qemu-img prints 100 MB": lambda t: Fault(
        "qemu-img",
        "unavailable",
        "printed more than 1048576 bytes",
        env=fake_qemu(t, "head -c 100000000 /dev/zero"),
    ),
    "xattr directory missing": lambda t: Fault(
        "xattr",
        "available",
        "missing/cache there",  # Glance will create it there
        settings={"image_cache_dir": str(t / "missing" / "cache")},
        watch=t,
    ),
    "xattr directory unwritable": lambda t: Fault(
        "xattr",
        "unavailable",
        f"EACCES (Permission denied): {pwd.getpwuid(os.geteuid()).pw_name} cannot write there",
        settings={"image_cache_dir": str(t / "ro")},
        prefix=without_dac_override(),
        watch=t / "ro",
    ),
    "xattr read-only mount": lambda t: Fault(
        "xattr",
        "unavailable",
        "mounted read-only",
        settings={"image_cache_dir": str(t / "c")},
        prefix=mount_prefix(f"mount --bind {t}/c {t}/c; mount -o remount,bind,ro {t}/c"),
        watch=t / "c",
    ),
    "xattr file system full": lambda t: Fault(
        "xattr",
        "unavailable",
        "no space or quota left",
        settings={"image_cache_dir": str(t / "c")},
        prefix=mount_prefix(f"mount -t tmpfs -o size=4k,nr_inodes=2 tmpfs {t}/c; : > {t}/c/f"),
    ),
    "xattr no user xattrs (ramfs)": lambda t: Fault(
        "xattr",
        "unavailable",
        "does not support user xattrs",
        settings={"image_cache_dir": str(t / "c")},
        prefix=mount_prefix(f"mount -t ramfs ramfs {t}/c"),
    ),
    # The probe file is nameless (O_TMPFILE): a link planted at the name it
    # would have had is never touched, and the check works.
    "xattr symlink where the probe file goes": lambda t: Fault(
        "xattr",
        "available",
        "user xattrs work in",
        settings={"image_cache_dir": str(t / "c")},
        watch=t,
        # The probe file's name comes from os.urandom: make it predictable.
        inject="import os; os.urandom = lambda n: bytes(n)",
    ),
    "pydev host unresolvable": lambda t: Fault(
        "pydev",
        "unavailable",
        "cannot resolve debug host",
        settings={"pydev_worker_debug_host": "debugger.invalid"},
    ),
    "pydev port refused": lambda t: Fault(
        "pydev",
        "unavailable",
        "connection refused",
        settings={"pydev_worker_debug_host": "127.0.0.1", "pydev_worker_debug_port": closed_port()},
    ),
    "pydev connect never completes": lambda t: Fault(
        "pydev",
        "unavailable",
        "connection timed out",
        settings={"pydev_worker_debug_host": "127.0.0.1"},
        inject=hanging_listener(),
    ),
    "sendfile missing (Windows)": lambda t: Fault(
        "sendfile",
        "unavailable",
        "does not exist on this platform",
        inject="import os, sys; del os.sendfile; sys.platform = 'win32'",
    ),
    "sendfile fails": lambda t: Fault(
        "sendfile",
        "degraded",
        "EINVAL",
        inject=(
            "import os, errno\ndef broken(*a): raise OSError(errno.EINVAL, 'Invalid')\n"
            "os.sendfile = broken"
        ),
    ),
    "dnspython-ipv6 broken metadata": lambda t: Fault(
        "dnspython-ipv6", "available", "", env={"PYTHONPATH": str(broken_metadata(t))}
    ),
    "plugin beside a distribution with unreadable metadata": lambda t: Fault(
        "faulty",
        "available",
        "fine",
        env=with_broken_distribution(
            plugin(t, DETECTOR.format(init="pass", probe="pass")), t / "site"
        ),
    ),
    "plugin raises on import": lambda t: Fault(
        "faulty",
        "unknown",
        "failed to load: RuntimeError: import boom",
        env=plugin(t, "raise RuntimeError('import boom')\n"),
    ),
    "plugin hangs on import": lambda t: Fault(
        "faulty",
        "unknown",
        "timed out after",
        leaves_thread=True,
        env=plugin(t, "import time\ntime.sleep(3600)\n"),
    ),
    "plugin raises on construction": lambda t: Fault(
        "faulty",
        "unknown",
        "RuntimeError: init boom",
        env=plugin(t, DETECTOR.format(init="raise RuntimeError('init boom')", probe="pass")),
    ),
    "plugin raises on probe": lambda t: Fault(
        "faulty",
        "unknown",
        "probe failed: ValueError: probe boom",
        env=plugin(t, DETECTOR.format(init="pass", probe="raise ValueError('probe boom')")),
    ),
    "plugin never returns": lambda t: Fault(
        "faulty",
        "unknown",
        "timed out after",
        leaves_thread=True,
        env=plugin(t, DETECTOR.format(init="pass", probe="import time; time.sleep(3600)")),
    ),
}


def with_broken_distribution(env: dict[str, str], site: Path) -> dict[str, str]:
    """A dist-info whose METADATA and entry_points.txt are not text, beside the plugin."""
    info = site / "aaa_broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(b"\xff\xfe\x00garbage\nVersion\n")
    (info / "entry_points.txt").write_bytes(b"[glance_features.detectors]\n\xff = \xfe:x\n")
    return env


def broken_metadata(tmp: Path) -> Path:
    site = tmp / "site"
    for name in ("eventlet-0.33.2.dist-info", "dnspython-2.3.0.dist-info"):
        (site / name).mkdir(parents=True)
        (site / name / "METADATA").write_bytes(b"\xff\xfe\x00garbage\nVersion\n")
    return site


@pytest.mark.parametrize("case", list(CASES))
def test_fault(tmp_path: Path, case: str) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cached-image").write_text("keep me")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    if case == "xattr symlink where the probe file goes":
        (tmp_path / "c" / f".glance-features-probe-{bytes(8).hex()}").symlink_to(
            tmp_path / "target"
        )
    fault = CASES[case](tmp_path)
    before = listing(fault.watch) if fault.watch else None
    env = {**os.environ, **fault.env}
    if "PYTHONPATH" in fault.env:
        env["PYTHONPATH"] = fault.env["PYTHONPATH"] + os.pathsep + os.environ.get("PYTHONPATH", "")
    if "PATH" in fault.env:
        # The interpreter is found by its full path; PATH only hides qemu-img.
        env["PATH"] = fault.env["PATH"]
    proc = subprocess.run(
        [
            *fault.prefix,
            sys.executable,
            "-c",
            MATRIX,
            fault.feature,
            json.dumps(fault.settings),
            fault.inject,
            str(DEADLINE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr  # no exception escaped
    out = json.loads(proc.stdout)
    validate(out["report"])
    result = out["report"]["features"][fault.feature]
    assert result["status"] == fault.status, result["reason"]
    assert fault.reason in result["reason"]
    assert out["elapsed"] <= DEADLINE + MARGIN, out["elapsed"]
    assert out["fds"][1] == out["fds"][0], "file descriptors leaked"
    threads_before, threads_after = out["threads"]
    assert threads_after == threads_before + (1 if fault.leaves_thread else 0)
    if fault.watch is not None:
        assert listing(fault.watch) == before
    assert not (tmp_path / "target").exists()

    if not fault.inject:
        cli = subprocess.run(
            [
                *fault.prefix,
                sys.executable,
                "-m",
                "glance_features",
                "--feature",
                fault.feature,
                "--timeout",
                str(DEADLINE),
                *_settings_as_config(tmp_path, fault.settings),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert "Traceback" not in cli.stderr + cli.stdout
        assert cli.returncode in (0, 1, 2), cli.stderr
        assert fault.feature in cli.stdout


def _settings_as_config(tmp_path: Path, settings: dict[str, Any]) -> list[str]:
    if not settings:
        return ["--config-dir", str(tmp_path / "ro")]  # an empty, readable directory
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    return ["--config-file", str(conf)]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("malformed", b"[DEFAULT\nimage_cache_dir = /x\n", 64),
        ("empty", b"", 0),
        ("binary", bytes(range(256)) * 64, 64),
        (
            "large",  # 3.6 MB of comments: under the 4 MiB bound, read in full
            b"[DEFAULT]\n"
            + b"# a comment line in a very large file\n" * 95_000
            + b"image_cache_driver = centralized_db\n",
            0,
        ),
        (
            "huge",  # 19 MB: refused rather than read into a Glance process
            b"[DEFAULT]\n"
            + b"# a comment line in a very large file\n" * 500_000
            + b"image_cache_driver = centralized_db\n",
            64,
        ),
        ("fifo", b"", 64),
    ],
)
def test_config_file_faults(tmp_path: Path, name: str, content: bytes, code: int) -> None:
    conf = tmp_path / "glance-api.conf"
    if name == "fifo":
        os.mkfifo(conf)  # a writer that never comes must not hang the read
    else:
        conf.write_bytes(content)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "glance_features",
            "--feature",
            "sendfile",
            "--config-file",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 64:
        assert len(proc.stderr.splitlines()) == 1 and str(conf) in proc.stderr
        assert "Errno" not in proc.stderr
    if name != "fifo":
        assert conf.read_bytes() == content
