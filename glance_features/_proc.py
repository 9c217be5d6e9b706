"""Run an external binary with bounded time, CPU, memory and output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from glance_features._record import record

# In the spirit of the limits Glance puts on `qemu-img info`
# (oslo.concurrency ProcessLimits: 30 s of CPU, 1 GiB of address space).
CPU_SECONDS = 30
ADDRESS_SPACE = 1 << 30
MAX_OUTPUT = 1 << 20
# A clean environment: the C locale keeps output parseable, and PATH is the
# system's default so nothing the caller's PATH adds is run by the child.
CLEAN_ENV = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/local/bin:/usr/bin:/bin"}


@record
class Outcome:
    returncode: int | None
    output: bytes
    timed_out: bool = False
    truncated: bool = False

    @property
    def signal(self) -> int | None:
        rc = self.returncode
        return -rc if rc is not None and rc < 0 else None

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def describe_failure(self, what: str, timeout: float) -> str | None:
        """One line saying why this run did not succeed, or None if it did."""
        if self.timed_out:
            return f"{what} did not finish within {round(timeout, 1):g} s"
        if self.truncated:
            return f"{what} printed more than {MAX_OUTPUT} bytes"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"{what} was killed by {name}"
        if self.returncode != 0:
            first = next((line for line in self.text.splitlines() if line.strip()), "")
            return f"{what} exited with status {self.returncode}" + (
                f": {first[:200]}" if first else ""
            )
        return None


def run(
    argv: Sequence[str],
    timeout: float,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run ``argv`` (no shell); stdout and stderr together, at most MAX_OUTPUT bytes.

    Raises OSError when the binary cannot be executed at all.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**CLEAN_ENV, **(env or {})},
        cwd=cwd,
        close_fds=True,
        # Its own process group, so a timeout kills whatever it started too.
        start_new_session=True,
        preexec_fn=None if _HAS_PRLIMIT else _limit_self,
    )
    if _HAS_PRLIMIT:
        # Set from outside: a preexec_fn runs Python between fork and exec,
        # which can deadlock the child of a multi-threaded parent (and the
        # probe runs detectors in threads).
        _limit(proc.pid)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        _kill_group(proc.pid)

    timer = threading.Timer(max(timeout, 0.0), kill)
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    truncated = False
    try:
        assert proc.stdout is not None
        while True:
            chunk = proc.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT:
                truncated = True
                _kill_group(proc.pid)
                break
        proc.stdout.close()
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
    return Outcome(returncode, b"".join(chunks)[:MAX_OUTPUT], killed.is_set(), truncated)


_HAS_PRLIMIT = sys.platform.startswith("linux")


def _limit(pid: int) -> None:
    import resource

    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
        resource.prlimit(pid, resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    except (OSError, ValueError):
        pass  # the child may already have exited


def _limit_self() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
