"""Soak: many refreshed probes from many threads, with forks, must not
deadlock or grow file descriptors or memory.

    python benchmarks/soak.py [--probes 1000] [--threads 16] [--forks 20]

Exits 1 with a reason on a deadlock (a probe, thread or child that does not
finish in time) or growth beyond the allowance; prints the figures either way.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time

import glance_features


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--forks", type=int, default=20)
    args = parser.parse_args()

    glance_features.probe(refresh=True)  # warm: imports, listings
    for _ in range(20):
        glance_features.probe(refresh=True)
    fds_before, rss_before = fds(), rss_kib()
    per_thread = max(1, args.probes // args.threads)
    errors: list[str] = []
    forked: list[int] = []
    fork_lock = threading.Lock()

    def worker(index: int) -> None:
        for i in range(per_thread):
            report = glance_features.probe(refresh=True, timeout=10)
            if not report.available("sendfile"):
                errors.append(f"thread {index}: sendfile not available in probe {i}")
            if index == 0 and i % max(1, per_thread // args.forks) == 0:
                pid = os.fork()
                if pid == 0:
                    # In the child: the cached report is there, and a fresh
                    # probe completes even though the parent's threads were
                    # mid-probe at the fork.
                    glance_features.probe()
                    child = glance_features.probe(refresh=True, timeout=10)
                    os._exit(0 if child.available("sendfile") else 3)
                with fork_lock:
                    forked.append(pid)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    stuck = [t.name for t in threads if t.is_alive()]
    failed_children = 0
    for pid in forked:
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                failed_children += os.waitstatus_to_exitcode(status) != 0
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                errors.append(f"child {pid} deadlocked")
                break
            time.sleep(0.01)
    elapsed = time.monotonic() - start
    time.sleep(0.5)  # let detector threads that outlived a probe finish
    fds_after, rss_after = fds(), rss_kib()
    total = per_thread * args.threads
    # Concurrent refreshes share the run under way, so fewer detector runs
    # than probes happen: that sharing is what is being soaked.
    print(
        f"soak: {total} probes from {args.threads} threads and {len(forked)} forks in "
        f"{elapsed:.1f} s; fds {fds_before} -> {fds_after}; "
        f"RSS {rss_before} -> {rss_after} KiB"
    )
    if stuck:
        errors.append(f"threads still running after 600 s: {stuck}")
    if failed_children:
        errors.append(f"{failed_children} forked children failed their probe")
    if fds_after > fds_before:
        errors.append(f"file descriptors grew from {fds_before} to {fds_after}")
    if rss_after > rss_before + 20 * 1024:  # 20 MiB allowance for allocator noise
        errors.append(f"memory grew from {rss_before} to {rss_after} KiB")
    for error in errors[:10]:
        print(f"soak: FAILED: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
